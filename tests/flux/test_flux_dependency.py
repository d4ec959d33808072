"""RFC 26 dependency URIs: vectors from specs/dependencies.md, errors, round trips."""
from __future__ import annotations

from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.job.dependency import (
    begin_time,
    check_dependency,
    dependency_array_create,
    dependency_jobid,
    format_dependency,
    parse_dependency,
    validate_dependency,
)



@pytest.mark.parametrize("uri, expected", [
    ("afterany:ƒ2oLkTLb", {"scheme": "afterany", "value": "ƒ2oLkTLb"}),
    ("afterok:1234", {"scheme": "afterok", "value": "1234"}),
    ("string:foo?type=out", {"scheme": "string", "value": "foo", "type": "out"}),
    ("fluid:hungry-hippos-white-elephant",
     {"scheme": "fluid", "value": "hungry-hippos-white-elephant"}),
    ("string:foo?type=in&scope=user",
     {"scheme": "string", "value": "foo", "type": "in", "scope": "user"}),
    ("string:foo?type=in;scope=global",
     {"scheme": "string", "value": "foo", "type": "in", "scope": "global"}),
    ("begin-time:1623456789.5", {"scheme": "begin-time", "value": "1623456789.5"}),
    ("foo:bar?a=1&b=2.5&c=x&a=2",
     {"scheme": "foo", "value": "bar", "a": [1, 2], "b": 2.5, "c": "x"}),
    ("AfterOK:f1?x=a%20b+c", {"scheme": "afterok", "value": "f1", "x": "a b c"}),
    ("afterok:f1?n=nan", {"scheme": "afterok", "value": "f1", "n": "nan"}),
])
def test_spec_vectors(uri: str, expected: dict) -> None:
    got = parse_dependency(uri)
    assert got == expected
    assert list(got)[:2] == ["scheme", "value"]


def test_value_is_kept_verbatim_including_colons_and_percent() -> None:
    assert parse_dependency("string:a:b%20c")["value"] == "a:b%20c"


def test_number_conversion_types() -> None:
    dep = parse_dependency("x:y?i=-3&f=1e3&s=1_000&t=%205")
    assert dep["i"] == -3 and type(dep["i"]) is int
    assert dep["f"] == 1000.0 and type(dep["f"]) is float
    assert dep["s"] == "1_000" and dep["t"] == " 5"


def test_empty_query_items_are_skipped() -> None:
    assert parse_dependency("x:y?&a=1&&") == {"scheme": "x", "value": "y", "a": 1}
    assert parse_dependency("x:y?") == {"scheme": "x", "value": "y"}


