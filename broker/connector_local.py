"""The local connector: clients on an AF_UNIX stream socket in the rundir.

On accept the peer's uid is read with SO_PEERCRED and mapped to a role
(:func:`decide_role`); RFC 3's one-byte answer follows: 0 to proceed, or an
errno (EPERM) before the socket is closed.  Each request from a client is
stamped with that uid and role (the owner's with FLUX_ROLE_OWNER |
FLUX_ROLE_LOCAL, as Flux's connector does), its route stack is reset to
the client's identity, and the services it addresses are remembered so
that when the client goes away each gets a ``<service>.disconnect``
request (RFC 6).  A request for a service the client registered itself
(nodeid ANY or this rank, no upstream flag) is handed back to it, as
Flux's local connector does, instead of being routed past it.  A client
sending bytes that do not decode is dropped; the broker goes on.
"""
from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
import struct
import uuid
from typing import TYPE_CHECKING, Any

from flux.constants import (
    FLUX_MSGFLAG_NORESPONSE,
    FLUX_MSGFLAG_PRIVATE,
    FLUX_MSGFLAG_STREAMING,
    FLUX_MSGFLAG_UPSTREAM,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_NODEID_ANY,
    FLUX_ROLE_LOCAL,
    FLUX_ROLE_NONE,
    FLUX_ROLE_OWNER,
    FLUX_ROLE_USER,
)
from flux.errors import FluxError
from flux.message import Message, StreamDecoder, encode

if TYPE_CHECKING:
    from broker.broker import Broker

_CRED = struct.Struct("3i")


def decide_role(uid: int, owner: int, allow_guest_user: bool, allow_root_owner: bool) -> int:
    """The role of a peer with UID, or FLUX_ROLE_NONE to refuse it.

    The instance owner gets the owner role; root gets it only with
    ``[access] allow-root-owner``; anyone else (root included) is a guest
    when ``[access] allow-guest-user`` is set, and refused otherwise.
    """
    if uid == owner:
        return FLUX_ROLE_OWNER
    if uid == 0 and allow_root_owner:
        return FLUX_ROLE_OWNER
    if allow_guest_user:
        return FLUX_ROLE_USER
    return FLUX_ROLE_NONE


