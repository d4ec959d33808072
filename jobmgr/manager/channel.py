"""Requests whose responses arrive at a callback instead of an awaited future.

The job manager has thousands of requests outstanding at once (one
``sched.alloc`` per job in SCHED, one ``job-exec.start`` per running job),
and each may get several responses.  An awaited RPC per request would cost
an asyncio task each, so ``Multiplexer`` sends requests that all share one
matchtag (0 for ``sched.alloc``/``sched.free``, as RFC 27 asks) and the
streaming flag: every response of every such request lands in one callback,
keyed by topic, and the payload's job id says which job it is about.  A
responder answers with ``ctx.respond(msg, payload)``, which keeps the
matchtag and the flag.  An error response means the service went away
(ENOSYS at unload): it goes to the topic's error callback.

Single requests use ``ModuleContext.request_callback`` directly.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flux.constants import FLUX_NODEID_ANY
from flux.message import Message

__all__ = ["Multiplexer", "OnResponse"]

OnResponse = Callable[[Message], None]


class Multiplexer:
    """Streaming requests sharing one matchtag; responses dispatched by topic.

    TAG is the shared matchtag (default: a fresh one from the module's pool).
    """

    __slots__ = ("_ctx", "_handlers", "_tag")

    def __init__(self, ctx: Any, tag: int | None = None) -> None:
        self._ctx = ctx
        self._handlers: dict[str, tuple[OnResponse, OnResponse]] = {}
        self._tag = ctx.new_matchtag() if tag is None else tag
        ctx.on_response(self._tag, self._dispatch, persistent=True)

    def register(self, topic: str, on_response: OnResponse, on_error: OnResponse) -> None:
        """Responses to TOPIC go to ON_RESPONSE, error responses to ON_ERROR."""
        self._handlers[topic] = (on_response, on_error)

    def send(self, topic: str, payload: Any, nodeid: int = FLUX_NODEID_ANY) -> None:
        self._ctx.send_tagged(topic, payload, self._tag, streaming=True, nodeid=nodeid)

    def close(self) -> None:
        self._ctx.drop_response(self._tag)

    def _dispatch(self, msg: Message) -> None:
        entry = self._handlers.get(msg.topic)
        if entry is None:
            return
        if msg.errnum:
            entry[1](msg)
        else:
            entry[0](msg)
