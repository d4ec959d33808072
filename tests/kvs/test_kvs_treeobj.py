"""RFC 11 tree objects: constructors, strict validation, canonical bytes."""
from __future__ import annotations

import errno

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore.blobref import blobref
from flux.errors import FluxError
from kvs import treeobj as t

REF = blobref(b"x")


def test_rfc11_examples_validate() -> None:
    examples = [
        {"ver": 1, "type": "val", "data": "NDIyCg=="},
        {"ver": 1, "type": "val", "data": "NDIyCg==", "size": 4},
        {"ver": 1, "type": "valref", "data": [REF, REF], "size": 2},
        {"ver": 1, "type": "dirref", "data": [REF]},
        {"ver": 1, "type": "dir", "data": {"a": {"ver": 1, "type": "dirref", "data": [REF]},
                                           "b": {"ver": 1, "type": "val", "data": "NDIyCg=="}}},
        {"ver": 1, "type": "symlink", "data": {"target": "a.a"}},
        {"ver": 1, "type": "symlink", "data": {"namespace": "a", "target": "b.b"}},
    ]
    for obj in examples:
        assert t.validate(obj) is obj


def test_hdir_validates_only_where_allowed() -> None:
    obj = t.hdir(4, "blake3", [None, t.dirref(REF), None, None])
    assert t.validate(obj, allow_hdir=True) is obj
    with pytest.raises(FluxError, match="an hdir may only be stored behind a dirref"):
        t.validate(obj)


@pytest.mark.parametrize(
    "obj, fragment",
    [
        ([], "expected a JSON object, got list"),
        ({"ver": 2, "type": "val", "data": ""}, "unsupported ver 2"),
        ({"ver": True, "type": "val", "data": ""}, "unsupported ver True"),
        ({"ver": 1, "type": "blob", "data": ""}, "unknown type 'blob'"),
        ({"ver": 1, "type": "val"}, "missing data"),
        ({"ver": 1, "type": "val", "data": "", "extra": 1}, "unexpected field 'extra' in val"),
        ({"ver": 1, "type": "dirref", "data": [REF], "size": 1}, "unexpected field 'size' in dirref"),
        ({"ver": 1, "type": "val", "data": 5}, "val data must be a base64 string"),
        ({"ver": 1, "type": "val", "data": "abc"}, "not valid base64"),
        ({"ver": 1, "type": "val", "data": "NDIyCg==", "size": 3}, "val size 3 does not match its 4 data bytes"),
        ({"ver": 1, "type": "valref", "data": []}, "non-empty array of blobrefs"),
        ({"ver": 1, "type": "valref", "data": ["sha1-00"]}, "valref data[0] 'sha1-00' is not a blobref"),
        ({"ver": 1, "type": "valref", "data": [REF], "size": -1}, "size -1 is not a non-negative integer"),
        ({"ver": 1, "type": "dirref", "data": [REF, REF]}, "exactly one blobref, not 2"),
        ({"ver": 1, "type": "dir", "data": []}, "dir data must be an object"),
        ({"ver": 1, "type": "symlink", "data": {"target": ""}}, "symlink target must be a non-empty string"),
        ({"ver": 1, "type": "symlink", "data": {"target": "a", "ns": "x"}}, "unexpected symlink field 'ns'"),
        ({"ver": 1, "type": "symlink", "data": {"target": "a", "namespace": ""}}, "symlink namespace"),
    ],
)
def test_invalid_objects_are_einval_naming_the_problem(obj: object, fragment: str) -> None:
    with pytest.raises(FluxError) as ei:
        t.validate(obj)
    assert ei.value.errno == errno.EINVAL
    assert fragment in str(ei.value)


def test_nested_error_names_the_path() -> None:
    obj = t.dir_({"a": t.dir_({"b": {"ver": 1, "type": "val", "data": 1}})})
    with pytest.raises(FluxError, match=r"invalid treeobj at top\.a\.b: val data"):
        t.validate(obj, path="top")
    with pytest.raises(FluxError, match=r"at a\.b: invalid directory entry name 'a\.b': contains"):
        t.validate(t.dir_({"a.b": t.val(b"")}))


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"size": 0, "func": "blake3", "bucket": []}, "hdir size 0"),
        ({"size": 2, "func": "city32", "bucket": [None, None]}, "hdir func 'city32' is not supported"),
        ({"size": 2, "func": "blake3", "bucket": [None]}, "array of 2 entries"),
        ({"size": 1, "func": "blake3", "bucket": [t.val(b"")]}, "buckets must be dirrefs or null"),
        ({"size": 1, "func": "blake3", "bucket": [None], "level": -1}, "hdir level -1"),
        ({"size": 1, "func": "blake3", "bucket": [None], "x": 1}, "unexpected hdir field 'x'"),
    ],
)
def test_invalid_hdir(data: dict, fragment: str) -> None:
    with pytest.raises(FluxError, match=fragment):
        t.validate({"ver": 1, "type": "hdir", "data": data}, allow_hdir=True)


