"""Flux messages (RFC 3 shape) and their wire codec.

A :class:`Message` holds its payload either as bytes or as a Python object
and converts between the two only when asked: a message handed from one
broker module to another never touches JSON, while one that crosses a
socket is encoded once on the way out and decoded only when its payload is
read.  The wire format (specs/messages.md) is a fixed 32-byte header,
then the route stack, topic and payload; the same bytes serve the local
AF_UNIX connector (where the leading length frames the stream) and the
ZeroMQ overlay (one frame per message).

Flux's Python ``Message`` API is here too: ``Message(type_id)``,
``topic`` (str or bytes in), ``payload`` / ``payload_str`` (both
settable; a payload set as an object reads back as ``json.dumps`` text),
``rolemask``, ``userid``, ``type_str`` and ``decode()``.

JSON: payloads are encoded and decoded with orjson once the process has
loaded it (the broker, its modules and most of the API do), else with
``flux.jsonc`` (the standard library's C codec, compact, UTF-8, no NaN,
without importing ``json`` and ``re``).  This module never imports orjson
itself: that costs more (~18 ms) than a short ``flux`` command spends on
everything else.
"""
from __future__ import annotations

import errno
import os
import struct
import sys

from flux.constants import (
    FLUX_MATCHTAG_NONE,
    FLUX_MSGFLAG_PAYLOAD,
    FLUX_MSGFLAG_ROUTE,
    FLUX_MSGFLAG_STREAMING,
    FLUX_MSGFLAG_TOPIC,
    FLUX_MSGTYPE_CONTROL,
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_NODEID_ANY,
    FLUX_USERID_UNKNOWN,
)
import flux.jsonc as jsonc  # (not "from flux import": that runs flux.__getattr__)
from flux.errors import FluxError, PayloadError

if False:  # for type checkers only: importing typing costs a short command ~3 ms
    from typing import Any, Iterable

MAGIC = 0x8E
VERSION = 1
#: length, magic, version, type, flags, userid, rolemask, aux1, aux2,
#: topic length, route count, payload length (network byte order)
HEADER = struct.Struct("!IBBBBIIIIHHI")
HEADER_SIZE = HEADER.size          # 32
BODY_HEADER_SIZE = HEADER_SIZE - 4  # what the length field counts besides frames
#: largest message accepted from a peer; bigger lengths mean a broken stream
MAX_MESSAGE_SIZE = 1 << 30
_PRESENCE_FLAGS = FLUX_MSGFLAG_TOPIC | FLUX_MSGFLAG_PAYLOAD | FLUX_MSGFLAG_ROUTE
_VALID_TYPES = (FLUX_MSGTYPE_REQUEST, FLUX_MSGTYPE_RESPONSE, FLUX_MSGTYPE_EVENT,
                FLUX_MSGTYPE_CONTROL)
_TYPE_NAMES = {FLUX_MSGTYPE_REQUEST: "request", FLUX_MSGTYPE_RESPONSE: "response",
               FLUX_MSGTYPE_EVENT: "event", FLUX_MSGTYPE_CONTROL: "control"}

_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from


def _orjson() -> Any:
    """orjson if this process has loaded it; from then on the codec is orjson's."""
    global _dumps, _loads
    orjson = sys.modules.get("orjson")
    if orjson is not None:
        _dumps = orjson.dumps
        _loads = orjson.loads
    return orjson


def _dumps(obj: Any) -> bytes:
    orjson = _orjson()
    if orjson is not None:
        return orjson.dumps(obj)
    try:
        return jsonc.dumps(obj).encode()
    except ValueError as exc:  # NaN / Infinity: not JSON
        raise TypeError(str(exc)) from None


def _loads(data: bytes) -> Any:
    orjson = _orjson()
    if orjson is not None:
        return orjson.loads(data)
    return jsonc.loads(data, allow_nan=False)  # as orjson: no NaN, no Infinity


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def msg_typestr(msg_type: int) -> str:
    """Name of a message type: "request", "response", "event", "control"."""
    return _TYPE_NAMES.get(msg_type, "unknown")


