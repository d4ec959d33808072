"""The job-list projection: every job's ``flux jobs`` record, folded from events.

``JobList.apply(jobid, event, jobspec=None, R=None)`` folds one committed
job event (plus the jobspec and R once known) into the job's record and
keeps three orders ready for queries: pending jobs by priority (then submit
time), running jobs by start time (newest first), inactive jobs by the time
they became inactive (newest first).  ``JobList.list(...)`` answers RFC 43
queries from those orders without sorting; ``stats()`` is kept up to date
event by event.

Inactive jobs never change again, so each one is packed into a small tuple
(the fields queries filter on, plus the rest as compact JSON decoded only
when the job is returned): about 0.6 KB each instead of a full record.

Restart paths: ``load(jobs)`` folds many whole eventlogs and sorts once at
the end (O(N log N)); ``encode()``/``JobList.decode()`` snapshot the whole
projection to bytes; ``replace(jobid, events, ...)`` and ``remove(jobid)``
update only the jobs that changed since a snapshot.
"""
from __future__ import annotations

import bisect
import collections
import dataclasses
import errno
import functools
import itertools
import struct
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import orjson

from flux.errors import FluxError
from flux.resource.ResourceSet import decode_R
from jobmgr.events import JobEventError
from jobmgr.job import merge_annotations
from jobmgr.joblist.query import Budget, compile_constraint
from flux.job.summary import JobspecSummary, summarize_shared
from jobmgr.states import JobResult, JobState, job_result, transition

__all__ = ["JobList", "JobRecord", "ATTRS", "r_summary", "RSummary"]

# every attribute job-list can return (RFC 43, plus t_priority, t_sched, ngpus)
ATTRS: tuple[str, ...] = (
    "id", "userid", "urgency", "priority", "t_submit", "t_depend", "t_priority", "t_sched",
    "t_run", "t_cleanup", "t_inactive", "state", "name", "cwd", "queue", "project", "bank",
    "ntasks", "ncores", "ngpus", "nnodes", "ranks", "nodelist", "duration", "expiration",
    "success", "result", "waitstatus", "exception_occurred", "exception_type",
    "exception_severity", "exception_note", "annotations", "dependencies",
)
_ATTR_SET = frozenset(ATTRS)

# inactive entries: (t_inactive, id, userid, result, name, queue, blob); the blob
# is a JSON array of these attributes, in this order
_PACKED: tuple[str, ...] = (
    "urgency", "priority", "t_submit", "t_depend", "t_priority", "t_sched", "t_run",
    "t_cleanup", "cwd", "project", "bank", "ntasks", "ncores", "ngpus", "nnodes", "ranks",
    "nodelist", "duration", "expiration", "waitstatus", "exception_occurred",
    "exception_type", "exception_severity", "exception_note", "annotations", "dependencies",
)
_PACKED_POS = {name: i for i, name in enumerate(_PACKED)}
_E_TINACTIVE, _E_ID, _E_USERID, _E_RESULT, _E_NAME, _E_QUEUE, _E_BLOB = range(7)

_STATE_TIME = {JobState.DEPEND: "t_depend", JobState.PRIORITY: "t_priority",
               JobState.SCHED: "t_sched", JobState.RUN: "t_run",
               JobState.CLEANUP: "t_cleanup", JobState.INACTIVE: "t_inactive"}
_PENDING_LIST = JobState.NEW | JobState.PENDING
# membership tests on plain sets: Flag arithmetic builds a new enum member per test
_PENDING_STATES = frozenset(s for s in JobState if s & _PENDING_LIST and s.name)
_STATE_KEYS = ("new", "depend", "priority", "sched", "run", "cleanup", "inactive")
_STATE_INDEX = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4, 32: 5, 64: 6}
_RESULT_KEYS = {1: "successful", 2: "failed", 4: "canceled", 8: "timeout"}

# jobspec-update keys the listing follows
_UPDATE_FIELDS = {
    "attributes.system.duration": "duration", "attributes.system.queue": "queue",
    "attributes.system.job.name": "name", "attributes.system.cwd": "cwd",
    "attributes.system.project": "project", "attributes.system.bank": "bank",
}


@dataclass(slots=True)
class JobRecord:
    """An active job's listing record; None means "not set" (not returned)."""

    id: int
    userid: int
    urgency: int
    t_submit: float
    state: JobState = JobState.NEW
    priority: int | None = None
    t_depend: float | None = None
    t_priority: float | None = None
    t_sched: float | None = None
    t_run: float | None = None
    t_cleanup: float | None = None
    t_inactive: float | None = None
    name: str | None = None
    cwd: str | None = None
    queue: str | None = None
    project: str | None = None
    bank: str | None = None
    ntasks: int | None = None
    ncores: int | None = None
    ngpus: int | None = None
    nnodes: int | None = None
    ranks: str | None = None
    nodelist: str | None = None
    duration: float | None = None
    expiration: float | None = None
    success: bool | None = None
    result: int | None = None
    waitstatus: int | None = None
    exception_occurred: bool = False
    exception_type: str | None = None
    exception_severity: int | None = None
    exception_note: str | None = None
    annotations: dict[str, Any] | None = None
    dependencies: list[str] | None = None
    # internal
    fatal_type: str | None = None
    has_R: bool = False
    jobspec_updates: dict[str, Any] | None = None

    def get(self, attr: str) -> Any:
        return getattr(self, attr)


