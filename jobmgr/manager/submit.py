"""``job-manager.submit``: new jobs from job-ingest enter the active table.

The job manager re-checks what may have changed since ingest looked (the
queue exists and accepts submissions, the id is new) and parses the
dependencies; a job refused here gets ``[id, errnum, text]`` in the
response's ``errors`` and nothing of it is written.  Each accepted job's
``jobspec`` and ``J`` are put and its eventlog gets ``submit`` followed by
``validate``, its ``dependency-add`` events and whatever follows without
outside input (``depend``, ``priority``) -- all in the commit that carries
the job manager's other posted events.  The response comes once that
commit is durable (or names every accepted job with the commit's error, and
they leave the table); the journal gets the events, with the jobspec, at
the same time.  Ingest used to commit the first three keys itself: one
commit round per job less (specs/ingest.md).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

import orjson

from flux.errors import FluxError
from flux.message import Message
from jobmgr.depend import parse_dependencies
from jobmgr.job import new_job
from jobmgr.manager.active import ActiveJob, job_key
from jobmgr.manager.lookup import payload_of
from jobmgr.states import JobState
from kvs.txn import RawValue

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
    jobid = entry["id"]
    # ingest's ids are always past max_jobid: the (linear) inactive index is
    # searched only for an id some other client chose
    if jobid <= mgr.max_jobid and (jobid in mgr.jobs or jobid in mgr.inactive):
        raise FluxError(errno.EEXIST, f"job {jobid} already exists")
    system = (jobspec.get("attributes") or {}).get("system") or {}
    tap = mgr.jobtap
    try:
        deps = parse_dependencies(system.get("dependencies") if isinstance(system, dict)
                                  else None,
                                  *((tap.plugin_schemes(), tap.builtin_schemes()) if tap.active
                                    else ()))
    except ValueError as exc:
        raise FluxError(errno.EINVAL, str(exc)) from None
    for dep in deps:
        # an after* target must exist (active, or inactive and not purged): the
        # submission is refused, as flux-submit(1) says, rather than the job failing
        # later (jobs of the same request count: they are added as they are admitted)
        target = dep.jobid
        if target is not None and target not in mgr.jobs and target not in mgr.inactive:
            raise FluxError(errno.ENOENT, f"{dep.scheme}: job {dep.value} not found")
    if tap.active:
        tap.validate(entry, deps)
    rec = new_job(entry["id"], submit_event(entry))
    # no committed events yet: the submit event goes out with this commit
    return ActiveJob(rec, jobspec, queue, tstate=JobState.NEW, events=[],
                     deps=deps or None, t_urgency=rec.urgency)


def _writes(job: ActiveJob, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The puts of the job's jobspec and J (raw chunks: the kvs runs in this broker)."""
    jobspec_json = entry.get("jobspec_json")
    if type(jobspec_json) is not bytes:
        jobspec_json = orjson.dumps(entry["jobspec"])
    J = entry.get("J_chunks")
    if not (isinstance(J, tuple) and all(type(c) is bytes for c in J)):
        J = (b'{"version":1,"mech":"none","userid":%d,"jobspec":' % entry["userid"],
             jobspec_json, b"}")
    key = job_key(job.rec.id)
    return [{"key": key + ".jobspec", "flags": 0, "dirent": RawValue(jobspec_json)},
            {"key": key + ".J", "flags": 0, "dirent": RawValue(*J)}]


def begin(mgr: "Manager", job: ActiveJob) -> None:
    """Validate a NEW job and post what follows."""
    mgr.post(job, "validate")
    if mgr.jobtap.active:
        mgr.jobtap.validated(job)
    mgr.deps.begin(job)
    mgr.progress(job)


def submit(mgr: "Manager", msg: Message) -> None:
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
        mgr.poster.post_submit(job, submit_event(entry), _writes(job, entry))
        if mgr.jobtap.active:
            mgr.jobtap.new(job)
        admitted.append(job)
    for job in admitted:
        begin(mgr, job)

    def done(errnum: int, errstr: str | None) -> None:
        if errnum:
            text = f"job commit failed: {errstr or errno.errorcode.get(errnum, errnum)}"
            errors.extend([job.rec.id, errnum, text] for job in admitted)
        mgr.ctx.respond(msg, {"errors": errors} if errors else {})

    # a failed commit refuses the submission at once (nothing of it was acknowledged)
    mgr.poster.after_commit(done, fail_fast=True)
