"""The tree-based overlay network between the brokers of one instance (ZeroMQ).

Each broker with children binds a ROUTER socket; each broker but rank 0
connects a DEALER (identity = its rank) to its parent.  Both use CURVE;
a ZAP handler admits only the keys of the broker's own children.  Where
keys and endpoints come from is the bootstrap's business (``OverlayBoot``):
``DirBoot`` (``flux start --test-size``) shares one instance keypair
(``curve.json`` in the boot directory, mode 0600) and endpoint files;
broker.boot_pmi gives every broker its own keypair and swaps them with
the endpoints over PMI.  A message is one frame in the wire format of
specs/messages.md.

Routing hops: a request arriving from a peer gets that peer's rank pushed
on its route stack, so responses find their way back through the
endpoints registered here (one per child, one for the parent).  A message
that only crosses this broker (a request for a rank below another child or
elsewhere in the tree, a response whose next hop is a peer, an event for
the children) is forwarded as bytes: broker.wire rewrites its header and
route stack and leaves topic and payload alone, which keeps a hop's
Python work to a few microseconds; only messages for this broker's own
services and clients are decoded into a Message.
Requests sent to a peer are remembered until answered, so that if the
peer is lost they fail with EHOSTUNREACH instead of hanging.

Control messages (type 0x08) carry the join/leave protocol: HELLO
(child -> parent, ``{rank, hostname, version, pid}``), HELLO_ACK / NAK,
ONLINE (after the child's rc1), STATUS (``{ranks, status}`` passed up to
rank 0), SHUTDOWN (parent -> child), GOODBYE (child -> parent, before it
exits) and KEEPALIVE.  A child is *lost* when its connection drops
(socket monitor, confirmed by an undeliverable probe) or it is silent for
``tbon.child-timeout`` seconds; the broker then keeps running without it.
"""
from __future__ import annotations

import asyncio
import errno
import json
import os
import time
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

import zmq
import zmq.utils.monitor
import zmq.utils.z85

from broker import topology, wire
from flux import __version__
from flux.constants import (
    FLUX_MSGFLAG_NORESPONSE,
    FLUX_MSGFLAG_STREAMING,
    FLUX_MSGFLAG_UPSTREAM,
    FLUX_MSGTYPE_CONTROL,
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_NODEID_ANY,
    FLUX_ROLE_LOCAL,
)
from flux.errors import FluxError
from flux.message import Message, decode, encode
from flux.util.fsd import parse_fsd

if TYPE_CHECKING:
    from broker.broker import Broker

HELLO, HELLO_ACK, NAK, ONLINE, STATUS, SHUTDOWN, GOODBYE, KEEPALIVE, PROBE = range(1, 10)

KEYFILE = "curve.json"
#: the hostname of each rank of a test instance, in rank order (the ``hostlist`` attribute)
HOSTSFILE = "hosts.json"
#: after a child's connection drops, how long its GOODBYE may still take to show up
LOST_GRACE = 0.1
# plain ints: pyzmq's enum members cost an enum construction per use, on every message
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE = int(zmq.SNDMORE)
_F_TYPE, _F_FLAGS, _F_AUX1, _F_AUX2 = wire.F_TYPE, wire.F_FLAGS, wire.F_AUX1, wire.F_AUX2
_HDR = wire.HEADER_SIZE


def write_keys(boot_dir: str) -> None:
    """Generate the instance CURVE keypair into BOOT_DIR/curve.json (0600)."""
    public, secret = zmq.curve_keypair()
    path = os.path.join(boot_dir, KEYFILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"public": public.decode(), "secret": secret.decode()}, fh)


def write_hosts(boot_dir: str, hosts: list[str]) -> None:
    """Record the hostname of each rank (rank order) in BOOT_DIR for the brokers."""
    with open(os.path.join(boot_dir, HOSTSFILE), "w", encoding="utf-8") as fh:
        json.dump(hosts, fh)


def read_hosts(boot_dir: str) -> list[str] | None:
    """The hostnames write_hosts() recorded in BOOT_DIR (None if there are none)."""
    try:
        with open(os.path.join(boot_dir, HOSTSFILE), encoding="utf-8") as fh:
            hosts = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        return None
    return hosts


def read_keys(boot_dir: str) -> tuple[bytes, bytes]:
    path = os.path.join(boot_dir, KEYFILE)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data["public"].encode(), data["secret"].encode()
    except (OSError, ValueError, KeyError) as exc:
        raise FluxError(errno.EINVAL, f"cannot read overlay keys from {path}: {exc}") from None


def endpoint_file(boot_dir: str, rank: int) -> str:
    return os.path.join(boot_dir, f"tbon-{rank}.endpoint")


