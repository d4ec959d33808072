"""A running job's guest namespace (RFC 16): where its shells and tools write.

While a job runs, its guest data lives in its own KVS namespace
``job-<id>``, owned by the job's user (so the shells, running as that user,
may write there), and ``job.<id>.guest`` in the primary namespace is a
symlink to it.  The namespace is created by its first commit (the exec
eventlog's first entries and the RFC 24 headers of ``output`` and
``input``); the symlink goes in the same group commit, in one primary
commit with the symlinks of every job whose namespace is made in the
same loop turn (``LinkBatcher``).  When the job is
over, one commit makes the namespace's final root ``job.<id>.guest`` (a
dirref: nothing is copied) and removes the namespace (``kvs.commit``'s
``link``): an inactive job's directory holds everything its run wrote.

Appends to the exec eventlog are sent in order without waiting (the KVS
applies commits in the order they arrive); the appends to one key in a
commit travel as one op (same bytes, one walk of the tree instead of
several).  Values are ``RawValue``s: this module runs in rank 0's broker,
as the kvs does, so its bytes need no base64 either way.  An entry may be held back
``HOLD`` seconds so the entries of one short stretch travel in one commit
(``shell.init`` and ``shell.start``, and for a short job everything up to
``done``); a watcher sees them at most ``HOLD`` late.  ``HOLD`` is the
shell's default output batch timeout: a job's first output reaches a
reader no sooner than that anyway, and a job shorter than that (under
load too) has its whole exec log written in its last commit.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import orjson

from kvs.txn import RawValue

__all__ = ["GuestNamespace", "LinkBatcher", "namespace_of", "event_line", "output_header",
           "input_header"]

FLUX_KVS_APPEND = 32
#: longest an exec eventlog entry waits for company before it is committed
HOLD = 0.1


def namespace_of(jobid: int) -> str:
    return f"job-{jobid}"


def event_line(name: str, context: dict[str, Any] | None = None,
               timestamp: float | None = None) -> bytes:
    """One RFC 18 eventlog entry, newline-terminated."""
    event: dict[str, Any] = {"timestamp": time.time() if timestamp is None else timestamp,
                             "name": name}
    if context:
        event["context"] = context
    return orjson.dumps(event) + b"\n"


def output_header(ntasks: int) -> dict[str, Any]:
    return {"version": 1, "encoding": {"stdout": "UTF-8", "stderr": "UTF-8"},
            "count": {"stdout": ntasks, "stderr": ntasks}, "options": {}}


def input_header() -> dict[str, Any]:
    return {"version": 1, "encoding": {"stdin": "UTF-8"}, "count": {"stdin": 1},
            "options": {}}


def _op(key: str, data: bytes, append: bool) -> dict[str, Any]:
    return {"key": key, "flags": FLUX_KVS_APPEND if append else 0, "dirent": RawValue(data)}


def coalesce(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OPS with the appends to each key merged into one append per key.

    Appending A then B is appending A+B, and appends to different keys
    commute: the values' bytes and what a watcher reads from the commit's
    root are the same.  A put or unlink ends the merging (appends on either
    side of it stay apart).
    """
    out: list[dict[str, Any]] = []
    at: dict[str, int] = {}             # key -> its merged append in OUT
    for op in ops:
        if op["flags"] != FLUX_KVS_APPEND:
            at.clear()
            out.append(op)
            continue
        i = at.get(op["key"])
        if i is None:
            at[op["key"]] = len(out)
            out.append(op)
        else:
            out[i] = _op(op["key"], b"".join(out[i]["dirent"].chunks + op["dirent"].chunks),
                         True)
    return out


def _settle(fut: "asyncio.Future[None]", msg: Any) -> None:
    """Resolve FUT with a commit's response MSG (an OSError if it failed)."""
    if fut.done():
        return
    if msg.errnum:
        fut.set_exception(OSError(msg.errnum, msg.errstr or os.strerror(msg.errnum)))
    else:
        fut.set_result(None)


class LinkBatcher:
    """Primary-namespace ops of many jobs in one ``kvs.commit`` per loop turn.

    ``add(op)`` returns a future for the commit that carries OP.  Should
    that commit fail, each of its ops is committed again alone, so that an
    op the KVS refuses fails its own job only.
    """

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._queued: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self.commits = 0

    def add(self, op: dict[str, Any]) -> "asyncio.Future[None]":
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._send)
        self._queued.append((op, fut))
        return fut

    def _send(self) -> None:
        batch, self._queued = self._queued, []
        if batch:
            self._commit(batch, retry=len(batch) > 1)

    def _commit(self, batch: list[tuple[dict[str, Any], "asyncio.Future[None]"]],
                retry: bool) -> None:
        def done(msg: Any) -> None:
            if msg.errnum and retry:
                for item in batch:
                    self._commit([item], retry=False)
                return
            for _op, fut in batch:
                _settle(fut, msg)

        self.commits += 1
        self.ctx.request_callback("kvs.commit", {"namespace": "primary", "flags": 0,
                                                 "ops": [op for op, _f in batch]}, done)