_RECORD_FIELDS = tuple(f.name for f in fields(JobRecord))


@dataclass(frozen=True, slots=True)
class RSummary:
    ranks: str
    nodelist: str
    nnodes: int
    ncores: int
    ngpus: int
    expiration: float


def r_summary(R: Mapping[str, Any] | str | bytes) -> RSummary:
    """Ranks, nodelist and counts of an RFC 20 R (dict or JSON); ValueError names the field."""
    R = decode_R(R)
    execution = R.get("execution")
    if not isinstance(execution, Mapping):
        raise ValueError("R.execution: must be an object")
    # jobs of one workload get the same few shapes of R: parse each shape once.
    # The key leaves out the expiration (it differs per job) and is decoded to
    # str: orjson's bytes keep a 4 KiB buffer each, 16 MiB for a full cache.
    try:
        key = orjson.dumps((execution.get("R_lite"), execution.get("nodelist"))).decode()
    except TypeError as exc:
        raise ValueError(f"R.execution: {exc}") from None
    expiration = execution.get("expiration")
    if isinstance(expiration, bool) or not isinstance(expiration, (int, float, type(None))):
        raise ValueError(f"R.execution.expiration: must be a number, got {expiration!r}")
    summary = _r_summary_of(key)
    expiration = float(expiration or 0.0)
    if expiration != summary.expiration:
        summary = dataclasses.replace(summary, expiration=expiration)
    return summary


@functools.lru_cache(maxsize=4096)
def _r_summary_of(key: str) -> RSummary:
    from flux.hostlist import Hostlist
    from flux.idset import IDset

    r_lite, nodelist = orjson.loads(key)
    if not isinstance(r_lite, list):
        raise ValueError("R.execution.R_lite: must be an array")
    ranks = IDset()
    ncores = ngpus = 0
    for i, entry in enumerate(r_lite):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("rank"), str):
            raise ValueError(f"R.execution.R_lite[{i}].rank: must be an idset string")
        try:
            these = IDset(entry["rank"])
            children = entry.get("children") or {}
            cores = IDset(children["core"]).count() if "core" in children else 0
            gpus = IDset(children["gpu"]).count() if "gpu" in children else 0
        except (ValueError, TypeError) as exc:
            raise ValueError(f"R.execution.R_lite[{i}]: {exc}") from None
        ranks = ranks.union(these)
        ncores += cores * these.count()
        ngpus += gpus * these.count()
    nodelist = nodelist or []
    if not isinstance(nodelist, list):
        raise ValueError("R.execution.nodelist: must be an array")
    if len(nodelist) == 1:
        hosts = nodelist[0]
    elif nodelist:
        hosts = Hostlist(nodelist).encode()
    else:
        hosts = ""
    return RSummary(ranks.encode(), hosts, ranks.count(), ncores, ngpus, 0.0)


def _new_stats() -> dict[str, Any]:
    return {"counts": [0] * 7, "successful": 0, "failed": 0, "canceled": 0, "timeout": 0}


def _stats_view(raw: dict[str, Any]) -> dict[str, Any]:
    counts = raw["counts"]
    states = dict(zip(_STATE_KEYS, counts))
    states["total"] = sum(counts)
    return {"job_states": states, "successful": raw["successful"], "failed": raw["failed"],
            "canceled": raw["canceled"], "timeout": raw["timeout"]}


