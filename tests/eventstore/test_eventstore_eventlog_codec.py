"""RFC 18 eventlog codec: vectors from specs/eventlog.md, errors, round trips."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore.eventlog import (
    DecodeResult,
    EventlogDecoder,
    EventlogError,
    decode,
    decode_events,
    decode_line,
    encode_entries,
    encode_entry,
    encode_event,
    split_complete,
    validate_event,
)

# specs/eventlog.md, vector V1 (flux-core t0033 first line)
SUBMIT_LINE = (b'{"timestamp":1738774194.078433,"name":"submit",'
               b'"context":{"userid":1001,"urgency":16,"flags":0,"version":1}}\n')
SUBMIT_EVENT = {"timestamp": 1738774194.078433, "name": "submit",
                "context": {"userid": 1001, "urgency": 16, "flags": 0, "version": 1}}


# ---------------------------------------------------------------- encoding

def test_encode_event_matches_vector_bytes() -> None:
    ctx = {"userid": 1001, "urgency": 16, "flags": 0, "version": 1}
    assert encode_event("submit", ctx, 1738774194.078433) == SUBMIT_LINE


def test_encode_without_context_omits_key() -> None:
    assert encode_event("clean", None, 1738774194.1854289) == \
        b'{"timestamp":1738774194.1854289,"name":"clean"}\n'


def test_encode_keeps_empty_context() -> None:
    assert encode_event("memo", {}, 5) == b'{"timestamp":5,"name":"memo","context":{}}\n'


def test_encode_is_one_line_even_with_newlines_in_strings() -> None:
    line = encode_event("log", {"message": "a\nb"}, 1.5)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert decode_line(line)["context"]["message"] == "a\nb"


def test_encode_keeps_non_ascii_as_utf8() -> None:
    line = encode_event("memo", {"test": "ƒ Φ Ψ Ω Ö"}, 1.0)
    assert "ƒ Φ Ψ Ω Ö".encode() in line


def test_encode_default_timestamp_is_now() -> None:
    import time

    before = time.time()
    event = decode_line(encode_event("start"))
    assert before <= event["timestamp"] <= time.time()


def test_encode_entry_and_entries() -> None:
    assert encode_entry(SUBMIT_EVENT) == SUBMIT_LINE
    block = encode_entries([SUBMIT_EVENT, {"timestamp": 2, "name": "depend"}])
    assert block == SUBMIT_LINE + b'{"timestamp":2,"name":"depend"}\n'


@pytest.mark.parametrize("kwargs, message", [
    ({"name": ""}, "name must be a non-empty string"),
    ({"name": 5}, "name must be a non-empty string"),
    ({"name": "x", "timestamp": 0}, "timestamp must be a finite number > 0"),
    ({"name": "x", "timestamp": -1.0}, "timestamp must be a finite number > 0"),
    ({"name": "x", "timestamp": math.inf}, "timestamp must be a finite number > 0"),
    ({"name": "x", "timestamp": math.nan}, "timestamp must be a finite number > 0"),
    ({"name": "x", "timestamp": "1"}, "timestamp must be a number, not string"),
    ({"name": "x", "timestamp": True}, "timestamp must be a number, not boolean"),
    ({"name": "x", "context": [1]}, "context must be an object, not array"),
    ({"name": "x", "context": {1: 2}}, "context is not JSON-encodable"),
    ({"name": "x", "context": {"a": object()}}, "context is not JSON-encodable"),
])
def test_encode_rejects_bad_event_naming_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(EventlogError, match=message):
        encode_event(**kwargs)


@pytest.mark.parametrize("entry, message", [
    ({"name": "x"}, "missing required key 'timestamp'"),
    ({"timestamp": 1}, "missing required key 'name'"),
    ({"timestamp": 1, "name": "x", "extra": 1}, "unknown key 'extra'"),
    ([1, 2], "event must be an object, not array"),
])
def test_encode_entry_rejects_bad_mapping(entry: object, message: str) -> None:
    with pytest.raises(EventlogError, match=message):
        encode_entry(entry)  # type: ignore[arg-type]


def test_error_is_a_valueerror_with_einval() -> None:
    import errno

    with pytest.raises(ValueError) as info:
        encode_event("")
    assert info.value.errno == errno.EINVAL


# ---------------------------------------------------------------- decoding

def test_decode_vector() -> None:
    result = decode(SUBMIT_LINE)
    assert result == DecodeResult([SUBMIT_EVENT])
    assert not result.torn


def test_decode_accepts_str_and_keeps_key_order() -> None:
    events = decode_events(SUBMIT_LINE.decode())
    assert list(events[0]["context"]) == ["userid", "urgency", "flags", "version"]


def test_decode_empty_log_is_no_events() -> None:
    assert decode(b"") == DecodeResult([])


def test_torn_tail_is_reported_not_mixed_in() -> None:
    data = SUBMIT_LINE + b'{"timestamp":2,"na'
    result = decode(data)
    assert result.events == [SUBMIT_EVENT]
    assert result.torn and result.torn_offset == len(SUBMIT_LINE)
    assert result.torn_tail == b'{"timestamp":2,"na'


def test_torn_tail_that_is_valid_json_is_still_torn() -> None:
    # An event without its newline was not completely appended.
    data = SUBMIT_LINE + b'{"timestamp":2,"name":"depend"}'
    result = decode(data)
    assert result.events == [SUBMIT_EVENT] and result.torn


def test_strict_decode_raises_on_torn_tail_with_line_and_offset() -> None:
    data = SUBMIT_LINE + b'{"timest'
    with pytest.raises(EventlogError) as info:
        decode(data, strict=True)
    err = info.value
    assert err.line == 2 and err.offset == len(SUBMIT_LINE)
    assert "torn last line (8 bytes" in str(err)
    assert err.events == [SUBMIT_EVENT]
    with pytest.raises(EventlogError, match="line 2"):
        decode_events(data)


@pytest.mark.parametrize("line, message", [
    (b"", "empty line"),
    (b"   ", "invalid JSON"),
    (b"{not json}", "invalid JSON"),
    (b"[1,2]", "event must be a JSON object, not array"),
    (b'"submit"', "event must be a JSON object, not string"),
    (b'{"name":"x"}', "missing required key 'timestamp'"),
    (b'{"timestamp":1}', "missing required key 'name'"),
    (b'{"timestamp":1,"name":"x","foo":1}', "unknown key 'foo'"),
    (b'{"timestamp":"1","name":"x"}', "timestamp must be a number, not string"),
    (b'{"timestamp":true,"name":"x"}', "timestamp must be a number, not boolean"),
    (b'{"timestamp":0,"name":"x"}', r"timestamp must be > 0 \(got 0\)"),
    (b'{"timestamp":-3.5,"name":"x"}', "timestamp must be > 0"),
    (b'{"timestamp":1,"name":7}', "name must be a string, not number"),
    (b'{"timestamp":1,"name":""}', "name must not be empty"),
    (b'{"timestamp":1,"name":"x","context":[]}', "context must be a JSON object, not array"),
    (b'{"timestamp":1,"name":"x","context":null}', "context must be a JSON object, not null"),
    # the RFC 18 example's typo: unquoted key
    (b'{"timestamp":1552593348.088391,"name":"alloc",context:{"note":"x"}}', "invalid JSON"),
])
def test_bad_line_error_names_line_offset_and_problem(line: bytes, message: str) -> None:
    data = SUBMIT_LINE + SUBMIT_LINE + line + b"\n" + SUBMIT_LINE
    with pytest.raises(EventlogError, match=message) as info:
        decode(data)
    err = info.value
    assert err.line == 3
    assert err.offset == 2 * len(SUBMIT_LINE)
    assert str(err).startswith(f"eventlog line 3 (byte {2 * len(SUBMIT_LINE)}): ")
    assert err.events == [SUBMIT_EVENT, SUBMIT_EVENT]


def test_two_objects_on_one_line_is_an_error() -> None:
    with pytest.raises(EventlogError, match="line 1.*invalid JSON"):
        decode(b'{"timestamp":1,"name":"a"}{"timestamp":2,"name":"b"}\n')


def test_event_split_across_lines_is_an_error() -> None:
    with pytest.raises(EventlogError, match="line 1.*invalid JSON"):
        decode(b'{"timestamp":1,\n"name":"a"}\n')


def test_validate_event() -> None:
    validate_event(SUBMIT_EVENT)
    with pytest.raises(EventlogError, match="name must not be empty"):
        validate_event({"timestamp": 1, "name": ""})


def test_decode_line() -> None:
    assert decode_line(SUBMIT_LINE) == SUBMIT_EVENT
    assert decode_line(SUBMIT_LINE[:-1].decode()) == SUBMIT_EVENT
    with pytest.raises(EventlogError, match="embedded newline"):
        decode_line(b'{"timestamp":1,\n"name":"a"}')
    with pytest.raises(EventlogError, match="line 9 .*empty line"):
        decode_line(b"\n", lineno=9)


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(TypeError, match="bytes or str, not int"):
        decode(5)  # type: ignore[arg-type]


def test_split_complete() -> None:
    assert split_complete(b"a\nb\nc") == (b"a\nb\n", b"c")
    assert split_complete(b"abc") == (b"", b"abc")
    assert split_complete("a\n") == (b"a\n", b"")


# ---------------------------------------------------------------- streaming

def test_decoder_keeps_partial_line_until_newline() -> None:
    dec = EventlogDecoder()
    assert dec.feed(SUBMIT_LINE[:10]) == []
    assert dec.pending == SUBMIT_LINE[:10]
    assert dec.feed(SUBMIT_LINE[10:]) == [SUBMIT_EVENT]
    assert dec.pending == b"" and dec.lines == 1 and dec.offset == len(SUBMIT_LINE)
    dec.close()


def test_decoder_close_reports_torn_tail() -> None:
    dec = EventlogDecoder()
    dec.feed(SUBMIT_LINE + b'{"time')
    with pytest.raises(EventlogError, match="line 2 .*torn last line"):
        dec.close()


def test_decoder_error_carries_good_events_and_sticks() -> None:
    dec = EventlogDecoder()
    dec.feed(SUBMIT_LINE)
    with pytest.raises(EventlogError) as info:
        dec.feed(SUBMIT_LINE + b'{"timestamp":0,"name":"x"}\n')
    assert info.value.line == 3 and info.value.offset == 2 * len(SUBMIT_LINE)
    assert info.value.events == [SUBMIT_EVENT]
    with pytest.raises(EventlogError, match="line 3"):
        dec.feed(SUBMIT_LINE)
    with pytest.raises(EventlogError, match="line 3"):
        dec.close()


# ---------------------------------------------------------------- properties

_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
_json_value = st.recursive(
    _json_scalar,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12)
_timestamps = st.one_of(
    st.floats(min_value=1e-6, max_value=1e10, allow_nan=False, allow_infinity=False),
    st.integers(min_value=1, max_value=2**53))
_events = st.fixed_dictionaries(
    {"timestamp": _timestamps, "name": st.text(min_size=1, max_size=20)},
    optional={"context": st.dictionaries(st.text(max_size=8), _json_value, max_size=5)})


@given(st.lists(_events, max_size=20))
def test_encode_decode_round_trip(events: list[dict]) -> None:
    data = encode_entries(events)
    assert data.count(b"\n") == len(events)
    assert decode_events(data) == events


@given(st.lists(_events, min_size=1, max_size=12), st.data())
def test_stream_split_anywhere_equals_whole_decode(events: list[dict], data: st.DataObject) -> None:
    log = encode_entries(events)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(log)), max_size=8)))
    dec = EventlogDecoder()
    got: list[dict] = []
    start = 0
    for cut in [*cuts, len(log)]:
        got.extend(dec.feed(log[start:cut]))
        start = cut
    dec.close()
    assert got == decode_events(log) == events
    assert dec.offset == len(log) and dec.lines == len(events)


@given(st.lists(_events, min_size=1, max_size=8), st.data())
def test_truncated_log_gives_complete_prefix_and_torn_tail(events: list[dict],
                                                           data: st.DataObject) -> None:
    log = encode_entries(events)
    cut = data.draw(st.integers(0, len(log)))
    result = decode(log[:cut])
    complete = log[:cut].count(b"\n")
    assert result.events == events[:complete]
    assert result.torn == (cut > 0 and log[cut - 1:cut] != b"\n")