class GuestNamespace:
    def __init__(self, ctx: Any, jobid: int, userid: int, job_key: str,
                 links: LinkBatcher | None = None) -> None:
        self.ctx = ctx
        self.links = links
        self.jobid = jobid
        self.userid = userid
        self.name = namespace_of(jobid)
        self.job_key = job_key            # job.<dothex>
        self._ops: list[dict[str, Any]] = []
        self.removed = False
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._inflight: list[asyncio.Future[Any]] = []
        self.created = False
        self.errors: list[str] = []

    def create(self, ntasks: int,
               first_events: list[tuple[str, dict[str, Any]]]) -> "asyncio.Future[None]":
        """Create the namespace with its headers and FIRST_EVENTS, and link it.

        Both commits are sent now; the future is done once both are durable
        (``created``), or fails with the first error.
        """
        exec_log = b"".join(event_line(n, c) for n, c in first_events)
        ops = [_op("exec.eventlog", exec_log, False),
               _op("output", event_line("header", output_header(ntasks)), False),
               _op("input", event_line("header", input_header()), False)]
        link = {"key": f"{self.job_key}.guest", "flags": 0,
                "dirent": {"ver": 1, "type": "symlink",
                           "data": {"namespace": self.name, "target": "."}}}
        loop = asyncio.get_running_loop()
        made: asyncio.Future[None] = loop.create_future()
        self.ctx.request_callback("kvs.commit", {"namespace": self.name, "flags": 0,
                                                 "ops": ops, "create": {"owner": self.userid}},
                                  lambda msg: _settle(made, msg))
        if self.links is not None:
            linked = self.links.add(link)
        else:
            linked = loop.create_future()
            self.ctx.request_callback("kvs.commit", {"namespace": "primary", "flags": 0,
                                                     "ops": [link]},
                                      lambda msg: _settle(linked, msg))
        result: asyncio.Future[None] = loop.create_future()
        pending = [made, linked]

        def settled(_fut: "asyncio.Future[None]") -> None:
            if not all(f.done() for f in pending):
                return
            # both are looked at (no exception left unretrieved), the first error raised
            errors = [f.exception() for f in pending if f.exception() is not None]
            if result.done():
                return
            if errors:
                result.set_exception(errors[0])
                return
            self.created = True
            if self._ops:
                self._send()        # entries queued while the namespace was being made
            result.set_result(None)

        made.add_done_callback(settled)
        linked.add_done_callback(settled)
        return result

    def append(self, name: str, context: dict[str, Any] | None = None,
               hold: bool = False) -> None:
        """Queue an exec eventlog entry; with HOLD it may wait up to ``HOLD`` s for others.

        Entries queued before the namespace exists are sent once it does.
        """
        self._queue(_op("exec.eventlog", event_line(name, context), True), hold)

    def append_output(self, lines: bytes) -> None:
        """Queue RFC 18 lines for the ``output`` log (a shell's last entries)."""
        self._queue(_op("output", lines, True), False)

    def _queue(self, op: dict[str, Any], hold: bool) -> None:
        if self.removed:
            return
        self._ops.append(op)
        if not self.created:
            return
        loop = asyncio.get_running_loop()
        if hold:
            if self._timer is None and not self._scheduled:
                self._timer = loop.call_later(HOLD, self._send)
            return
        if not self._scheduled:
            self._scheduled = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            loop.call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        if not self.created:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ops, self._ops = self._ops, []
        if not ops:
            return
        if len(ops) > 1:
            ops = coalesce(ops)
        # sent now (not from a task): a link sent after this must reach the KVS after it
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done(msg: Any) -> None:
            if msg.errnum:
                self.errors.append(msg.errstr or str(msg.errnum))
            if fut in self._inflight:
                self._inflight.remove(fut)
            if not fut.done():
                fut.set_result(None)

        self._inflight.append(fut)
        self.ctx.request_callback("kvs.commit", {"namespace": self.name, "flags": 0,
                                                 "ops": ops}, done)

    def finalize(self, on_error: Any = None) -> None:
        """Move the namespace (with every queued entry) into ``job.<id>.guest``; remove it.

        The queued appends and then the link are sent now, in that order:
        the KVS applies them in that order.  Nothing waits for them: a
        commit the job manager sends after this (``clean``) reaches the KVS
        after them, so an inactive job still has its guest data.
        ON_ERROR(text) is called if the link fails.
        """
        if not self.created or self.removed:
            return
        self._send()
        self.removed = True

        def linked(msg: Any) -> None:
            if msg.errnum and on_error is not None:
                on_error(msg.errstr or str(msg.errnum))

        self.ctx.request_callback("kvs.commit", {
            "namespace": "primary", "flags": 0, "ops": [],
            "link": {"key": f"{self.job_key}.guest", "namespace": self.name}}, linked)

    async def drain(self) -> None:
        """Wait for every commit sent so far."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    @classmethod
    async def recover(cls, ctx: Any, jobid: int, job_key: str) -> bool:
        """After a restart: move a namespace left by a run that was cut short. True if moved."""
        ns = cls(ctx, jobid, 0, job_key)
        try:
            await ctx.rpc("kvs.getroot", {"namespace": ns.name})
        except OSError:
            return False
        ns.created = True
        ns.append("done")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ns.finalize()
        ctx.request_callback("kvs.getroot", {}, lambda _m: done.set_result(None))
        await done                  # the link is in once a later request is answered
        return True
