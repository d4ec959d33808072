"""Forwarding an overlay message without decoding it (the layout of specs/messages.md).

A broker between rank 0 and a far rank only passes requests down and
responses up: it needs the header (type, flags, nodeid or errnum,
matchtag) and the route stack, never the topic or the payload.  Decoding
the whole message into a ``flux.message.Message`` and encoding it again at
every hop was most of a hop's Python time, so the overlay reads the header
with :func:`peek` and rewrites only the header and the route stack
(:func:`push_hop`, :func:`pop_hop`); the topic and payload bytes go on as
they came.  Pure functions over bytes.

:func:`peek` checks everything about the frame's structure that
``flux.message.decode`` checks (magic, version, type, the sizes adding up
to the frame, each route hop inside it), so a malformed frame is refused
here as it would be there; only UTF-8 validity of the route hops and
topic is left to the broker that finally decodes the message.
"""
from __future__ import annotations

import errno

from flux.constants import (
    FLUX_MSGFLAG_ROUTE,
    FLUX_MSGTYPE_CONTROL,
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_ROLE_LOCAL,
)
from flux.errors import FluxError
from flux.message import HEADER, HEADER_SIZE, MAGIC, VERSION

_unpack = HEADER.unpack_from
_pack = HEADER.pack
_NOT_LOCAL = ~FLUX_ROLE_LOCAL & 0xFFFFFFFF
_TYPES = frozenset((FLUX_MSGTYPE_REQUEST, FLUX_MSGTYPE_RESPONSE, FLUX_MSGTYPE_EVENT,
                    FLUX_MSGTYPE_CONTROL))

#: indexes into the header fields tuple that :func:`peek` returns first
F_LENGTH, F_MAGIC, F_VERSION, F_TYPE, F_FLAGS, F_USERID, F_ROLEMASK, F_AUX1, F_AUX2, \
    F_TLEN, F_NROUTES, F_PLEN = range(12)

#: a peeked frame: (header fields, offset just past the route stack,
#: offset of the last route hop's length byte, or -1 with no route)
Peek = tuple[tuple[int, ...], int, int]


def peek(frame: bytes) -> Peek:
    """The header fields of FRAME, where its route stack ends and where its last hop starts.

    Raises FluxError(EPROTO) naming what is wrong with a malformed frame.
    """
    n = len(frame)
    if n < HEADER_SIZE:
        raise FluxError(errno.EPROTO, f"truncated message: {n} bytes, header needs {HEADER_SIZE}")
    fields = _unpack(frame)
    if fields[F_MAGIC] != MAGIC:
        raise FluxError(errno.EPROTO, f"bad message magic 0x{fields[F_MAGIC]:02x} "
                                      f"(expected 0x{MAGIC:02x})")
    if fields[F_VERSION] != VERSION:
        raise FluxError(errno.EPROTO, f"unsupported message version {fields[F_VERSION]} "
                                      f"(expected {VERSION})")
    if fields[F_TYPE] not in _TYPES:
        raise FluxError(errno.EPROTO, f"bad message type 0x{fields[F_TYPE]:02x}")
    if fields[F_LENGTH] + 4 != n:
        raise FluxError(errno.EPROTO, f"message size mismatch: header says "
                                      f"{fields[F_LENGTH] + 4} bytes, frame has {n}")
    pos = HEADER_SIZE
    last = -1
    for _ in range(fields[F_NROUTES]):
        if pos >= n:
            raise FluxError(errno.EPROTO, "truncated message: route stack runs past the end")
        last = pos
        pos += 1 + frame[pos]
        if pos > n:
            raise FluxError(errno.EPROTO, "truncated message: route hop runs past the end")
    if pos + fields[F_TLEN] + fields[F_PLEN] != n:
        raise FluxError(errno.EPROTO, f"message size mismatch: route stack, topic "
                                      f"({fields[F_TLEN]}) and payload ({fields[F_PLEN]}) do not "
                                      "fill the frame")
    return fields, pos, last


def hop_bytes(hop: str) -> bytes:
    """HOP as it sits in a route stack: its length (one byte), then its UTF-8 bytes."""
    b = hop.encode()
    if len(b) > 255:
        raise ValueError(f"route hop {hop[:16]!r}... is longer than 255 bytes")
    return bytes((len(b),)) + b


def route_stack(hops: list[str]) -> bytes:
    """The route stack HOPS (most recent last) in wire form: the bytes :func:`route_of` returns."""
    return b"".join([hop_bytes(h) for h in hops])


def route_of(frame: bytes, p: Peek) -> bytes:
    """The wire bytes of FRAME's route stack (a key that names the route, as a tuple would)."""
    return frame[HEADER_SIZE:p[1]]


def parse_route(stack: bytes) -> list[str]:
    """The hops of a route stack in wire form (the inverse of :func:`route_stack`)."""
    hops = []
    pos = 0
    while pos < len(stack):
        n = stack[pos]
        hops.append(stack[pos + 1:pos + 1 + n].decode("utf-8", errors="replace"))
        pos += 1 + n
    return hops


def topic_of(frame: bytes, p: Peek) -> bytes:
    """FRAME's topic bytes."""
    return frame[p[1]:p[1] + p[0][F_TLEN]]


def last_hop(frame: bytes, p: Peek) -> bytes | None:
    """The most recent hop of FRAME's route stack (bytes), or None with no route."""
    start = p[2]
    return None if start < 0 else frame[start + 1:p[1]]


def push_hop(frame: bytes, p: Peek, hop: bytes) -> bytes:
    """FRAME with HOP (as :func:`hop_bytes` makes it) pushed on its route stack.

    The role LOCAL is cleared too: the message has crossed to another broker."""
    f = p[0]
    end = p[1]
    header = _pack(f[F_LENGTH] + len(hop), MAGIC, VERSION, f[F_TYPE], f[F_FLAGS] | FLUX_MSGFLAG_ROUTE,
                   f[F_USERID], f[F_ROLEMASK] & _NOT_LOCAL, f[F_AUX1], f[F_AUX2], f[F_TLEN],
                   f[F_NROUTES] + 1, f[F_PLEN])
    return b"".join((header, frame[HEADER_SIZE:end], hop, frame[end:]))


def pop_hop(frame: bytes, p: Peek) -> bytes:
    """FRAME without the last hop of its route stack (which must have one); LOCAL cleared."""
    f = p[0]
    end = p[1]
    start = p[2]
    nroutes = f[F_NROUTES] - 1
    flags = f[F_FLAGS] if nroutes else f[F_FLAGS] & ~FLUX_MSGFLAG_ROUTE
    header = _pack(f[F_LENGTH] - (end - start), MAGIC, VERSION, f[F_TYPE], flags,
                   f[F_USERID], f[F_ROLEMASK] & _NOT_LOCAL, f[F_AUX1], f[F_AUX2], f[F_TLEN],
                   nroutes, f[F_PLEN])
    return b"".join((header, frame[HEADER_SIZE:start], frame[end:]))


__all__ = ["peek", "push_hop", "pop_hop", "hop_bytes", "route_stack", "route_of", "parse_route",
           "topic_of", "last_hop", "Peek"]
