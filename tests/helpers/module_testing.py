"""An in-process stand-in for a broker, to test jobmgr modules without I/O.

``FakeContext`` has the ModuleContext members the job modules use
(``conf_get``, ``log``, ``respond``, ``stream``, ``rpc``, ``rpc_stream``,
``send_request``, ``create_task``) and records what the module sends.
``ctx.request(module, topic, payload)`` dispatches a request to a module's
handler the way the broker does (owner check, exceptions mapped to error
responses) and returns the request Message; ``ctx.replies(msg)`` lists
what was sent back to it.  ``FakeKvs`` answers ``kvs.commit`` and
``kvs.lookup`` from a dict (appends concatenate), counting commits.
"""
from __future__ import annotations

import asyncio
import binascii
import errno
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flux.constants import (
    FLUX_MSGFLAG_NORESPONSE,
    FLUX_MSGFLAG_STREAMING,
    FLUX_MSGTYPE_REQUEST,
    FLUX_NODEID_ANY,
    FLUX_ROLE_OWNER,
    FLUX_ROLE_USER,
)
from flux.errors import FluxError
from flux.message import Message

__all__ = ["FakeContext", "FakeKvs", "Reply", "FakeLog", "settle"]

FLUX_KVS_APPEND = 32


@dataclass(slots=True)
class Reply:
    payload: Any
    errnum: int = 0
    errstr: str | None = None


class FakeLog:
    """Records log calls as (level, message)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def _rec(self, level: str) -> Callable[..., None]:
        def log(msg: str, *args: Any, **kwargs: Any) -> None:
            self.records.append((level, msg))
        return log

    def __getattr__(self, level: str) -> Callable[..., None]:
        if level in ("debug", "info", "warning", "error", "critical", "exception"):
            return self._rec(level)
        raise AttributeError(level)

    def text(self, level: str | None = None) -> str:
        return "\n".join(m for lv, m in self.records if level is None or lv == level)


class FakeKvs:
    """``kvs.commit`` / ``kvs.lookup`` over a dict of key -> bytes."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.commits: list[list[str]] = []
        self.fail: OSError | None = None

    def commit(self, payload: Mapping[str, Any], nodeid: int = FLUX_NODEID_ANY) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        keys = []
        from kvs.txn import RawValue

        for op in payload["ops"]:
            dirent = op["dirent"]
            raw = (b"".join(dirent.chunks) if isinstance(dirent, RawValue)
                   else binascii.a2b_base64(dirent["data"]))
            key = op["key"]
            if op["flags"] & FLUX_KVS_APPEND:
                self.data[key] = self.data.get(key, b"") + raw
            else:
                self.data[key] = raw
            keys.append(key)
        self.commits.append(keys)
        return {"rootref": f"fake-{len(self.commits)}", "sequence": len(self.commits)}

    def lookup(self, payload: Mapping[str, Any], nodeid: int = FLUX_NODEID_ANY) -> dict[str, Any]:
        from kvs.treeobj import val

        key = payload["key"]
        if key not in self.data:
            raise FluxError(errno.ENOENT, f"{key}: no such key")
        return {"key": key, "val": val(self.data[key])}

    def install(self, ctx: FakeContext) -> FakeKvs:
        ctx.handlers["kvs.commit"] = self.commit
        ctx.handlers["kvs.lookup"] = self.lookup
        return self


