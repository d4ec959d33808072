"""What ``flux update`` may change in a job, as a pure function over data.

``plan_update(target, updates, caller, policy, queue_open, now)`` checks one
``job-manager.update`` request against the job it names and returns an
``UpdatePlan``: the ``jobspec-update`` context to post (the requested keys
plus any the update implies), whether the scheduler must first confirm
that the job is still feasible or accept a new expiration, and whether the
job becomes immutable.  Every refusal is a FluxError naming the key and why;
one refusal refuses the whole request (flux-update(1): all or nothing).

Keys (flux-update(1), flux-core's update plugins):

- ``attributes.system.duration``: seconds >= 0 (0 = unlimited).  A pending
  job's new duration is checked against the limits like a submission's,
  except that the instance owner may exceed them.  A running job's
  duration may be changed by the owner only; it becomes a new R
  expiration (``starttime + duration``) that the scheduler must accept.
- ``attributes.system.queue``: a pending job only; the queue must exist,
  be enabled, not be the current one, and the job must carry no
  constraints other than its queue's, which are replaced by the new
  queue's.  Limits, access and feasibility are checked for the new queue.
- ``attributes.system.job.name``: a string, pending or running.

Anything else: ``update of KEY not supported``.  When the owner bypasses
validation of a guest's job, the job is marked immutable and later guest
updates are refused (``job is immutable due to previous instance owner
update``).
"""
from __future__ import annotations

import errno
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flux.errors import FluxError
from jobmgr.events import FLAG_NAMES
from jobmgr.job import apply_jobspec_updates
from jobmgr.policy import JobPolicy, check_queue_name, check_updated
from jobmgr.states import JobState, statetostr

__all__ = ["UpdateTarget", "UpdatePlan", "plan_update", "check_request",
           "IMMUTABLE_TEXT", "expiration_for"]

DURATION = "attributes.system.duration"
QUEUE = "attributes.system.queue"
NAME = "attributes.system.job.name"
CONSTRAINTS = "attributes.system.constraints"
IMMUTABLE_TEXT = "job is immutable due to previous instance owner update"
_IMMUTABLE = FLAG_NAMES["immutable"]
_NOVALIDATE = FLAG_NAMES["novalidate"]
_RUNNING = JobState.RUN | JobState.CLEANUP


@dataclass(slots=True, frozen=True)
class UpdateTarget:
    """What the update check needs to know about the job."""

    id: int
    userid: int
    state: JobState                 # after every posted event (tentative)
    flags: int                      # job flags (immutable, novalidate, ...)
    jobspec: Mapping[str, Any]      # current: as submitted plus earlier updates
    R: Mapping[str, Any] | None = None


@dataclass(slots=True)
class UpdatePlan:
    updates: dict[str, Any]                 # the jobspec-update context
    jobspec: dict[str, Any]                 # the job's jobspec with them applied
    validate: bool = True                   # the updated job was checked like a submission
    feasibility: bool = False               # ask the scheduler if it can ever run
    expiration: float | None = None         # a running job's new R expiration
    immutable: bool = False                 # post set-flags immutable first
    notes: list[str] = field(default_factory=list)


def _einval(text: str) -> FluxError:
    return FluxError(errno.EINVAL, text)


def check_request(payload: Any, topic: str = "job-manager.update") -> tuple[int, dict[str, Any]]:
    """The job id and the updates of a request (EPROTO naming what is malformed)."""
    if not isinstance(payload, Mapping):
        raise FluxError(errno.EPROTO, f"{topic}: payload must be a JSON object")
    jobid = payload.get("id")
    if type(jobid) is not int or jobid < 0:
        raise FluxError(errno.EPROTO, f"{topic}: 'id' must be a job id (non-negative "
                                      f"integer), got {jobid!r}")
    updates = payload.get("updates")
    if not isinstance(updates, Mapping) or not updates:
        raise FluxError(errno.EPROTO, f"{topic}: 'updates' must be a non-empty object of "
                                      "jobspec keys and values")
    for key in updates:
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise _einval(f"invalid update key {key!r}: must be a period-delimited jobspec path")
    return jobid, dict(updates)


