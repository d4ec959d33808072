"""``job-manager.submit``: new jobs from job-ingest enter the active table.

Ingest has already committed each job's jobspec, J and ``submit`` event.
The job manager re-checks what may have changed since ingest looked (the
queue exists and accepts submissions) and parses the dependencies; a job
refused here gets ``[id, errnum, text]`` in the response's ``errors`` and
its directory is removed before the response is sent (so a crash cannot
resurrect a job its submitter was told failed).  Accepted jobs are
journaled with their submit event and jobspec, then validated: ``validate``,
their ``dependency-add`` events, and whatever follows without outside
input (``depend``, ``priority``) are posted together.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from flux.errors import FluxError
from flux.message import Message
from jobmgr.depend import parse_dependencies
from jobmgr.job import new_job
from jobmgr.manager.active import ActiveJob, job_key
from jobmgr.manager.lookup import payload_of
from jobmgr.states import JobState

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["submit", "begin", "submit_event", "queue_of"]

_FIELDS = (("id", int), ("userid", int), ("urgency", int), ("flags", int))


def submit_event(entry: dict[str, Any]) -> dict[str, Any]:
    """The ``submit`` event exactly as ingest wrote it for ENTRY."""
    return {"timestamp": entry["t_submit"], "name": "submit",
            "context": {"userid": entry["userid"], "urgency": entry["urgency"],
                        "flags": entry["flags"], "version": 1}}


def queue_of(jobspec: dict[str, Any]) -> str | None:
    system = (jobspec.get("attributes") or {}).get("system") or {}
    queue = system.get("queue") if isinstance(system, dict) else None
    return queue if isinstance(queue, str) else None


def _check_entry(entry: Any, index: int) -> None:
    if not isinstance(entry, dict):
        raise FluxError(errno.EPROTO, f"job-manager.submit: jobs[{index}] must be an object")
    for key, kind in _FIELDS:
        if type(entry.get(key)) is not kind:
            raise FluxError(errno.EPROTO, f"job-manager.submit: jobs[{index}].{key} must be "
                                          f"an integer, got {entry.get(key)!r}")
    ts = entry.get("t_submit")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts <= 0:
        raise FluxError(errno.EPROTO, f"job-manager.submit: jobs[{index}].t_submit must be a "
                                      f"number > 0, got {ts!r}")
    if not isinstance(entry.get("jobspec"), dict):
        raise FluxError(errno.EPROTO, f"job-manager.submit: jobs[{index}].jobspec must be "
                                      "an object")


def _admit(mgr: "Manager", entry: dict[str, Any]) -> ActiveJob:
    jobspec = entry["jobspec"]
    queue = queue_of(jobspec)
    state = mgr.queues.find(queue)
    if state is None:
        raise FluxError(errno.EINVAL, f"invalid queue '{queue}'" if queue else
                        "a queue must be named: queues are configured")
    refusal = state.refusal()
    if refusal is not None:
        raise FluxError(errno.EINVAL, refusal)
    if entry["id"] in mgr.jobs:
        raise FluxError(errno.EEXIST, f"job {entry['id']} already exists")
    system = (jobspec.get("attributes") or {}).get("system") or {}
    try:
        deps = parse_dependencies(system.get("dependencies") if isinstance(system, dict)
                                  else None)
    except ValueError as exc:
        raise FluxError(errno.EINVAL, str(exc)) from None
    rec = new_job(entry["id"], submit_event(entry))
    return ActiveJob(rec, jobspec, queue, tstate=JobState.NEW, events=[submit_event(entry)],
                     deps=deps or None, t_urgency=rec.urgency)


def begin(mgr: "Manager", job: ActiveJob) -> None:
    """Validate a NEW job and post what follows."""
    mgr.post(job, "validate")
    mgr.deps.begin(job)
    mgr.progress(job)


def submit(mgr: "Manager", msg: Message) -> dict[str, Any] | None:
    payload = payload_of(msg)
    entries = payload.get("jobs")
    if not isinstance(entries, list):
        raise FluxError(errno.EPROTO, "job-manager.submit: 'jobs' must be an array")
    for index, entry in enumerate(entries):
        _check_entry(entry, index)
    admitted: list[ActiveJob] = []
    errors: list[list[Any]] = []
    for entry in entries:
        try:
            job = _admit(mgr, entry)
        except (FluxError, ValueError) as exc:
            errnum = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EINVAL
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            errors.append([entry["id"], errnum, text])
            continue
        mgr.add(job)
        admitted.append(job)
    mgr.journal.publish([{"id": job.rec.id, "events": list(job.events), "jobspec": job.jobspec}
                         for job in admitted])
    for job in admitted:
        begin(mgr, job)
    if not errors:
        return {}
    refused = [e[0] for e in errors if e[1] != errno.EEXIST]
    if refused:
        mgr.poster.add_ops([{"key": job_key(jobid), "flags": 0, "dirent": None}
                            for jobid in refused])

    def done(errnum: int, errstr: str | None) -> None:
        if errnum:
            mgr.log.error("cannot remove refused jobs", error=errstr or str(errnum))
        mgr.ctx.respond(msg, {"errors": errors})

    mgr.poster.after_commit(done)
    return None