class JobList:
    """All jobs, for ``flux jobs``: fold events in, query them out."""

    def __init__(self) -> None:
        self._active: dict[int, JobRecord] = {}
        self._pending = SortedKeys()     # (-priority, t_submit, id)
        self._running = SortedKeys()     # (t_run or 0, id)
        self._inactive: list[tuple[Any, ...]] = []           # entries, ascending t_inactive
        self._inactive_by_id: dict[int, tuple[Any, ...]] = {}
        self._inactive_by_user: dict[int, list[tuple[Any, ...]]] = {}
        self._stats = _new_stats()
        self._queue_stats: dict[str, dict[str, Any]] = {}
        self._interned: dict[Any, Any] = {}
        self.inactive_purged = 0

    # -- size ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._active) + len(self._inactive)

    def __contains__(self, jobid: int) -> bool:
        return jobid in self._active or jobid in self._inactive_by_id

    @property
    def active_count(self) -> int:
        return len(self._active)

    @property
    def inactive_count(self) -> int:
        return len(self._inactive)

    # -- the fold ------------------------------------------------------------

    def apply(self, jobid: int, event: Mapping[str, Any],
              jobspec: Mapping[str, Any] | None = None,
              R: Mapping[str, Any] | str | bytes | None = None, checked: bool = False) -> None:
        """Fold one committed event of job ``jobid`` (with jobspec/R when known).

        Raises JobEventError for an event that does not apply (the record is
        then unchanged) and FluxError(ENOENT) for an event of an unknown job.
        CHECKED: the event's context was validated already (the job manager's
        journal: it validates each event as it posts it).
        """
        name = event.get("name")
        if name == "submit":
            if jobid in self:
                raise JobEventError(f"job {jobid}: submit for a job that already exists",
                                    event="submit")
            rec = _new_record(jobid, event)
            if jobspec is not None:
                _set_jobspec(rec, _jobspec_summary(jobid, jobspec))
            if R is not None:
                _set_R(rec, _r_summary(jobid, R))
            self._insert(rec)
            return
        rec = self._active.get(jobid)
        if rec is None:
            if jobid in self._inactive_by_id:
                raise JobEventError(f"job {jobid}: event {name!r} for an inactive job",
                                    event=name, state=JobState.INACTIVE)
            raise FluxError(errno.ENOENT, f"job {jobid}: unknown job")
        before_state, before_priority, before_t_run = rec.state, rec.priority, rec.t_run
        before_queue, before_result = rec.queue, rec.result
        # summaries first, so bad input is refused before anything changes
        spec_summary = _jobspec_summary(rec.id, jobspec) if jobspec is not None else None
        r_sum = _r_summary(rec.id, R) if R is not None else None
        _fold(rec, event, checked)
        if spec_summary is not None:
            _set_jobspec(rec, spec_summary)
        if r_sum is not None:
            _set_R(rec, r_sum)
        state = rec.state
        # stats follow the record's state, result and queue: moved only when one
        # of them changed (most events change none)
        if name == "invalidate":
            self._count_values(before_queue, before_state, before_result, -1)
            self._unindex_active(rec, before_state, before_priority, before_t_run)
            del self._active[jobid]
            return
        if state is not before_state or rec.result != before_result \
                or rec.queue != before_queue:
            self._count_values(before_queue, before_state, before_result, -1)
            self._count(rec, 1)
        if state is before_state and rec.priority == before_priority \
                and rec.t_run == before_t_run:
            return
        if state is JobState.INACTIVE:
            self._unindex_active(rec, before_state, before_priority, before_t_run)
            del self._active[jobid]
            self._add_inactive(self._pack(rec))
            return
        # an order is rebuilt only when the job's place in it moves: a state
        # change within pending (DEPEND -> PRIORITY -> SCHED) or within running
        # keeps its key, and these are lists (an insert or removal moves the tail)
        was_pending = before_state in _PENDING_STATES
        if was_pending is (state in _PENDING_STATES) and (
                rec.priority == before_priority if was_pending else rec.t_run == before_t_run):
            return
        self._unindex_active(rec, before_state, before_priority, before_t_run)
        self._index_active(rec)

    def set_jobspec(self, jobid: int, jobspec: Mapping[str, Any]) -> None:
        """Give an active job its jobspec (name, counts, queue, ... follow)."""
        rec = self._require_active(jobid)
        summary = _jobspec_summary(jobid, jobspec)
        self._count(rec, -1)
        _set_jobspec(rec, summary)
        self._count(rec, 1)

    def set_R(self, jobid: int, R: Mapping[str, Any] | str | bytes) -> None:
        """Give an active job its R (ranks, nodelist, nnodes, ncores, expiration)."""
        rec = self._require_active(jobid)
        _set_R(rec, _r_summary(jobid, R))

    def _require_active(self, jobid: int) -> JobRecord:
        rec = self._active.get(jobid)
        if rec is None:
            if jobid in self._inactive_by_id:
                raise FluxError(errno.EINVAL, f"job {jobid}: inactive jobs cannot change")
            raise FluxError(errno.ENOENT, f"job {jobid}: unknown job")
        return rec

    # -- indexes ---------------------------------------------------------------

    def _insert(self, rec: JobRecord) -> None:
        self._count(rec, 1)
        if rec.state is JobState.INACTIVE:
            self._add_inactive(self._pack(rec))
        else:
            self._active[rec.id] = rec
            self._index_active(rec)

    @staticmethod
    def _pending_key(rec: JobRecord, priority: int | None) -> tuple[int, float, int]:
        return (-(priority if priority is not None else -1), rec.t_submit, rec.id)

    def _index_active(self, rec: JobRecord) -> None:
        if rec.state in _PENDING_STATES:
            self._pending.add(self._pending_key(rec, rec.priority))
        else:
            self._running.add((rec.t_run or 0.0, rec.id))

    def _unindex_active(self, rec: JobRecord, state: JobState, priority: int | None,
                        t_run: float | None) -> None:
        if state in _PENDING_STATES:
            self._pending.discard(self._pending_key(rec, priority))
        else:
            self._running.discard((t_run or 0.0, rec.id))

    def _intern(self, value: Any) -> Any:
        if value is None:
            return None
        return self._interned.setdefault(value, value)

    def _pack(self, rec: JobRecord) -> tuple[Any, ...]:
        values = [getattr(rec, name) for name in _PACKED]
        # orjson's result keeps its whole (4 KiB) output buffer; a copy is
        # exactly sized, which is most of what an inactive job costs
        blob = bytes(memoryview(orjson.dumps(values)))
        return (rec.t_inactive, rec.id, self._intern(rec.userid), rec.result,
                self._intern(rec.name), self._intern(rec.queue), blob)

    def _add_inactive(self, entry: tuple[Any, ...]) -> None:
        for seq in (self._inactive,
                    self._inactive_by_user.setdefault(entry[_E_USERID], [])):
            if not seq or entry > seq[-1]:
                seq.append(entry)
            else:
                bisect.insort(seq, entry)
        self._inactive_by_id[entry[_E_ID]] = entry

    def _count_state(self, queue: str | None, state: JobState, delta: int) -> None:
        index = _STATE_INDEX[int(state)]
        self._stats["counts"][index] += delta
        if queue is not None:
            qstats = self._queue_stats.get(queue)
            if qstats is None:
                qstats = self._queue_stats[queue] = _new_stats()
            qstats["counts"][index] += delta

    def _count(self, rec: JobRecord, delta: int) -> None:
        self._count_values(rec.queue, rec.state, rec.result, delta)

    def _count_values(self, queue: str | None, state: JobState, result: int | None,
                      delta: int) -> None:
        self._count_state(queue, state, delta)
        if result is not None:
            key = _RESULT_KEYS[result]
            self._stats[key] += delta
            if queue is not None:
                self._queue_stats[queue][key] += delta

    def _count_entry(self, entry: tuple[Any, ...], delta: int) -> None:
        self._count_state(entry[_E_QUEUE], JobState.INACTIVE, delta)
        key = _RESULT_KEYS[entry[_E_RESULT]]
        self._stats[key] += delta
        if entry[_E_QUEUE] is not None:
            self._queue_stats[entry[_E_QUEUE]][key] += delta

    # -- removal ---------------------------------------------------------------

    def remove(self, jobid: int) -> bool:
        """Forget one job (active or inactive); False if it was not known."""
        rec = self._active.pop(jobid, None)
        if rec is not None:
            self._unindex_active(rec, rec.state, rec.priority, rec.t_run)
            self._count(rec, -1)
            return True
        entry = self._inactive_by_id.pop(jobid, None)
        if entry is None:
            return False
        _remove_sorted(self._inactive, entry)
        user_list = self._inactive_by_user[entry[_E_USERID]]
        _remove_sorted(user_list, entry)
        if not user_list:
            del self._inactive_by_user[entry[_E_USERID]]
        self._count_entry(entry, -1)
        return True

    def purge(self, jobids: Iterable[int]) -> int:
        """Remove inactive jobs (``flux job purge``) in one pass; returns how many."""
        doomed = {j for j in jobids if j in self._inactive_by_id}
        if not doomed:
            return 0
        for jobid in doomed:
            self._count_entry(self._inactive_by_id.pop(jobid), -1)
        self._inactive = [e for e in self._inactive if e[_E_ID] not in doomed]
        for userid in list(self._inactive_by_user):
            kept = [e for e in self._inactive_by_user[userid] if e[_E_ID] not in doomed]
            if kept:
                self._inactive_by_user[userid] = kept
            else:
                del self._inactive_by_user[userid]
        self.inactive_purged += len(doomed)
        return len(doomed)

    def oldest_inactive(self, count: int) -> list[int]:
        """Ids of the ``count`` jobs that became inactive first (purge order)."""
        return [e[_E_ID] for e in self._inactive[:max(count, 0)]]

    # -- restart -------------------------------------------------------------

    def replace(self, jobid: int, events: Iterable[Mapping[str, Any]],
                jobspec: Mapping[str, Any] | None = None,
                R: Mapping[str, Any] | str | bytes | None = None) -> None:
        """Rebuild one job from its whole eventlog (a job changed since a snapshot)."""
        rec = _replay(jobid, events, jobspec, R)
        self.remove(jobid)
        if rec is not None:
            self._insert(rec)

    def load(self, jobs: Iterable[tuple[int, Iterable[Mapping[str, Any]],
                                         Mapping[str, Any] | None,
                                         Mapping[str, Any] | str | bytes | None]]) -> list[
                                             tuple[int, Exception]]:
        """Fold many whole eventlogs ``(jobid, events, jobspec, R)``, sorting once.

        Returns ``(jobid, error)`` for jobs whose eventlog does not replay;
        they are left out and the rest load.
        """
        errors: list[tuple[int, Exception]] = []
        new_inactive: list[tuple[Any, ...]] = []
        touched_active = False
        for jobid, events, jobspec, R in jobs:
            try:
                rec = _replay(jobid, events, jobspec, R)
            except (JobEventError, ValueError, KeyError, TypeError) as exc:
                errors.append((jobid, exc))
                continue
            if rec is None:
                continue
            if jobid in self:
                self.remove(jobid)
            self._count(rec, 1)
            if rec.state is JobState.INACTIVE:
                entry = self._pack(rec)
                new_inactive.append(entry)
                self._inactive_by_id[jobid] = entry
            else:
                self._active[jobid] = rec
                touched_active = True
        if new_inactive:
            self._inactive.extend(new_inactive)
            self._inactive.sort()
            by_user: dict[int, list[tuple[Any, ...]]] = {}
            for entry in self._inactive:
                by_user.setdefault(entry[_E_USERID], []).append(entry)
            self._inactive_by_user = by_user
        if touched_active:
            self._pending = SortedKeys(self._pending_key(r, r.priority)
                                       for r in self._active.values() if r.state & _PENDING_LIST)
            self._running = SortedKeys((r.t_run or 0.0, r.id) for r in self._active.values()
                                       if not r.state & _PENDING_LIST)
        return errors

    # -- queries ---------------------------------------------------------------

    def list(self, attrs: Sequence[str], max_entries: int = 1000, *,
             userid: int | None = None, states: int = 0, results: int = 0,
             since: float = 0.0, name: str | None = None, queue: str | None = None,
             constraint: Mapping[str, Any] | None = None,
             ids: Iterable[int] | None = None,
             max_comparisons: int = 0) -> list[dict[str, Any]]:
        """Jobs in job-list order (pending, running, inactive), at most ``max_entries``.

        ``states``/``results`` are masks (0 = no filter on that); with a
        ``results`` mask, inactive jobs must have one of those results.
        ``since`` keeps only inactive jobs that became inactive after it.
        ``ids`` limits the query to those jobs (unknown ids are skipped).
        ``max_entries`` 0 means no limit.
        """
        plan = _AttrPlan(attrs)
        cons = compile_constraint(constraint) if constraint else None
        budget = Budget(max_comparisons)
        if states == 0 and results == 0:
            states = int(JobState.NEW | JobState.ACTIVE | JobState.INACTIVE)
        want_inactive = bool(states & JobState.INACTIVE) or bool(results)
        limit = max_entries if max_entries > 0 else -1
        out: list[dict[str, Any]] = []

        def active_ok(rec: JobRecord) -> bool:
            if not rec.state & states:
                return False
            if userid is not None and rec.userid != userid:
                return False
            if name is not None and rec.name != name:
                return False
            if queue is not None and rec.queue != queue:
                return False
            return cons is None or cons.match(rec.get, budget)

        pending: Iterable[tuple[int, float, int]] = self._pending
        running: Iterable[tuple[float, int]] = self._running
        inactive: Sequence[tuple[Any, ...]]
        if ids is not None:
            recs = [r for r in (self._active.get(i) for i in set(ids)) if r is not None]
            pending = sorted(self._pending_key(r, r.priority) for r in recs
                             if r.state & _PENDING_LIST)
            running = sorted((r.t_run or 0.0, r.id) for r in recs
                             if not r.state & _PENDING_LIST)
            inactive = sorted(self._inactive_by_id[i] for i in set(ids)
                              if i in self._inactive_by_id)
        elif userid is None:
            inactive = self._inactive
        else:
            inactive = self._inactive_by_user.get(userid, [])
        if states & _PENDING_LIST:
            for key in pending:
                if len(out) == limit:
                    return out
                rec = self._active[key[2]]
                if active_ok(rec):
                    out.append(plan.from_record(rec))
        if states & JobState.RUNNING:
            for key in reversed(running):
                if len(out) == limit:
                    return out
                rec = self._active[key[1]]
                if active_ok(rec):
                    out.append(plan.from_record(rec))
        if not want_inactive:
            return out
        for entry in reversed(inactive):
            if userid is not None and entry[_E_USERID] != userid:
                continue
            if len(out) == limit:
                break
            if entry[_E_TINACTIVE] <= since:
                break
            if results and not entry[_E_RESULT] & results:
                continue
            if name is not None and entry[_E_NAME] != name:
                continue
            if queue is not None and entry[_E_QUEUE] != queue:
                continue
            if cons is not None and not cons.match(_EntryView(entry).get, budget):
                continue
            out.append(plan.from_entry(entry))
        return out

    def get(self, jobid: int, attrs: Sequence[str] = ("all",)) -> dict[str, Any]:
        """One job's attributes (``job-list.list-id``); FluxError(ENOENT) if unknown."""
        plan = _AttrPlan(attrs)
        rec = self._active.get(jobid)
        if rec is not None:
            return plan.from_record(rec)
        entry = self._inactive_by_id.get(jobid)
        if entry is not None:
            return plan.from_entry(entry)
        raise FluxError(errno.ENOENT, f"job {jobid}: unknown job")

    def state_of(self, jobid: int) -> JobState | None:
        rec = self._active.get(jobid)
        if rec is not None:
            return rec.state
        return JobState.INACTIVE if jobid in self._inactive_by_id else None

    def stats(self) -> dict[str, Any]:
        """``job-list.job-stats``: counts by state and result, overall and per queue."""
        view = _stats_view(self._stats)
        view["inactive_purged"] = self.inactive_purged
        view["queues"] = [dict(name=q, **_stats_view(s))
                          for q, s in sorted(self._queue_stats.items())]
        return view

    # -- snapshot --------------------------------------------------------------

    _MAGIC = b"FJOBLST1"

    def encode(self) -> bytes:
        """The whole projection as bytes (see specs/job-list.md for the layout)."""
        strings: dict[str, int] = {}

        def sid(value: str | None) -> int:
            if value is None:
                return 0
            index = strings.get(value)
            if index is None:
                index = strings[value] = len(strings) + 1
            return index

        entries = self._inactive
        t_inactive = array("d", (e[_E_TINACTIVE] for e in entries))
        ids = array("Q", (e[_E_ID] for e in entries))
        userids = array("Q", (e[_E_USERID] for e in entries))
        results = array("B", (e[_E_RESULT] for e in entries))
        names = array("I", (sid(e[_E_NAME]) for e in entries))
        queues = array("I", (sid(e[_E_QUEUE]) for e in entries))
        lengths = array("I", (len(e[_E_BLOB]) for e in entries))
        active = [[getattr(rec, f) for f in _RECORD_FIELDS] for rec in self._active.values()]
        header = orjson.dumps({"version": 1, "purged": self.inactive_purged,
                               "fields": _RECORD_FIELDS, "active": active,
                               "strings": list(strings), "count": len(entries)})
        parts = [self._MAGIC, struct.pack("<I", len(header)), header]
        for arr in (t_inactive, ids, userids, results, names, queues, lengths):
            parts.append(arr.tobytes())
        parts.extend(e[_E_BLOB] for e in entries)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes | Sequence[bytes]) -> JobList:
        """Rebuild a projection from ``encode()`` output; ValueError names the problem.

        DATA may also be that output cut by ``split_snapshot`` (header, the 7
        arrays, the blobs), as a snapshot is stored: the blobs (most of the
        bytes) are then sliced where they are, never copied into one buffer.
        """
        if isinstance(data, (bytes, bytearray, memoryview)):
            head = blob_area = bytes(data)    # no copy when it is bytes already
        else:
            sections = list(data)
            if len(sections) == 9:
                head, blob_area = b"".join(sections[:8]), bytes(sections[8])
            else:
                head = blob_area = b"".join(sections)
        view = memoryview(head)
        if bytes(view[:8]) != cls._MAGIC:
            raise ValueError("job-list snapshot: bad magic (not a job-list snapshot)")
        if len(view) < 12:
            raise ValueError("job-list snapshot: truncated header")
        (hlen,) = struct.unpack_from("<I", view, 8)
        offset = 12 + hlen
        if len(view) < offset:
            raise ValueError("job-list snapshot: truncated header")
        try:
            header = orjson.loads(view[12:offset])
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"job-list snapshot: bad header: {exc}") from None
        if not isinstance(header, dict) or header.get("version") != 1:
            raise ValueError("job-list snapshot: unsupported version")
        count = header["count"]
        arrays = []
        for code in ("d", "Q", "Q", "B", "I", "I", "I"):
            arr = array(code)
            size = arr.itemsize * count
            if len(view) < offset + size:
                raise ValueError(f"job-list snapshot: truncated at offset {offset}")
            arr.frombytes(view[offset:offset + size])
            arrays.append(arr)
            offset += size
        t_inactive, ids, userids, results, names, queues, lengths = arrays
        # where the blobs start in BLOB_AREA: right after the arrays, or at 0
        # when they are a section of their own
        blobs_at = offset if blob_area is head else 0
        if blob_area is not head and len(view) != offset:
            raise ValueError(f"job-list snapshot: expected {offset} bytes before the blobs, "
                             f"got {len(view)}")
        if len(blob_area) != blobs_at + sum(lengths):
            raise ValueError(f"job-list snapshot: expected {blobs_at + sum(lengths)} bytes, "
                             f"got {len(blob_area)}")
        jl = cls()
        jl.inactive_purged = header["purged"]
        intern = jl._intern
        # bulk work in C (zip, dict, Counter) rather than per-job calls: 100,000
        # inactive jobs decode in a fraction of the time a loop of them takes
        strings = [None] + [intern(x) for x in header["strings"]]
        users = {uid: intern(uid) for uid in set(userids)}
        ends = list(itertools.accumulate(lengths, initial=blobs_at))
        blobs = [blob_area[a:b] for a, b in zip(ends, itertools.islice(ends, 1, None))]
        entries = list(zip(t_inactive, ids, map(users.__getitem__, userids), results,
                           map(strings.__getitem__, names), map(strings.__getitem__, queues),
                           blobs))
        jl._inactive = entries
        jl._inactive_by_id = dict(zip(ids, entries))
        if len(users) == 1:
            jl._inactive_by_user[next(iter(users.values()))] = list(entries)
        else:
            by_user = jl._inactive_by_user
            for entry in entries:
                by_user.setdefault(entry[_E_USERID], []).append(entry)
        for (queue_sid, result), n in collections.Counter(zip(queues, results)).items():
            jl._count_entry((0.0, 0, None, result, None, strings[queue_sid], b""), n)
        names_in = header["fields"]
        for values in header["active"]:
            state = dict(zip(names_in, values))
            state["state"] = JobState(state["state"])
            rec = JobRecord(**{k: v for k, v in state.items() if k in _RECORD_FIELDS})
            jl._active[rec.id] = rec
            jl._count(rec, 1)
        jl._pending = SortedKeys(jl._pending_key(r, r.priority)
                                 for r in jl._active.values() if r.state & _PENDING_LIST)
        jl._running = SortedKeys((r.t_run or 0.0, r.id) for r in jl._active.values()
                                 if not r.state & _PENDING_LIST)
        return jl


