"""flux.Flux: a client connection to the local broker.

The handle speaks the project's message format (specs/messages.md) over
the broker's AF_UNIX socket.  Sends are immediate; a blocking ``get()``
reads the socket directly until its response arrives (queueing whatever
else comes in), so a synchronous RPC costs one write and one read.
Everything that is not waited for is dispatched from ``reactor_run()``:
``then()`` continuations, message watchers, timers, fd and signal
watchers.

The API is Flux's (specs/python-api.md): topics may be ``str`` or
``bytes``; ``event_subscribe``, ``event_unsubscribe``, ``event_send``,
``send``, ``respond`` and ``respond_error`` return 0; ``attr_set`` and
``attr_remove`` take ``str`` only; ``conf_get`` caches the instance's
config on the handle.  Importing this module stays cheap (no JSON library,
no asyncio): the ``flux`` command's fast paths are built on it.
"""
from __future__ import annotations

import binascii
import errno
import os
import select
import _socket  # the C socket type: the socket module's import costs a command ~3 ms
import sys
import time
from _collections import deque  # collections itself costs a short command ~2 ms
from _thread import _local as _thread_local  # threading.local, without importing threading

# the reactor and watchers come with the handle (cheap modules), so that a process
# may import this module, drop privileges, and still run a reactor
import flux.core.reactor  # noqa: F401
import flux.core.watchers  # noqa: F401
from flux.constants import (
    FLUX_MATCHTAG_NONE,
    FLUX_ROLE_OWNER,
    FLUX_MSGFLAG_NORESPONSE,
    FLUX_MSGFLAG_PRIVATE,
    FLUX_MSGFLAG_STREAMING,
    FLUX_MSGTYPE_ANY,
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_NODEID_ANY,
    FLUX_O_NONBLOCK,
    FLUX_RPC_NORESPONSE,
)
from flux.errors import FluxError
from flux.message import Message, StreamDecoder, encode
from flux.rpc import RPC
from flux.uri import local_socket_path

if False:  # for type checkers only: importing typing costs a short command ~3 ms
    from typing import Any, Callable

    from flux.core.reactor import Reactor
    from flux.core.watchers import (
        CheckWatcher,
        FDWatcher,
        IdleWatcher,
        MessageWatcher,
        PrepareWatcher,
        SignalWatcher,
        TimerWatcher,
        Watcher,
    )

_RECV_SIZE = 1 << 18


def _topic(topic: Any, what: str) -> str:
    """TOPIC (str or bytes, as Flux's bindings take it) as a str; None is
    OSError(EINVAL), as Flux's bindings raise for it."""
    if isinstance(topic, str):
        return topic
    if topic is None:
        raise OSError(errno.EINVAL, "Topic must not be None/NULL")
    if isinstance(topic, (bytes, bytearray)):
        try:
            return bytes(topic).decode()
        except UnicodeDecodeError:
            raise ValueError(f"{what}: topic {bytes(topic)[:32]!r} is not UTF-8") from None
    raise TypeError(f"{what}: topic must be str or bytes, not {type(topic).__name__}")


def event_pub_payload(topic: str | bytes, payload: Any = None, flags: int = 0) -> dict[str, Any]:
    """The ``event.pub`` request payload for publishing TOPIC with PAYLOAD.

    A str is sent as-is, bytes that are not UTF-8 as base64, anything else
    as JSON (the event's payload then decodes back to that object).
    """
    topic = _topic(topic, "event")
    if not topic:
        raise TypeError(f"event topic must be a non-empty str, got {topic!r}")
    body: dict[str, Any] = {"topic": topic, "flags": flags}
    if payload is None:
        return body
    if isinstance(payload, (bytes, bytearray)):
        try:
            body["payload"] = bytes(payload).decode()
        except UnicodeDecodeError:
            body["payload"] = binascii.b2a_base64(bytes(payload), newline=False).decode()
            body["encoding"] = "base64"
    elif isinstance(payload, str):
        body["payload"] = payload
    else:
        body["payload"] = payload
        body["encoding"] = "json"
    return body


class _InReactor:
    """``with h.in_reactor():`` marks the block as running inside the reactor."""

    __slots__ = ()

    def __enter__(self) -> None:
        Flux.reactor_enter()

    def __exit__(self, *exc: Any) -> None:
        Flux.reactor_exit()