class OverlayBoot(Protocol):
    """How a broker learns its CURVE keys, its parent's endpoint and its children's keys."""

    public: bytes  # this broker's CURVE keypair (z85)
    secret: bytes
    refusal: str   # how the log names a peer the ZAP handler refuses

    async def publish(self, rank: int, endpoint: str | None, parent: int | None,
                      children: list[int]) -> None:
        """Make ENDPOINT (None: no children) known; learn what join() and ZAP need."""

    async def parent(self, rank: int, parent: int) -> tuple[str, bytes]:
        """The parent's endpoint and its CURVE public key (z85)."""

    def child_key_ok(self, key: bytes) -> bool:
        """Whether a peer presenting KEY (32 raw bytes) is one of our children."""


class DirBoot:
    """Bootstrap from a directory written by ``flux start``: one instance keypair."""

    refusal = "without the instance key"

    def __init__(self, boot_dir: str) -> None:
        self.boot_dir = boot_dir
        self.public, self.secret = read_keys(boot_dir)
        self._raw_public = zmq.utils.z85.decode(self.public)

    async def publish(self, rank: int, endpoint: str | None, parent: int | None,
                      children: list[int]) -> None:
        if endpoint is None:
            return
        tmp = endpoint_file(self.boot_dir, rank) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(endpoint)
        os.rename(tmp, endpoint_file(self.boot_dir, rank))

    async def parent(self, rank: int, parent: int) -> tuple[str, bytes]:
        path = endpoint_file(self.boot_dir, parent)
        deadline = time.monotonic() + 60.0
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise FluxError(errno.ETIMEDOUT, f"parent rank {parent} never published "
                                                 f"its endpoint ({path})")
            await asyncio.sleep(0.01)
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip(), self.public

    def child_key_ok(self, key: bytes) -> bool:
        return key == self._raw_public


def control(ctype: int, payload: Any = None, status: int = 0) -> Message:
    msg = Message(FLUX_MSGTYPE_CONTROL, "", payload)
    msg.control_type = ctype
    msg.control_status = status
    return msg


class PeerState(str, Enum):
    OFFLINE = "offline"   # never joined, or said goodbye
    JOINED = "joined"     # HELLO done, rc1 still running
    ONLINE = "online"
    LOST = "lost"


class Peer:
    """A child broker, as its parent sees it."""

    __slots__ = ("rank", "ident", "hop", "state", "since", "last_seen", "hostname", "error",
                 "torpid")

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.ident = str(rank).encode()
        self.hop = wire.hop_bytes(str(rank))   # pushed on the route of its requests
        self.state = PeerState.OFFLINE
        self.since = time.monotonic()
        self.last_seen = 0.0
        self.hostname = ""
        self.error = ""
        self.torpid = False    # connected but silent for tbon.torpid_max

    @property
    def status(self) -> str:
        """The flux-overlay(1) status word (a joined child is not online yet)."""
        return "offline" if self.state == PeerState.JOINED else self.state.value

    @property
    def connected(self) -> bool:
        return self.state in (PeerState.JOINED, PeerState.ONLINE)


class _PeerEndpoint:
    """Route hop standing for an overlay peer: responses to it go out on the socket."""

    def __init__(self, overlay: "Overlay", rank: int, parent: bool) -> None:
        self.uuid = str(rank)
        self._overlay = overlay
        self.rank = rank
        self.parent = parent
        overlay._peer_eps[self.uuid.encode()] = self

    def deliver(self, msg: Message) -> None:
        if self.parent:
            self._overlay.send_parent(msg)
        else:
            self._overlay.send_child(self.rank, msg)