# -- helpers -------------------------------------------------------------------

class SortedKeys:
    """Distinct keys kept in order, for the pending and running listings.

    A sorted list with lazy removal: a removed key is only marked, and the
    list is compacted once half of it is marked, so removing the oldest
    pending job (what allocation does) costs O(1) amortized instead of
    moving every key after it.  Insertions go where bisect puts them, which
    is at or near the end for new jobs.  Iteration skips marked keys.
    """

    __slots__ = ("_keys", "_dead")

    def __init__(self, keys: Iterable[Any] = ()) -> None:
        self._keys: list[Any] = sorted(keys)
        self._dead: set[Any] = set()

    def add(self, key: Any) -> None:
        dead = self._dead
        if dead and key in dead:
            dead.discard(key)   # still in the list: revive it
            return
        keys = self._keys
        if not keys or key > keys[-1]:
            keys.append(key)
        else:
            bisect.insort(keys, key)

    def discard(self, key: Any) -> None:
        keys = self._keys
        i = bisect.bisect_left(keys, key)
        if i == len(keys) or keys[i] != key or key in self._dead:
            return
        if i == len(keys) - 1:
            keys.pop()
            return
        self._dead.add(key)
        if len(self._dead) * 2 > len(keys):
            dead = self._dead
            self._keys = [k for k in keys if k not in dead]
            dead.clear()

    def __len__(self) -> int:
        return len(self._keys) - len(self._dead)

    def __iter__(self) -> Iterator[Any]:
        dead = self._dead
        if not dead:
            return iter(self._keys)
        return (k for k in self._keys if k not in dead)

    def __reversed__(self) -> Iterator[Any]:
        dead = self._dead
        if not dead:
            return reversed(self._keys)
        return (k for k in reversed(self._keys) if k not in dead)


