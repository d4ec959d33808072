"""The event-posting pipeline: post now, commit once per loop turn, apply when durable.

``post(job, name, context)`` checks the event against the job's *tentative*
state (every event posted so far, committed or not), stamps it and queues
it.  Once per loop turn everything queued goes to the KVS as ONE
``kvs.commit``: one append op per job carrying all of that job's new lines,
plus any extra ops queued with ``add_ops`` (purges, moves, checkpoints).
Several commits may be in flight; the KVS answers them in order.  Only when
a commit's response says it is durable are its events folded into the
committed records (``jobmgr.job.apply``) and handed to ``on_applied`` (the
journal and the effects), then the commit's callbacks run (answers to the
RPCs that asked for the events).  This is the write-path rule of
ARCHITECTURE.md.  A commit that fails is logged; its events are dropped and
``on_failed`` gets the jobs so their tentative state can be reset.
"""
from __future__ import annotations

import asyncio
import errno
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from flux.message import Message
from jobmgr.events import SPECS, JobEventError, validate
from jobmgr.job import apply
from jobmgr.manager.active import ActiveJob
from jobmgr.states import JobState, allowed_states
from kvs.txn import RawValue

__all__ = ["EventPoster", "Applied", "CommitCallback"]

_APPEND = 32       # FLUX_KVS_APPEND
# events that cannot go without a context (the rest are checked only when they have one)
_NEEDS_CONTEXT = frozenset(n for n, spec in SPECS.items() if spec.required) | {"jobspec-update"}
_NL = orjson.OPT_APPEND_NEWLINE
_dumps = orjson.dumps

#: (job, events applied now, committed state before them)
Applied = tuple[ActiveJob, list[dict[str, Any]], JobState]
#: called with 0 when the commit is durable (after the events were applied), else an errno
CommitCallback = Callable[[int, str | None], None]


class _Batch:
    __slots__ = ("jobs", "ops", "callbacks", "done", "errnum", "errstr", "result")

    def __init__(self) -> None:
        # job id -> (job, events, encoded lines)
        self.jobs: dict[int, tuple[ActiveJob, list[dict[str, Any]], list[bytes]]] = {}
        self.ops: list[dict[str, Any]] = []
        self.callbacks: list[CommitCallback] = []
        self.done = False
        self.errnum = 0
        self.errstr: str | None = None
        self.result: dict[str, Any] | None = None


