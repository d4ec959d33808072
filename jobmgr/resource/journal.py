"""``resource.journal``: resource.eventlog as a stream, history first (Flux's reslog journal).

Rank 0 keeps what it needs to replay the log to a consumer: the size the
log had when the module started (the entries before it are read back from
the KVS on the first request, then kept) and every entry committed since
(kept as it is applied).  A request gets, one response each, the entries
of the log in order, then ``{"events": []}`` (the end of the history),
then each new entry once it is durable, until the consumer cancels
(``resource.journal-cancel {"matchtag"}`` or ``resource.cancel``),
disconnects, or the module unloads (ENODATA).  Each response is
``{"events": [entry]}``; a ``resource-define`` entry's response also has
``"R"``, the instance R.  ``resource-define`` entries written before this
start are left out, as Flux does: the R they defined is not known any more.

On other ranks the request is relayed to rank 0 and the answers passed
back.  See specs/resource-service.md.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Callable
from typing import Any

import orjson

from broker.module import Stream
from flux.errors import FluxError
from flux.message import Message

__all__ = ["ResourceJournal"]


class ResourceJournal:
    """The journal consumers of one resource module, and the history they replay."""

    def __init__(self, ctx: Any, eventlog_key: str, get_R: Callable[[], Any]) -> None:
        self.ctx = ctx
        self.key = eventlog_key
        self.get_R = get_R
        self.start_bytes = 0                 # log size when the module started
        self._prefix: list[dict[str, Any]] | None = None   # entries before that, once read
        self._posted: list[dict[str, Any]] = []            # entries committed since
        self._streams: dict[tuple[Any, int], Stream] = {}
        self._relays: dict[tuple[Any, int], tuple[Stream, asyncio.Task[Any]]] = {}

    # -- what consumers are sent -------------------------------------------------

    def _payload(self, entry: dict[str, Any]) -> dict[str, Any]:
        if entry.get("name") == "resource-define":
            return {"events": [entry], "R": self.get_R()}
        return {"events": [entry]}

    def committed(self, entries: list[dict[str, Any]]) -> None:
        """ENTRIES are durable in the log: remember them, send them to every consumer."""
        self._posted.extend(entries)
        if not self._streams:
            return
        for entry in entries:
            payload = self._payload(entry)
            for stream in list(self._streams.values()):
                stream.send(payload)

    async def _load_prefix(self) -> list[dict[str, Any]]:
        if self._prefix is None:
            from jobmgr.kvs_batch import kvs_get

            data = (await kvs_get(self.ctx, self.key) or b"")[:self.start_bytes]
            prefix = []
            for lineno, line in enumerate(data.split(b"\n"), 1):
                if not line:
                    continue
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    self.ctx.log.warning(f"{self.key} line {lineno}: not JSON, left out of "
                                         "the journal")
                    continue
                if isinstance(entry, dict) and entry.get("name") != "resource-define":
                    prefix.append(entry)
            if self._prefix is None:
                self._prefix = prefix
        return self._prefix

    # -- requests ------------------------------------------------------------------

    async def request(self, msg: Message) -> None:
        """A ``resource.journal`` request (the streaming flag is checked by the caller)."""
        stream = self.ctx.stream(msg)
        key = stream.key
        if self.ctx.rank != 0:
            task = self.ctx.create_task(self._relay(msg, stream), name="resource-journal-relay")
            self._relays[key] = (stream, task)
            stream.on_cancel = task.cancel
            return
        try:
            prefix = await self._load_prefix()
        except FluxError as exc:
            stream.error(exc.errno or errno.EIO, f"{self.key}: {exc.strerror or exc}")
            return
        if stream.ended:        # cancelled or disconnected meanwhile
            return
        # no await from here on: no entry can be committed between history and live
        for entry in prefix:
            stream.send(self._payload(entry))
        for entry in self._posted:
            stream.send(self._payload(entry))
        stream.send({"events": []})
        self._streams[key] = stream
        stream.on_cancel = lambda: self._streams.pop(key, None)

    async def _relay(self, msg: Message, stream: Stream) -> None:
        try:
            async with contextlib.aclosing(self.ctx.rpc_stream(msg.topic, msg.payload,
                                                               nodeid=0)) as answers:
                async for resp in answers:
                    stream.send(resp)
            stream.end()
        except FluxError as exc:
            stream.error(exc.errno or errno.EIO, exc.strerror)
        finally:
            self._relays.pop(stream.key, None)

    def cancel(self, msg: Message) -> None:
        """``resource.journal-cancel {"matchtag"}``: end that consumer's stream (ENODATA).

        The request asks for no response; one naming no stream of the
        sender is ignored, as Flux does.
        """
        body = msg.payload if isinstance(msg.payload, dict) else {}
        tag = body.get("matchtag")
        if not isinstance(tag, int) or isinstance(tag, bool) or msg.sender is None:
            self.ctx.log.debug(f"{msg.topic}: ignored (no matchtag in {body!r})")
            return
        key = (msg.sender, tag)
        relay = self._relays.pop(key, None)
        if relay is not None:
            relay[1].cancel()
            relay[0].end()
        stream = self._streams.pop(key, None)
        if stream is not None:
            stream.end()

    def close(self) -> None:
        """The module unloads: end every stream with ENODATA (as Flux does)."""
        for stream, task in list(self._relays.values()):
            task.cancel()
            stream.end()
        self._relays.clear()
        for stream in list(self._streams.values()):
            stream.end()
        self._streams.clear()

    @property
    def consumers(self) -> int:
        return len(self._streams) + len(self._relays)