def _remove_sorted(seq: list[Any], key: Any) -> None:
    index = bisect.bisect_left(seq, key)
    if index < len(seq) and seq[index] == key:
        del seq[index]


def _new_record(jobid: int, event: Mapping[str, Any]) -> JobRecord:
    ctx = event.get("context")
    transition(None, "submit", ctx)
    ts = event.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts <= 0:
        raise JobEventError(f"submit: timestamp must be a number > 0, got {ts!r}",
                            event="submit")
    return JobRecord(id=jobid, userid=ctx["userid"], urgency=ctx["urgency"],
                     t_submit=float(ts))


def _fold(rec: JobRecord, event: Mapping[str, Any], checked: bool = False) -> None:
    name = event.get("name")
    if not isinstance(name, str) or not name:
        raise JobEventError(f"event name must be a non-empty string, got {name!r}")
    ts = event.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts <= 0:
        raise JobEventError(f"{name}: timestamp must be a number > 0, got {ts!r}", event=name)
    ctx = event.get("context") or {}
    nxt = transition(rec.state, name, ctx, checked)
    if name == "priority":
        rec.priority = ctx["priority"]
    elif name == "urgency":
        rec.urgency = ctx["urgency"]
    elif name == "exception":
        severity = ctx["severity"]
        if not rec.exception_occurred or severity < rec.exception_severity:
            rec.exception_occurred = True
            rec.exception_type = ctx["type"]
            rec.exception_severity = severity
            rec.exception_note = ctx["note"]
        if severity == 0 and rec.fatal_type is None:
            rec.fatal_type = ctx["type"]
    elif name == "finish":
        rec.waitstatus = ctx["status"]
    elif name == "alloc":
        annotations = ctx.get("annotations")
        if annotations:
            rec.annotations = merge_annotations(rec.annotations, annotations)
    elif name == "annotations":
        # journal-only event: the job manager's current annotations changed
        update = ctx.get("annotations")
        if update is None:
            rec.annotations = None
        elif isinstance(update, dict):
            rec.annotations = merge_annotations(rec.annotations, update)
        else:
            raise JobEventError("annotations: context key 'annotations' must be an object "
                                "or null", event=name, key="annotations")
    elif name == "memo":
        rec.annotations = merge_annotations(rec.annotations, {"user": ctx})
    elif name == "dependency-add":
        if rec.dependencies is None:
            rec.dependencies = []
        if ctx["description"] not in rec.dependencies:
            rec.dependencies.append(ctx["description"])
    elif name == "dependency-remove":
        if rec.dependencies and ctx["description"] in rec.dependencies:
            rec.dependencies.remove(ctx["description"])
    elif name == "jobspec-update":
        if rec.jobspec_updates is None:
            rec.jobspec_updates = {}
        rec.jobspec_updates.update(ctx)
        _apply_updates(rec, ctx)
    elif name == "resource-update":
        rec.expiration = float(ctx["expiration"])
    if nxt is not rec.state:
        rec.state = nxt
        setattr(rec, _STATE_TIME[nxt], float(ts))
        if nxt is JobState.INACTIVE:
            result = job_result(rec.waitstatus, rec.fatal_type)
            rec.result = int(result)
            rec.success = result is JobResult.COMPLETED
            rec.jobspec_updates = None


