"""The job manager's record of one job and its fold over the job eventlog.

``new_job(jobid, submit_event)`` starts a record from the ``submit`` event;
``apply(job, event)`` folds one more event into it; ``replay(jobid, events)``
folds a whole eventlog.  ``apply`` checks everything first and only then
updates the record, so an event that raises leaves the record unchanged.

Events are RFC 18 entries as decoded: mappings with ``timestamp``, ``name``
and optional ``context``.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobmgr.events import FLAG_NAMES, JobEventError
from jobmgr.priority import PRIORITY_UNSET
from jobmgr.states import JobResult, JobState, job_result, transition

__all__ = [
    "Job", "ExceptionRecord", "new_job", "apply", "replay", "merge_annotations", "update_memo",
    "apply_jobspec_updates",
]


@dataclass(slots=True)
class ExceptionRecord:
    """One exception event's context."""

    type: str
    severity: int
    note: str
    timestamp: float
    userid: int | None = None
    wait_status: int | None = None


@dataclass(slots=True)
class Job:
    """What the job manager knows about one job, rebuilt from its eventlog."""

    id: int
    userid: int
    urgency: int
    flags: int
    t_submit: float
    state: JobState = JobState.NEW
    t_state: float = 0.0                 # when the current state was entered
    priority: int = PRIORITY_UNSET
    dependencies: list[str] = field(default_factory=list)   # outstanding
    dependencies_removed: set[str] | None = None
    fatal: ExceptionRecord | None = None     # first severity-0 exception: root cause
    exception_count: int = 0
    has_resources: bool = False              # alloc logged and no free yet
    alloc_count: int = 0
    started: bool = False
    finish_status: int | None = None
    release_final: bool = False
    prolog_active: int = 0
    epilog_active: int = 0
    annotations: dict[str, Any] | None = None   # from alloc, RFC 27 merge rules
    memo: dict[str, Any] | None = None
    jobspec_updates: dict[str, Any] | None = None
    expiration: float | None = None          # from resource-update
    t_clean: float | None = None
    invalid: bool = False                    # invalidated: to be removed

    @property
    def success(self) -> bool:
        """True when the job finished with status 0 and had no fatal exception."""
        return self.fatal is None and self.finish_status == 0

    @property
    def result(self) -> JobResult | None:
        """The job's result once INACTIVE (None before, and for invalid jobs)."""
        if self.state != JobState.INACTIVE or self.invalid:
            return None
        return job_result(self.finish_status, self.fatal.type if self.fatal else None)

    @property
    def waitable(self) -> bool:
        return bool(self.flags & FLAG_NAMES["waitable"])


def new_job(jobid: int, submit: Mapping[str, Any]) -> Job:
    """Start a record from the job's first event, which must be ``submit``."""
    name = submit.get("name")
    ctx = submit.get("context")
    transition(None, name, ctx)  # type: ignore[arg-type]
    ts = _timestamp(submit, name)
    return Job(id=jobid, userid=ctx["userid"], urgency=ctx["urgency"], flags=ctx["flags"],
               t_submit=ts, t_state=ts)


def _timestamp(event: Mapping[str, Any], name: Any) -> float:
    ts = event.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts <= 0:
        raise JobEventError(f"{name}: timestamp must be a number > 0, got {ts!r}", event=name)
    return float(ts)


def _check(job: Job, name: str, ctx: Mapping[str, Any]) -> None:
    """Consistency rules beyond the state table (record left untouched)."""
    if name == "dependency-add":
        desc = ctx["description"]
        if job.dependencies_removed and desc in job.dependencies_removed:
            raise JobEventError(f"dependency-add: dependency {desc!r} was already satisfied",
                                event=name, key="description", state=job.state)
    elif name == "dependency-remove":
        if ctx["description"] not in job.dependencies:
            raise JobEventError(
                f"dependency-remove: no outstanding dependency {ctx['description']!r}",
                event=name, key="description", state=job.state)
    elif name == "depend":
        if job.dependencies:
            raise JobEventError("depend: dependencies still outstanding: "
                                + ", ".join(job.dependencies), event=name, state=job.state)
    elif name == "alloc":
        if job.has_resources:
            raise JobEventError("alloc: job already holds resources", event=name,
                                state=job.state)
    elif name == "prolog-finish":
        if job.prolog_active == 0:
            raise JobEventError("prolog-finish: no prolog is running", event=name,
                                state=job.state)
    elif name == "epilog-finish":
        if job.epilog_active == 0:
            raise JobEventError("epilog-finish: no epilog is running", event=name,
                                state=job.state)
    elif name == "start":
        if job.started:
            raise JobEventError("start: job already started", event=name, state=job.state)
        if job.prolog_active:
            raise JobEventError("start: a prolog is still running", event=name,
                                state=job.state)
        if not job.has_resources:
            raise JobEventError("start: job holds no resources", event=name, state=job.state)
    elif name == "release":
        if job.release_final:
            raise JobEventError("release: resources were already finally released",
                                event=name, state=job.state)
    elif name == "finish":
        if job.finish_status is not None:
            raise JobEventError("finish: job already finished", event=name, state=job.state)
    elif name == "free":
        if not job.has_resources:
            raise JobEventError("free: job holds no resources", event=name, state=job.state)
        if job.epilog_active:
            raise JobEventError("free: an epilog is still running", event=name,
                                state=job.state)
        if job.started and job.finish_status is None:
            raise JobEventError("free: job shells have not finished", event=name,
                                state=job.state)
    elif name == "clean":
        if job.has_resources:
            raise JobEventError("clean: resources were not freed", event=name, state=job.state)
        if job.epilog_active:
            raise JobEventError("clean: an epilog is still running", event=name,
                                state=job.state)
        if job.started and job.finish_status is None:
            raise JobEventError("clean: job shells have not finished", event=name,
                                state=job.state)


