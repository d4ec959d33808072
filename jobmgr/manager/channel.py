"""Requests whose responses arrive at a callback instead of an awaited future.

The job manager has thousands of requests outstanding at once (one
``sched.alloc`` per job in SCHED, one ``job-exec.start`` per running job),
and each may get several responses.  An awaited RPC per request would cost
an asyncio task each, so instead:

- ``Multiplexer`` sends requests that all share one matchtag (0 for
  ``sched.alloc``/``sched.free``, as RFC 27 asks) and the streaming flag:
  every response of every such request lands in one callback, keyed by
  topic, and the payload's job id says which job it is about.  A responder
  answers with ``ctx.respond(msg, payload)``, which keeps the matchtag and
  the flag.  An error response means the service went away (ENOSYS at
  unload): it goes to the topic's error callback, and the registration is
  renewed at the next loop turn or send.
- ``request_cb`` sends one ordinary request and calls back once with the
  response message.

The module API has no public call for this yet, so the few lines that
touch ``ModuleContext`` internals are kept here, in one place.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from flux.constants import FLUX_MSGFLAG_STREAMING, FLUX_NODEID_ANY
from flux.message import Message

__all__ = ["Multiplexer", "request_cb", "OnResponse"]

OnResponse = Callable[[Message], None]


class _Sink(asyncio.Queue):  # type: ignore[type-arg]
    """What ``ModuleContext.deliver`` hands responses to: a queue it never blocks on.

    Only ``put_nowait`` is ever called, so the queue machinery is not set up
    (one of these is made per request on hot paths).
    """

    def __init__(self, callback: OnResponse) -> None:  # noqa: D107 - no super().__init__
        self._callback = callback

    def put_nowait(self, item: Message) -> None:
        self._callback(item)


def _route(ctx: Any, topic: str, payload: Any, tag: int, flags: int, nodeid: int) -> None:
    msg = ctx._request(topic, payload, nodeid, flags)
    msg.matchtag = tag
    ctx._broker.route_request(msg)


def _new_tag(ctx: Any) -> int:
    return next(ctx._tags) & 0xFFFFFFFF or next(ctx._tags)


class Multiplexer:
    """Streaming requests sharing one matchtag; responses dispatched by topic.

    TAG is the shared matchtag (default: a fresh one from the module's pool).
    """

    __slots__ = ("_ctx", "_handlers", "_sink", "_tag")

    def __init__(self, ctx: Any, tag: int | None = None) -> None:
        self._ctx = ctx
        self._handlers: dict[str, tuple[OnResponse, OnResponse]] = {}
        self._sink = _Sink(self._dispatch)
        self._tag = _new_tag(ctx) if tag is None else tag

    def register(self, topic: str, on_response: OnResponse, on_error: OnResponse) -> None:
        """Responses to TOPIC go to ON_RESPONSE, error responses to ON_ERROR."""
        self._handlers[topic] = (on_response, on_error)

    def send(self, topic: str, payload: Any, nodeid: int = FLUX_NODEID_ANY) -> None:
        self._register()
        _route(self._ctx, topic, payload, self._tag, FLUX_MSGFLAG_STREAMING, nodeid)

    def _register(self) -> None:
        if self._ctx._pending.get(self._tag) is not self._sink:
            self._ctx._pending[self._tag] = self._sink

    def close(self) -> None:
        if self._ctx._pending.get(self._tag) is self._sink:
            del self._ctx._pending[self._tag]

    def _dispatch(self, msg: Message) -> None:
        entry = self._handlers.get(msg.topic)
        if entry is None:
            return
        try:
            if msg.errnum:
                # the context drops this registration after an error response
                asyncio.get_running_loop().call_soon(self._register)
                entry[1](msg)
            else:
                entry[0](msg)
        except Exception:  # noqa: BLE001 - one bad response must not stop the others
            self._ctx.log.exception("response handler failed", topic=msg.topic)


def request_cb(ctx: Any, topic: str, payload: Any, callback: OnResponse,
               nodeid: int = FLUX_NODEID_ANY) -> None:
    """Send one request; CALLBACK(response message) runs when it is answered."""
    tag = _new_tag(ctx)

    def once(msg: Message) -> None:
        try:
            callback(msg)
        except Exception:  # noqa: BLE001
            ctx.log.exception("response callback failed", topic=topic)

    ctx._pending[tag] = _Sink(once)
    _route(ctx, topic, payload, tag, 0, nodeid)