class ClientConn(asyncio.Protocol):
    """One connected client: an endpoint of the broker."""

    def __init__(self, connector: "LocalConnector") -> None:
        self.connector = connector
        self.broker = connector.broker
        self.uuid = uuid.uuid4().hex
        self.transport: asyncio.Transport | None = None
        self.decoder = StreamDecoder()
        self.userid = -1
        self.rolemask = FLUX_ROLE_NONE
        self.pid = 0
        self.used: set[tuple[str, int]] = set()
        # requests this client serves (as a registered service) and has not answered
        self.served: dict[tuple[int, tuple[str, ...]], tuple[str, int]] = {}
        #: services this client registered (service.add): its own requests to them come back
        self.services: set[str] = set()
        self._out: list[bytes] = []
        #: bytes in _out, and how many more may come before the unread total is checked
        self._queued = 0
        self._room = 0
        self.closed = False

    # -- asyncio.Protocol ----------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock: socket.socket = transport.get_extra_info("socket")
        try:
            pid, uid, _gid = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          _CRED.size))
        except OSError:
            transport.abort()
            return
        self.pid = pid
        self.userid = uid
        broker = self.broker
        role = decide_role(uid, broker.owner,
                           bool(broker.config.get("access.allow-guest-user", False)),
                           bool(broker.config.get("access.allow-root-owner", False)))
        if role == FLUX_ROLE_NONE:
            broker.log.info(f"connection refused: uid {uid} (pid {pid}) is not the "
                            "instance owner and guests are not allowed")
            transport.write(bytes((errno.EPERM,)))
            transport.close()
            self.closed = True
            return
        # the owner's messages say they came from this broker, as Flux's do
        self.rolemask = role | FLUX_ROLE_LOCAL if role & FLUX_ROLE_OWNER else role
        transport.write(b"\0")
        broker.add_endpoint(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            msgs = self.decoder.feed(data)
        except OSError as exc:
            self.broker.log.warning(f"dropping client {self.uuid[:8]} (uid {self.userid}, "
                                    f"pid {self.pid}): {exc}")
            self._drop()
            return
        broker = self.broker
        uid = self.userid
        role = self.rolemask
        me = self.uuid
        used = self.used
        for msg in msgs:
            mtype = msg.type
            msg.userid = uid
            msg.rolemask = role
            if mtype == FLUX_MSGTYPE_REQUEST:
                msg.route = [me]
                service = msg.topic.partition(".")[0]
                used.add((service, msg.nodeid))
                if self.services and service in self.services and self._own(msg):
                    self.deliver(msg)
                else:
                    broker.route_request(msg)
            elif mtype == FLUX_MSGTYPE_RESPONSE:
                # only answers to requests this client was given are passed on,
                # so a client cannot forge responses to others
                key = (msg.matchtag, tuple(msg.route))
                if key not in self.served:
                    broker.log.debug(f"client {me[:8]} sent an unsolicited response "
                                     f"({msg.topic}); dropped")
                    continue
                if msg.errnum or not msg.flags & FLUX_MSGFLAG_STREAMING:
                    del self.served[key]
                broker.route_response(msg)
            else:
                broker.log.debug(f"client {me[:8]} sent a {msg.type_str} message; ignored")
        broker.flush_dirty()

    def _own(self, msg: Message) -> bool:
        """Whether request MSG, for a service this client registered, is for this broker."""
        if msg.flags & FLUX_MSGFLAG_UPSTREAM:
            return False
        if msg.nodeid != FLUX_NODEID_ANY and msg.nodeid != self.broker.rank:
            return False
        # the registration may have been dropped by the broker meanwhile
        return self.broker.services.get(msg.topic.partition(".")[0]) is self

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return
        was_open = not self.closed
        self.closed = True
        self._out.clear()
        if was_open:
            self.broker.client_gone(self)

    # -- endpoint --------------------------------------------------------
    def deliver(self, msg: Message) -> None:
        if msg.type == FLUX_MSGTYPE_REQUEST and not msg.flags & FLUX_MSGFLAG_NORESPONSE:
            if self.closed:
                self.broker.respond_error(msg, errno.ENOSYS,
                                          f"Service is not available: {msg.topic}")
                return
            self.served[(msg.matchtag, tuple(msg.route))] = (msg.topic,
                                                             msg.flags & FLUX_MSGFLAG_STREAMING)
        if self.closed:
            return
        data = encode(msg)
        self._queued += len(data)
        if self._queued > self._room and self.transport is not None:
            # a client that sends requests and never reads their answers would
            # otherwise grow the broker without bound, at every other client's cost
            unread = self._queued + self.transport.get_write_buffer_size()
            if unread > self.broker.client_outbuf_limit:
                self._overflow(unread)
                return
            self._room = self._queued + self.broker.client_outbuf_limit - unread
        self._out.append(data)
        self.broker.mark_dirty(self)

    def deliver_event(self, msg: Message) -> None:
        if (msg.flags & FLUX_MSGFLAG_PRIVATE and not self.rolemask & FLUX_ROLE_OWNER
                and msg.userid != self.userid):
            return
        self.deliver(msg)

    def flush(self) -> None:
        out = self._out
        if out and self.transport is not None and not self.closed:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            self._queued = 0
            self._room = 0
            self.transport.write(data)

    def _overflow(self, unread: int) -> None:
        self.broker.log.warning(
            f"dropping client {self.uuid[:8]} (uid {self.userid}, pid {self.pid}): {unread} "
            f"bytes sent to it are unread (broker.client-outbuf-limit "
            f"{self.broker.client_outbuf_limit})")
        self.closed = True
        self._out.clear()
        self._drop()
        self.broker.client_gone(self)

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class LocalConnector:
    """The listening socket and its clients.

    The socket file is another broker's until proven stale: at start an
    existing one is probed (connect) and only a refused connection
    (ECONNREFUSED: no process listens) lets it be removed; an answer means
    a broker is already there and this one refuses to start.  A broker
    unlinks only the file it bound itself (same device and inode), at stop
    or after a failed start, never one that has since been replaced.
    """

    def __init__(self, broker: "Broker", path: str) -> None:
        self.broker = broker
        self.path = path
        self.server: asyncio.base_events.Server | None = None
        #: (st_dev, st_ino) of the socket file this connector bound; None: none of ours
        self._bound: tuple[int, int] | None = None

    def _name(self) -> str:
        return f"local-uri local://{self.path}"

    def _clear_stale(self) -> None:
        """Remove a socket file left by a broker that is gone; FluxError if the path
        belongs to a live broker (or to anything that is not a socket)."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise FluxError(errno.EEXIST, f"{self._name()}: {self.path} exists and is not "
                                          "a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.setblocking(False)
        try:
            probe.connect(self.path)
        except ConnectionRefusedError:
            pass                          # nobody listens: stale, removed below
        except FileNotFoundError:
            return                        # gone meanwhile
        except BlockingIOError:
            # a full backlog: a broker is there, busy
            raise FluxError(errno.EADDRINUSE, f"{self._name()}: a broker is already "
                                              "listening there") from None
        except OSError as exc:
            raise FluxError(exc.errno or errno.EIO, f"{self._name()}: cannot check the "
                                                    f"socket there: {exc.strerror}") from None
        else:
            raise FluxError(errno.EADDRINUSE, f"{self._name()}: a broker is already "
                                              "listening there")
        finally:
            probe.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return
        self.broker.log.info(f"removed a stale socket at {self.path} (no broker listens)")

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._clear_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:      # bound by another since the probe
                raise FluxError(errno.EADDRINUSE, f"{self._name()}: a broker is already "
                                                  "listening there") from None
            raise FluxError(exc.errno or errno.EIO, f"{self._name()}: cannot bind "
                                                    f"{self.path}: {exc.strerror}") from None
        st = os.stat(self.path)
        self._bound = (st.st_dev, st.st_ino)
        try:
            # Access is decided by SO_PEERCRED, so anyone may connect and be told.
            os.chmod(self.path, 0o777)
            self.server = await loop.create_unix_server(lambda: ClientConn(self), sock=sock,
                                                        backlog=1024)
        except BaseException:
            sock.close()
            self._unlink_own()
            raise

    def _unlink_own(self) -> None:
        """Remove the socket file if it is still the one this connector bound."""
        bound, self._bound = self._bound, None
        if bound is None:
            return
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == bound:
                os.unlink(self.path)
        except OSError:
            pass

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self._unlink_own()


__all__ = ["LocalConnector", "ClientConn", "decide_role"]
