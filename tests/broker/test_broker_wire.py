"""broker.wire: forwarding a message by rewriting its header and route stack only."""
from __future__ import annotations

import errno
import random

import pytest

from broker import wire
from flux.constants import (
    FLUX_MSGFLAG_NORESPONSE,
    FLUX_MSGFLAG_STREAMING,
    FLUX_MSGTYPE_CONTROL,
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_ROLE_LOCAL,
    FLUX_ROLE_OWNER,
)
from flux.errors import FluxError
from flux.message import Message, decode, encode


def sample_messages() -> list[Message]:
    req = Message(FLUX_MSGTYPE_REQUEST, "kvs.lookup", '{"key": "a.b",  "x":[1, 2]}', nodeid=31,
                  matchtag=7, userid=1000, rolemask=FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL,
                  flags=FLUX_MSGFLAG_STREAMING, route=["client-uuid", "0", "1"])
    bare = Message(FLUX_MSGTYPE_REQUEST, "broker.ping", nodeid=3, flags=FLUX_MSGFLAG_NORESPONSE)
    resp = Message(FLUX_MSGTYPE_RESPONSE, "job-info.eventlog", b"\xff not json", matchtag=99,
                   errnum=0, route=["c", "0", "1", "3"], flags=FLUX_MSGFLAG_STREAMING)
    err = Message(FLUX_MSGTYPE_RESPONSE, "a.b", "No route", matchtag=2, errnum=errno.EHOSTUNREACH,
                  route=["x"])
    ev = Message(FLUX_MSGTYPE_EVENT, "heartbeat.pulse", {"n": 1}, seq=12)
    ctl = Message(FLUX_MSGTYPE_CONTROL, "", {"rank": 3})
    ctl.control_type = 4
    return [req, bare, resp, err, ev, ctl]


def fields(msg: Message) -> tuple:
    return (msg.type, msg.flags, msg.topic, msg.raw, msg.userid, msg.rolemask, msg.nodeid,
            msg.matchtag, msg.errnum, msg.seq, msg.control_type, msg.control_status, msg.route)


@pytest.mark.parametrize("msg", sample_messages(), ids=lambda m: f"{m.type_str}:{m.topic}")
def test_peek_reads_what_decode_reads(msg):
    frame = encode(msg)
    f, route_end, last = wire.peek(frame)
    assert f[wire.F_TYPE] == msg.type and f[wire.F_USERID] == msg.userid
    assert wire.route_of(frame, (f, route_end, last)) == wire.route_stack(msg.route)
    assert wire.parse_route(wire.route_of(frame, (f, route_end, last))) == msg.route
    assert wire.topic_of(frame, (f, route_end, last)) == msg.topic.encode()
    assert wire.last_hop(frame, (f, route_end, last)) == \
        (msg.route[-1].encode() if msg.route else None)


@pytest.mark.parametrize("msg", sample_messages(), ids=lambda m: f"{m.type_str}:{m.topic}")
def test_push_hop_is_byte_identical_to_encoding_the_longer_route(msg):
    frame = encode(msg)
    out = wire.push_hop(frame, wire.peek(frame), wire.hop_bytes("15"))
    # what the general path (decode, push the hop, drop LOCAL, encode) would send
    expected = decode(frame)
    expected.route.append("15")
    expected.rolemask &= ~FLUX_ROLE_LOCAL
    assert out == encode(expected)
    assert fields(decode(out)) == fields(expected)


@pytest.mark.parametrize("msg", [m for m in sample_messages() if m.route],
                         ids=lambda m: f"{m.type_str}:{m.topic}")
def test_pop_hop_is_byte_identical_to_encoding_the_shorter_route(msg):
    frame = encode(msg)
    out = wire.pop_hop(frame, wire.peek(frame))
    expected = decode(frame)
    expected.route.pop()
    expected.rolemask &= ~FLUX_ROLE_LOCAL
    assert out == encode(expected)      # the ROUTE flag goes with the last hop too


def test_push_then_pop_gives_the_frame_back():
    msg = sample_messages()[0]
    msg.rolemask = FLUX_ROLE_OWNER
    frame = encode(msg)
    pushed = wire.push_hop(frame, wire.peek(frame), wire.hop_bytes("7"))
    assert wire.pop_hop(pushed, wire.peek(pushed)) == frame


def test_hop_bytes_refuses_a_long_hop():
    assert wire.hop_bytes("abc") == b"\x03abc"
    with pytest.raises(ValueError, match="longer than 255"):
        wire.hop_bytes("x" * 256)


@pytest.mark.parametrize("frame, what", [
    (b"", "truncated message"),
    (b"\x00" * 10, "truncated message"),
    (b"garbage" * 10, "bad message magic"),
])
def test_peek_refuses_malformed_frames(frame, what):
    with pytest.raises(FluxError, match=what) as exc:
        wire.peek(frame)
    assert exc.value.errno == errno.EPROTO


def test_peek_refuses_each_broken_field():
    good = encode(sample_messages()[0])

    def patched(offset: int, value: bytes) -> bytes:
        return good[:offset] + value + good[offset + len(value):]

    for frame, what in [
        (patched(5, b"\x02"), "unsupported message version"),
        (patched(6, b"\x03"), "bad message type"),
        (good + b"x", "message size mismatch"),
        (good[:-1], "message size mismatch"),
        (patched(26, b"\x00\x09"), "route"),           # more hops than the frame holds
        (patched(24, b"\x00\x01"), "do not fill the frame"),   # topic length off
        (patched(32, b"\xf0"), "route hop runs past the end"),
    ]:
        with pytest.raises(FluxError, match=what):
            wire.peek(frame)


def test_peek_accepts_exactly_what_decode_accepts_but_utf8():
    """Random corruptions: peek refuses a frame iff decode does (decode also checks UTF-8)."""
    rng = random.Random(14)
    frames = [encode(m) for m in sample_messages()]
    for _ in range(3000):
        frame = bytearray(rng.choice(frames))
        for _ in range(rng.randint(1, 3)):
            choice = rng.random()
            if choice < 0.6 and frame:
                frame[rng.randrange(min(len(frame), 48))] = rng.randrange(256)
            elif choice < 0.8 and frame:
                del frame[rng.randrange(len(frame)):]
            else:
                frame += bytes(rng.randrange(4))
        data = bytes(frame)
        try:
            decode(data)
            decoded = True
        except FluxError:
            decoded = False
        try:
            wire.peek(data)
            peeked = True
        except FluxError:
            peeked = False
        if decoded:
            assert peeked, data
        elif peeked:
            # only an undecodable hop or topic passes peek: the receiver that decodes refuses it
            with pytest.raises(FluxError, match="UTF-8"):
                decode(data)