@pytest.mark.parametrize("uri, message", [
    ("afterok", "missing ':' between scheme and value"),
    (":123", "empty scheme"),
    ("afterok:", "empty value"),
    ("afterok:?x=1", "empty value"),
    ("1after:3", "scheme '1after' must be a letter"),
    ("after ok:3", "scheme 'after ok' must be a letter"),
    ("afterok:1?novalue", "query item 'novalue' is not key=value"),
    ("afterok:1?=3", "query item '=3' is not key=value"),
    ("afterok:1?value=2", "query key 'value' would replace the dependency value"),
    ("afterok:1?scheme=2", "query key 'scheme' would replace"),
])
def test_invalid_uris_name_uri_and_problem(uri: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_dependency(uri)
    assert str(info.value).startswith(f"invalid dependency URI '{uri}': ")
    assert message in str(info.value)


def test_non_string_uri() -> None:
    with pytest.raises(TypeError, match="must be a string, not int"):
        parse_dependency(5)  # type: ignore[arg-type]


def test_dependency_array_create_keeps_order() -> None:
    assert dependency_array_create(["afterok:1", "begin-time:5"]) == [
        {"scheme": "afterok", "value": "1"}, {"scheme": "begin-time", "value": "5"}]


def test_format_dependency() -> None:
    dep = {"scheme": "foo", "value": "bar", "a": [1, 2], "b": 2.5, "c": "x y&z"}
    uri = format_dependency(dep)
    assert uri == "foo:bar?a=1&a=2&b=2.5&c=x+y%26z"
    assert parse_dependency(uri) == dep
    assert format_dependency({"scheme": "afterok", "value": "ƒ2"}) == "afterok:ƒ2"
    with pytest.raises(ValueError, match="contains '\\?'"):
        format_dependency({"scheme": "s", "value": "a?b"})
    with pytest.raises(TypeError, match="option 'x' must be a string or number"):
        format_dependency({"scheme": "s", "value": "a", "x": True})


@pytest.mark.parametrize("dep, exc, message", [
    ("afterok:1", TypeError, "deps[0]: must be an object, not str"),
    ({"value": "1"}, ValueError, "deps[0]: missing required key 'scheme'"),
    ({"scheme": "afterok"}, ValueError, "deps[0]: missing required key 'value'"),
    ({"scheme": "afterok", "value": 1}, TypeError, "deps[0].value: must be a string, not int"),
    ({"scheme": 3, "value": "1"}, TypeError, "deps[0].scheme: must be a string"),
    ({"scheme": "afterok", "value": ""}, ValueError, "deps[0].value: must not be empty"),
])
def test_validate_dependency_names_path(dep: object, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_dependency(dep, "deps[0]")


@pytest.mark.parametrize("value, expected", [("1623456789.5", 1623456789.5), ("0", 0.0), ("7", 7.0)])
def test_begin_time_value(value: str, expected: float) -> None:
    assert begin_time({"scheme": "begin-time", "value": value}) == expected


@pytest.mark.parametrize("value", ["-1", "inf", "nan", "soon", "1e999", "1.5s"])
def test_begin_time_rejects_bad_values(value: str) -> None:
    with pytest.raises(ValueError, match=f"begin-time:{value}: value must be a"):
        begin_time({"scheme": "begin-time", "value": value})


def test_begin_time_needs_that_scheme() -> None:
    with pytest.raises(ValueError, match="scheme 'afterok' is not begin-time"):
        begin_time({"scheme": "afterok", "value": "5"})


def test_check_dependency_begin_time_names_path() -> None:
    check_dependency({"scheme": "begin-time", "value": "5"})
    with pytest.raises(ValueError, match=r"deps\[1\]: begin-time:x: value must be"):
        check_dependency({"scheme": "begin-time", "value": "x"}, "deps[1]")


def test_check_dependency_accepts_plugin_schemes_as_is() -> None:
    check_dependency({"scheme": "singleton", "value": "whatever", "extra": 1})


def test_dependency_jobid_needs_after_scheme() -> None:
    with pytest.raises(ValueError, match="'begin-time' does not name a job"):
        dependency_jobid({"scheme": "begin-time", "value": "5"})


def test_after_values_parse_as_job_ids() -> None:
    assert dependency_jobid(parse_dependency("afterok:ƒ2")) == 1
    assert dependency_jobid(parse_dependency("afterany:0x4d2")) == 1234
    with pytest.raises(ValueError, match=r"deps\[0\]: afterok:notajob: invalid job id"):
        check_dependency({"scheme": "afterok", "value": "notajob"}, "deps[0]")


# ---------------------------------------------------------------- properties

_scheme = st.from_regex(r"[a-z][a-z0-9+.\-]{0,10}", fullmatch=True)
_value = st.text(min_size=1, max_size=20).filter(lambda s: "?" not in s)
_key = st.text(min_size=1, max_size=8).filter(lambda k: k not in ("scheme", "value"))
def _reads_back_as_string(text: str) -> bool:
    # a string option that looks like a number comes back as a number
    return parse_dependency(f"x:y?k={quote_plus(text)}")["k"] == text


_option = st.one_of(
    st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10).filter(_reads_back_as_string),
)


@given(_scheme, _value, st.dictionaries(_key, _option, max_size=4))
def test_format_parse_round_trip(scheme: str, value: str, options: dict) -> None:
    dep = {"scheme": scheme, "value": value, **options}
    assert parse_dependency(format_dependency(dep)) == dep
