"""The message codec (specs/messages.md): vectors, round trips, framing, bad input."""
from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.constants import (
    FLUX_MSGFLAG_NORESPONSE,
    FLUX_MSGFLAG_PRIVATE,
    FLUX_MSGFLAG_STREAMING,
    FLUX_MSGFLAG_UPSTREAM,
    FLUX_MSGTYPE_CONTROL,
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_NODEID_ANY,
)
from flux.errors import FluxError
from flux.message import (
    HEADER_SIZE,
    MAX_MESSAGE_SIZE,
    Message,
    StreamDecoder,
    decode,
    encode,
    encode_many,
    msg_typestr,
)

VECTORS = {
    "request": "000000278e010101000003e800000001ffffffff00000007000b00000000000062726f6b65722e70696e67",
    "stream_response": "0000002f8e01024bffffffff000000000000000000000003000700020000000702616201316b76732e6765747b2261223a317d",
    "error_response": "0000002e8e010203ffffffff000000000000000200000003000700000000000b6b76732e6765746e6f2073756368206b6579",
    "event": "0000001e8e01042100000005000000000000002a0000000000020000000000006862",
    "control": "0000001c8e010800ffffffff0000000000000001000000020000000000000000",
}


def test_vector_request():
    m = Message(FLUX_MSGTYPE_REQUEST, "broker.ping", matchtag=7, userid=1000, rolemask=1)
    assert encode(m).hex() == VECTORS["request"]
    d = decode(bytes.fromhex(VECTORS["request"]))
    assert (d.type, d.topic, d.matchtag, d.nodeid, d.userid, d.rolemask) == \
        (FLUX_MSGTYPE_REQUEST, "broker.ping", 7, FLUX_NODEID_ANY, 1000, 1)
    assert d.payload is None and d.route == []


def test_vector_streaming_response_with_route():
    m = Message(FLUX_MSGTYPE_RESPONSE, "kvs.get", b'{"a":1}', matchtag=3, route=["ab", "1"],
                flags=FLUX_MSGFLAG_STREAMING)
    assert encode(m).hex() == VECTORS["stream_response"]
    d = decode(bytes.fromhex(VECTORS["stream_response"]))
    assert d.route == ["ab", "1"] and d.sender == "ab"
    assert d.flags == FLUX_MSGFLAG_STREAMING
    assert d.payload == {"a": 1}


def test_vector_error_response():
    d = decode(bytes.fromhex(VECTORS["error_response"]))
    assert d.errnum == errno.ENOENT and d.errstr == "no such key"
    m = Message(FLUX_MSGTYPE_RESPONSE, "kvs.get", "no such key", matchtag=3, errnum=2)
    assert encode(m).hex() == VECTORS["error_response"]


def test_vector_event_and_control():
    d = decode(bytes.fromhex(VECTORS["event"]))
    assert (d.type, d.topic, d.seq, d.userid) == (FLUX_MSGTYPE_EVENT, "hb", 42, 5)
    assert d.flags == FLUX_MSGFLAG_PRIVATE
    m = Message(FLUX_MSGTYPE_EVENT, "hb", seq=42, flags=FLUX_MSGFLAG_PRIVATE, userid=5)
    assert encode(m).hex() == VECTORS["event"]
    c = decode(bytes.fromhex(VECTORS["control"]))
    assert (c.type, c.control_type, c.control_status) == (FLUX_MSGTYPE_CONTROL, 1, 2)


def test_type_names():
    assert [msg_typestr(t) for t in (1, 2, 4, 8, 3)] == \
        ["request", "response", "event", "control", "unknown"]
    assert Message(FLUX_MSGTYPE_EVENT).type_str == "event"


def test_payload_object_is_handed_over_without_copy():
    body = {"k": [1, 2]}
    m = Message(FLUX_MSGTYPE_REQUEST, "a.b", body)
    assert m.payload is body
    assert m.raw == b'{"k":[1,2]}'
    m.payload = "text"
    assert m.raw == b"text" and m.payload_str == "text"
    m.payload = None
    assert not m.has_payload() and m.raw is None


def test_bad_json_payload_names_topic():
    m = decode(encode(Message(FLUX_MSGTYPE_REQUEST, "kvs.put", b"{nope")))
    with pytest.raises(FluxError) as exc:
        _ = m.payload
    assert exc.value.errno == errno.EPROTO
    assert "kvs.put: payload is not valid JSON" in str(exc.value)


def test_unencodable_payload_names_topic():
    m = Message(FLUX_MSGTYPE_REQUEST, "kvs.put", {"x": object()})
    with pytest.raises(TypeError, match="kvs.put: payload cannot be encoded as JSON"):
        encode(m)


def test_copy_has_own_route():
    m = Message(FLUX_MSGTYPE_REQUEST, "a.b", {"x": 1}, route=["c1"])
    c = m.copy()
    c.route.append("0")
    assert m.route == ["c1"] and c.route == ["c1", "0"] and c.payload is m.payload


