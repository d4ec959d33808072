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
ARCHITECTURE.md.

No event is dropped: the events record what happened (a grant, a start, an
exit), so a commit that fails is sent again, in its place, with a growing
delay, until it is durable (a full disk stalls the pipeline, then it
resumes by itself).  Two exceptions: a new job's ``submit`` was never
acknowledged, so a failed one is dropped and its submitter told
(``on_failed``, and the callbacks registered with ``fail_fast``); and a
commit refused for what it contains (EINVAL, EFBIG, ...) is split, one
commit per job, so that one job whose eventlog cannot be written is
given up (``on_abandoned``) and no other job waits for it.  Order within
a job's eventlog holds because a job's new events wait (``held``) while
any earlier events of that job are in a commit not yet answered.
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


#: errors that say what the commit contains is wrong: sending it again cannot help
_PERMANENT = frozenset((errno.EINVAL, errno.EPROTO, errno.EFBIG, errno.EISDIR, errno.ENOTDIR,
                        errno.EPERM, errno.EACCES, errno.E2BIG, errno.ENAMETOOLONG,
                        errno.EOVERFLOW))
_RETRY_FIRST = 0.05
_RETRY_MAX = 2.0


class _Batch:
    __slots__ = ("jobs", "ops", "writes", "callbacks", "fail_fast", "sent", "done", "errnum",
                 "errstr", "result", "attempts", "alone")

    def __init__(self) -> None:
        # job id -> (job, events, encoded lines)
        self.jobs: dict[int, tuple[ActiveJob, list[dict[str, Any]], list[bytes]]] = {}
        self.ops: list[dict[str, Any]] = []
        self.writes: dict[int, list[dict[str, Any]]] = {}   # new jobs' jobspec and J
        self.callbacks: list[CommitCallback] = []
        self.fail_fast: list[CommitCallback] = []   # told of the first failure (submits)
        self.sent: list[Callable[[], None]] = []    # run once the commit is handed to the KVS
        self.done = False
        self.errnum = 0
        self.errstr: str | None = None
        self.result: dict[str, Any] | None = None
        self.attempts = 0
        self.alone = False          # split off a refused commit: one job, or the ops