class Message:
    """One Flux message.

    ``flags`` holds only the flags with meaning to services (noresponse,
    upstream, private, streaming, user1); the presence flags of RFC 3
    (topic, payload, route) follow from the fields when encoding.
    ``route`` is the route stack, most recent hop last.  ``from_wire``
    is true for a message decoded from bytes (a client's or another
    broker's), false for one built in this process.
    """

    __slots__ = ("type", "flags", "_topic", "userid", "rolemask", "nodeid",
                 "matchtag", "errnum", "seq", "control_type", "control_status",
                 "route", "from_wire", "_raw", "_obj", "_objsrc")

    def __init__(self, type_id: int = FLUX_MSGTYPE_REQUEST, topic: str | bytes = "",
                 payload: Any = None, *, flags: int = 0,
                 nodeid: int = FLUX_NODEID_ANY, matchtag: int = FLUX_MATCHTAG_NONE,
                 userid: int = FLUX_USERID_UNKNOWN, rolemask: int = 0,
                 errnum: int = 0, seq: int = 0,
                 route: list[str] | None = None) -> None:
        self.type = type_id
        self.flags = flags
        self._topic = topic if type(topic) is str else _topic_str(topic)
        self.userid = userid
        self.rolemask = rolemask
        self.nodeid = nodeid
        self.matchtag = matchtag
        self.errnum = errnum
        self.seq = seq
        self.control_type = 0
        self.control_status = 0
        self.route = route if route is not None else []
        self.from_wire = False
        self._raw: bytes | None = None
        self._obj: Any = _UNSET
        self._objsrc = False
        if payload is not None:
            self.payload = payload

    # -- topic -----------------------------------------------------------
    @property
    def topic(self) -> str:
        return self._topic

    @topic.setter
    def topic(self, value: str | bytes) -> None:
        self._topic = value if type(value) is str else _topic_str(value)

    # -- payload ---------------------------------------------------------
    @property
    def payload(self) -> Any:
        """The payload decoded as JSON (None when there is none).

        Decoding happens once; a payload set as an object is returned as
        that same object, so receivers must treat it as read-only.
        """
        obj = self._obj
        if obj is _UNSET:
            raw = self._raw
            if raw is None:
                return None
            try:
                obj = _loads(raw)
            except ValueError as exc:  # orjson.JSONDecodeError
                raise PayloadError(errno.EPROTO,
                                   f"{self._topic or 'message'}: payload is not valid JSON: {exc}"
                                   ) from None
            self._obj = obj
        return obj

    @payload.setter
    def payload(self, value: Any) -> None:
        self._objsrc = False
        if value is None:
            self._raw = None
            self._obj = _UNSET
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self._raw = bytes(value)
            self._obj = _UNSET
        elif isinstance(value, str):
            self._raw = value.encode()
            self._obj = _UNSET
        else:
            self._obj = value
            self._raw = None
            self._objsrc = True

    @property
    def raw(self) -> bytes | None:
        """The payload as bytes (JSON-encoded on first access if held as an object)."""
        raw = self._raw
        if raw is None and self._obj is not _UNSET:
            try:
                raw = self._raw = _dumps(self._obj)
            except TypeError as exc:
                raise TypeError(f"{self._topic or 'message'}: payload cannot be "
                                f"encoded as JSON: {exc}") from None
        return raw

    @property
    def payload_str(self) -> str | None:
        """The payload as text, or None.

        A payload set as an object reads back as ``json.dumps(obj)``
        (``", "`` and ``": "`` separators), as in Flux's bindings; one
        that arrived as bytes reads back as those bytes.
        """
        if self._objsrc:
            try:
                import json

                return json.dumps(self._obj)
            except TypeError as exc:
                raise TypeError(f"{self._topic or 'message'}: payload cannot be "
                                f"encoded as JSON: {exc}") from None
        raw = self.raw
        return None if raw is None else raw.decode("utf-8", errors="replace")

    @payload_str.setter
    def payload_str(self, value: str | bytes | None) -> None:
        if value is not None and not isinstance(value, (str, bytes, bytearray)):
            raise TypeError(f"payload_str must be a str, not {type(value).__name__}")
        self.payload = value

    def has_payload(self) -> bool:
        return self._raw is not None or self._obj is not _UNSET

    @property
    def errstr(self) -> str | None:
        """Error text of an error response (its payload), or None."""
        if self.errnum == 0:
            return None
        raw = self.raw
        return None if raw is None else raw.decode("utf-8", errors="replace")

    def decode(self) -> tuple[int, str, str | None]:
        """``(type, topic, payload text or None)``; an error response raises OSError."""
        if self.type == FLUX_MSGTYPE_RESPONSE and self.errnum:
            raise OSError(self.errnum, self.errstr or os.strerror(self.errnum))
        return self.type, self._topic, self.payload_str

    # -- misc ------------------------------------------------------------
    @property
    def type_str(self) -> str:
        return msg_typestr(self.type)

    @property
    def sender(self) -> str | None:
        """Identity of the original sender: the first hop of the route stack."""
        route = self.route
        return route[0] if route else None

    @classmethod
    def from_event_encode(cls, topic: str | bytes, payload: Any = None) -> "Message":
        """An event message with TOPIC and PAYLOAD (str as-is, else JSON)."""
        return cls(FLUX_MSGTYPE_EVENT, topic, payload)

    def copy(self) -> "Message":
        """A shallow copy with its own route stack."""
        new = Message.__new__(Message)
        new.type = self.type
        new.flags = self.flags
        new._topic = self._topic
        new.userid = self.userid
        new.rolemask = self.rolemask
        new.nodeid = self.nodeid
        new.matchtag = self.matchtag
        new.errnum = self.errnum
        new.seq = self.seq
        new.control_type = self.control_type
        new.control_status = self.control_status
        new.route = list(self.route)
        new.from_wire = self.from_wire
        new._raw = self._raw
        new._obj = self._obj
        new._objsrc = self._objsrc
        return new

    def __repr__(self) -> str:
        return (f"Message({self.type_str}, topic={self._topic!r}, flags=0x{self.flags:x}, "
                f"matchtag={self.matchtag}, nodeid={self.nodeid}, errnum={self.errnum}, "
                f"route={self.route})")


