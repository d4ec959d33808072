"""flux.core.aio: a client connection to a Flux instance for asyncio programs.

``flux.Flux`` blocks its thread while it waits; a broker module runs in the
broker's event loop and must not.  ``AsyncFlux`` speaks the same wire
format over the same ``local://`` socket (connect, read the broker's
one-byte status, then length-framed messages, specs/messages.md) with
asyncio streams, so a module can talk to *another* instance, e.g. a child
instance to its parent::

    h = await AsyncFlux.connect(uri)
    resp = await h.rpc("job-info.lookup", {"id": jobid, "keys": ["R"], "flags": 0})
    async for event in h.rpc_stream("job-info.eventlog-watch", {...}):
        ...                       # ends cleanly on ENODATA
    h.close()

An error response raises ``FluxError`` with the broker's errno and text.
When the connection is lost (the instance stops) every outstanding RPC
and stream fails with ECONNRESET, as does every later one.  Matchtags are
never reused, so a stream abandoned early cannot hand its late responses
to a newer RPC.
"""
from __future__ import annotations

import asyncio
import errno
import itertools
import os
from typing import Any, Self

from flux.constants import (
    FLUX_MSGFLAG_STREAMING,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_NODEID_ANY,
)
from flux.errors import FluxError
from flux.message import Message, StreamDecoder, encode
from flux.uri import local_socket_path

__all__ = ["AsyncFlux", "RPCStream"]

_RECV_SIZE = 1 << 18
_Item = Message | FluxError


class AsyncFlux:
    """One connection to a broker, usable from coroutines of one event loop."""

    def __init__(self, uri: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.uri = uri
        self._reader = reader
        self._writer = writer
        self._decoder = StreamDecoder()
        self._pending: dict[int, asyncio.Queue[_Item]] = {}
        self._tags = itertools.count(1)
        self._closed_reason: str | None = None
        self._read_task = asyncio.get_running_loop().create_task(
            self._read_loop(), name=f"aio-flux {uri}")

    @classmethod
    async def connect(cls, uri: str | None = None) -> AsyncFlux:
        """Connect to URI (``FLUX_URI`` if None); FluxError names why it failed."""
        if uri is None:
            uri = os.environ.get("FLUX_URI")
            if not uri:
                raise FluxError(errno.EINVAL, "FLUX_URI is not set and no URI was given")
        path = local_socket_path(uri)
        try:
            reader, writer = await asyncio.open_unix_connection(path)
        except OSError as exc:
            raise FluxError(exc.errno or errno.ECONNREFUSED,
                            f"cannot connect to {uri}: {exc.strerror or exc}") from None
        try:
            status = await reader.readexactly(1)
        except (asyncio.IncompleteReadError, OSError):
            writer.close()
            raise FluxError(errno.ECONNRESET, f"{uri}: broker closed the connection") from None
        if status[0] != 0:
            writer.close()
            raise FluxError(status[0], f"{uri}: connection refused by broker: "
                                       f"{os.strerror(status[0])}")
        return cls(uri, reader, writer)

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    # -- requests ----------------------------------------------------------------

    def _send(self, topic: str, payload: Any, nodeid: int,
              streaming: bool) -> tuple[int, asyncio.Queue[_Item]]:
        if self._closed_reason is not None:
            raise FluxError(errno.ECONNRESET, self._closed_reason)
        if not isinstance(topic, str) or not topic:
            raise TypeError(f"RPC topic must be a non-empty str, got {topic!r}")
        tag = next(self._tags)
        msg = Message(FLUX_MSGTYPE_REQUEST, topic, payload, nodeid=nodeid, matchtag=tag,
                      flags=FLUX_MSGFLAG_STREAMING if streaming else 0)
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._pending[tag] = queue
        self._writer.write(encode(msg))
        return tag, queue

    async def rpc(self, topic: str, payload: Any = None,
                  nodeid: int = FLUX_NODEID_ANY) -> Any:
        """Send a request; its response's payload (decoded JSON, or None)."""
        tag, queue = self._send(topic, payload, nodeid, streaming=False)
        try:
            await self._writer.drain()
            item = await queue.get()
        except OSError as exc:
            raise FluxError(errno.ECONNRESET, f"{self.uri}: {exc.strerror or exc}") from None
        finally:
            self._pending.pop(tag, None)
        return _payload(item)

    def rpc_stream(self, topic: str, payload: Any = None,
                   nodeid: int = FLUX_NODEID_ANY) -> RPCStream:
        """Send a streaming request now; iterate the result for each response's payload."""
        tag, queue = self._send(topic, payload, nodeid, streaming=True)
        return RPCStream(self, tag, queue)

    # -- responses ------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reason = "broker closed the connection"
        try:
            while True:
                data = await self._reader.read(_RECV_SIZE)
                if not data:
                    break
                for msg in self._decoder.feed(data):
                    self._deliver(msg)
        except OSError as exc:    # a reset socket, or bytes that do not decode
            reason = f"lost connection to broker: {exc.strerror or exc}"
        self._lost(f"{self.uri}: {reason}")

    def _deliver(self, msg: Message) -> None:
        if msg.type != FLUX_MSGTYPE_RESPONSE:
            return  # no events or requests are asked for on this connection
        queue = self._pending.get(msg.matchtag)
        if queue is None:
            return  # an RPC given up on
        if msg.errnum or not msg.flags & FLUX_MSGFLAG_STREAMING:
            del self._pending[msg.matchtag]
        queue.put_nowait(msg)

    def _lost(self, reason: str) -> None:
        if self._closed_reason is not None:
            return
        self._closed_reason = reason
        self._writer.close()
        pending = list(self._pending.values())
        self._pending.clear()
        for queue in pending:
            queue.put_nowait(FluxError(errno.ECONNRESET, reason))

    def _forget(self, tag: int) -> None:
        self._pending.pop(tag, None)

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; outstanding RPCs fail with ECONNRESET."""
        self._read_task.cancel()
        self._lost(f"{self.uri}: connection closed")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class RPCStream:
    """The responses to one streaming request, as an async iterator of payloads.

    Iteration stops at ENODATA (the end of the stream); any other error
    response raises FluxError.  ``close()`` stops listening (the service is
    not told: cancel with the service's own request, using ``matchtag``, or
    close the connection).
    """

    __slots__ = ("_done", "_h", "_queue", "matchtag")

    def __init__(self, h: AsyncFlux, matchtag: int, queue: asyncio.Queue[_Item]) -> None:
        self._h = h
        self.matchtag = matchtag
        self._queue = queue
        self._done = False

    def __aiter__(self) -> RPCStream:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        try:
            item = await self._queue.get()
        except BaseException:
            self.close()
            raise
        if isinstance(item, FluxError) or item.errnum \
                or not item.flags & FLUX_MSGFLAG_STREAMING:
            self._done = True   # the last response of this stream
            if isinstance(item, Message) and item.errnum == errno.ENODATA:
                raise StopAsyncIteration
        return _payload(item)

    def close(self) -> None:
        self._done = True
        self._h._forget(self.matchtag)


def _payload(item: _Item) -> Any:
    if isinstance(item, FluxError):
        raise item
    if item.errnum:
        raise FluxError(item.errnum, item.errstr or None)
    return item.payload