_IN_REACTOR = _InReactor()


class Flux:
    """A connection to a Flux instance (``FLUX_URI`` unless URL is given).

    URL is a ``local://`` URI, or anything flux.uri.native_uri resolves to
    one: ``ssh://`` of this host, an ancestor path (``..``, ``/``) as
    flux_open(3) takes, or a job id or job id path (``ƒA/ƒB``) of the
    enclosing instance.
    """

    tls = _thread_local()

    def __init__(self, url: str | None = None, flags: int = 0, handle: Any = None) -> None:
        if handle is not None:
            raise TypeError("Flux(handle=...) is not supported: pass a URI")
        self.flags = flags
        self._sock: _socket.socket | None = None
        # made on first use (get_reactor()): a synchronous RPC needs none
        self._reactor: Reactor | None = None
        self._decoder = StreamDecoder()
        self._rpcs: dict[int, Any] = {}
        self._free_tags: list[int] = []
        self._next_tag = 1
        self._backlog: deque[Message] = deque()
        self._watchers: list[MessageWatcher] = []
        self._dispatch_posted = False
        self._attr_cache: dict[str, str] = {}
        self._closed_reason: str | None = None
        #: the handle's KVS transaction (flux.kvs.put() without _kvstxn)
        self.aux_txn: Any = None
        self._active_watchers: set[Watcher] = set()
        self._cached_config: Any = None
        #: called with the reason when the broker connection is lost (the job shell uses it)
        self.lost_hooks: list[Callable[[str], None]] = []
        if url is None:
            url = os.environ.get("FLUX_URI")
            if not url:
                raise FluxError(errno.EINVAL, "FLUX_URI is not set: not inside a Flux instance "
                                              "(start one with 'flux start' or pass a URI)")
            if not url.startswith("local://") and "://" not in url:
                # resolving a job id needs the enclosing instance, which is $FLUX_URI
                raise FluxError(errno.EINVAL, f"FLUX_URI={url} is not a Flux URI (resolve a "
                                              "job id with 'flux uri' or 'flux proxy')")
        if not url.startswith("local://"):
            # ssh:// of this host, an ancestor path (.., /), a job id (path), pid:...
            from flux.uri import native_uri

            url = native_uri(url)
        self.url = url
        path = local_socket_path(url)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(path)
            status = sock.recv(1)
        except OSError as exc:
            sock.close()
            raise FluxError(exc.errno or errno.ECONNREFUSED,
                            f"cannot connect to {url}: {exc.strerror or exc}") from None
        if not status:
            sock.close()
            raise FluxError(errno.ECONNRESET, f"{url}: broker closed the connection")
        if status[0] != 0:
            sock.close()
            code = status[0]
            raise FluxError(code, f"{url}: connection refused by broker: {os.strerror(code)}")
        self._sock = sock
        self._fd = sock.fileno()

    # -- plumbing --------------------------------------------------------
    def get_reactor(self) -> Reactor:
        reactor = self._reactor
        if reactor is None:
            from flux.core.reactor import Reactor

            reactor = self._reactor = Reactor()
            if self._sock is not None:
                reactor.set_internal_reader(self._fd, self._on_readable)
        return reactor

    def _check_open(self) -> _socket.socket:
        sock = self._sock
        if sock is None:
            raise FluxError(errno.ENOTCONN, self._closed_reason or "Flux handle is closed")
        return sock

    def _sendbytes(self, data: bytes) -> None:
        sock = self._check_open()
        try:
            sock.sendall(data)
        except OSError as exc:
            self._lost(f"lost connection to broker: {exc.strerror or exc}")
            raise FluxError(errno.ECONNRESET, self._closed_reason) from None

    def _alloc_tag(self) -> int:
        if self._free_tags:
            return self._free_tags.pop()
        tag = self._next_tag
        self._next_tag += 1
        return tag

    def _send_request(self, rpc: Any, msg: Message, expect_response: bool) -> None:
        if expect_response:
            tag = self._alloc_tag()
            msg.matchtag = tag
            rpc.matchtag = tag
            self._rpcs[tag] = rpc
        try:
            self._sendbytes(encode(msg))
        except BaseException:
            if expect_response:
                self._rpcs.pop(msg.matchtag, None)
                self._free_tags.append(msg.matchtag)
            raise

    def _read(self, timeout: float | None) -> bool:
        """Read once (waiting up to TIMEOUT; None = forever); False on timeout."""
        sock = self._check_open()
        if timeout is not None:
            ready, _w, _x = select.select([sock], [], [], max(0.0, timeout))
            if not ready:
                return False
        try:
            data = sock.recv(_RECV_SIZE)
        except InterruptedError:
            return True
        except OSError as exc:
            self._lost(f"lost connection to broker: {exc.strerror or exc}")
            return True
        if not data:
            self._lost("broker closed the connection")
            return True
        try:
            msgs = self._decoder.feed(data)
        except OSError as exc:
            self._lost(f"bad message from broker: {exc}")
            return True
        for msg in msgs:
            self._deliver(msg)
        return True

    def _deliver(self, msg: Message) -> None:
        if msg.type == FLUX_MSGTYPE_RESPONSE:
            tag = msg.matchtag
            rpc = self._rpcs.get(tag)
            if rpc is not None:
                if msg.errnum or not msg.flags & FLUX_MSGFLAG_STREAMING:
                    del self._rpcs[tag]
                    self._free_tags.append(tag)
                rpc._deliver(msg)
                return
        self._backlog.append(msg)
        if self._watchers and not self._dispatch_posted:
            self._dispatch_posted = True
            self.get_reactor().call_soon(self._dispatch)

    def _lost(self, reason: str) -> None:
        if self._sock is None:
            return
        self._closed_reason = reason
        if self._reactor is not None:
            self._reactor.set_internal_reader(self._fd, None)
        self._sock.close()
        self._sock = None
        rpcs = list(self._rpcs.values())
        self._rpcs.clear()
        for rpc in rpcs:
            rpc.fulfill_error(errno.ECONNRESET, reason)
        for hook in list(self.lost_hooks):
            self.get_reactor().call_soon(hook, reason)

    def _on_readable(self, _revents: int) -> None:
        # Poll again rather than trust the reactor: a callback earlier in the
        # same turn may have read the socket dry with a blocking get().
        if self._sock is not None:
            self._read(0.0)

    def _wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Read messages until PREDICATE() holds or TIMEOUT passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not predicate():
            if self._sock is None:
                if predicate():
                    break
                raise FluxError(errno.ECONNRESET, self._closed_reason or "Flux handle is closed")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._read(remaining)
        return True

    # -- message watchers / dispatch ---------------------------------------
    def _add_msg_watcher(self, watcher: MessageWatcher) -> None:
        self._watchers.append(watcher)
        if self._backlog and not self._dispatch_posted:
            self._dispatch_posted = True
            self.get_reactor().call_soon(self._dispatch)

    def _remove_msg_watcher(self, watcher: MessageWatcher) -> None:
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    def _dispatch(self) -> None:
        self._dispatch_posted = False
        if not self._watchers:
            return
        keep: deque[Message] = deque()
        backlog = self._backlog
        while backlog:
            msg = backlog.popleft()
            if not self._dispatch_one(msg):
                keep.append(msg)
            if self.get_reactor()._stopped:
                break
        keep.extend(backlog)
        self._backlog = keep

    def _dispatch_one(self, msg: Message) -> bool:
        matching = [w for w in self._watchers if w.matches(msg)]
        if msg.type == FLUX_MSGTYPE_REQUEST:
            if not matching:
                self.respond_error(msg, errno.ENOSYS,
                                   f"Service is not available: {msg.topic}")
                return True
            # RFC-style dispatch: an exact topic match wins, newest first.
            exact = [w for w in matching if w.exact]
            chosen = (exact or matching)[-1]
            if not msg.rolemask & chosen.rolemask:
                # as libflux's message handlers answer a sender without the role
                self.respond_error(msg, errno.EPERM,
                                   "Request requires owner credentials"
                                   if chosen.rolemask in (0, FLUX_ROLE_OWNER)
                                   else "Request rejected due to insufficient privilege")
                return True
            chosen._fire(msg)
            return True
        if not matching:
            return False
        for watcher in matching:
            if msg.rolemask & watcher.rolemask:
                watcher._fire(msg)
        return True

    # -- public messaging API ----------------------------------------------
    def send(self, message: Message, flags: int = 0) -> int:
        """Send a pre-built message (an event is published through the broker); 0."""
        if message.type == FLUX_MSGTYPE_EVENT:
            body = event_pub_payload(message.topic, message.raw, message.flags)
            self.rpc("event.pub", body, flags=FLUX_RPC_NORESPONSE)
            return 0
        self._sendbytes(encode(message))
        return 0

    def recv(self, type_mask: int = FLUX_MSGTYPE_ANY, match_tag: int = FLUX_MATCHTAG_NONE,
             topic_glob: str | bytes | None = None, flags: int = 0) -> Message | None:
        """Receive the next message matching the arguments (None if NONBLOCK and none)."""
        from flux.core.watchers import compile_topic_glob

        match = compile_topic_glob(topic_glob)

        def find() -> Message | None:
            for i, msg in enumerate(self._backlog):
                if not msg.type & type_mask:
                    continue
                if match_tag != FLUX_MATCHTAG_NONE and msg.matchtag != match_tag:
                    continue
                if match is not None and not match(msg.topic):
                    continue
                del self._backlog[i]
                return msg
            return None

        found = find()
        nonblock = bool((flags | self.flags) & FLUX_O_NONBLOCK)
        while found is None:
            if self._sock is None:
                if nonblock:
                    return None
                raise FluxError(errno.ECONNRESET, self._closed_reason or "Flux handle is closed")
            # Unmatched messages stay queued for later recv() calls or watchers.
            if not self._read(0.0 if nonblock else None):
                return None
            found = find()
        return found

    def rpc(self, topic: str | bytes, payload: Any = None, nodeid: int = FLUX_NODEID_ANY,
            flags: int = 0) -> Any:
        """Send a request; returns a flux.rpc.RPC future for its response(s)."""
        return RPC(self, topic, payload, nodeid, flags)

    def barrier(self, name: str, nprocs: int) -> Any:
        """Enter barrier NAME of NPROCS clients; a future fulfilled when all have."""
        return self.rpc("barrier.enter", {"name": name, "nprocs": nprocs}, nodeid=0)

    def respond(self, message: Message, payload: Any = None) -> int:
        """Respond to request MESSAGE with PAYLOAD (None, str, bytes or JSON-able); 0."""
        if message.flags & FLUX_MSGFLAG_NORESPONSE:
            return 0
        resp = Message(FLUX_MSGTYPE_RESPONSE, message.topic, payload,
                       flags=message.flags & FLUX_MSGFLAG_STREAMING,
                       matchtag=message.matchtag, route=list(message.route))
        self._sendbytes(encode(resp))
        return 0

    def respond_error(self, message: Message, errnum: int, errstr: str | None = None) -> int:
        """Respond to request MESSAGE with error ERRNUM (and text ERRSTR); 0."""
        if message.flags & FLUX_MSGFLAG_NORESPONSE:
            return 0
        resp = Message(FLUX_MSGTYPE_RESPONSE, message.topic, errstr,
                       flags=message.flags & FLUX_MSGFLAG_STREAMING,
                       matchtag=message.matchtag, route=list(message.route), errnum=errnum)
        self._sendbytes(encode(resp))
        return 0

    # -- services ----------------------------------------------------------
    def service_register(self, name: str) -> Any:
        """Ask the broker to route requests for service NAME here; a Future (get() is None).

        Requests this handle sends to NAME itself come back to it too.
        """
        return self.rpc("service.add", {"service": name})

    def service_unregister(self, name: str) -> Any:
        return self.rpc("service.remove", {"service": name})

    # -- events ------------------------------------------------------------
    @staticmethod
    def _sub_topic(topic: Any, what: str) -> str:
        if topic is None:
            raise EnvironmentError(errno.EINVAL, f"{what}: topic is None")
        return _topic(topic, what)

    def event_subscribe(self, topic: str | bytes) -> int:
        """Receive events whose topic starts with TOPIC ("" = all); 0."""
        self.rpc("event.subscribe", {"topic": self._sub_topic(topic, "event_subscribe")}).get()
        return 0

    def event_unsubscribe(self, topic: str | bytes) -> int:
        """Stop receiving TOPIC; 0.  OSError ENOENT if it was not subscribed."""
        self.rpc("event.unsubscribe",
                 {"topic": self._sub_topic(topic, "event_unsubscribe")}).get()
        return 0

    def event_create(self, topic: str | bytes, payload: Any = None) -> Message:
        """An event message (str payload as-is, other types as JSON)."""
        return Message.from_event_encode(topic, payload)

    def event_publish(self, topic: str | bytes, payload: Any = None, flags: int = 0) -> Any:
        """Publish an event; the returned future's get() gives ``{"seq": N}``."""
        return self.rpc("event.pub", event_pub_payload(topic, payload, flags))

    def event_send(self, topic: str | bytes, payload: Any = None, private: bool = False) -> int:
        """Publish an event without waiting for its sequence number; 0."""
        flags = FLUX_MSGFLAG_PRIVATE if private else 0
        self.rpc("event.pub", event_pub_payload(topic, payload, flags), flags=FLUX_RPC_NORESPONSE)
        return 0

    def event_recv(self, topic: str | bytes | None = None) -> Message | None:
        """Block for the next event (whose topic matches glob TOPIC, if given)."""
        return self.recv(type_mask=FLUX_MSGTYPE_EVENT, topic_glob=topic)

    # -- attributes and configuration --------------------------------------
    def attr_get(self, attr_name: str) -> str:
        """Value of broker attribute ATTR_NAME (OSError ENOENT if unknown)."""
        cached = self._attr_cache.get(attr_name)
        if cached is not None:
            return cached
        resp = self.rpc("attr.get", {"name": attr_name}).get()
        value = resp["value"]
        if resp.get("immutable"):
            self._attr_cache[attr_name] = value
        return value

    def attr_set(self, attr_name: str, value: str) -> None:
        """Set broker attribute ATTR_NAME to VALUE (both str: ValueError otherwise).

        OSError EPERM for an immutable attribute; ``attr_remove`` removes one.
        """
        if not isinstance(attr_name, str):
            raise ValueError(f"attribute name must be a str, not {type(attr_name).__name__}")
        if not isinstance(value, str):
            raise ValueError(f"attribute value must be a str, not {type(value).__name__}")
        self.rpc("attr.set", {"name": attr_name, "value": value}).get()
        self._attr_cache.pop(attr_name, None)

    def attr_remove(self, attr_name: str) -> None:
        """Remove broker attribute ATTR_NAME (OSError EPERM if it is immutable)."""
        if not isinstance(attr_name, str):
            raise ValueError(f"attribute name must be a str, not {type(attr_name).__name__}")
        self.rpc("attr.rm", {"name": attr_name}).get()
        self._attr_cache.pop(attr_name, None)

    def get_rank(self) -> int:
        return int(self.attr_get("rank"))

    def get_size(self) -> int:
        return int(self.attr_get("size"))

    def conf_get(self, key: str | None = None, default: Any = None, update: bool = False) -> Any:
        """The instance's config (``key=None``) or the value at dotted KEY, else DEFAULT.

        Fetched with ``config.get`` on first use and cached on the handle;
        ``update=True`` fetches it again.
        """
        if update or self._cached_config is None:
            self._cached_config = self.rpc("config.get").get()
        if key is None:
            return self._cached_config
        node: Any = self._cached_config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    # -- logging -----------------------------------------------------------
    def log(self, level: int, fstring: str | bytes, appname: str | None = None) -> None:
        """Append FSTRING (str or bytes) at syslog LEVEL to the broker log ring (no formatting)."""
        if appname is None:
            appname = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        if isinstance(fstring, (bytes, bytearray)):
            # Flux's bindings pass bytes to C as the text itself, not its repr
            fstring = bytes(fstring).decode("utf-8", errors="replace")
        body = {"level": int(level), "appname": appname, "message": str(fstring),
                "timestamp": time.time(), "pid": os.getpid()}
        self.rpc("log.append", body, flags=FLUX_RPC_NORESPONSE)

    # -- watchers ----------------------------------------------------------
    def msg_watcher_create(self, callback: Callable[..., Any], type_mask: int = FLUX_MSGTYPE_ANY,
                           topic_glob: str | bytes | None = "*", args: Any = None,
                           match_tag: int = FLUX_MATCHTAG_NONE,
                           rolemask: int | None = None) -> MessageWatcher:
        """A watcher for matching messages.  ROLEMASK None admits the instance owner only
        (others' requests get EPERM); FLUX_ROLE_ALL admits guests too."""
        from flux.core.watchers import MessageWatcher

        return MessageWatcher(self, type_mask, callback, topic_glob, match_tag, args,
                              rolemask=rolemask)

    def timer_watcher_create(self, after: float, callback: Callable[..., Any],
                             repeat: float = 0.0, args: Any = None) -> TimerWatcher:
        from flux.core.watchers import TimerWatcher

        return TimerWatcher(self, after, callback, repeat=repeat, args=args)

    def fd_watcher_create(self, fd_int: int, callback: Callable[..., Any], events: int | None = None,
                          args: Any = None) -> FDWatcher:
        """A watcher for FD_INT; EVENTS defaults to FLUX_POLLIN."""
        from flux.core.watchers import FDWatcher

        return FDWatcher(self, fd_int, events or 0, callback, args)

    def signal_watcher_create(self, signum: int, callback: Callable[..., Any],
                              args: Any = None) -> SignalWatcher:
        from flux.core.watchers import SignalWatcher

        return SignalWatcher(self, signum, callback, args)

    def prepare_watcher_create(self, callback: Callable[..., Any],
                               args: Any = None) -> PrepareWatcher:
        from flux.core.watchers import PrepareWatcher

        return PrepareWatcher(self, callback, args)

    def check_watcher_create(self, callback: Callable[..., Any], args: Any = None) -> CheckWatcher:
        from flux.core.watchers import CheckWatcher

        return CheckWatcher(self, callback, args)

    def idle_watcher_create(self, callback: Callable[..., Any] | None = None,
                            args: Any = None) -> IdleWatcher:
        from flux.core.watchers import IdleWatcher

        return IdleWatcher(self, callback, args)

    def add_watcher(self, watcher: Watcher) -> Watcher:
        """Hold a reference to WATCHER so it lives as long as the handle."""
        self._active_watchers.add(watcher)
        return watcher

    def del_watcher(self, watcher: Watcher) -> None:
        """Drop the reference taken by ``add_watcher``."""
        self._active_watchers.discard(watcher)

    # -- reactor -----------------------------------------------------------
    def reactor_run(self, reactor: Reactor | None = None, flags: int = 0) -> int:
        """Run the reactor until no watcher is active or reactor_stop() is called."""
        r = reactor or self.get_reactor()
        if self._backlog and self._watchers and not self._dispatch_posted:
            self._dispatch_posted = True
            r.call_soon(self._dispatch)
        depth = getattr(Flux.tls, "depth", 0)
        Flux.tls.depth = depth + 1
        try:
            rc = r.run(flags)
        finally:
            Flux.tls.depth = depth
        Flux.raise_if_exception()
        return rc

    def reactor_stop(self, reactor: Reactor | None = None) -> None:
        (reactor or self.get_reactor()).stop()

    def reactor_stop_error(self, reactor: Reactor | None = None) -> None:
        (reactor or self.get_reactor()).stop_error()

    def reactor_incref(self, reactor: Reactor | None = None) -> None:
        (reactor or self.get_reactor()).incref()

    def reactor_decref(self, reactor: Reactor | None = None) -> None:
        (reactor or self.get_reactor()).decref()

    @classmethod
    def reactor_enter(cls) -> None:
        cls.tls.depth = getattr(cls.tls, "depth", 0) + 1

    @classmethod
    def reactor_exit(cls) -> None:
        cls.tls.depth = max(0, getattr(cls.tls, "depth", 0) - 1)

    @classmethod
    def reactor_running(cls) -> bool:
        """Whether this thread is running a Flux reactor (or is inside ``in_reactor()``)."""
        return getattr(cls.tls, "depth", 0) > 0

    def in_reactor(self) -> _InReactor:
        """A context manager: the block counts as running inside the reactor."""
        return _IN_REACTOR

    @classmethod
    def set_exception(cls, exception: BaseException | None) -> BaseException | None:
        """Store an exception to be raised when reactor_run() returns."""
        previous = getattr(cls.tls, "exception", None)
        cls.tls.exception = exception
        return previous

    @classmethod
    def raise_if_exception(cls) -> None:
        exc = getattr(cls.tls, "exception", None)
        if exc is not None:
            cls.tls.exception = None
            raise exc from None

    # -- lifetime ----------------------------------------------------------
    def close(self) -> None:
        """Close the connection; outstanding RPCs fail with ECONNRESET."""
        if self._sock is not None:
            self._lost("Flux handle is closed")
        if self._reactor is not None:
            self._reactor.close()

    def __enter__(self) -> "Flux":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()


__all__ = ["Flux", "event_pub_payload"]