def _topic_str(topic: Any) -> str:
    """A topic given as bytes (Flux's bindings take both) as str; TypeError otherwise."""
    if isinstance(topic, (bytes, bytearray)):
        try:
            return bytes(topic).decode()
        except UnicodeDecodeError:
            raise ValueError(f"topic {bytes(topic)[:32]!r} is not valid UTF-8") from None
    if isinstance(topic, str):
        return str(topic)
    raise TypeError(f"topic must be a str or bytes, not {type(topic).__name__}")


def response_to(req: Message, payload: Any = None, errnum: int = 0) -> Message:
    """A response to request REQ (same topic, matchtag, streaming flag, a copy of its route).

    Built slot by slot: this is on the path of every module response.
    """
    msg = Message.__new__(Message)
    msg.type = FLUX_MSGTYPE_RESPONSE
    msg.flags = req.flags & FLUX_MSGFLAG_STREAMING
    msg._topic = req._topic
    msg.userid = req.userid
    msg.rolemask = req.rolemask
    msg.nodeid = FLUX_NODEID_ANY
    msg.matchtag = req.matchtag
    msg.errnum = errnum
    msg.seq = 0
    msg.control_type = 0
    msg.control_status = 0
    msg.route = req.route[:]
    msg.from_wire = False
    msg._raw = None
    if payload is None:
        msg._obj = _UNSET
        msg._objsrc = False
    elif type(payload) is dict or type(payload) is list:
        msg._obj = payload
        msg._objsrc = True
    else:
        msg._obj = _UNSET
        msg.payload = payload
    return msg