messages = st.builds(
    lambda t, topic, flags, u, r, a1, a2, route, payload: _mk(t, topic, flags, u, r, a1, a2,
                                                              route, payload),
    st.sampled_from([FLUX_MSGTYPE_REQUEST, FLUX_MSGTYPE_RESPONSE, FLUX_MSGTYPE_EVENT,
                     FLUX_MSGTYPE_CONTROL]),
    st.text(max_size=40),
    st.sampled_from([0, FLUX_MSGFLAG_STREAMING, FLUX_MSGFLAG_NORESPONSE, FLUX_MSGFLAG_PRIVATE,
                     FLUX_MSGFLAG_UPSTREAM | FLUX_MSGFLAG_STREAMING]),
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
    st.lists(st.text(min_size=1, max_size=20), max_size=5),
    st.one_of(st.none(), st.binary(max_size=300)),
)


def _mk(t, topic, flags, u, r, a1, a2, route, payload):
    m = Message(t, topic, payload, flags=flags, userid=u, rolemask=r, route=route)
    if t == FLUX_MSGTYPE_REQUEST:
        m.nodeid, m.matchtag = a1, a2
    elif t == FLUX_MSGTYPE_RESPONSE:
        m.errnum, m.matchtag = a1, a2
    elif t == FLUX_MSGTYPE_EVENT:
        m.seq = a1
    else:
        m.control_type, m.control_status = a1, a2
    return m


def _fields(m):
    return (m.type, m.topic, m.flags, m.userid, m.rolemask, m.nodeid, m.matchtag, m.errnum,
            m.seq, m.control_type, m.control_status, m.route, m.raw)


@given(messages)
def test_roundtrip(m):
    data = encode(m)
    assert len(data) == struct.unpack("!I", data[:4])[0] + 4
    assert _fields(decode(data)) == _fields(m)


@given(st.lists(messages, min_size=1, max_size=8), st.lists(st.integers(1, 64), max_size=20))
def test_stream_decoder_any_split(msgs, cuts):
    data = encode_many(msgs)
    dec = StreamDecoder()
    out = []
    pos = 0
    for cut in cuts:
        out += dec.feed(data[pos:pos + cut])
        pos += cut
    out += dec.feed(data[pos:])
    assert [_fields(m) for m in out] == [_fields(m) for m in msgs]
    assert dec.pending() == 0


def _good() -> bytearray:
    return bytearray(encode(Message(FLUX_MSGTYPE_REQUEST, "a.b", b"xyz", route=["r1"])))


@pytest.mark.parametrize("mutate,expect", [
    (lambda b: b.__setitem__(4, 0x12), "bad message magic 0x12 (expected 0x8e)"),
    (lambda b: b.__setitem__(5, 9), "unsupported message version 9"),
    (lambda b: b.__setitem__(6, 0x03), "bad message type 0x03"),
    (lambda b: b.__setitem__(slice(0, 4), struct.pack("!I", MAX_MESSAGE_SIZE + 1)),
     "exceeds limit"),
    (lambda b: b.__setitem__(slice(0, 4), struct.pack("!I", 29)), "too small for topic length"),
])
def test_bad_header_is_named(mutate, expect):
    data = _good()
    mutate(data)
    with pytest.raises(FluxError) as exc:
        decode(bytes(data))
    assert exc.value.errno == errno.EPROTO
    assert expect in str(exc.value)
    # a stream reader refuses it as soon as the header is in
    with pytest.raises(FluxError, match=expect.split(" (")[0]):
        StreamDecoder().feed(bytes(data[:HEADER_SIZE]))


def test_truncated_message():
    data = _good()
    with pytest.raises(FluxError, match="truncated message: 10 bytes, header needs 32"):
        decode(bytes(data[:10]))
    with pytest.raises(FluxError, match="message size mismatch: header says"):
        decode(bytes(data[:-1]))


def test_inconsistent_part_lengths():
    data = _good()
    # claim a longer topic than the frame holds (total length unchanged)
    data[24:26] = struct.pack("!H", 5)
    with pytest.raises(FluxError, match="do not fill the frame"):
        decode(bytes(data))


def test_bad_utf8_topic_and_route():
    data = _good()
    idx = data.index(b"a.b")
    data[idx] = 0xFF
    with pytest.raises(FluxError, match="message topic is not valid UTF-8"):
        decode(bytes(data))
    data = _good()
    idx = data.index(b"r1")
    data[idx] = 0xFF
    with pytest.raises(FluxError, match="route hop is not valid UTF-8"):
        decode(bytes(data))


def test_route_hop_too_long_refused_on_encode():
    with pytest.raises(ValueError, match="longer than 255 bytes"):
        encode(Message(FLUX_MSGTYPE_REQUEST, "a.b", route=["x" * 256]))


def test_partial_message_waits_for_rest():
    data = bytes(_good())
    dec = StreamDecoder()
    assert dec.feed(data[:HEADER_SIZE + 1]) == []
    assert dec.pending() == HEADER_SIZE + 1
    (m,) = dec.feed(data[HEADER_SIZE + 1:])
    assert m.topic == "a.b" and m.raw == b"xyz"