def _apply_updates(rec: JobRecord, updates: Mapping[str, Any]) -> None:
    for key, value in updates.items():
        attr = _UPDATE_FIELDS.get(key)
        if attr is None:
            continue
        if attr == "duration":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rec.duration = float(value)
        elif isinstance(value, str) or value is None:
            setattr(rec, attr, value)


def _jobspec_summary(jobid: int, jobspec: Mapping[str, Any]) -> JobspecSummary:
    try:
        return summarize_shared(jobspec)
    except ValueError as exc:
        raise ValueError(f"job {jobid}: jobspec {exc}") from None


def _r_summary(jobid: int, R: Mapping[str, Any] | str | bytes) -> RSummary:
    try:
        return r_summary(R)
    except ValueError as exc:
        raise ValueError(f"job {jobid}: {exc}") from None


def _set_jobspec(rec: JobRecord, summary: JobspecSummary) -> None:
    rec.name = summary.name
    rec.cwd = summary.cwd
    rec.queue = summary.queue
    rec.project = summary.project
    rec.bank = summary.bank
    rec.ntasks = summary.ntasks
    rec.duration = summary.duration
    if not rec.has_R:
        rec.ncores = summary.ncores
        rec.ngpus = summary.ngpus
        rec.nnodes = summary.nnodes or None
    if rec.jobspec_updates:
        _apply_updates(rec, rec.jobspec_updates)