def apply(job: Job, event: Mapping[str, Any], checked: bool = False) -> Job:
    """Fold one eventlog entry into ``job`` (updated in place and returned).

    Raises JobEventError naming the event, state or key when the event is
    malformed or not allowed now; the record is then unchanged.  CHECKED:
    its context was validated when it was posted (``transition``).
    """
    name = event.get("name")
    if not isinstance(name, str) or not name:
        raise JobEventError(f"event name must be a non-empty string, got {name!r}")
    ts = _timestamp(event, name)
    ctx = event.get("context") or {}
    nxt = transition(job.state, name, ctx, checked)
    _check(job, name, ctx)

    if name == "priority":
        job.priority = ctx["priority"]
    elif name == "urgency":
        job.urgency = ctx["urgency"]
    elif name == "exception":
        job.exception_count += 1
        if ctx["severity"] == 0 and job.fatal is None:
            job.fatal = ExceptionRecord(ctx["type"], 0, ctx["note"], ts, ctx.get("userid"),
                                        ctx.get("wait_status"))
    elif name == "alloc":
        job.has_resources = True
        job.alloc_count += 1
        annotations = ctx.get("annotations")
        if annotations:
            job.annotations = merge_annotations(job.annotations, annotations)
    elif name == "free":
        job.has_resources = False
    elif name == "start":
        job.started = True
    elif name == "finish":
        job.finish_status = ctx["status"]
    elif name == "release":
        if ctx["final"]:
            job.release_final = True
    elif name == "dependency-add":
        if ctx["description"] not in job.dependencies:
            job.dependencies.append(ctx["description"])
    elif name == "dependency-remove":
        job.dependencies.remove(ctx["description"])
        if job.dependencies_removed is None:
            job.dependencies_removed = set()
        job.dependencies_removed.add(ctx["description"])
    elif name == "prolog-start":
        job.prolog_active += 1
    elif name == "prolog-finish":
        job.prolog_active -= 1
    elif name == "epilog-start":
        job.epilog_active += 1
    elif name == "epilog-finish":
        job.epilog_active -= 1
    elif name == "memo":
        job.memo = update_memo(job.memo, ctx)
    elif name == "set-flags":
        for flag in ctx["flags"]:
            job.flags |= FLAG_NAMES[flag]
    elif name == "jobspec-update":
        if job.jobspec_updates is None:
            job.jobspec_updates = {}
        job.jobspec_updates.update(ctx)
    elif name == "resource-update":
        job.expiration = float(ctx["expiration"])
    elif name == "clean":
        job.t_clean = ts
    elif name == "invalidate":
        job.invalid = True

    if nxt != job.state:
        job.state = nxt
        job.t_state = ts
    return job


def replay(jobid: int, events: Iterable[Mapping[str, Any]]) -> Job:
    """Fold a whole eventlog into a new record.

    Raises JobEventError (with the event's 1-based position in the message)
    if the log is empty or any event does not apply.
    """
    it = iter(events)
    first = next(it, None)
    if first is None:
        raise JobEventError(f"job {jobid}: eventlog is empty")
    try:
        job = new_job(jobid, first)
    except JobEventError as exc:
        raise JobEventError(f"job {jobid}: event 1: {exc.strerror}", event=exc.event,
                            key=exc.key) from None
    for index, entry in enumerate(it, start=2):
        try:
            apply(job, entry)
        except JobEventError as exc:
            raise JobEventError(f"job {jobid}: event {index}: {exc.strerror}",
                                event=exc.event, key=exc.key, state=exc.state) from None
    return job


def merge_annotations(old: Mapping[str, Any] | None,
                      new: Mapping[str, Any]) -> dict[str, Any] | None:
    """RFC 27 annotation merge: recursive, ``null`` deletes a key.

    Objects emptied by deletions are removed; the result is None when
    nothing is left.  ``old`` is not modified.
    """
    result: dict[str, Any] = dict(old) if old else {}
    for key, value in new.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            prev = result.get(key)
            merged = merge_annotations(prev if isinstance(prev, Mapping) else None, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    return result or None


def update_memo(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any] | None:
    """RFC 21 memo: each key replaces the previous value, ``null`` removes it."""
    result: dict[str, Any] = dict(old) if old else {}
    for key, value in new.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result or None


def apply_jobspec_updates(jobspec: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``jobspec`` with dotted-path ``updates`` applied.

    ``{"attributes.system.duration": 60}`` sets that nested key, creating
    objects on the way; a path through a non-object raises ValueError naming
    the path.
    """
    result = copy.deepcopy(dict(jobspec))
    for path, value in updates.items():
        parts = path.split(".")
        node: Any = result
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ValueError(f"jobspec update {path!r}: "
                                 f"{'.'.join(parts[:i + 1])} is not an object")
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return result