class EventPoster:
    """Batches posted events into commits and applies them in commit order."""

    def __init__(self, ctx: Any, on_applied: Callable[[list[Applied]], None],
                 on_failed: Callable[[list[ActiveJob]], None],
                 namespace: str = "primary",
                 on_abandoned: Callable[[ActiveJob, str], None] | None = None) -> None:
        self._ctx = ctx
        self._on_applied = on_applied
        self._on_failed = on_failed
        self._on_abandoned = on_abandoned
        self.retries = 0                 # commits sent again after a failure
        self.abandoned = 0               # jobs given up (their eventlog cannot be written)
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
        if job.sent:
            # earlier events of this job are in a commit not answered yet: if it failed
            # and these went ahead, the job's eventlog would have them out of order
            if job.held is None:
                job.held = []
            job.held.append((entry, _dumps(entry, option=_NL)))
        else:
            self._add(self._batch(), job, [entry], [_dumps(entry, option=_NL)])
        job.tstate = nxt
        job.inflight += 1
        self.events_posted += 1
        return nxt

    @staticmethod
    def _add(batch: _Batch, job: ActiveJob, events: list[dict[str, Any]],
             lines: list[bytes]) -> None:
        slot = batch.jobs.get(job.rec.id)
        if slot is None:
            batch.jobs[job.rec.id] = (job, events, lines)
        else:
            slot[1].extend(events)
            slot[2].extend(lines)

    def post_submit(self, job: ActiveJob, entry: dict[str, Any],
                    writes: list[dict[str, Any]] | None = None) -> None:
        """Queue the ``submit`` event that starts a new job's eventlog.

        JOB's record was made from ENTRY (``jobmgr.job.new_job``), so the
        event is written and journaled but not folded again; it must be the
        first thing posted for the job.  WRITES (its jobspec and J) go in the
        same commit, and are dropped with the job if that commit fails.
        """
        batch = self._batch()
        if job.rec.id in batch.jobs:
            raise JobEventError("submit must be a job's first event", event="submit")
        batch.jobs[job.rec.id] = (job, [entry], [_dumps(entry, option=_NL)])
        if writes:
            batch.writes[job.rec.id] = writes
        job.inflight += 1
        self.events_posted += 1

    def add_ops(self, ops: list[dict[str, Any]]) -> None:
        """Put OPS (KVS ops) into the next commit, after the event appends."""
        self._batch().ops.extend(ops)

    def after_commit(self, callback: CommitCallback, fail_fast: bool = False) -> None:
        """Run CALLBACK(errnum, errstr) once everything posted so far is durable.

        With nothing queued, the callback waits for the commits in flight
        (or runs at the next turn when there are none).  A failed commit is
        sent again until it is durable; with FAIL_FAST the callback is told
        of the first failure instead (a submission: its jobs are dropped).
        An errnum otherwise means the events were given up (on_abandoned).
        """
        if self._open is not None:
            batch = self._open
        elif self._inflight:
            batch = self._inflight[-1]
        else:
            asyncio.get_running_loop().call_soon(callback, 0, None)
            return
        (batch.fail_fast if fail_fast else batch.callbacks).append(callback)

    def after_send(self, callback: Callable[[], None]) -> None:
        """Run CALLBACK() as soon as everything posted so far has been handed to the KVS.

        The KVS applies commits in the order they arrive and makes a later
        batch durable only after an earlier one, so a commit sent by the
        callback (or by a service it asks) can be durable only if these
        events are: it may act ahead of durability without ever being
        recorded ahead of them.  With nothing queued, it runs at the next turn.
        """
        if self._open is None:
            asyncio.get_running_loop().call_soon(callback)
            return
        self._open.sent.append(callback)

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
        for job, events, _lines in batch.jobs.values():
            job.sent += len(events)
        self._inflight.append(batch)
        self._send(batch)
        if batch.sent:
            sent, batch.sent = batch.sent, []
            for cb in sent:
                try:
                    cb()
                except Exception:  # noqa: BLE001
                    self._ctx.log.exception("after-send callback failed")

    def _send(self, batch: _Batch) -> None:
        # raw bytes, in-process (the kvs runs in this broker): no base64 round trip
        ops: list[dict[str, Any]] = [
            {"key": job.eventlog_key, "flags": _APPEND,
             "dirent": RawValue(lines[0] if len(lines) == 1 else b"".join(lines))}
            for job, _events, lines in batch.jobs.values()]
        for writes in batch.writes.values():
            ops.extend(writes)
        ops.extend(batch.ops)
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
            batch = inflight[0]
            if batch.errnum and self._retry(batch):
                break               # the head goes again; what follows waits for it
            inflight.popleft()
            if batch.errnum:
                self._give_up(batch)
            else:
                self._apply(batch)
            for cb in batch.callbacks + batch.fail_fast:
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

    # -- failures ---------------------------------------------------------------------------
    def _retry(self, batch: _Batch) -> bool:
        """Handle a failed head commit; True when it (or its parts) will be sent again."""
        why = batch.errstr or errno.errorcode.get(batch.errnum, str(batch.errnum))
        self._drop_submits(batch)
        if batch.errnum in _PERMANENT:
            if batch.alone:
                return False                 # one job (or the ops) alone: give it up
            self._split(batch)
            return True
        if not batch.jobs and not batch.ops:
            return False
        batch.attempts += 1
        delay = min(_RETRY_FIRST * 2 ** (batch.attempts - 1), _RETRY_MAX)
        if batch.attempts == 1 or batch.attempts % 20 == 0:
            self._ctx.log.error("job eventlog commit failed; sending it again",
                                error=why, jobs=len(batch.jobs), attempt=batch.attempts,
                                delay=round(delay, 2))
        batch.done = False
        batch.errnum = 0
        batch.errstr = None
        self.retries += 1
        asyncio.get_running_loop().call_later(delay, self._send, batch)
        return True

    def _drop_submits(self, batch: _Batch) -> None:
        """New jobs in a failed commit were never acknowledged: drop them, tell the submitters."""
        dropped = []
        for jobid, (job, events, _lines) in list(batch.jobs.items()):
            if events[0]["name"] == "submit":
                del batch.jobs[jobid]
                batch.writes.pop(jobid, None)
                job.sent -= len(events)
                job.inflight -= len(events)
                if job.held:
                    job.inflight -= len(job.held)
                    job.held = None
                dropped.append(job)
        for cb in batch.fail_fast:
            try:
                cb(batch.errnum, batch.errstr)
            except Exception:  # noqa: BLE001
                self._ctx.log.exception("commit callback failed")
        batch.fail_fast = []
        if dropped:
            self._ctx.log.error("job submit commit failed; submissions refused",
                                error=batch.errstr or errno.errorcode.get(batch.errnum, "?"),
                                jobs=len(dropped))
            self._on_failed(dropped)

    def _split(self, batch: _Batch) -> None:
        """A refused head commit: send each job's events alone, then the ops, in order."""
        self._ctx.log.error("job eventlog commit refused; committing each job alone",
                            error=batch.errstr or errno.errorcode.get(batch.errnum, "?"),
                            jobs=len(batch.jobs))
        parts = []
        for jobid, slot in batch.jobs.items():
            part = _Batch()
            part.jobs[jobid] = slot
            part.alone = True
            parts.append(part)
        last = _Batch()
        last.ops = batch.ops
        last.callbacks = batch.callbacks
        last.alone = True
        parts.append(last)
        self._inflight.popleft()
        for part in reversed(parts):
            self._inflight.appendleft(part)
        for part in parts:
            self._send(part)

    def _give_up(self, batch: _Batch) -> None:
        """A job's events (or the ops) refused even alone: the job cannot be logged."""
        why = batch.errstr or errno.errorcode.get(batch.errnum, str(batch.errnum))
        if not batch.jobs:
            if batch.ops:
                self._ctx.log.error("job manager commit refused; its KVS ops are dropped",
                                    error=why, ops=len(batch.ops))
            return
        for job, events, _lines in batch.jobs.values():
            job.sent -= len(events)
            job.inflight -= len(events)
            if job.held:
                job.inflight -= len(job.held)
                job.held = None
            self.abandoned += 1
            self._ctx.log.error("job eventlog cannot be written; job abandoned",
                                id=job.rec.id, error=why, events=[e["name"] for e in events])
            if self._on_abandoned is not None:
                self._on_abandoned(job, why)

    # -- success ----------------------------------------------------------------------------
    def _apply(self, batch: _Batch) -> None:
        if batch.result is not None:
            self.rootref = batch.result.get("rootref", self.rootref)
            self.sequence = batch.result.get("sequence", self.sequence)
        if batch.attempts:
            self._ctx.log.info("job eventlog commit succeeded after failures",
                               attempts=batch.attempts + 1, jobs=len(batch.jobs))
        applied: list[Applied] = []
        released: list[ActiveJob] = []
        for job, events, _lines in batch.jobs.values():
            before = job.rec.state
            job.sent -= len(events)
            if job.held and not job.sent:
                released.append(job)
            job.inflight -= len(events)
            for event in events:
                if event["name"] == "submit":
                    continue  # the record was made from it (post_submit)
                try:
                    apply(job.rec, event, checked=True)   # validated by post()
                except JobEventError as exc:
                    # posting checked the state machine, so this is a bug: say so loudly
                    self._ctx.log.error("committed event does not apply", id=job.rec.id,
                                        event=event["name"], error=exc.strerror)
            job.events.extend(events)
            applied.append((job, events, before))
        for job in released:
            # the job's held events follow the ones just made durable
            held, job.held = job.held or [], None
            self._add(self._batch(), job, [e for e, _ in held], [line for _, line in held])
        if applied:
            self._on_applied(applied)