def _set_R(rec: JobRecord, summary: RSummary) -> None:
    rec.has_R = True
    rec.ranks = summary.ranks
    rec.nodelist = summary.nodelist
    rec.nnodes = summary.nnodes
    rec.ncores = summary.ncores
    rec.ngpus = summary.ngpus
    if summary.expiration > 0 and rec.expiration is None:
        rec.expiration = summary.expiration


def _replay(jobid: int, events: Iterable[Mapping[str, Any]],
            jobspec: Mapping[str, Any] | None,
            R: Mapping[str, Any] | str | bytes | None) -> JobRecord | None:
    """Fold a whole eventlog; None for an invalidated job (it is not listed)."""
    it = iter(events)
    first = next(it, None)
    if first is None:
        raise JobEventError(f"job {jobid}: eventlog is empty")
    if first.get("name") != "submit":
        raise JobEventError(f"job {jobid}: event 1: submit must be the first event",
                            event=first.get("name"))
    rec = _new_record(jobid, first)
    if jobspec is not None:
        _set_jobspec(rec, _jobspec_summary(jobid, jobspec))
    r_sum = _r_summary(jobid, R) if R is not None else None
    allocated = False
    for index, event in enumerate(it, start=2):
        try:
            _fold(rec, event)
        except JobEventError as exc:
            raise JobEventError(f"job {jobid}: event {index}: {exc.strerror}", event=exc.event,
                                key=exc.key, state=exc.state) from None
        name = event.get("name")
        if name == "invalidate":
            return None
        if name == "alloc":
            allocated = True
    # R describes the job only once it was allocated (the key may outlive a
    # failed alloc request); after the fold, so resource-update wins
    if r_sum is not None and allocated:
        _set_R(rec, r_sum)
    return rec


