"""flux.rpc.RPC: a request sent now, its response(s) a Future (RFC 6).

``get()`` returns the decoded JSON payload of the current response (None
when it has none); an error response raises ``OSError(errnum, errstr)``.
With ``FLUX_RPC_STREAMING`` each response is queued: ``get()`` the
current one, ``reset()`` to move on; the stream ends with an ENODATA
error.  Iterating an RPC yields payloads until ENODATA::

    for event in h.rpc("kvs-watch.lookup", {...}, flags=FLUX_RPC_STREAMING):
        ...
"""
from __future__ import annotations

import errno

from flux.constants import (
    FLUX_MSGFLAG_NORESPONSE,
    FLUX_MSGFLAG_STREAMING,
    FLUX_MSGFLAG_UPSTREAM,
    FLUX_MSGTYPE_REQUEST,
    FLUX_NODEID_ANY,
    FLUX_NODEID_UPSTREAM,
    FLUX_RPC_NORESPONSE,
    FLUX_RPC_STREAMING,
)
from flux.future import Future
from flux.message import Message

if False:  # for type checkers only: importing typing costs a short command ~3 ms
    from typing import Any, Iterator

    from flux.core.handle import Flux


class RPC(Future):
    """An RPC in flight on FLUX_HANDLE."""

    def __init__(self, flux_handle: "Flux", topic: str | bytes, payload: Any = None,
                 nodeid: int = FLUX_NODEID_ANY, flags: int = 0) -> None:
        super().__init__(flux_handle)
        if isinstance(topic, (bytes, bytearray)):
            topic = bytes(topic).decode()
        if topic is None:
            raise OSError(errno.EINVAL, "Topic must not be None/NULL")
        if not isinstance(topic, str) or not topic:
            raise TypeError(f"RPC topic must be a non-empty str or bytes, got {topic!r}")
        self.topic = topic
        self.streaming = bool(flags & FLUX_RPC_STREAMING)
        self.matchtag = 0
        msgflags = 0
        if flags & FLUX_RPC_STREAMING:
            msgflags |= FLUX_MSGFLAG_STREAMING
        if flags & FLUX_RPC_NORESPONSE:
            msgflags |= FLUX_MSGFLAG_NORESPONSE
        if nodeid == FLUX_NODEID_UPSTREAM:
            # RFC 3: an upstream request carries the sender's own rank
            msgflags |= FLUX_MSGFLAG_UPSTREAM
            nodeid = flux_handle.get_rank()
        msg = Message(FLUX_MSGTYPE_REQUEST, topic, payload, flags=msgflags, nodeid=nodeid)
        flux_handle._send_request(self, msg, expect_response=not flags & FLUX_RPC_NORESPONSE)
        if flags & FLUX_RPC_NORESPONSE:
            self.fulfill(None)

    # called by the handle for each response
    def _deliver(self, msg: Message) -> None:
        if msg.errnum:
            self._push((None, msg.errnum, msg.errstr))
        else:
            self._push((msg, 0, None))

    def _is_final(self, result: tuple[Any, int, str | None]) -> bool:
        return not self.streaming or result[1] != 0

    def get_message(self) -> Message | None:
        """The current response message (raises OSError for an error response)."""
        return self._current()

    def get(self) -> Any:
        """Decoded JSON payload of the current response, or None."""
        msg = self._current()
        return None if msg is None else msg.payload

    def get_str(self) -> str | None:
        """Payload of the current response as a string, or None."""
        msg = self._current()
        return None if msg is None else msg.payload_str

    def get_raw(self) -> bytes | None:
        """Payload of the current response as bytes, or None."""
        msg = self._current()
        return None if msg is None else msg.raw

    def __iter__(self) -> Iterator[Any]:
        """Yield each response payload; stop at ENODATA (other errors raise)."""
        while True:
            try:
                value = self.get()
            except OSError as exc:
                if exc.errno == errno.ENODATA:
                    return
                raise
            self.reset()
            yield value


__all__ = ["RPC"]