def _system(jobspec: Mapping[str, Any]) -> Mapping[str, Any]:
    attrs = jobspec.get("attributes")
    system = attrs.get("system") if isinstance(attrs, Mapping) else None
    return system if isinstance(system, Mapping) else {}


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def expiration_for(R: Mapping[str, Any] | None, duration: float) -> float:
    """A running job's new expiration: its R's starttime plus DURATION (0: unlimited)."""
    if duration == 0:
        return 0.0
    execution = R.get("execution") if isinstance(R, Mapping) else None
    start = execution.get("starttime") if isinstance(execution, Mapping) else None
    if not _number(start) or start <= 0:
        raise _einval("unable to get job starttime")
    return float(start) + float(duration)


class _Plan:
    """Per-key checks; each returns whether the key still needs validation."""

    def __init__(self, target: UpdateTarget, owner: bool, policy: JobPolicy,
                 queue_open: Callable[[str], str | None]) -> None:
        self.target = target
        self.owner = owner
        self.policy = policy
        self.queue_open = queue_open
        self.running = bool(target.state & _RUNNING)
        self.extra: dict[str, Any] = {}
        self.feasibility = False
        self.expiration: float | None = None

    def duration(self, value: Any) -> bool:
        if not _number(value) or not math.isfinite(value):
            raise _einval(f"{DURATION}: duration must be a number of seconds, got {value!r}")
        if value < 0:
            raise _einval(f"{DURATION}: duration must not be negative")
        if self.running:
            if not self.owner:
                raise FluxError(errno.EPERM, "duration update of running job requires "
                                             "instance owner privileges")
            self.expiration = expiration_for(self.target.R, float(value))
        # the owner may set any duration: that is what makes a guest job immutable
        return not self.owner

    def queue(self, value: Any) -> bool:
        if not isinstance(value, str) or not value:
            raise _einval(f"{QUEUE}: queue must be a non-empty string, got {value!r}")
        if self.running:
            raise _einval("update of queue for running job not supported")
        current = _system(self.target.jobspec).get("queue")
        if current == value:
            raise _einval(f"job queue is already set to {value}")
        check_queue_name(self.policy, value)
        refusal = self.queue_open(value)
        if refusal is not None:
            raise _einval(f"queue {value} is currently disabled")
        queues = self.policy.queues
        old = queues[current].requires if isinstance(current, str) and current in queues else ()
        have = _system(self.target.jobspec).get("constraints")
        expected = {"properties": list(old)} if old else None
        if (have or None) != expected:
            raise _einval("job appears to have non-queue constraints, unable to update "
                          f"queue to {value}")
        new = queues[value].requires
        self.extra[CONSTRAINTS] = {"properties": list(new)} if new else {}
        self.feasibility = True
        return True

    def name(self, value: Any) -> bool:
        if not isinstance(value, str):
            raise _einval(f"{NAME}: job name must be a string, got {value!r}")
        return False

    def check(self, key: str, value: Any) -> bool:
        if key == DURATION:
            return self.duration(value)
        if key == QUEUE:
            return self.queue(value)
        if key == NAME:
            return self.name(value)
        raise _einval(f"update of {key} not supported")


def plan_update(target: UpdateTarget, updates: Mapping[str, Any], userid: int, owner: bool,
                policy: JobPolicy, queue_open: Callable[[str], str | None]) -> UpdatePlan:
    """Check UPDATES of TARGET by USERID (OWNER: the instance owner) and plan them.

    ``queue_open(name)`` is None when queue NAME accepts jobs, else why not.
    Raises FluxError (EPERM, EINVAL) naming the key and the reason.
    """
    if not owner and target.userid != userid:
        raise FluxError(errno.EPERM, "guests may only update their own jobs")
    if not owner and target.flags & _IMMUTABLE:
        raise FluxError(errno.EPERM, IMMUTABLE_TEXT)
    if target.state & (JobState.CLEANUP | JobState.INACTIVE):
        raise _einval(f"job is in state {statetostr(target.state)} and can no longer be "
                      "updated")
    plan = _Plan(target, owner, policy, queue_open)
    validate = False
    for key, value in updates.items():
        if plan.check(key, value):
            validate = True
    merged = dict(updates)
    merged.update(plan.extra)
    try:
        jobspec = apply_jobspec_updates(target.jobspec, merged)
    except ValueError as exc:
        raise _einval(str(exc)) from None
    if validate:
        check_updated(jobspec, target.userid, owner, policy,
                      novalidate=bool(target.flags & _NOVALIDATE))
    immutable = (not validate and owner and userid != target.userid
                 and not target.flags & _IMMUTABLE
                 and any(k == DURATION for k in updates))
    return UpdatePlan(merged, jobspec, validate, plan.feasibility, plan.expiration, immutable)
