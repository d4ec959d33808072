"""Finding the job an RPC names, and who may act on it.

Guests (requests without the owner role) may act only on their own jobs;
the instance owner on any.  A job that is not active is "inactive" if the
purge index knows it, else unknown.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from flux.constants import FLUX_ROLE_OWNER
from flux.errors import FluxError
from flux.message import Message
from jobmgr.manager.active import ActiveJob

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["is_owner", "payload_of", "job_id", "active_job"]


def is_owner(msg: Message) -> bool:
    return bool(msg.rolemask & FLUX_ROLE_OWNER)


def payload_of(msg: Message) -> dict[str, Any]:
    payload = msg.payload
    if not isinstance(payload, dict):
        raise FluxError(errno.EPROTO, f"{msg.topic}: payload must be a JSON object")
    return payload


def job_id(payload: dict[str, Any], topic: str) -> int:
    jobid = payload.get("id")
    if type(jobid) is not int or jobid < 0:
        raise FluxError(errno.EPROTO, f"{topic}: 'id' must be a job id (non-negative integer), "
                                      f"got {jobid!r}")
    return jobid


def active_job(mgr: "Manager", msg: Message, jobid: int, verb: str) -> ActiveJob:
    """The active job JOBID, if the sender may VERB it (EPERM / EINVAL / ENOENT otherwise)."""
    job = mgr.jobs.get(jobid)
    if job is None:
        if jobid in mgr.inactive:
            raise FluxError(errno.EINVAL, "job is inactive")
        raise FluxError(errno.ENOENT, "unknown job id")
    if not is_owner(msg) and job.rec.userid != msg.userid:
        raise FluxError(errno.EPERM, f"guests can only {verb} their own jobs")
    return job