class FakeContext:
    """The parts of broker.module.ModuleContext that job modules use."""

    def __init__(self, rank: int = 0, size: int = 1, config: Mapping[str, Any] | None = None,
                 owner: int = 1000) -> None:
        self.name = "fake"
        self.uuid = "fake-module"
        self.rank = rank
        self.size = size
        self.owner = owner
        self.config: dict[str, Any] = dict(config or {})
        self.log = FakeLog()
        #: topic -> fn(payload, nodeid) (may return an awaitable or raise)
        self.handlers: dict[str, Callable[..., Any]] = {}
        #: topic -> fn(payload, nodeid) returning an async iterator of payloads
        self.stream_handlers: dict[str, Callable[..., AsyncIterator[Any]]] = {}
        self.sent: list[tuple[str, Any, int]] = []
        self.rpcs: list[tuple[str, Any, int]] = []
        self._replies: dict[int, list[Reply]] = {}
        self._streams: dict[Any, Any] = {}
        self._tags = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.module: Any = None

    # -- configuration ---------------------------------------------------------------
    def conf_get(self, key: str, default: Any = None) -> Any:
        node: Any = self.config
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    # -- tasks -------------------------------------------------------------------------
    def create_task(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- responding ---------------------------------------------------------------------
    def respond(self, msg: Message, payload: Any = None) -> None:
        if msg.flags & FLUX_MSGFLAG_NORESPONSE:
            return
        self._replies.setdefault(msg.matchtag, []).append(Reply(payload))

    def respond_error(self, msg: Message, errnum: int, text: str | None = None) -> None:
        if msg.flags & FLUX_MSGFLAG_NORESPONSE:
            return
        self._replies.setdefault(msg.matchtag, []).append(Reply(None, errnum, text))

    def stream(self, msg: Message) -> Any:
        from broker.module import Stream

        if not msg.flags & FLUX_MSGFLAG_STREAMING:
            raise FluxError(errno.EPROTO, f"{msg.topic} requires the streaming flag")
        stream = Stream(self, msg)  # type: ignore[arg-type]
        self._streams[stream.key] = stream
        return stream

    def replies(self, msg: Message) -> list[Reply]:
        return self._replies.get(msg.matchtag, [])

    def cancel_stream(self, msg: Message) -> None:
        stream = self._streams.get((msg.sender, msg.matchtag))
        if stream is not None:
            stream._cancel(respond=True)

    # -- requesting ----------------------------------------------------------------------
    async def rpc(self, topic: str, payload: Any = None, nodeid: int = FLUX_NODEID_ANY,
                  timeout: float | None = None) -> Any:
        self.rpcs.append((topic, payload, nodeid))
        await asyncio.sleep(0)
        fn = self.handlers.get(topic)
        if fn is None:
            raise FluxError(errno.ENOSYS, f"Service is not available: {topic}")
        result = fn(payload, nodeid)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        return result

    async def rpc_stream(self, topic: str, payload: Any = None,
                         nodeid: int = FLUX_NODEID_ANY) -> AsyncIterator[Any]:
        self.rpcs.append((topic, payload, nodeid))
        fn = self.stream_handlers.get(topic)
        if fn is None:
            await asyncio.sleep(0)
            raise FluxError(errno.ENOSYS, f"Service is not available: {topic}")
        async for item in fn(payload, nodeid):
            yield item

    def send_request(self, topic: str, payload: Any = None,
                     nodeid: int = FLUX_NODEID_ANY) -> None:
        self.sent.append((topic, payload, nodeid))

    # -- dispatching requests to a module -----------------------------------------------
    def request(self, module: Any, topic: str, payload: Any = None, *, streaming: bool = False,
                guest: bool = False, noresponse: bool = False) -> Message:
        """Deliver a request to MODULE's handler for TOPIC, as the broker would."""
        flags = (FLUX_MSGFLAG_STREAMING if streaming else 0) | \
            (FLUX_MSGFLAG_NORESPONSE if noresponse else 0)
        msg = Message(FLUX_MSGTYPE_REQUEST, topic, payload, flags=flags,
                      matchtag=next(self._tags), route=["client"],
                      userid=self.owner + (1 if guest else 0),
                      rolemask=FLUX_ROLE_USER if guest else FLUX_ROLE_OWNER)
        entry = type(module)._handler_specs.get(topic)
        if entry is None:
            self.respond_error(msg, errno.ENOSYS, f"Method not implemented: {topic}")
            return msg
        attr, spec = entry
        if not spec.allow_guest and guest:
            self.respond_error(msg, errno.EPERM, "Request requires owner credentials")
            return msg
        if spec.streaming and not streaming:
            self.respond_error(msg, errno.EPROTO, f"{topic} requires the streaming flag")
            return msg
        try:
            result = getattr(module, attr)(msg)
        except Exception as exc:  # noqa: BLE001 - mapped like the broker does
            self._error(msg, exc)
            return msg
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            self.create_task(self._finish(msg, result))
        elif result is not None:
            self.respond(msg, result)
        return msg

    async def _finish(self, msg: Message, coro: Any) -> None:
        try:
            result = await coro
        except Exception as exc:  # noqa: BLE001
            self._error(msg, exc)
            return
        if result is not None:
            self.respond(msg, result)

    def _error(self, msg: Message, exc: Exception) -> None:
        if isinstance(exc, OSError) and exc.errno:
            self.respond_error(msg, exc.errno, exc.strerror or str(exc))
        elif isinstance(exc, (KeyError, ValueError, TypeError)):
            self.respond_error(msg, errno.EPROTO, f"{msg.topic}: {exc}")
        else:
            self.respond_error(msg, errno.EIO, f"{msg.topic}: {exc}")


async def settle(rounds: int = 5) -> None:
    """Let callbacks, tasks and batched commits run."""
    for _ in range(rounds):
        await asyncio.sleep(0)
