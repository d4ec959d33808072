"""flux.jsonc: the message path's JSON codec must read and write exactly as json does."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux import jsonc

scalars = (st.none() | st.booleans() | st.integers() | st.text()
           | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(), inner, max_size=5), max_leaves=30)


def outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as exc:  # compare the exception json itself raises
        return (type(exc), str(exc))


@given(values)
def test_dumps_is_compact_json(value):
    assert jsonc.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert jsonc.dumps(value, ensure_ascii=True) == json.dumps(value, separators=(",", ":"))


@given(values, st.sampled_from(["", " ", "\n", " \t\r\n "]))
def test_loads_reads_what_json_reads(value, pad):
    text = pad + json.dumps(value, indent=1 if len(pad) % 2 else None) + pad
    assert jsonc.loads(text) == json.loads(text)
    assert jsonc.loads(text.encode()) == json.loads(text.encode())


@given(st.text(max_size=30) | st.sampled_from(["", " ", "{", "[1,]", "1 2", "nul", "\"\\x\"",
                                                 "\ufeff{}", "NaN", "-Infinity", "[1] x"]))
def test_bad_text_fails_as_json_fails(text):
    got, want = outcome(jsonc.loads, text), outcome(json.loads, text)
    if got[0] == "ok" and isinstance(got[1], float) and math.isnan(got[1]):
        assert math.isnan(want[1])
    else:
        assert got == want


@given(st.binary(max_size=20))
def test_bad_bytes_fail_as_json_fails(data):
    got, want = outcome(jsonc.loads, data), outcome(json.loads, data)
    assert got[0] == want[0]


def test_what_json_refuses_to_write():
    with pytest.raises(ValueError):
        jsonc.dumps({"x": math.nan})
    assert jsonc.dumps([math.inf], allow_nan=True) == "[Infinity]"
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        jsonc.dumps({"a": {1}})
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference"):
        jsonc.dumps(circular)
    # a failed call leaves nothing behind for the next one
    shared = [1]
    with pytest.raises(TypeError):
        jsonc.dumps([shared, object()])
    assert jsonc.dumps([shared, shared]) == "[[1],[1]]"


@pytest.mark.parametrize("text", ["NaN", "[1, Infinity]", '{"a": -Infinity}', " NaN x"])
def test_strict_loads_refuses_nan_and_infinity(text):
    assert outcome(jsonc.loads, text)[0] == outcome(json.loads, text)[0]  # json takes them
    with pytest.raises(ValueError):
        jsonc.loads(text, allow_nan=False)


@given(values)
def test_strict_loads_reads_finite_json(value):
    text = json.dumps(value)
    assert jsonc.loads(text, allow_nan=False) == value