class Overlay:
    def __init__(self, broker: "Broker") -> None:
        self.b = broker
        self.rank = broker.rank
        self.size = broker.size
        self.fanout = broker.fanout
        # set by broker.boot_pmi on the Broker; otherwise the --boot-dir files
        boot: OverlayBoot | None = getattr(broker, "overlay_boot", None)
        if boot is None:
            boot_dir = broker.opts.boot_dir
            if not boot_dir:
                raise FluxError(errno.EINVAL, "size > 1 needs --boot-dir or PMI (start brokers "
                                              "with flux start)")
            boot = DirBoot(boot_dir)
        self.boot = boot
        self.public, self.secret = boot.public, boot.secret
        self.zctx = zmq.Context()
        self.tree: topology.Tree = getattr(broker, "tree", None) or topology.Tree.kary(
            self.size, self.fanout)
        self.children: dict[int, Peer] = {c: Peer(c) for c in self.tree.children(self.rank)}
        self._by_ident: dict[bytes, Peer] = {p.ident: p for p in self.children.values()}
        self._peer_eps: dict[bytes, _PeerEndpoint] = {}   # by route hop, for _forward
        self.parent_rank = self.tree.parent(self.rank)
        self._parent_hop = b"" if self.parent_rank is None else \
            wire.hop_bytes(str(self.parent_rank))
        self.router: zmq.Socket | None = None
        self.dealer: zmq.Socket | None = None
        self._zap: zmq.Socket | None = None
        self._monitors: list[zmq.Socket] = []
        self._readers: list[int] = []
        # requests sent to a peer and not answered yet: (matchtag, route stack in wire
        # form) -> (topic bytes, "parent" or the child's rank, streaming)
        self._pending: dict[tuple[int, bytes], tuple[bytes, str, bool]] = {}
        self._confirming: set[int] = set()
        self._joined: asyncio.Future[None] | None = None
        self._children_evt = asyncio.Event()
        self._parent_ok = False
        self._drain_posted = False
        self._depth = 0                      # nested _drain_socket calls
        self._sent_on: set[Any] = set()      # sockets sent on while draining: to re-check
        self._event_frame: tuple[Message, bytes] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop = asyncio.get_running_loop()
        self.child_timeout = parse_fsd(broker.attrs.get_default("tbon.child-timeout", "30s")
                                       or "30s")
        self.keepalive = 2.0
        # [tbon] (and tbon.* attributes): TCP settings, the keepalive period
        from broker.bootstrap import parse_tbon

        tb = getattr(boot, "tbon", None)
        config = getattr(broker, "config", None)
        setattrs = dict(getattr(broker.opts, "setattrs", None) or [])
        if tb is None:
            try:
                tb = parse_tbon(config.get("tbon") if config is not None else None, setattrs)
            except ValueError as exc:
                raise FluxError(errno.EINVAL, str(exc)) from None
        self.tbon = tb
        # [bootstrap] enable_ipv6 (flux-config-bootstrap(5)): a configured bootstrap
        # (broker.boot_config.ConfigBoot) carries its parsed table as .boot
        self.ipv6 = bool(getattr(getattr(boot, "boot", None), "enable_ipv6", False))
        if broker.attrs.get_default("tbon.child-timeout") is None and config is not None \
                and isinstance(config.get("tbon.child_timeout"), (str, int, float)):
            self.child_timeout = float(tb["child_timeout"])
        if getattr(boot, "bind_uri", None) is not None or "tbon.torpid_min" in setattrs or (
                config is not None and isinstance(config.get("tbon.torpid_min"),
                                                  (str, int, float))):
            self.keepalive = max(float(tb["torpid_min"]), 0.01)
        # a child must speak several times per child-timeout (the same setting at both
        # ends of a configured instance), or a quiet child would be taken for hung
        self.keepalive = min(self.keepalive, self.child_timeout / 4)
        if float(tb["torpid_max"]) > 0:
            self.keepalive = min(self.keepalive, float(tb["torpid_max"]) / 2)

    # -- sockets -----------------------------------------------------------
    def _watch(self, sock: zmq.Socket, handler: Any) -> None:
        fd = sock.getsockopt(zmq.FD)
        self._loop.add_reader(fd, self._drain_socket, sock, handler)
        self._readers.append(fd)
        # messages may already be queued: the fd only signals edges
        self._loop.call_soon(self._drain_socket, sock, handler, False)

    def _drain_socket(self, sock: zmq.Socket, handler: Any, woken: bool = True) -> None:
        """Handle every message waiting on SOCK, then on the sockets sent on meanwhile.

        WOKEN: called because SOCK's fd was readable (see _drain_one); False for
        a re-check that most likely finds nothing.

        A send can swallow a socket's fd edge (see _kick): the sockets sent on
        while handling are re-checked here before going back to the event loop,
        instead of in a later turn of it."""
        if sock.closed:
            return
        self._depth += 1
        try:
            self._drain_one(sock, handler, woken)
            sent = self._sent_on
            while sent:
                other = sent.pop()
                if other is self.router:
                    self._drain_one(other, self._from_child, False)
                elif other is self.dealer:
                    self._drain_one(other, self._from_parent, False)
        finally:
            self._depth -= 1
            if self._depth == 0 and self._sent_on:   # a handler raised: re-check later
                self._sent_on.clear()
                self._post_drain()
        self.b.flush_dirty()

    def _drain_one(self, sock: zmq.Socket, handler: Any, woken: bool) -> None:
        """Handle the messages waiting on SOCK until it has none.

        WOKEN: the event loop saw SOCK's fd readable, so a message most likely
        waits: receive at once rather than ask ZMQ_EVENTS first (each of those
        calls is a system call; a receive that finds nothing is one too)."""
        sent = self._sent_on
        try:
            while True:
                sent.discard(sock)          # this check covers the sends on SOCK so far
                if woken:
                    woken = False
                elif not sock.get(_EVENTS) & _POLLIN:
                    break
                try:
                    frames = sock.recv_multipart(_NOBLOCK)
                except zmq.Again:
                    break
                handler(frames)
        except zmq.ZMQError as exc:
            if exc.errno != zmq.ENOTSOCK:
                self.b.log.error(f"overlay: receive failed: {exc}")

    def _kick(self, sock: Any) -> None:
        """After sending on SOCK, re-check it: a send can swallow the fd's edge.

        (Sending processes the socket's pending commands, which drains the
        signal fd the event loop waits on: a message that arrived meanwhile
        would wait for the next unrelated wakeup.)"""
        if self._depth:
            self._sent_on.add(sock)
        else:
            self._post_drain()

    def _post_drain(self) -> None:
        if not self._drain_posted:
            self._drain_posted = True
            self._loop.call_soon(self._drain_all)

    def _drain_all(self) -> None:
        self._drain_posted = False
        if self.router is not None:
            self._drain_socket(self.router, self._from_child, False)
        if self.dealer is not None:
            self._drain_socket(self.dealer, self._from_parent, False)

    def _tcp_options(self, sock: zmq.Socket) -> None:
        """flux-config-tbon(5) settings that apply to tcp:// connections, and IPv6
        addresses when ``[bootstrap] enable_ipv6`` is set (ZeroMQ refuses them
        otherwise: a bind to tcp://[::1] fails with "No such device")."""
        tb = self.tbon
        if self.ipv6:
            sock.setsockopt(zmq.IPV6, 1)
        sock.setsockopt(zmq.TCP_KEEPALIVE, int(tb["keepalive_enable"]))
        for opt, key in ((zmq.TCP_KEEPALIVE_CNT, "keepalive_count"),
                         (zmq.TCP_KEEPALIVE_IDLE, "keepalive_idle"),
                         (zmq.TCP_KEEPALIVE_INTVL, "keepalive_interval")):
            sock.setsockopt(opt, int(tb[key]))
        if tb["tcp_user_timeout"] > 0:
            sock.setsockopt(zmq.TCP_MAXRT, int(tb["tcp_user_timeout"] * 1000))
        if tb["connect_timeout"] > 0:
            sock.setsockopt(zmq.CONNECT_TIMEOUT, int(tb["connect_timeout"] * 1000))

    def _curve_server(self, sock: zmq.Socket) -> None:
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True
        sock.zap_domain = b"flux"

    def _start_zap(self) -> None:
        # bound now, served after publish(): until the children's keys are
        # known, handshakes wait in the socket instead of being refused
        zap = self.zctx.socket(zmq.REP)
        zap.linger = 0
        zap.bind("inproc://zeromq.zap.01")
        self._zap = zap

    def _zap_request(self, frames: list[bytes]) -> None:
        version, request_id = frames[0], frames[1]
        mechanism = frames[5] if len(frames) > 5 else b""
        key = frames[6] if len(frames) > 6 else b""
        ok = mechanism == b"CURVE" and self.boot.child_key_ok(key)
        if not ok:
            self.b.log.warning(f"overlay: refused a peer {self.boot.refusal}")
        assert self._zap is not None
        self._zap.send_multipart([version, request_id, b"200" if ok else b"400",
                                  b"OK" if ok else b"unknown key", b"", b""])

    def _monitor(self, sock: zmq.Socket, handler: Any) -> None:
        mon = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                                      | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                      | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        mon.linger = 0
        self._monitors.append(mon)
        self._watch(mon, handler)

    async def start(self) -> None:
        """Bind for children (if any) and publish the endpoint for them."""
        if not self.children:
            await self.boot.publish(self.rank, None, self.parent_rank, [])
            return
        self._start_zap()
        router = self.zctx.socket(zmq.ROUTER)
        router.linger = 0
        router.sndhwm = 0
        router.rcvhwm = 0
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # a child that restarts takes its identity back from a connection not yet known dead
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        if self.tbon["child_rcvhwm"]:
            router.rcvhwm = int(self.tbon["child_rcvhwm"])
        self._tcp_options(router)
        self._curve_server(router)
        rundir = self.b.attrs.get("rundir")
        bind_uri = getattr(self.boot, "bind_uri", None)
        if bind_uri is not None:
            uri = bind_uri
        elif self.b.attrs.get_default("tbon.prefertcp", "0") not in ("0", ""):
            uri = "tcp://127.0.0.1:*"
        else:
            uri = f"ipc://{os.path.join(rundir, 'tbon')}"
        try:
            router.bind(uri)
        except zmq.ZMQError as exc:
            router.close(linger=0)
            # still publish (no endpoint), so peers waiting on us fail instead of hanging
            await self.boot.publish(self.rank, None, self.parent_rank, list(self.children))
            raise FluxError(exc.errno or errno.EINVAL, f"overlay: cannot bind {uri}: {exc}") \
                from None
        endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.router = router
        self.b.attrs.add("tbon.endpoint", endpoint, immutable=True)
        await self.boot.publish(self.rank, endpoint, self.parent_rank, list(self.children))
        assert self._zap is not None
        self._watch(self._zap, self._zap_request)
        for child in self.children:
            self.b.add_endpoint(_PeerEndpoint(self, child, parent=False))
        self._watch(router, self._from_child)
        self._monitor(router, self._router_event)
        self._tasks.append(asyncio.ensure_future(self._check_children()))

    async def join(self) -> None:
        """Rank > 0: connect to the parent and complete the HELLO exchange."""
        assert self.parent_rank is not None
        endpoint, server_key = await self.boot.parent(self.rank, self.parent_rank)
        dealer = self.zctx.socket(zmq.DEALER)
        dealer.linger = 2000
        dealer.sndhwm = 0
        dealer.rcvhwm = 0
        dealer.routing_id = str(self.rank).encode()
        self._tcp_options(dealer)
        dealer.curve_serverkey = server_key
        dealer.curve_publickey = self.public
        dealer.curve_secretkey = self.secret
        dealer.connect(endpoint)
        self.dealer = dealer
        self.b.attrs.add("tbon.parent-endpoint", endpoint, immutable=True)
        self.b.add_endpoint(_PeerEndpoint(self, self.parent_rank, parent=True))
        self._joined = self._loop.create_future()
        self._watch(dealer, self._from_parent)
        self._monitor(dealer, self._dealer_event)
        self._send_parent_raw(control(HELLO, {"rank": self.rank, "hostname": self.b.hostname,
                                              "version": __version__, "pid": os.getpid()}))
        # a configured follower waits for its parent as long as it takes (any start order)
        await asyncio.wait_for(self._joined, getattr(self.boot, "join_timeout", 60.0))
        self._parent_ok = True
        self._tasks.append(asyncio.ensure_future(self._keepalive()))

    # -- sending -------------------------------------------------------------
    def _track(self, msg: Message, peer: str) -> tuple[int, bytes] | None:
        """Remember request MSG sent to PEER until answered; the key, or None."""
        if msg.type == FLUX_MSGTYPE_REQUEST and not msg.flags & FLUX_MSGFLAG_NORESPONSE:
            key = (msg.matchtag, wire.route_stack(msg.route))
            self._pending[key] = (msg.topic.encode(), peer,
                                  bool(msg.flags & FLUX_MSGFLAG_STREAMING))
            return key
        return None

    def _untrack(self, data: bytes, p: wire.Peek) -> None:
        """Response DATA (peeked as P) arrived: its request is answered, unless more follow."""
        f = p[0]
        if f[_F_AUX1] or not f[_F_FLAGS] & FLUX_MSGFLAG_STREAMING:   # errnum, flags
            self._pending.pop((f[_F_AUX2], data[_HDR:p[1]]), None)

    def _fail_pending(self, peer: str, why: str) -> None:
        for key, (topic, owner, streaming) in list(self._pending.items()):
            if owner != peer:
                continue
            del self._pending[key]
            matchtag, route = key
            resp = Message(FLUX_MSGTYPE_RESPONSE, topic.decode("utf-8", errors="replace"), why,
                           matchtag=matchtag, route=wire.parse_route(route),
                           errnum=errno.EHOSTUNREACH,
                           flags=FLUX_MSGFLAG_STREAMING if streaming else 0)
            self.b.route_response(resp)
        self.b.flush_dirty()

    def _send_parent_raw(self, msg: Message) -> bool:
        if self.dealer is None:
            return False
        return self._send_parent_frame(encode(msg))

    def _send_parent_frame(self, data: bytes) -> bool:
        dealer = self.dealer
        if dealer is None:
            return False
        try:
            dealer.send(data, _NOBLOCK)
        except zmq.ZMQError as exc:
            self.b.log.error(f"overlay: send to parent failed: {exc}")
            return False
        self._kick(dealer)
        return True

    def send_parent(self, msg: Message) -> None:
        if self.dealer is None or (not self._parent_ok and msg.type != FLUX_MSGTYPE_CONTROL
                                   and self._joined is not None and not self._joined.done()):
            self.b.respond_error(msg, errno.EHOSTUNREACH, "No route to parent broker")
            return
        key = self._track(msg, "parent")
        if not self._send_parent_raw(msg):
            if key is not None:
                self._pending.pop(key, None)
            self.b.respond_error(msg, errno.EHOSTUNREACH, "No route to parent broker")

    def send_child(self, rank: int, msg: Message) -> None:
        peer = self.children.get(rank)
        if peer is None or self.router is None:
            self.b.respond_error(msg, errno.EHOSTUNREACH, f"rank {rank} is not a child of rank "
                                                          f"{self.rank}")
            return
        if not peer.connected:
            self.b.respond_error(msg, errno.EHOSTUNREACH, f"No route to rank {rank}: it is "
                                                          f"{peer.status}")
            return
        key = self._track(msg, str(rank))
        if not self._send_child_raw(peer, encode(msg)):
            if key is not None:
                self._pending.pop(key, None)
            self.b.respond_error(msg, errno.EHOSTUNREACH, f"No route to rank {rank}: it is lost")

    def _send_child_raw(self, peer: Peer, data: bytes) -> bool:
        router = self.router
        assert router is not None
        try:
            # two sends rather than send_multipart: no list, no per-part checks
            router.send(peer.ident, _NOBLOCK | _SNDMORE)
            router.send(data, _NOBLOCK)
        except zmq.ZMQError as exc:
            if exc.errno == errno.EHOSTUNREACH:
                self._confirm_lost(peer)
            else:
                self.b.log.error(f"overlay: send to rank {peer.rank} failed: {exc}")
            return False
        self._kick(router)
        return True

    def send_children_event(self, ev: Message) -> None:
        if self.router is None:
            return
        fwd = self._event_frame
        # an event from the parent goes on as it came (see _from_parent), not re-encoded
        data = fwd[1] if fwd is not None and fwd[0] is ev else encode(ev)
        for peer in self.children.values():
            if peer.connected:
                self._send_child_raw(peer, data)

    # -- receiving -------------------------------------------------------------
    def _forward(self, data: bytes, p: wire.Peek, hop: bytes, from_parent: bool) -> bool:
        """Pass a request or response that only crosses this broker on as it came.

        DATA (peeked as P) came from a peer whose route hop is HOP.  A request
        for a rank below another child (or, from a child, elsewhere in the tree)
        and a response whose next hop is a peer need no service of this broker:
        push or pop the hop and send the bytes on (broker.wire).  False when the
        message needs the general path (decode, Broker.route_request /
        route_response, encode): a local service, a peer that is not connected,
        a failed send (the general path answers those with the usual errors)."""
        f = p[0]
        mtype = f[_F_TYPE]
        if mtype == FLUX_MSGTYPE_REQUEST:
            nodeid = f[_F_AUX1]
            flags = f[_F_FLAGS]
            if nodeid == FLUX_NODEID_ANY or flags & FLUX_MSGFLAG_UPSTREAM \
                    or nodeid == self.rank or nodeid >= self.size:
                return False
            child = self.tree.child_toward(self.rank, nodeid)
            if child is None:
                if from_parent or not self._parent_ok:
                    return False
                peer = None
                owner = "parent"
            else:
                peer = self.children.get(child)
                if peer is None or not peer.connected or self.router is None:
                    return False
                owner = str(child)
            out = wire.push_hop(data, p, hop)
            key = None
            if not flags & FLUX_MSGFLAG_NORESPONSE:
                key = (f[_F_AUX2], data[_HDR:p[1]] + hop)
                self._pending[key] = (wire.topic_of(data, p), owner,
                                      bool(flags & FLUX_MSGFLAG_STREAMING))
            if self._send_child_raw(peer, out) if peer is not None \
                    else self._send_parent_frame(out):
                return True
            if key is not None:
                self._pending.pop(key, None)
            return False
        if mtype == FLUX_MSGTYPE_RESPONSE:
            start = p[2]
            if start < 0:
                return False
            ep = self._peer_eps.get(data[start + 1:p[1]])
            if ep is None or self.b.endpoints.get(ep.uuid) is not ep:
                return False
            if ep.parent:
                peer = None
                if not self._parent_ok:
                    return False
            else:
                peer = self.children.get(ep.rank)
                if peer is None or not peer.connected or self.router is None:
                    return False
            self._untrack(data, p)
            out = wire.pop_hop(data, p)
            return self._send_child_raw(peer, out) if peer is not None \
                else self._send_parent_frame(out)
        return False

    def _from_child(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            return
        ident, data = frames
        peer = self._by_ident.get(ident)
        if peer is None:
            return
        try:
            p = wire.peek(data)
        except FluxError as exc:
            self.b.log.warning(f"overlay: bad message from rank {peer.rank}: {exc}")
            return
        peer.last_seen = time.monotonic()
        if peer.torpid:
            peer.torpid = False
            self.b.log.info(f"overlay: rank {peer.rank} ({self.peer_host(peer)}) is lively "
                            "again")
            self._report([peer.rank], "lively")
        mtype = p[0][_F_TYPE]
        if mtype == FLUX_MSGTYPE_REQUEST and not peer.connected:
            return
        if self._forward(data, p, peer.hop, False):
            return
        try:
            msg = decode(data)
        except OSError as exc:
            self.b.log.warning(f"overlay: bad message from rank {peer.rank}: {exc}")
            return
        msg.rolemask &= ~FLUX_ROLE_LOCAL      # it came from another broker
        if mtype == FLUX_MSGTYPE_REQUEST:
            msg.route.append(peer.ident.decode())
            self.b.route_request(msg)
        elif mtype == FLUX_MSGTYPE_RESPONSE:
            self._untrack(data, p)
            self.b.route_response(msg)
        elif mtype == FLUX_MSGTYPE_CONTROL:
            self._child_control(peer, msg)

    def _child_control(self, peer: Peer, msg: Message) -> None:
        ctype = msg.control_type
        if ctype == HELLO:
            body = msg.payload or {}
            if body.get("version") != __version__:
                why = (f"version mismatch: rank {peer.rank} runs {body.get('version')}, "
                       f"rank {self.rank} runs {__version__}")
                self.b.log.error(f"overlay: refused rank {peer.rank}: {why}")
                self._send_child_raw(peer, encode(control(NAK, {"error": why})))
                return
            peer.hostname = str(body.get("hostname", ""))
            self._set_child(peer, PeerState.JOINED)
            self._send_child_raw(peer, encode(control(HELLO_ACK, {"rank": self.rank})))
            if self.b.shutdown_reason is not None and self.b.state.value in (
                    "cleanup", "shutdown", "finalize", "goodbye"):
                self._send_child_raw(peer, encode(control(SHUTDOWN)))
        elif ctype == ONLINE:
            self._set_child(peer, PeerState.ONLINE)
        elif ctype == STATUS:
            body = msg.payload or {}
            self._report(list(body.get("ranks", [])), str(body.get("status", "")))
        elif ctype == GOODBYE:
            self._set_child(peer, PeerState.OFFLINE)
            self._fail_pending(str(peer.rank), f"rank {peer.rank} has shut down")

    def _from_parent(self, frames: list[bytes]) -> None:
        data = frames[-1]
        try:
            p = wire.peek(data)
        except FluxError as exc:
            self.b.log.warning(f"overlay: bad message from parent: {exc}")
            return
        if self._forward(data, p, self._parent_hop, True):
            return
        try:
            msg = decode(data)
        except OSError as exc:
            self.b.log.warning(f"overlay: bad message from parent: {exc}")
            return
        msg.rolemask &= ~FLUX_ROLE_LOCAL      # it came from another broker
        mtype = msg.type
        if mtype == FLUX_MSGTYPE_REQUEST:
            msg.route.append(str(self.parent_rank))
            self.b.route_request(msg)
        elif mtype == FLUX_MSGTYPE_RESPONSE:
            self._untrack(data, p)
            self.b.route_response(msg)
        elif mtype == FLUX_MSGTYPE_EVENT:
            # the children get the frame as it came: no encoding at every level of the tree
            self._event_frame = (msg, data)
            try:
                self.b.dispatch_event(msg)
            finally:
                self._event_frame = None
        elif mtype == FLUX_MSGTYPE_CONTROL:
            ctype = msg.control_type
            if ctype == HELLO_ACK and self._joined is not None and not self._joined.done():
                self._joined.set_result(None)
            elif ctype == NAK and self._joined is not None and not self._joined.done():
                error = (msg.payload or {}).get("error", "refused by parent")
                self._joined.set_exception(FluxError(errno.EPROTO, error))
            elif ctype == SHUTDOWN:
                body = msg.payload if isinstance(msg.payload, dict) else {}
                if body.get("disconnect"):
                    # flux overlay disconnect: leave as if the parent were lost, so a
                    # service manager restarts this broker and it joins again
                    self.b.log.error(f"overlay: disconnected by parent rank {self.parent_rank}"
                                     " (leaving to be restarted)")
                    if self.b.exit_code == 0:
                        self.b.exit_code = 1
                    self.b.leaving_for_restart = True
                    self.b.request_shutdown("disconnected by parent")
                    return
                # the instance is shutting down: this broker should stay down
                norestart = self.b.exit_norestart
                if norestart and self.b.exit_code == 0:
                    self.b.exit_code = norestart
                self.b.request_shutdown(f"shutdown of parent rank {self.parent_rank}")

    # -- status ----------------------------------------------------------------
    def _report(self, ranks: list[int], status: str) -> None:
        """Pass news about RANKS toward rank 0."""
        if not ranks:
            return
        if self.rank == 0:
            for r in ranks:
                self.b.rank_status(r, status)
        else:
            self._send_parent_raw(control(STATUS, {"ranks": ranks, "status": status}))

    def _set_child(self, peer: Peer, state: PeerState) -> None:
        old = peer.state
        if old == state:
            return
        was_connected = peer.connected
        peer.state = state
        peer.since = time.monotonic()
        peer.torpid = False
        if state == PeerState.ONLINE:
            self._report([peer.rank], "online")
        elif was_connected and state in (PeerState.LOST, PeerState.OFFLINE):
            below = self.tree.subtree(peer.rank)
            self._report(below, state.value)
        self._children_evt.set()

    def _child_lost(self, peer: Peer, why: str) -> None:
        if not peer.connected:
            return
        peer.error = why
        host = self.peer_host(peer)
        self.b.log.error(f"overlay: rank {peer.rank} ({host}) is lost: {why}")
        self._set_child(peer, PeerState.LOST)
        self._fail_pending(str(peer.rank), f"No route to rank {peer.rank} ({host}): it is lost "
                                           f"({why})")

    def _confirm_lost(self, peer: Peer) -> None:
        """PEER's connection is gone: lost, unless its GOODBYE turns up shortly.

        The socket monitor's DISCONNECTED can overtake the child's last message,
        which ZeroMQ's I/O thread hands to the socket a little later: so wait
        LOST_GRACE, read what came, and only then call a still-connected child lost."""
        if peer.rank in self._confirming or not peer.connected:
            return
        self._confirming.add(peer.rank)
        since = peer.since

        def check() -> None:
            self._confirming.discard(peer.rank)
            if self.router is not None:
                self._drain_socket(self.router, self._from_child, False)
            if peer.since == since:      # not gone and back (a restarted child's HELLO)
                self._child_lost(peer, "lost connection")

        self._loop.call_later(LOST_GRACE, check)

    def peer_host(self, peer: Peer) -> str:
        """The child's hostname: as it said in HELLO, else as configured, else '?'."""
        if peer.hostname:
            return peer.hostname
        hosts = self.b.opts.hosts
        return hosts[peer.rank] if hosts and peer.rank < len(hosts) else "?"

    def disconnect_child(self, rank: int, why: str) -> None:
        peer = self.children[rank]
        if peer.connected:
            self._send_child_raw(peer, encode(control(SHUTDOWN, {"disconnect": True})))
        self._child_lost(peer, why)

    def _router_event(self, frames: list[bytes]) -> None:
        event = zmq.utils.monitor.parse_monitor_message(frames)
        if event["event"] in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                              zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
            # a peer that speaks no CURVE, or encrypts to another server key
            self.b.log.warning("overlay: refused a peer that failed the CURVE handshake "
                               f"{self.boot.refusal}")
        elif event["event"] == zmq.EVENT_DISCONNECTED:
            # which child? probe them: an unknown identity cannot be sent to
            for delay in (0.0, 0.1, 1.0):
                self._loop.call_later(delay, self._probe_children)

    def _probe_children(self) -> None:
        if self.router is None:
            return
        # a child's last words (GOODBYE) may still wait in the socket: read them first,
        # or a child that left cleanly would be taken for lost
        self._drain_socket(self.router, self._from_child, False)
        for peer in list(self.children.values()):
            if peer.connected:
                self._send_child_raw(peer, encode(control(PROBE)))

    def _dealer_event(self, frames: list[bytes]) -> None:
        event = zmq.utils.monitor.parse_monitor_message(frames)
        if event["event"] == zmq.EVENT_DISCONNECTED and self._parent_ok:
            self._parent_ok = False
            self.b.log.error(f"overlay: lost connection to parent rank {self.parent_rank}")
            self._fail_pending("parent", "No route to parent broker: it is lost")
            if self.b.exit_code == 0:
                self.b.exit_code = 1
            self.b.leaving_for_restart = True
            self.b.request_shutdown("lost parent")

    async def _check_children(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive)
            now = time.monotonic()
            torpid_max = float(self.tbon["torpid_max"])
            for peer in list(self.children.values()):
                if (torpid_max > 0 and peer.connected and not peer.torpid
                        and now - peer.last_seen > torpid_max):
                    # flux-config-tbon(5): no new work for it until it speaks again
                    peer.torpid = True
                    self.b.log.warning(f"overlay: rank {peer.rank} ({self.peer_host(peer)}) is "
                                       f"torpid: no message for {torpid_max:g}s")
                    self._report([peer.rank], "torpid")
                if peer.connected and now - peer.last_seen > self.child_timeout:
                    # a hung child: if it ever wakes up it must leave (and be restarted),
                    # since its parent no longer routes to it
                    self.disconnect_child(peer.rank, f"no message for {self.child_timeout:g}s")

    async def _keepalive(self) -> None:
        while self._parent_ok:
            await asyncio.sleep(self.keepalive)
            if self._parent_ok:
                self._send_parent_raw(control(KEEPALIVE))

    # -- lifecycle -------------------------------------------------------------
    def report_online(self) -> None:
        self._send_parent_raw(control(ONLINE, {"rank": self.rank}))

    def has_children(self) -> bool:
        return any(p.connected for p in self.children.values())

    async def shutdown_children(self) -> str:
        """Tell children to shut down; wait for their GOODBYE (or loss).

        A broker leaving to be restarted (it lost its parent or was disconnected)
        asks its children to leave the same way, so that a service manager restarts the whole subtree and
        it joins again; otherwise the instance is stopping and they stay down."""
        body = {"disconnect": True} if getattr(self.b, "leaving_for_restart", False) else None
        for peer in self.children.values():
            if peer.connected:
                self._send_child_raw(peer, encode(control(SHUTDOWN, body)))
        timeout = parse_fsd(self.b.attrs.get_default("broker.shutdown-timeout", "60s") or "60s")
        deadline = time.monotonic() + timeout
        while self.has_children():
            self._children_evt.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                left = [p.rank for p in self.children.values() if p.connected]
                self.b.log.error(f"shutdown: children {left} did not finish in {timeout:g}s")
                return "children-timeout"
            try:
                await asyncio.wait_for(self._children_evt.wait(), remaining)
            except asyncio.TimeoutError:
                continue
        return "children-complete"

    async def goodbye(self) -> None:
        if self.dealer is not None and self._parent_ok:
            ok = self._send_parent_raw(control(GOODBYE, {"rank": self.rank}))
            if not ok:
                self.b.log.warning("overlay: could not say goodbye to the parent")
            self._parent_ok = False

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for fd in self._readers:
            try:
                self._loop.remove_reader(fd)
            except (ValueError, OSError):
                pass
        self._readers.clear()
        for sock in (self.router, self.dealer):
            if sock is not None:
                try:
                    sock.disable_monitor()
                except zmq.ZMQError:
                    pass
        for sock in [*self._monitors, self.router, self._zap]:
            if sock is not None:
                sock.close(linger=0)
        if self.dealer is not None:
            self.dealer.close(linger=2000)
        self.router = self.dealer = self._zap = None
        await asyncio.get_running_loop().run_in_executor(None, self.zctx.term)


__all__ = ["Overlay", "OverlayBoot", "DirBoot", "Peer", "PeerState", "write_keys", "read_keys",
           "write_hosts", "read_hosts",
           "endpoint_file"]