def encode(msg: Message) -> bytes:
    """Encode MSG to its wire form, length prefix included."""
    topic = msg._topic.encode()
    raw = msg.raw
    route = msg.route
    flags = msg.flags & ~_PRESENCE_FLAGS
    if topic:
        flags |= FLUX_MSGFLAG_TOPIC
    if raw is not None:
        flags |= FLUX_MSGFLAG_PAYLOAD
    else:
        raw = b""
    if route:
        flags |= FLUX_MSGFLAG_ROUTE
        parts = []
        for hop in route:
            b = hop.encode()
            if len(b) > 255:
                raise ValueError(f"route hop {hop[:16]!r}... is longer than 255 bytes")
            parts.append(len(b).to_bytes(1, "big"))
            parts.append(b)
        rbytes = b"".join(parts)
    else:
        rbytes = b""
    if len(topic) > 0xFFFF:
        raise ValueError(f"topic {msg._topic[:32]!r}... is longer than 65535 bytes")
    t = msg.type
    if t == FLUX_MSGTYPE_REQUEST:
        aux1 = msg.nodeid
        aux2 = msg.matchtag
    elif t == FLUX_MSGTYPE_RESPONSE:
        aux1 = msg.errnum
        aux2 = msg.matchtag
    elif t == FLUX_MSGTYPE_EVENT:
        aux1 = msg.seq
        aux2 = 0
    else:
        aux1 = msg.control_type
        aux2 = msg.control_status
    length = BODY_HEADER_SIZE + len(rbytes) + len(topic) + len(raw)
    header = _pack_header(length, MAGIC, VERSION, t, flags, msg.userid, msg.rolemask,
                          aux1, aux2, len(topic), len(route), len(raw))
    return b"".join((header, rbytes, topic, raw))


def _check(fields: tuple[int, ...]) -> int:
    """Validate unpacked header FIELDS; return the whole message size."""
    (length, magic, version, mtype, _flags, _u, _r, _a1, _a2,
     tlen, nroutes, plen) = fields
    if magic != MAGIC:
        raise FluxError(errno.EPROTO, f"bad message magic 0x{magic:02x} (expected 0x{MAGIC:02x})")
    if version != VERSION:
        raise FluxError(errno.EPROTO, f"unsupported message version {version} (expected {VERSION})")
    if mtype not in _VALID_TYPES:
        raise FluxError(errno.EPROTO, f"bad message type 0x{mtype:02x}")
    if length > MAX_MESSAGE_SIZE:
        raise FluxError(errno.EPROTO, f"message length {length} exceeds limit {MAX_MESSAGE_SIZE}")
    if length < BODY_HEADER_SIZE + tlen + plen + nroutes:
        raise FluxError(errno.EPROTO, f"message length {length} too small for topic length "
                                      f"{tlen}, payload length {plen} and {nroutes} routes")
    return length + 4