class _EntryView:
    """Attribute access into a packed inactive entry (decoded on first need)."""

    __slots__ = ("entry", "values")

    def __init__(self, entry: tuple[Any, ...]) -> None:
        self.entry = entry
        self.values: list[Any] | None = None

    def get(self, attr: str) -> Any:
        entry = self.entry
        if attr == "state":
            return int(JobState.INACTIVE)
        if attr == "userid":
            return entry[_E_USERID]
        if attr == "result":
            return entry[_E_RESULT]
        if attr == "name":
            return entry[_E_NAME]
        if attr == "queue":
            return entry[_E_QUEUE]
        if attr == "t_inactive":
            return entry[_E_TINACTIVE]
        if attr == "id":
            return entry[_E_ID]
        if attr == "success":
            return entry[_E_RESULT] == JobResult.COMPLETED
        if self.values is None:
            self.values = orjson.loads(entry[_E_BLOB])
        return self.values[_PACKED_POS[attr]]


class _AttrPlan:
    """Which attributes to return, checked once per query."""

    __slots__ = ("attrs", "packed", "index_attrs")

    def __init__(self, attrs: Sequence[str]) -> None:
        if isinstance(attrs, str) or not isinstance(attrs, Sequence):
            raise ValueError("attrs: must be an array of attribute names")
        wanted: list[str] = []
        for attr in attrs:
            if attr == "all":
                wanted.extend(ATTRS)
            elif attr not in _ATTR_SET:
                raise ValueError(f"attrs: unknown job attribute {attr!r}")
            else:
                wanted.append(attr)
        wanted = [a for a in dict.fromkeys(wanted) if a != "id"]
        self.attrs = wanted
        self.packed = [(a, _PACKED_POS[a]) for a in wanted if a in _PACKED_POS]
        self.index_attrs = [a for a in wanted if a not in _PACKED_POS]

    def from_record(self, rec: JobRecord) -> dict[str, Any]:
        out: dict[str, Any] = {"id": rec.id}
        for attr in self.attrs:
            value = getattr(rec, attr)
            if value is not None:
                out[attr] = int(value) if attr == "state" else value
        return out

    def from_entry(self, entry: tuple[Any, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": entry[_E_ID]}
        for attr in self.index_attrs:
            if attr == "state":
                out["state"] = 64
            elif attr == "userid":
                out["userid"] = entry[_E_USERID]
            elif attr == "result":
                out["result"] = entry[_E_RESULT]
            elif attr == "success":
                out["success"] = entry[_E_RESULT] == 1
            elif attr == "t_inactive":
                out["t_inactive"] = entry[_E_TINACTIVE]
            elif attr == "name":
                if entry[_E_NAME] is not None:
                    out["name"] = entry[_E_NAME]
            elif attr == "queue":
                if entry[_E_QUEUE] is not None:
                    out["queue"] = entry[_E_QUEUE]
        if self.packed:
            values = orjson.loads(entry[_E_BLOB])
            for attr, pos in self.packed:
                value = values[pos]
                if value is not None:
                    out[attr] = value
        return out
