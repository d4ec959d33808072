"""Broker modules: the API every service (kvs, content, job-manager, ...) is written to.

A module is a class::

    class Echo(Module):
        name = "echo"                       # also the default service name

        async def start(self) -> None:       # rc1: load
            self.count = 0

        @request_handler("echo.hi", allow_guest=True)
        def hi(self, msg: Message) -> dict:  # a returned value is the response
            self.count += 1
            return {"n": self.count, "you": msg.payload}

        @request_handler("echo.watch", streaming=True)
        async def watch(self, msg: Message) -> None:
            stream = self.ctx.stream(msg)
            for i in range(3):
                stream.send({"i": i})
            stream.end()                     # ENODATA: end of stream

        async def stop(self) -> None:        # rc3: unload
            ...

Handlers get the request :class:`~flux.message.Message`; they may be plain
functions or coroutines.  A handler that returns a value other than None
responds with it; one that raises OSError/FluxError responds with that
errno and text (ValueError, TypeError and KeyError become EPROTO); one that
returns None responds later through ``self.ctx`` (``respond``,
``respond_error``, ``stream``).  Handlers are owner-only unless
``allow_guest=True``; ``streaming=True`` rejects requests without the
streaming flag with EPROTO (RFC 6).  Every service also answers
``<service>.ping``, ``<service>.disconnect`` (the module's streams from
that sender are cancelled, then :meth:`Module.disconnect` is called) and
``<service>.cancel`` (``{"matchtag": N}``: end that stream with ENODATA),
``<service>.stats-get`` / ``stats-clear`` (message counters by direction
and type), ``<service>.rusage`` (the broker's getrusage) and
``<service>.debug`` (``{"op": get|set|clr|setbit|clrbit, "flags": N}``: the
module's debug bits), unless the module defines handlers for them.

Messages between modules of one broker are handed over as objects: a
payload set as a dict arrives as that same dict, so treat received
payloads as read-only.
"""
from __future__ import annotations

import asyncio
import errno
import hashlib
import inspect
import itertools
import os
import time
import types
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, ClassVar

from flux.constants import (
    FLUX_MSGFLAG_NORESPONSE,
    FLUX_MSGFLAG_PRIVATE,
    FLUX_MSGFLAG_STREAMING,
    FLUX_MSGFLAG_UPSTREAM,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_NODEID_ANY,
    FLUX_ROLE_LOCAL,
    FLUX_ROLE_OWNER,
)
from flux.errors import FluxError
from flux.message import Message, response_to

if TYPE_CHECKING:
    from broker.broker import Broker
    from broker.config import Config


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    topic: str
    allow_guest: bool = False
    streaming: bool = False


