"""A running job's guest namespace (RFC 16): where its shells and tools write.

While a job runs, its guest data lives in its own KVS namespace
``job-<id>``, owned by the job's user (so the shells, running as that user,
may write there), and ``job.<id>.guest`` in the primary namespace is a
symlink to it.  The namespace starts with the exec eventlog's first
entries and the RFC 24 headers of ``output`` and ``input``.  When the job
is over, the namespace's final root becomes ``job.<id>.guest`` (a dirref:
nothing is copied) and the namespace is removed: an inactive job's
directory holds everything its run wrote.

Appends to the exec eventlog are sent in order without waiting (the KVS
applies commits in the order they arrive); ``drain()`` waits for them.
"""
from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import orjson

__all__ = ["GuestNamespace", "namespace_of", "event_line", "output_header", "input_header"]

FLUX_KVS_APPEND = 32


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


def _val(data: bytes) -> dict[str, Any]:
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode()}


def _op(key: str, data: bytes, append: bool) -> dict[str, Any]:
    return {"key": key, "flags": FLUX_KVS_APPEND if append else 0, "dirent": _val(data)}


class GuestNamespace:
    def __init__(self, ctx: Any, jobid: int, userid: int, job_key: str) -> None:
        self.ctx = ctx
        self.jobid = jobid
        self.userid = userid
        self.name = namespace_of(jobid)
        self.job_key = job_key            # job.<dothex>
        self._ops: list[dict[str, Any]] = []
        self._scheduled = False
        self._inflight: list[asyncio.Future[Any]] = []
        self.created = False
        self.errors: list[str] = []

    async def create(self, ntasks: int, first_events: list[tuple[str, dict[str, Any]]]) -> None:
        """Create the namespace with its headers and FIRST_EVENTS, then link it."""
        await self.ctx.rpc("kvs.namespace-create", {"namespace": self.name,
                                                    "owner": self.userid, "flags": 0})
        self.created = True
        exec_log = b"".join(event_line(n, c) for n, c in first_events)
        ops = [_op("exec.eventlog", exec_log, False),
               _op("output", event_line("header", output_header(ntasks)), False),
               _op("input", event_line("header", input_header()), False)]
        link = {"key": f"{self.job_key}.guest", "flags": 0,
                "dirent": {"ver": 1, "type": "symlink",
                           "data": {"namespace": self.name, "target": "."}}}
        await asyncio.gather(
            self.ctx.rpc("kvs.commit", {"namespace": self.name, "flags": 0, "ops": ops}),
            self.ctx.rpc("kvs.commit", {"namespace": "primary", "flags": 0, "ops": [link]}))

    def append(self, name: str, context: dict[str, Any] | None = None) -> None:
        """Queue an exec eventlog entry (sent with the others of this loop turn)."""
        if not self.created:
            return
        self._ops.append(_op("exec.eventlog", event_line(name, context), True))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        ops, self._ops = self._ops, []
        if not ops:
            return
        fut = asyncio.ensure_future(self.ctx.rpc("kvs.commit", {"namespace": self.name,
                                                                "flags": 0, "ops": ops}))
        fut.add_done_callback(self._sent)
        self._inflight.append(fut)

    def _sent(self, fut: "asyncio.Future[Any]") -> None:
        if fut in self._inflight:
            self._inflight.remove(fut)
        if not fut.cancelled() and fut.exception() is not None:
            self.errors.append(str(fut.exception()))

    async def drain(self) -> None:
        """Wait until every queued append is committed."""
        if self._scheduled:
            self._scheduled = False
            self._send()
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def finalize(self) -> None:
        """Make the namespace's final root the job's ``guest`` directory; remove it."""
        if not self.created:
            return
        await self.drain()
        root = await self.ctx.rpc("kvs.getroot", {"namespace": self.name})
        op = {"key": f"{self.job_key}.guest", "flags": 0,
              "dirent": {"ver": 1, "type": "dirref", "data": [root["rootref"]]}}
        await self.ctx.rpc("kvs.commit", {"namespace": "primary", "flags": 0, "ops": [op]})
        await self.ctx.rpc("kvs.namespace-remove", {"namespace": self.name})
        self.created = False

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
        await ns.finalize()
        return True
