"""RFC 26 dependencies as the job manager applies them (glue over jobmgr.depend).

When a job is validated, each dependency of its jobspec is logged with
``dependency-add`` and judged at once when possible: satisfied ->
``dependency-remove``; can never be -> a fatal ``dependency`` exception;
otherwise it waits in a ``DependencyIndex`` keyed by the antecedent job (or
a begin-time timer).  A job's start and its becoming inactive resolve only
the dependents of that job.  An antecedent that is no longer active is
looked up once in the KVS (its eventlog folded) and remembered in a small
cache of recently inactive jobs.
"""
from __future__ import annotations

import asyncio
import binascii
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from eventstore.eventlog import EventlogError, decode_events
from flux.message import Message
from jobmgr.depend import (
    Antecedent,
    Dependency,
    DependencyIndex,
    Outcome,
    Verdict,
    antecedent_of,
    evaluate,
    never_exception,
)
from jobmgr.events import JobEventError
from jobmgr.job import replay
from jobmgr.manager.active import ActiveJob, eventlog_key
from jobmgr.states import JobState

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["Dependencies", "RECENT_SIZE"]

RECENT_SIZE = 4096
_MISSING = object()


class _GuestUids(Mapping[int, "int | None"]):
    """dependent job id -> its owner when a guest (evaluate's userid argument)."""

    def __init__(self, mgr: "Manager") -> None:
        self._mgr = mgr

    def __getitem__(self, jobid: int) -> int | None:
        job = self._mgr.jobs.get(jobid)
        if job is None or job.rec.userid == self._mgr.owner:
            return None
        return job.rec.userid

    def get(self, jobid: int, default: Any = None) -> int | None:  # type: ignore[override]
        return self[jobid]

    def __iter__(self) -> Iterator[int]:
        return iter(self._mgr.jobs)

    def __len__(self) -> int:
        return len(self._mgr.jobs)


class Dependencies:
    def __init__(self, mgr: "Manager") -> None:
        self._mgr = mgr
        self.index = DependencyIndex()
        self._recent: OrderedDict[int, Antecedent | None] = OrderedDict()
        self._lookups: dict[int, list[tuple[int, Dependency]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._uids = _GuestUids(mgr)

    # -- a job's own dependencies ---------------------------------------------------
    def begin(self, job: ActiveJob) -> None:
        """Log and judge JOB's dependencies (it was just validated, or replayed in DEPEND)."""
        if not job.deps:
            return
        outstanding = set(job.rec.dependencies)
        removed = job.rec.dependencies_removed or set()
        for dep in job.deps:
            if dep.description in removed or dep.by_plugin:
                continue
            if dep.description not in outstanding:
                self._mgr.post(job, "dependency-add", {"description": dep.description})
            self._judge(job, dep)
            if job.tstate != JobState.DEPEND:
                break

    def _guest(self, job: ActiveJob) -> int | None:
        return None if job.rec.userid == self._mgr.owner else job.rec.userid

    def _judge(self, job: ActiveJob, dep: Dependency) -> None:
        now = time.time()
        if dep.begin_time is not None:
            self._act(job, dep, evaluate(dep, None, now))
            return
        jobid = dep.jobid
        assert jobid is not None
        active = self._mgr.jobs.get(jobid)
        if active is not None:
            self._act(job, dep, evaluate(dep, antecedent_of(active.rec), now, self._guest(job)))
            return
        known = self._recent.get(jobid, _MISSING)
        if known is not _MISSING:
            self._act(job, dep, evaluate(dep, known, now, self._guest(job)))  # type: ignore[arg-type]
            return
        waiting = self._lookups.get(jobid)
        if waiting is not None:
            waiting.append((job.rec.id, dep))
            return
        self._lookups[jobid] = [(job.rec.id, dep)]
        self._mgr.ctx.request_callback("kvs.lookup", {"key": eventlog_key(jobid), "flags": 0},
                   lambda msg: self._looked_up(jobid, msg))

    def _act(self, job: ActiveJob, dep: Dependency, outcome: Outcome) -> None:
        if job.tstate != JobState.DEPEND:
            return
        if outcome.verdict is Verdict.SATISFIED:
            self._mgr.post(job, "dependency-remove", {"description": dep.description})
        elif outcome.verdict is Verdict.NEVER:
            self.forget(job)
            self._mgr.post(job, "exception", never_exception(dep, outcome))
        else:
            self.index.add(job.rec.id, dep)
            if dep.begin_time is not None:
                self._arm()

    def forget(self, job: ActiveJob) -> None:
        """Stop waiting on JOB's dependencies (it left DEPEND some other way)."""
        if job.deps and len(self.index):
            self.index.discard_dependent(job.rec.id, job.deps)

    # -- antecedents -----------------------------------------------------------------------
    def _looked_up(self, jobid: int, msg: Message) -> None:
        antecedent: Antecedent | None = None
        if not msg.errnum:
            try:
                data = binascii.a2b_base64(msg.payload["val"]["data"])
                antecedent = antecedent_of(replay(jobid, decode_events(data)))
            except (KeyError, TypeError, ValueError, EventlogError, JobEventError) as exc:
                self._mgr.log.warning("dependency: cannot read antecedent eventlog",
                                      id=jobid, error=str(exc))
        self._remember(jobid, antecedent)
        now = time.time()
        for dependent, dep in self._lookups.pop(jobid, []):
            job = self._mgr.jobs.get(dependent)
            if job is not None:
                self._act(job, dep, evaluate(dep, antecedent, now, self._guest(job)))
                self._mgr.progress(job)

    def _remember(self, jobid: int, antecedent: Antecedent | None) -> None:
        self._recent[jobid] = antecedent
        self._recent.move_to_end(jobid)
        while len(self._recent) > RECENT_SIZE:
            self._recent.popitem(last=False)

    def changed(self, job: ActiveJob) -> None:
        """JOB started or became inactive: settle the dependencies that name it."""
        antecedent = antecedent_of(job.rec)
        if job.rec.state == JobState.INACTIVE:
            self._remember(job.rec.id, antecedent)
        if not len(self.index):
            return
        for dependent, dep, outcome in self.index.resolve(job.rec.id, antecedent, time.time(),
                                                         self._uids):
            djob = self._mgr.jobs.get(dependent)
            if djob is not None:
                self._act(djob, dep, outcome)
                self._mgr.progress(djob)

    def purged(self, jobids: list[int]) -> None:
        for jobid in jobids:
            if jobid in self._recent:
                self._recent[jobid] = None

    # -- begin-time ------------------------------------------------------------------------
    def _arm(self) -> None:
        when = self.index.next_wake()
        if when is None or (self._timer_at is not None and self._timer_at <= when):
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = when
        self._timer = loop.call_at(loop.time() + max(0.0, when - time.time()), self._wake)

    def _wake(self) -> None:
        self._timer = self._timer_at = None
        for dependent, dep in self.index.due(time.time()):
            job = self._mgr.jobs.get(dependent)
            if job is not None and job.tstate == JobState.DEPEND:
                self._mgr.post(job, "dependency-remove", {"description": dep.description})
                self._mgr.progress(job)
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