def test_canonical_encoding_sorts_keys() -> None:
    obj = t.dir_({"b": t.val(b"1"), "a": t.symlink("x", "ns")})
    raw = t.encode(obj)
    assert raw == (b'{"data":{"a":{"data":{"namespace":"ns","target":"x"},"type":"symlink","ver":1},'
                   b'"b":{"data":"MQ==","type":"val","ver":1}},"type":"dir","ver":1}')
    assert t.encode(t.dir_({"a": t.symlink("x", "ns"), "b": t.val(b"1")})) == raw


def test_decode_dir_gives_tuples_and_names_ref_on_error() -> None:
    raw = t.encode(t.dir_({"v": t.valref([REF], 1), "d": t.dirref(REF)}))
    obj = t.decode_dir(raw, "blake3-x")
    assert obj["data"]["v"]["data"] == (REF,) and obj["data"]["d"]["data"] == (REF,)
    with pytest.raises(FluxError) as ei:
        t.decode_dir(b"not json", "blake3-abc")
    assert ei.value.errno == errno.EPROTO and "blake3-abc" in str(ei.value)
    with pytest.raises(FluxError, match="blake3-abc: invalid treeobj: a dirref must point at a dir or hdir, not val"):
        t.decode_dir(t.encode(t.val(b"")), "blake3-abc")


def test_value_helpers() -> None:
    assert t.val_bytes(t.val(b"abc")) == b"abc"
    assert t.value_size(t.val(b"abc")) == 3
    assert t.value_size(t.valref([REF], 9)) == 9
    assert t.is_dir_like(t.dirref(REF)) and not t.is_dir_like(t.symlink("a"))


@given(st.binary(max_size=200))
def test_val_roundtrip(data: bytes) -> None:
    obj = t.validate(orjson.loads(t.encode(t.val(data))))
    assert t.val_bytes(obj) == data


_refs = st.sampled_from([REF, "sha1-00", 5, "blake3-" + "A" * 64])
_any_data = st.one_of(
    st.sampled_from(["NDIyCg==", "abc", "", 3, None, {"target": "a"}, {"target": ""},
                     {"target": "a", "namespace": "n"}, {"target": "a", "x": "n"}]),
    st.lists(_refs, max_size=3),
    st.tuples(_refs),
)


def _objects() -> st.SearchStrategy:
    leaf = st.fixed_dictionaries(
        {"ver": st.sampled_from([1, 1, 1, 2, True]),
         "type": st.sampled_from(["val", "valref", "dirref", "symlink", "dir", "hdir", "x"]),
         "data": _any_data},
        optional={"size": st.sampled_from([0, 4, -1, "4"]), "extra": st.just(1)},
    )

    def dirs(children: st.SearchStrategy) -> st.SearchStrategy:
        names = st.sampled_from(["a", "b", "a.b", "", "x\x01"])
        return st.one_of(
            st.builds(lambda d: {"ver": 1, "type": "dir", "data": d}, st.dictionaries(names, children, max_size=3)),
            st.builds(lambda bs, lvl: {"ver": 1, "type": "hdir", "data": {"size": len(bs), "func": "blake3",
                                                                             "bucket": bs, "level": lvl}},
                      st.lists(st.one_of(st.none(), children), min_size=1, max_size=3),
                      st.sampled_from([0, 1, -1])),
        )

    return st.recursive(leaf, dirs, max_leaves=6)


@given(_objects(), st.booleans())
def test_fast_and_explaining_validators_agree(obj: object, allow_hdir: bool) -> None:
    fast = t._ok(obj, allow_hdir, 0)
    try:
        t._explain(obj, "", allow_hdir, 0)
        explained = True
    except FluxError:
        explained = False
    assert fast == explained, obj