def check_header(buf: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Validate the header at OFFSET and return the whole message size.

    Raises FluxError(EPROTO) naming the bad field; this lets a stream
    reader drop a broken connection as soon as 32 bytes have arrived.
    """
    return _check(_unpack_header(buf, offset))


def _build(buf: bytes | bytearray | memoryview, offset: int, end: int,
           fields: tuple[int, ...]) -> Message:
    """The message whose (checked) header FIELDS are at BUF[OFFSET:END]."""
    (_length, _magic, _version, mtype, flags, userid, rolemask, aux1, aux2,
     tlen, nroutes, plen) = fields
    pos = offset + HEADER_SIZE
    route: list[str] = []
    if nroutes:
        for _ in range(nroutes):
            if pos >= end:
                raise FluxError(errno.EPROTO, "truncated message: route stack runs past the end")
            n = buf[pos]
            pos += 1
            if pos + n > end:
                raise FluxError(errno.EPROTO, "truncated message: route hop runs past the end")
            try:
                route.append(str(buf[pos:pos + n], "utf-8"))
            except UnicodeDecodeError:
                raise FluxError(errno.EPROTO, "route hop is not valid UTF-8") from None
            pos += n
    if pos + tlen + plen != end:
        raise FluxError(errno.EPROTO, f"message size mismatch: route stack, topic ({tlen}) and "
                                      f"payload ({plen}) do not fill the frame")
    try:
        topic = str(buf[pos:pos + tlen], "utf-8")
    except UnicodeDecodeError:
        raise FluxError(errno.EPROTO, "message topic is not valid UTF-8") from None
    pos += tlen
    msg = Message.__new__(Message)
    msg.type = mtype
    msg.flags = flags & ~_PRESENCE_FLAGS
    msg._topic = topic
    msg.userid = userid
    msg.rolemask = rolemask
    msg.route = route
    msg.from_wire = True
    msg._obj = _UNSET
    msg._objsrc = False
    msg._raw = bytes(buf[pos:pos + plen]) if flags & FLUX_MSGFLAG_PAYLOAD else None
    msg.seq = 0
    msg.control_type = 0
    msg.control_status = 0
    if mtype == FLUX_MSGTYPE_REQUEST:
        msg.nodeid = aux1
        msg.matchtag = aux2
        msg.errnum = 0
    elif mtype == FLUX_MSGTYPE_RESPONSE:
        msg.nodeid = FLUX_NODEID_ANY
        msg.errnum = aux1
        msg.matchtag = aux2
    else:
        msg.nodeid = FLUX_NODEID_ANY
        msg.matchtag = 0
        msg.errnum = 0
        if mtype == FLUX_MSGTYPE_EVENT:
            msg.seq = aux1
        else:
            msg.control_type = aux1
            msg.control_status = aux2
    return msg


def decode(buf: bytes | bytearray | memoryview, offset: int = 0,
           end: int | None = None) -> Message:
    """Decode one message from BUF[OFFSET:END] (END defaults to the buffer end).

    Raises FluxError(EPROTO) naming what is wrong for a truncated or
    malformed message.
    """
    if end is None:
        end = len(buf)
    avail = end - offset
    if avail < HEADER_SIZE:
        raise FluxError(errno.EPROTO, f"truncated message: {avail} bytes, header needs {HEADER_SIZE}")
    fields = _unpack_header(buf, offset)
    size = _check(fields)
    if size != avail:
        raise FluxError(errno.EPROTO, f"message size mismatch: header says {size} bytes, "
                                      f"frame has {avail}")
    return _build(buf, offset, end, fields)


class StreamDecoder:
    """Split a byte stream into messages, many per read.

    ``feed(data)`` returns the complete messages now available.  A bad
    header raises FluxError(EPROTO) at once, before the rest of a bogus
    "message" is waited for; the caller should drop the connection.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        if buf:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        out: list[Message] = []
        off = 0
        n = len(view)
        while n - off >= HEADER_SIZE:
            fields = _unpack_header(view, off)
            size = _check(fields)
            if n - off < size:
                break
            out.append(_build(view, off, off + size, fields))
            off += size
        if view is buf:
            del buf[:off]
        elif off < n:
            buf += view[off:]
        return out

    def pending(self) -> int:
        """Bytes held back waiting for the rest of a message."""
        return len(self._buf)


def encode_many(msgs: Iterable[Message]) -> bytes:
    """Encode several messages into one buffer for a single write."""
    return b"".join([encode(m) for m in msgs])


def __getattr__(name: str) -> Any:
    # MessageWatcher needs the client reactor; load it only when asked for.
    if name == "MessageWatcher":
        from flux.core.watchers import MessageWatcher

        return MessageWatcher
    raise AttributeError(f"module 'flux.message' has no attribute {name!r}")


__all__ = ["Message", "response_to", "StreamDecoder", "encode", "decode", "encode_many",
           "check_header", "msg_typestr", "HEADER_SIZE", "MAX_MESSAGE_SIZE"]
