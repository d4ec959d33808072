"""Transaction ops (flux-core shape) and the builder."""
from __future__ import annotations

import errno

import orjson
import pytest

from flux.errors import FluxError
from kvs import treeobj as t
from kvs.constants import FLUX_KVS_APPEND, FLUX_KVS_NO_MERGE, FLUX_KVS_UNLINK_NODIR
from kvs.txn import OpKind, RawValue, TxnBuilder, parse_op, parse_ops


def test_flag_values_are_flux_cores() -> None:
    from kvs import constants as c

    assert (c.FLUX_KVS_READDIR, c.FLUX_KVS_READLINK, c.FLUX_KVS_WATCH, c.FLUX_KVS_WAITCREATE,
            c.FLUX_KVS_TREEOBJ, c.FLUX_KVS_APPEND, c.FLUX_KVS_WATCH_FULL, c.FLUX_KVS_WATCH_UNIQ,
            c.FLUX_KVS_WATCH_APPEND, c.FLUX_KVS_NO_MERGE) == (1, 2, 4, 8, 16, 32, 64, 128, 256, 1)


def test_parse_put_append_unlink() -> None:
    put = parse_op({"key": ".a..b", "flags": 0, "dirent": t.val(b"x")})
    assert (put.kind, put.key, put.comps, put.data) == (OpKind.PUT, "a.b", ("a", "b"), b"x")
    app = parse_op({"key": "log", "flags": FLUX_KVS_APPEND, "dirent": t.val(b"e\n")})
    assert app.kind is OpKind.APPEND and app.data == b"e\n"
    rm = parse_op({"key": "a", "flags": FLUX_KVS_UNLINK_NODIR, "dirent": None})
    assert rm.kind is OpKind.UNLINK and rm.nodir
    assert not parse_op({"key": "a", "flags": 0, "dirent": None}).nodir


@pytest.mark.parametrize(
    "op, code, fragment",
    [
        ("x", errno.EPROTO, "op 3: expected an object, got str"),
        ({"key": "a", "flags": 0}, errno.EPROTO, "op 3: missing field 'dirent'"),
        ({"key": "a", "flags": 0, "dirent": None, "x": 1}, errno.EPROTO, "op 3: unexpected field 'x'"),
        ({"key": "a", "flags": "0", "dirent": None}, errno.EPROTO, "flags must be an integer, not str"),
        ({"key": "a", "flags": 4, "dirent": None}, errno.EINVAL, "op 3 ('a'): unknown flags 0x4"),
        ({"key": "", "flags": 0, "dirent": None}, errno.EINVAL, "op 3: invalid key '': empty key"),
        ({"key": "a", "flags": FLUX_KVS_APPEND, "dirent": None}, errno.EINVAL, "append needs a value"),
        ({"key": "a", "flags": FLUX_KVS_APPEND, "dirent": t.empty_dir()}, errno.EINVAL,
         "can only append a val or valref, not a dir"),
        ({"key": "a", "flags": FLUX_KVS_UNLINK_NODIR, "dirent": t.val(b"")}, errno.EINVAL, "UNLINK_NODIR on a put"),
        ({"key": "a.b", "flags": 0, "dirent": {"ver": 1, "type": "val", "data": "!!"}}, errno.EINVAL,
         "op 3: invalid treeobj at a.b: val data is not valid base64"),
        ({"key": "a", "flags": 0, "dirent": t.hdir(1, "blake3", [None])}, errno.EINVAL, "behind a dirref"),
        ({"key": "a", "flags": 0, "dirent": RawValue(b"x", "y")}, errno.EINVAL,
         "op 3 (a): raw value chunks must be bytes, not str"),
        ({"key": "a", "flags": FLUX_KVS_UNLINK_NODIR, "dirent": RawValue(b"x")}, errno.EINVAL,
         "UNLINK_NODIR on a put"),
    ],
)
def test_bad_ops_name_index_and_problem(op: object, code: int, fragment: str) -> None:
    with pytest.raises(FluxError) as ei:
        parse_op(op, 3)
    assert ei.value.errno == code
    assert fragment in str(ei.value)


