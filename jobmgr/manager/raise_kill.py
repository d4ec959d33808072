"""``job-manager.raise``, ``kill``, ``raiseall``, ``killall``.

A raise posts an ``exception`` event (with the requester's userid) and is
answered once that event is durable; a fatal one then moves the job to
CLEANUP, which cancels its alloc request or kills its shells.  A kill is
passed to exec for a job whose shells may be running.  The bulk forms
select active jobs by user and state; ``dry_run`` only counts them.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from flux.constants import FLUX_USERID_UNKNOWN
from flux.errors import FluxError
from flux.message import Message
from jobmgr.manager.active import ActiveJob, ExecPhase
from jobmgr.manager.lookup import active_job, is_owner, job_id, payload_of
from jobmgr.states import JobState

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["raise_exception", "kill", "raiseall", "killall", "exception_context"]

_SIGNAL_MAX = 64


def exception_context(payload: dict[str, Any], topic: str, userid: int,
                      default_severity: int = 0) -> dict[str, Any]:
    """The exception event context a raise request asks for (EPROTO naming the bad key)."""
    severity = payload.get("severity", default_severity)
    if type(severity) is not int or not 0 <= severity <= 7:
        raise FluxError(errno.EPROTO, f"{topic}: 'severity' must be an integer in 0-7, "
                                      f"got {severity!r}")
    etype = payload.get("type", "cancel")
    if not isinstance(etype, str) or not etype or any(c.isspace() for c in etype):
        raise FluxError(errno.EPROTO, f"{topic}: 'type' must be a non-empty word, "
                                      f"got {etype!r}")
    note = payload.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise FluxError(errno.EPROTO, f"{topic}: 'note' must be a string, got {note!r}")
    return {"type": etype, "severity": severity, "note": note, "userid": userid}


def _signum(payload: dict[str, Any], key: str, topic: str) -> int:
    signum = payload.get(key, 15)
    if type(signum) is not int or not 1 <= signum <= _SIGNAL_MAX:
        raise FluxError(errno.EINVAL, f"{topic}: invalid signal number {signum!r}")
    return signum


def _reply_after_commit(mgr: "Manager", msg: Message, payload: dict[str, Any]) -> None:
    def done(errnum: int, errstr: str | None) -> None:
        if errnum:
            mgr.ctx.respond_error(msg, errnum, errstr)
        else:
            mgr.ctx.respond(msg, payload)

    mgr.poster.after_commit(done)


def raise_exception(mgr: "Manager", msg: Message) -> None:
    payload = payload_of(msg)
    jobid = job_id(payload, msg.topic)
    context = exception_context(payload, msg.topic, msg.userid)
    job = active_job(mgr, msg, jobid, "raise exceptions on")
    mgr.post(job, "exception", context)
    mgr.progress(job)
    _reply_after_commit(mgr, msg, {})


def _running(job: ActiveJob) -> bool:
    return job.exec_phase == ExecPhase.STARTING and not job.t_finished


def kill(mgr: "Manager", msg: Message) -> dict[str, Any]:
    payload = payload_of(msg)
    jobid = job_id(payload, msg.topic)
    signum = _signum(payload, "signum", msg.topic)
    job = active_job(mgr, msg, jobid, "kill")
    if not _running(job):
        raise FluxError(errno.EINVAL, "job is not running")
    mgr.execs.kill(job, signum)
    return {}


def _select(mgr: "Manager", msg: Message, payload: dict[str, Any],
            default_states: int) -> list[ActiveJob]:
    userid = payload.get("userid", msg.userid)
    if type(userid) is not int or userid < 0:
        raise FluxError(errno.EPROTO, f"{msg.topic}: 'userid' must be an integer, got {userid!r}")
    if not is_owner(msg) and userid != msg.userid:
        raise FluxError(errno.EPERM, "guests can only act on their own jobs")
    states = payload.get("states", default_states)
    if type(states) is not int or states < 0:
        raise FluxError(errno.EPROTO, f"{msg.topic}: 'states' must be a state mask, "
                                      f"got {states!r}")
    return [job for job in mgr.jobs.values()
            if (userid == FLUX_USERID_UNKNOWN or job.rec.userid == userid)
            and job.rec.state & states]


def raiseall(mgr: "Manager", msg: Message) -> dict[str, Any] | None:
    payload = payload_of(msg)
    context = exception_context(payload, msg.topic, msg.userid)
    jobs = _select(mgr, msg, payload, int(JobState.ACTIVE))
    if payload.get("dry_run"):
        return {"count": len(jobs), "errors": 0}
    errors = 0
    for job in jobs:
        if mgr.try_post(job, "exception", dict(context)):
            mgr.progress(job)
        else:
            errors += 1
    _reply_after_commit(mgr, msg, {"count": len(jobs), "errors": errors})
    return None


def killall(mgr: "Manager", msg: Message) -> dict[str, Any]:
    payload = payload_of(msg)
    signum = _signum(payload, "signum", msg.topic)
    jobs = [job for job in _select(mgr, msg, payload, int(JobState.RUNNING)) if _running(job)]
    if not payload.get("dry_run"):
        for job in jobs:
            mgr.execs.kill(job, signum)
    return {"count": len(jobs), "errors": 0}
