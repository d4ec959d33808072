"""``job-manager.urgency``: change a pending job's urgency (RFC 21, RFC 30).

Posts ``urgency`` (a SCHED job goes back to PRIORITY) and at once the new
``priority`` (hold 0, expedite max, else the urgency), in one commit; the
answer, with the old urgency, comes once both are durable.  A job with an
alloc request out is then re-prioritized at the scheduler
(``sched.prioritize``), or its request canceled when it is held.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from flux.errors import FluxError
from flux.message import Message
from jobmgr.manager.lookup import active_job, is_owner, job_id, payload_of
from jobmgr.priority import check_urgency, urgency_change_allowed

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["set_urgency"]


def set_urgency(mgr: "Manager", msg: Message) -> None:
    payload = payload_of(msg)
    jobid = job_id(payload, msg.topic)
    urgency = payload.get("urgency")
    if type(urgency) is not int:
        raise FluxError(errno.EPROTO, f"{msg.topic}: 'urgency' must be an integer, "
                                      f"got {urgency!r}")
    check_urgency(urgency, is_owner(msg))
    job = active_job(mgr, msg, jobid, "reprioritize")
    if not urgency_change_allowed(job.tstate):
        raise FluxError(errno.EINVAL, "urgency cannot be changed once resources are allocated")
    old = job.t_urgency
    mgr.post(job, "urgency", {"urgency": urgency, "userid": msg.userid})
    mgr.progress(job)
    response: dict[str, Any] = {"old_urgency": old}

    def done(errnum: int, errstr: str | None) -> None:
        if errnum:
            mgr.ctx.respond_error(msg, errnum, errstr)
        else:
            mgr.ctx.respond(msg, response)

    mgr.poster.after_commit(done)