class EventPoster:
    """Batches posted events into commits and applies them in commit order."""

    def __init__(self, ctx: Any, on_applied: Callable[[list[Applied]], None],
                 on_failed: Callable[[list[ActiveJob]], None],
                 namespace: str = "primary") -> None:
        self._ctx = ctx
        self._on_applied = on_applied
        self._on_failed = on_failed
        self._namespace = namespace
        self._open: _Batch | None = None
        self._inflight: deque[_Batch] = deque()
        self._idle_waiters: list[asyncio.Future[None]] = []
        #: rootref and sequence of the newest applied commit
        self.rootref: str | None = None
        self.sequence: int = -1
        self.commits = 0
        self.events_posted = 0
        #: commits in flight before posted events wait for one to return (each
        #: commit costs the store a sync: under load, waiting makes them bigger)
        self.max_inflight = 8
        self._flush_scheduled = False

    # -- posting -----------------------------------------------------------------------
    def _batch(self) -> _Batch:
        batch = self._open
        if batch is None:
            batch = self._open = _Batch()
            self._schedule()
        return batch

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def post(self, job: ActiveJob, name: str, context: dict[str, Any] | None = None) -> JobState:
        """Queue event NAME for JOB; returns the tentative state after it.

        Raises JobEventError (EINVAL) naming the event and state if the event
        is not allowed after the events already posted, or its context is bad.
        """
        if context:
            validate(name, context)
        else:
            context = None
            if name in _NEEDS_CONTEXT:
                validate(name, None)
        if name == "submit":
            raise JobEventError("submit is written by job-ingest, not posted", event=name)
        nxt = allowed_states(name, context).get(job.tstate)
        if nxt is None:
            from jobmgr.states import statetostr

            raise JobEventError(f"event {name!r} is not valid in state {statetostr(job.tstate)}",
                                event=name, state=job.tstate)
        entry: dict[str, Any] = {"timestamp": time.time(), "name": name}
        if context is not None:
            entry["context"] = context
        batch = self._batch()
        slot = batch.jobs.get(job.rec.id)
        if slot is None:
            batch.jobs[job.rec.id] = (job, [entry], [_dumps(entry, option=_NL)])
        else:
            slot[1].append(entry)
            slot[2].append(_dumps(entry, option=_NL))
        job.tstate = nxt
        job.inflight += 1
        self.events_posted += 1
        return nxt

    def post_submit(self, job: ActiveJob, entry: dict[str, Any]) -> None:
        """Queue the ``submit`` event that starts a new job's eventlog.

        JOB's record was made from ENTRY (``jobmgr.job.new_job``), so the
        event is written and journaled but not folded again; it must be the
        first thing posted for the job.
        """
        batch = self._batch()
        if job.rec.id in batch.jobs:
            raise JobEventError("submit must be a job's first event", event="submit")
        batch.jobs[job.rec.id] = (job, [entry], [_dumps(entry, option=_NL)])
        job.inflight += 1
        self.events_posted += 1

    def add_ops(self, ops: list[dict[str, Any]]) -> None:
        """Put OPS (KVS ops) into the next commit, after the event appends."""
        self._batch().ops.extend(ops)

    def after_commit(self, callback: CommitCallback) -> None:
        """Run CALLBACK(errnum, errstr) once everything posted so far is durable.

        With nothing queued, the callback waits for the commits in flight
        (or runs at the next turn when there are none).
        """
        if self._open is not None:
            self._open.callbacks.append(callback)
        elif self._inflight:
            self._inflight[-1].callbacks.append(callback)
        else:
            asyncio.get_running_loop().call_soon(callback, 0, None)

    @property
    def busy(self) -> bool:
        return self._open is not None or bool(self._inflight)

    async def idle(self) -> None:
        """Wait until nothing is queued or in flight."""
        while self.busy:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(fut)
            await fut

    # -- committing ----------------------------------------------------------------------
    def flush(self, force: bool = False) -> None:
        """Send the open batch as one commit.

        With ``max_inflight`` commits out, events keep gathering in the open
        batch and go out together when one returns.  FORCE sends it anyway.
        """
        batch = self._open
        if batch is None:
            return
        if len(self._inflight) >= self.max_inflight and not force:
            return
        self._open = None
        # raw bytes, in-process (the kvs runs in this broker): no base64 round trip
        ops: list[dict[str, Any]] = [
            {"key": job.eventlog_key, "flags": _APPEND,
             "dirent": RawValue(lines[0] if len(lines) == 1 else b"".join(lines))}
            for job, _events, lines in batch.jobs.values()]
        ops.extend(batch.ops)
        self._inflight.append(batch)
        self.commits += 1
        if not ops:
            batch.done = True
            asyncio.get_running_loop().call_soon(self._complete)
            return
        self._ctx.request_callback("kvs.commit",
                   {"namespace": self._namespace, "flags": 0, "ops": ops},
                   lambda msg: self._committed(batch, msg))

    def _committed(self, batch: _Batch, msg: Message) -> None:
        batch.done = True
        if msg.errnum:
            batch.errnum = msg.errnum
            batch.errstr = msg.errstr or None
        else:
            batch.result = msg.payload if isinstance(msg.payload, dict) else None
        self._complete()

    def _complete(self) -> None:
        inflight = self._inflight
        while inflight and inflight[0].done:
            batch = inflight.popleft()
            if batch.errnum:
                self._fail(batch)
            else:
                self._apply(batch)
            for cb in batch.callbacks:
                try:
                    cb(batch.errnum, batch.errstr)
                except Exception:  # noqa: BLE001
                    self._ctx.log.exception("commit callback failed")
        if self._open is not None and len(self._inflight) < self.max_inflight:
            self._schedule()
        if not self.busy and self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _apply(self, batch: _Batch) -> None:
        if batch.result is not None:
            self.rootref = batch.result.get("rootref", self.rootref)
            self.sequence = batch.result.get("sequence", self.sequence)
        applied: list[Applied] = []
        for job, events, _lines in batch.jobs.values():
            before = job.rec.state
            job.inflight -= len(events)
            for event in events:
                if event["name"] == "submit":
                    continue  # the record was made from it (post_submit)
                try:
                    apply(job.rec, event)
                except JobEventError as exc:
                    # posting checked the state machine, so this is a bug: say so loudly
                    self._ctx.log.error("committed event does not apply", id=job.rec.id,
                                        event=event["name"], error=exc.strerror)
            job.events.extend(events)
            applied.append((job, events, before))
        if applied:
            self._on_applied(applied)

    def _fail(self, batch: _Batch) -> None:
        jobs = []
        for job, events, _lines in batch.jobs.values():
            job.inflight -= len(events)
            jobs.append(job)
        self._ctx.log.error("job eventlog commit failed; events dropped",
                            error=batch.errstr or errno.errorcode.get(batch.errnum, "?"),
                            jobs=len(jobs))
        if jobs:
            self._on_failed(jobs)