def test_parse_raw_values() -> None:
    put = parse_op({"key": "j.J", "flags": 0, "dirent": RawValue(b"{", b"spec", b"}")})
    assert (put.kind, put.data, put.chunks, put.obj) == (OpKind.PUT, b"{spec}", (b"{", b"spec", b"}"),
                                                         None)
    app = parse_op({"key": "log", "flags": FLUX_KVS_APPEND, "dirent": RawValue(b"e\n")})
    assert app.kind is OpKind.APPEND and app.data == b"e\n" and app.chunks is None


def test_raw_values_cannot_cross_a_socket() -> None:
    from flux.message import Message

    msg = Message(topic="kvs.commit", payload={"ops": [{"key": "a", "flags": 0,
                                                        "dirent": RawValue(b"x")}]})
    with pytest.raises(TypeError, match="cannot be encoded as JSON"):
        msg.raw


def test_parse_ops_needs_a_list() -> None:
    with pytest.raises(FluxError, match="ops must be an array, not dict"):
        parse_ops({})


def test_builder_produces_flux_ops() -> None:
    b = (TxnBuilder().put("a.b", {"x": [1, 2]}).put_raw("r", b"\0\1").mkdir("d").unlink("u")
         .unlink("v", recursive=True).symlink("l", "a.b", "other").append("log", "ev\n")
         .put_treeobj("o", t.val(b"z")))
    ops = b.ops
    assert ops[0] == {"key": "a.b", "flags": 0, "dirent": t.val(orjson.dumps({"x": [1, 2]}))}
    assert ops[1]["dirent"] == t.val(b"\0\1")
    assert ops[2]["dirent"] == t.empty_dir()
    assert ops[3] == {"key": "u", "flags": FLUX_KVS_UNLINK_NODIR, "dirent": None}
    assert ops[4] == {"key": "v", "flags": 0, "dirent": None}
    assert ops[5]["dirent"] == {"ver": 1, "type": "symlink", "data": {"target": "a.b", "namespace": "other"}}
    assert ops[6] == {"key": "log", "flags": FLUX_KVS_APPEND, "dirent": t.val(b"ev\n")}
    assert [o.kind for o in parse_ops(ops)] == [OpKind.PUT] * 3 + [OpKind.UNLINK] * 2 + [
        OpKind.PUT, OpKind.APPEND, OpKind.PUT]
    txn = b.build("ns", FLUX_KVS_NO_MERGE)
    assert (txn.namespace, txn.flags, len(txn.ops)) == ("ns", FLUX_KVS_NO_MERGE, 8)


def test_builder_checks_eagerly() -> None:
    with pytest.raises(FluxError, match="empty key"):
        TxnBuilder().put("", 1)
    with pytest.raises(FluxError, match="symlink target"):
        TxnBuilder().symlink("a", "")
    with pytest.raises(FluxError, match="unknown commit flags 8"):
        TxnBuilder().build(flags=8)


def test_parsed_keys_are_remembered_and_bounded(monkeypatch) -> None:
    import functools

    import kvs.txn as T
    from kvs import keys as K

    small = functools.lru_cache(maxsize=2)(K.parse)
    monkeypatch.setattr(T, "_parse_key", small)
    op = {"key": "a..b.", "flags": 0, "dirent": None}
    first = T.parse_op(op)
    assert small("a..b.") == (("a", "b"), "a.b") and small.cache_info().hits == 1
    assert T.parse_op(op) == first and first.key == "a.b" and first.comps == ("a", "b")
    for key in ("c", "d"):
        T.parse_op({"key": key, "flags": 0, "dirent": None})
    assert small.cache_info().currsize <= 2
    with pytest.raises(FluxError) as info:
        T.parse_op({"key": "a\x01", "flags": 0, "dirent": None}, 3)
    misses = small.cache_info().misses
    with pytest.raises(FluxError):
        small("a\x01")                         # a bad key is not remembered: parsed again
    assert "op 3" in info.value.strerror and small.cache_info().misses == misses + 1