def request_handler(topic: str, *, allow_guest: bool = False,
                    streaming: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a Module method as the handler of requests to TOPIC."""
    if "." not in topic:
        raise ValueError(f"handler topic '{topic}' must be 'service.method'")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn._flux_handler = HandlerSpec(topic, allow_guest, streaming)  # type: ignore[attr-defined]
        return fn

    return deco


class Module:
    """Base class of broker modules.  Subclasses set ``name`` and handlers."""

    #: module name (``flux module list``); the default service name
    name: ClassVar[str] = ""
    #: services to register; default: the prefixes of the handler topics, else (name,)
    services: ClassVar[tuple[str, ...]] = ()
    #: requests without a handler (but ``ping``) go on to rank 0's service of that name
    forward_to_leader: ClassVar[bool] = False
    _handler_specs: ClassVar[dict[str, tuple[str, HandlerSpec]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs: dict[str, tuple[str, HandlerSpec]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                spec = getattr(value, "_flux_handler", None)
                if isinstance(spec, HandlerSpec):
                    specs[spec.topic] = (attr, spec)
        cls._handler_specs = specs

    def __init__(self, ctx: "ModuleContext", args: list[str]) -> None:
        self.ctx = ctx
        self.args = args

    @classmethod
    def service_names(cls) -> tuple[str, ...]:
        if cls.services:
            return cls.services
        names = []
        for topic in cls._handler_specs:
            svc = topic.split(".", 1)[0]
            if svc not in names:
                names.append(svc)
        return tuple(names) or ((cls.name,) if cls.name else ())

    async def start(self) -> None:
        """Called once at load (rc1); services are registered when it returns."""

    async def stop(self) -> None:
        """Called at unload (rc3, or ``flux module remove``), in reverse load order."""

    def disconnect(self, sender: str) -> None:
        """A client (route identity SENDER) that used this module's services went away."""

    def config_reload(self, config: "Config") -> None:
        """New configuration (``flux config reload``); raise OSError/ValueError to refuse it."""


class _Callback:
    """A response callback registered with ``ModuleContext.on_response``."""

    __slots__ = ("fn", "persistent", "log")

    def __init__(self, fn: Callable[[Message], Any], persistent: bool, log: Any) -> None:
        self.fn = fn
        self.persistent = persistent
        self.log = log

    def __call__(self, msg: Message) -> None:
        try:
            self.fn(msg)
        except Exception:  # noqa: BLE001 - one bad callback must not stop delivery
            self.log.exception("response callback failed", topic=msg.topic)


class Stream:
    """The responding end of one streaming request (RFC 6)."""

    __slots__ = ("ctx", "request", "key", "ended", "on_cancel")

    def __init__(self, ctx: "ModuleContext", request: Message) -> None:
        self.ctx = ctx
        self.request = request
        self.key = (request.sender, request.matchtag)
        self.ended = False
        #: called (no arguments) if the client cancels or disconnects
        self.on_cancel: Callable[[], None] | None = None

    @property
    def sender(self) -> str | None:
        return self.request.sender

    def send(self, payload: Any = None) -> bool:
        """Send one response; False if the stream has already ended."""
        if self.ended:
            return False
        self.ctx.respond(self.request, payload)
        return True

    def end(self) -> None:
        """Finish the stream with ENODATA."""
        self.error(errno.ENODATA)

    def error(self, errnum: int, text: str | None = None) -> None:
        """Finish the stream with an error response."""
        if self.ended:
            return
        self.ended = True
        self.ctx._streams.pop(self.key, None)
        self.ctx.respond_error(self.request, errnum, text)

    def _cancel(self, respond: bool) -> None:
        if self.ended:
            return
        self.ended = True
        self.ctx._streams.pop(self.key, None)
        if respond:
            self.ctx.respond_error(self.request, errno.ENODATA)
        if self.on_cancel is not None:
            try:
                self.on_cancel()
            except Exception:  # noqa: BLE001 - a module bug must not break the broker
                self.ctx.log.exception("stream cancel callback failed")


_TASK_TYPES = (types.CoroutineType,)


class ModuleContext:
    """What a module sees of its broker (``self.ctx``).  Also the module's
    endpoint: the broker delivers its requests and responses here."""

    def __init__(self, broker: "Broker", name: str) -> None:
        self._broker = broker
        self.name = name
        self.uuid = uuid.uuid4().hex
        self.rank = broker.rank
        self.size = broker.size
        #: uid of the instance owner
        self.owner = broker.owner
        self.log = broker.make_logger(name)
        self.module: Module | None = None
        self._handlers: dict[str, tuple[Callable[[Message], Any], HandlerSpec]] = {}
        self._pending: dict[int, Any] = {}
        self._tags = itertools.count(1)
        self._streams: dict[tuple[str | None, int], Stream] = {}
        self._subs: list[tuple[str, Callable[[Message], Any], bool]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.last_active = time.monotonic()
        self.services: tuple[str, ...] = ()
        #: (service, nodeid) of every request sent: told ``disconnect`` at unload
        self.used: set[tuple[str, int]] = set()
        #: messages received and sent, by type (``flux module stats``)
        self.rx: dict[int, int] = {1: 0, 2: 0, 4: 0, 8: 0}
        self.tx: dict[int, int] = {1: 0, 2: 0, 4: 0, 8: 0}
        #: private debug bits (``flux module debug``)
        self.debug_flags = 0

    # -- configuration, attributes, paths ----------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The merged TOML configuration table (read-only by convention)."""
        return self._broker.config.table

    def conf_get(self, key: str, default: Any = None) -> Any:
        """Configuration value at dotted KEY, or DEFAULT."""
        return self._broker.config.get(key, default)

    def attr_get(self, name: str) -> str:
        return self._broker.attrs.get(name)

    def attr_get_default(self, name: str, default: str | None = None) -> str | None:
        return self._broker.attrs.get_default(name, default)

    def attr_set(self, name: str, value: str) -> None:
        self._broker.attrs.set(name, value, force=True)

    def attr_register(self, name: str, value: str | int | None = None, *,
                      getter: Callable[[], str | None] | None = None,
                      setter: Callable[[str], None] | None = None,
                      immutable: bool = False) -> None:
        """Provide attribute NAME (removed again when the module unloads).

        A value already given on the command line (``-S name=value``) is
        kept and the module's VALUE ignored; read it back with attr_get().
        """
        attrs = self._broker.attrs
        keep = name in attrs and attrs.lookup(name).owner is None and getter is None
        attrs.add(name, value, immutable=immutable, getter=getter, setter=setter,
                  owner=self.name, replace=not keep)

    @property
    def rundir(self) -> str:
        return self._broker.attrs.get("rundir")

    @property
    def statedir(self) -> str | None:
        return self._broker.attrs.get_default("statedir")

    @property
    def store_dir(self) -> str:
        """Where persistent data goes: ``statedir`` if set (kept), else ``rundir`` (removed at exit)."""
        return self.statedir or self.rundir

    @property
    def store_is_kept(self) -> bool:
        """Whether the store outlives this run (a statedir, or a rundir the user gave)."""
        return bool(self.statedir) or not getattr(self._broker, "_rundir_created", False)

    @property
    def shutdown_options(self) -> dict[str, Any]:
        """Options of the request that shut the instance down (e.g. ``{"gc": True}``)."""
        return self._broker.shutdown_options

    # -- tasks -------------------------------------------------------------
    def create_task(self, coro: Awaitable[Any], name: str | None = None) -> "asyncio.Task[Any]":
        """Run CORO in the broker loop; cancelled at unload; failures are logged."""
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: "asyncio.Task[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.log.error("task failed", task=task.get_name(), exc_info=exc)

    # -- responding --------------------------------------------------------
    def respond(self, msg: Message, payload: Any = None) -> None:
        """Respond to request MSG (nothing is sent if it asked for no response)."""
        if msg.flags & FLUX_MSGFLAG_NORESPONSE:
            return
        self.tx[2] += 1
        self._broker.route_response(response_to(msg, payload))

    def respond_error(self, msg: Message, errnum: int, text: str | None = None) -> None:
        """Respond to request MSG with error ERRNUM (and TEXT)."""
        if not msg.flags & FLUX_MSGFLAG_NORESPONSE:
            self.tx[2] += 1
        self._broker.respond_error(msg, errnum, text)

    def stream(self, msg: Message) -> Stream:
        """Start streaming responses to MSG; EPROTO if it lacks the streaming flag."""
        if not msg.flags & FLUX_MSGFLAG_STREAMING:
            raise FluxError(errno.EPROTO, f"{msg.topic} requires the streaming flag")
        stream = Stream(self, msg)
        self._streams[stream.key] = stream
        return stream

    def streams_of(self, sender: str) -> list[Stream]:
        return [s for (snd, _tag), s in self._streams.items() if snd == sender]

    # -- requesting ----------------------------------------------------------
    def _request(self, topic: str, payload: Any, nodeid: int, flags: int) -> Message:
        msg = Message(FLUX_MSGTYPE_REQUEST, topic, payload, flags=flags, nodeid=nodeid,
                      route=[self.uuid])
        self.used.add((topic.partition(".")[0], nodeid))
        self.tx[1] += 1
        msg.userid = self.owner
        msg.rolemask = FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL
        return msg

    def send_request(self, topic: str, payload: Any = None, nodeid: int = FLUX_NODEID_ANY) -> None:
        """Send a request that gets no response."""
        msg = self._request(topic, payload, nodeid, FLUX_MSGFLAG_NORESPONSE)
        self._broker.route_request(msg)

    # -- callback RPCs: no asyncio task or future per request ------------------
    def new_matchtag(self) -> int:
        """A matchtag from this module's pool (never 0)."""
        return next(self._tags) & 0xFFFFFFFF or next(self._tags)

    def on_response(self, matchtag: int, callback: Callable[[Message], Any], *,
                    persistent: bool = False) -> None:
        """Deliver responses carrying MATCHTAG to CALLBACK(msg), in the loop.

        The registration ends with the first response that is an error or not
        streaming, unless PERSISTENT (one tag shared by many requests, such as
        RFC 27's matchtag 0 for every ``sched.alloc``); ``drop_response``
        ends it.
        """
        self._pending[matchtag] = _Callback(callback, persistent, self.log)

    def drop_response(self, matchtag: int) -> None:
        """Forget the callback registered for MATCHTAG."""
        self._pending.pop(matchtag, None)

    def send_tagged(self, topic: str, payload: Any, matchtag: int, *, streaming: bool = False,
                    nodeid: int = FLUX_NODEID_ANY) -> None:
        """Send a request whose responses carry MATCHTAG (see ``on_response``)."""
        msg = self._request(topic, payload, nodeid, FLUX_MSGFLAG_STREAMING if streaming else 0)
        msg.matchtag = matchtag
        self._broker.route_request(msg)

    def request_callback(self, topic: str, payload: Any, callback: Callable[[Message], Any], *,
                         streaming: bool = False, nodeid: int = FLUX_NODEID_ANY) -> int:
        """Send a request; CALLBACK(response) runs for its response(s). Returns the matchtag.

        For hot paths with thousands of requests in flight, where an awaited
        ``rpc`` would cost an asyncio task each.
        """
        tag = self.new_matchtag()
        self.on_response(tag, callback)
        self.send_tagged(topic, payload, tag, streaming=streaming, nodeid=nodeid)
        return tag

    def rpc_message(self, topic: str, payload: Any = None, nodeid: int = FLUX_NODEID_ANY,
                    timeout: float | None = None) -> Awaitable[Message]:
        """Send a request; await its response message (an error raises FluxError)."""
        return self._rpc(topic, payload, nodeid, timeout, False)

    def rpc(self, topic: str, payload: Any = None, nodeid: int = FLUX_NODEID_ANY,
            timeout: float | None = None) -> Awaitable[Any]:
        """Send a request; await its decoded payload (None if it has none)."""
        return self._rpc(topic, payload, nodeid, timeout, True)

    async def _rpc(self, topic: str, payload: Any, nodeid: int, timeout: float | None,
                   want_payload: bool) -> Any:
        tag = next(self._tags) & 0xFFFFFFFF or next(self._tags)
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[tag] = fut
        msg = self._request(topic, payload, nodeid, 0)
        msg.matchtag = tag
        self._broker.route_request(msg)
        try:
            if timeout is None:
                resp = await fut
            else:
                resp = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise FluxError(errno.ETIMEDOUT, f"{topic}: no response after {timeout}s") from None
        finally:
            self._pending.pop(tag, None)
        if resp.errnum:
            raise FluxError(resp.errnum, resp.errstr or os.strerror(resp.errnum))
        return resp.payload if want_payload else resp

    async def rpc_stream(self, topic: str, payload: Any = None,
                         nodeid: int = FLUX_NODEID_ANY) -> AsyncIterator[Any]:
        """Send a streaming request; yield each response payload until ENODATA.

        Leaving the loop early sends ``<service>.cancel`` for the stream when
        the generator is closed: use ``contextlib.aclosing`` to do it at once.
        """
        tag = next(self._tags) & 0xFFFFFFFF or next(self._tags)
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._pending[tag] = queue
        msg = self._request(topic, payload, nodeid, FLUX_MSGFLAG_STREAMING)
        msg.matchtag = tag
        self._broker.route_request(msg)
        finished = False
        try:
            while True:
                resp = await queue.get()
                if resp.errnum:
                    finished = True
                    if resp.errnum == errno.ENODATA:
                        return
                    raise FluxError(resp.errnum, resp.errstr or os.strerror(resp.errnum))
                yield resp.payload
        finally:
            self._pending.pop(tag, None)
            if not finished:
                service = topic.split(".", 1)[0]
                self.send_request(f"{service}.cancel", {"matchtag": tag}, nodeid)

    # -- events --------------------------------------------------------------
    def event_subscribe(self, prefix: str, callback: Callable[[Message], Any],
                        allow_guest: bool = False) -> None:
        """Call CALLBACK(msg) for each event whose topic starts with PREFIX.

        Events published by a guest are ignored unless ALLOW_GUEST: as a
        request's handler checks its sender, an event must not make a
        module do owner-only work (a guest's ``kvs.dropcache``).
        """
        self._subs.append((prefix, callback, allow_guest))
        self._broker.events.subscribe(self, prefix)

    def event_unsubscribe(self, prefix: str, callback: Callable[[Message], Any] | None = None) -> None:
        for i, (p, cb, _guest) in enumerate(self._subs):
            if p == prefix and (callback is None or cb == callback):
                del self._subs[i]
                self._broker.events.unsubscribe(self, prefix)
                return
        raise FluxError(errno.ENOENT, f"module {self.name} is not subscribed to '{prefix}'")

    async def event_publish(self, topic: str, payload: Any = None, *, private: bool = False) -> int:
        """Publish an event instance-wide; returns its sequence number."""
        from flux.core.handle import event_pub_payload

        flags = FLUX_MSGFLAG_PRIVATE if private else 0
        resp = await self.rpc("event.pub", event_pub_payload(topic, payload, flags), nodeid=0)
        return int(resp["seq"])

    # -- endpoint side (called by the broker) ----------------------------------
    def deliver_event(self, msg: Message) -> None:
        self.rx[4] += 1
        topic = msg.topic
        owner = bool(msg.rolemask & FLUX_ROLE_OWNER)
        for prefix, callback, allow_guest in list(self._subs):
            if topic.startswith(prefix):
                if not owner and not allow_guest:
                    self.log.debug("event from a guest ignored", topic=topic,
                                   userid=msg.userid)
                    continue
                try:
                    result = callback(msg)
                except Exception:  # noqa: BLE001
                    self.log.exception("event callback failed", topic=topic)
                    continue
                if type(result) in _TASK_TYPES:
                    self.create_task(result)

    def deliver(self, msg: Message) -> None:
        self.last_active = time.monotonic()
        self.rx[msg.type] = self.rx.get(msg.type, 0) + 1
        if msg.type == FLUX_MSGTYPE_RESPONSE:
            waiter = self._pending.get(msg.matchtag)
            if waiter is None:
                return
            if type(waiter) is _Callback:
                if not waiter.persistent and (msg.errnum or not msg.flags & FLUX_MSGFLAG_STREAMING):
                    self._pending.pop(msg.matchtag, None)
                waiter(msg)
            elif isinstance(waiter, asyncio.Queue):
                waiter.put_nowait(msg)
                if msg.errnum or not msg.flags & FLUX_MSGFLAG_STREAMING:
                    self._pending.pop(msg.matchtag, None)
            else:
                self._pending.pop(msg.matchtag, None)
                if not waiter.done():
                    waiter.set_result(msg)
            return
        if msg.type != FLUX_MSGTYPE_REQUEST:
            return
        entry = self._handlers.get(msg.topic)
        if entry is None:
            self._builtin(msg)
            return
        fn, spec = entry
        if not spec.allow_guest and not msg.rolemask & FLUX_ROLE_OWNER:
            self.respond_error(msg, errno.EPERM, "Request requires owner credentials")
            return
        if spec.streaming and not msg.flags & FLUX_MSGFLAG_STREAMING:
            self.respond_error(msg, errno.EPROTO, f"{msg.topic} requires the streaming flag")
            return
        try:
            result = fn(msg)
        except Exception as exc:  # noqa: BLE001 - mapped to an error response
            self._handler_error(msg, exc)
            return
        if result is None:
            return
        if type(result) in _TASK_TYPES:
            self.create_task(self._await_handler(msg, result))
        else:
            self.respond(msg, result)

    async def _await_handler(self, msg: Message, coro: Awaitable[Any]) -> None:
        try:
            result = await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            self._handler_error(msg, exc)
            return
        if result is not None:
            self.respond(msg, result)

    def _handler_error(self, msg: Message, exc: Exception) -> None:
        if isinstance(exc, OSError) and exc.errno:
            self.respond_error(msg, exc.errno, exc.strerror or str(exc))
        elif isinstance(exc, KeyError):
            self.respond_error(msg, errno.EPROTO, f"{msg.topic}: missing key {exc}")
        elif isinstance(exc, (ValueError, TypeError)):
            self.respond_error(msg, errno.EPROTO, f"{msg.topic}: {exc}")
        else:
            self.log.exception("request handler failed", topic=msg.topic)
            self.respond_error(msg, errno.EIO, f"{msg.topic}: internal error in module "
                                               f"{self.name}: {exc}")

    def _builtin(self, msg: Message) -> None:
        _svc, _dot, method = msg.topic.partition(".")
        if method == "ping":
            self.respond(msg, ping_response(msg, self._broker.rank, self.uuid))
        elif method in _INTROSPECTION:
            self._introspect(msg, method)
        elif self.module is not None and self.module.forward_to_leader:
            # the same message, sent on as the broker sends a request for a service it
            # lacks: its route and credentials are the sender's, its response skips us
            msg.nodeid = 0
            msg.flags &= ~FLUX_MSGFLAG_UPSTREAM
            self._broker.route_request(msg)
        elif method == "disconnect":
            self.sender_gone(msg.sender)
        elif method == "cancel":
            try:
                tag = int(msg.payload["matchtag"])
            except (TypeError, KeyError, ValueError, OSError):
                self.respond_error(msg, errno.EPROTO, f"{msg.topic}: expected {{\"matchtag\": N}}")
                return
            stream = self._streams.get((msg.sender, tag))
            if stream is not None:
                stream._cancel(respond=True)
        else:
            self.respond_error(msg, errno.ENOSYS, f"Method not implemented: {msg.topic}")

    def stats(self) -> dict[str, Any]:
        """Message counters by direction and type, as ``flux module stats`` shows them."""
        names = {1: "request", 2: "response", 4: "event", 8: "control"}
        return {"tx": {names[t]: n for t, n in self.tx.items()},
                "rx": {names[t]: n for t, n in self.rx.items() if t in names}}

    def _introspect(self, msg: Message, method: str) -> None:
        """``stats-get``, ``stats-clear``, ``rusage``, ``debug``: every module has them."""
        if method != "stats-get" and not msg.rolemask & FLUX_ROLE_OWNER:
            self.respond_error(msg, errno.EPERM, "Request requires owner credentials")
            return
        if method == "stats-get":
            self.respond(msg, self.stats())
        elif method == "stats-clear":
            for table in (self.rx, self.tx):
                for key in table:
                    table[key] = 0
            self.respond(msg, {})
        elif method == "rusage":
            # modules share the broker's thread: the broker process's usage
            import resource

            self.respond(msg, rusage_json(resource.getrusage(resource.RUSAGE_SELF)))
        else:
            payload = msg.payload if isinstance(msg.payload, dict) else {}
            op, flags = payload.get("op", "get"), payload.get("flags", 0)
            if op not in ("get", "set", "clr", "setbit", "clrbit") or type(flags) is not int \
                    or flags < 0:
                self.respond_error(msg, errno.EPROTO, f"{msg.topic}: expected op get, set, "
                                                      "clr, setbit or clrbit and integer flags")
                return
            if op == "set":
                self.debug_flags = flags
            elif op == "clr":
                self.debug_flags = 0
            elif op == "setbit":
                self.debug_flags |= flags
            elif op == "clrbit":
                self.debug_flags &= ~flags
            self.respond(msg, {"flags": self.debug_flags})

    def sender_gone(self, sender: str | None) -> None:
        """Cancel SENDER's streams (no response: it is gone), then tell the module."""
        if sender is None:
            return
        for stream in self.streams_of(sender):
            stream._cancel(respond=False)
        if self.module is not None:
            try:
                self.module.disconnect(sender)
            except Exception:  # noqa: BLE001
                self.log.exception("disconnect callback failed")

    def add_handler(self, topic: str, fn: Callable[[Message], Any], *,
                    allow_guest: bool = False) -> None:
        """Answer requests to TOPIC (one of this module's services) with FN, as a
        ``request_handler`` would: a jobtap plugin's ``service_register``."""
        service = topic.split(".", 1)[0]
        if service not in self.services:
            raise ValueError(f"{topic}: not a topic of this module's services")
        if topic in self._handlers:
            raise FileExistsError(errno.EEXIST, f"{topic}: already has a handler")
        self._handlers[topic] = (fn, HandlerSpec(topic, allow_guest=allow_guest))

    def remove_handler(self, topic: str) -> None:
        self._handlers.pop(topic, None)

    def _bind(self, module: Module) -> None:
        self.module = module
        for topic, (attr, spec) in type(module)._handler_specs.items():
            self._handlers[topic] = (getattr(module, attr), spec)
        self.services = type(module).service_names()

    async def _shutdown(self) -> None:
        """Cancel tasks and fail pending RPCs after the module has stopped."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for waiter in list(self._pending.values()):
            if isinstance(waiter, asyncio.Future) and not waiter.done():
                waiter.set_exception(FluxError(errno.ECANCELED, f"module {self.name} unloaded"))
        self._pending.clear()
        for stream in list(self._streams.values()):
            stream.error(errno.ENOSYS, f"module {self.name} unloaded")


_INTROSPECTION = frozenset(("stats-get", "stats-clear", "rusage", "debug"))


def rusage_json(ru: Any) -> dict[str, Any]:
    """A getrusage(2) result as JSON (times in seconds)."""
    out: dict[str, Any] = {"utime": ru.ru_utime, "stime": ru.ru_stime}
    for name in ("maxrss", "ixrss", "idrss", "isrss", "minflt", "majflt", "nswap", "inblock",
                 "oublock", "msgsnd", "msgrcv", "nsignals", "nvcsw", "nivcsw"):
        out[name] = getattr(ru, "ru_" + name)
    return out


def ping_response(msg: Message, rank: int, own_id: str | None) -> dict[str, Any]:
    """Payload of a ``<service>.ping`` response: the request echoed, plus the route.

    The route lists each hop (uuids shortened to 5 characters, ranks as
    numbers), then this broker's rank, then the service's own id.
    """
    body = msg.payload
    out: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    hops = [h if h.isdigit() else h[:5].upper() for h in msg.route]
    hops.append(str(rank))
    if own_id is not None:
        hops.append(own_id[:5].upper())
    out["route"] = "!".join(hops)
    out["userid"] = msg.userid
    out["rolemask"] = msg.rolemask
    return out


def resolve_target(target: str) -> type[Module]:
    """Import ``package.module:Class`` and check that it is a Module subclass."""
    modname, sep, clsname = target.partition(":")
    if not sep or not modname or not clsname:
        raise FluxError(errno.EINVAL, f"module target '{target}' is not 'package.module:Class'")
    import importlib

    try:
        mod = importlib.import_module(modname)
    except ImportError as exc:
        raise FluxError(errno.ENOENT, f"cannot import {modname}: {exc}") from None
    cls = getattr(mod, clsname, None)
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise FluxError(errno.EINVAL, f"{target} is not a broker Module class")
    return cls


def module_digest(cls: type[Module]) -> tuple[int, str]:
    """(size, sha1 hex) of the source file defining CLS, for ``flux module list``."""
    try:
        path = inspect.getsourcefile(cls) or ""
        with open(path, "rb") as fh:
            data = fh.read()
    except (OSError, TypeError):
        return 0, ""
    return len(data), hashlib.sha1(data).hexdigest()


__all__ = ["Module", "ModuleContext", "Stream", "HandlerSpec", "request_handler",
           "ping_response", "resolve_target", "module_digest"]
