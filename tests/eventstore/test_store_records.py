"""Checkpoint, pin and startlog records; durability modes and the batch sync policy."""
from __future__ import annotations

import errno

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore.checkpoint import Pin, RootRecord, decode_pin, decode_root, encode_pin, encode_root
from eventstore.durability import Durability, SyncPolicy
from eventstore.startlog import StartRecord, decode_record, encode_record, was_unclean
from flux.errors import FluxError

REF = "blake3-" + "ab" * 32


def test_root_record_bytes_are_flux_checkpoint_shape() -> None:
    raw = encode_root(RootRecord(REF, 7, 1700000000.5, 1001))
    assert orjson.loads(raw) == {"version": 1, "rootref": REF, "sequence": 7,
                                 "timestamp": 1700000000.5, "owner": 1001}
    assert decode_root("primary", raw) == RootRecord(REF, 7, 1700000000.5, 1001)


@given(seq=st.integers(0, 2**53), ts=st.floats(0, 2e9), owner=st.integers(0, 2**32))
def test_root_record_roundtrip(seq: int, ts: float, owner: int) -> None:
    rec = RootRecord(REF, seq, ts, owner)
    assert decode_root("ns", encode_root(rec)) == rec


@pytest.mark.parametrize(
    "obj, fragment",
    [
        ({"version": 2, "rootref": REF, "sequence": 1, "timestamp": 1, "owner": 0}, "unsupported version 2"),
        ({"version": 1, "rootref": "sha1-00", "sequence": 1, "timestamp": 1, "owner": 0}, "rootref 'sha1-00'"),
        ({"version": 1, "rootref": REF, "sequence": -1, "timestamp": 1, "owner": 0}, "sequence -1"),
        ({"version": 1, "rootref": REF, "sequence": 1, "timestamp": "x", "owner": 0}, "timestamp 'x'"),
        ({"version": 1, "rootref": REF, "sequence": 1, "timestamp": 1, "owner": True}, "owner True"),
        ({"version": 1, "rootref": REF, "sequence": 1, "timestamp": 1, "owner": 0, "x": 1}, "unknown field 'x'"),
        ([1], "not a JSON object"),
    ],
)
def test_root_record_errors_name_namespace_and_field(obj: object, fragment: str) -> None:
    with pytest.raises(FluxError) as ei:
        decode_root("myns", orjson.dumps(obj))
    assert ei.value.errno == errno.EPROTO
    assert "'myns'" in str(ei.value) and fragment in str(ei.value)


def test_root_record_rejects_non_json() -> None:
    with pytest.raises(FluxError, match="checkpoint of namespace 'p': not JSON"):
        decode_root("p", b"{")


def test_pin_roundtrip_and_errors() -> None:
    assert decode_pin("snap", encode_pin(Pin(REF, "blob"))) == Pin(REF, "blob")
    with pytest.raises(FluxError, match="pin 'snap': bad ref"):
        decode_pin("snap", orjson.dumps({"ref": REF, "kind": "other"}))
    with pytest.raises(FluxError, match="pin 'snap': malformed"):
        decode_pin("snap", b"[]")


def test_startlog_records() -> None:
    rec = StartRecord(10.0, None, 42)
    assert decode_record(0, encode_record(rec)) == rec
    assert not rec.clean
    assert was_unclean([StartRecord(1.0, 2.0, 1), rec])
    assert not was_unclean([StartRecord(1.0, 2.0, 1)])
    assert not was_unclean([])
    with pytest.raises(FluxError, match="startlog record 3: malformed"):
        decode_record(3, b"{}")
    with pytest.raises(FluxError, match="startlog record 4: timestamps must be numbers"):
        decode_record(4, orjson.dumps({"start": "a", "finish": None, "pid": 1}))


def test_durability_parse() -> None:
    assert Durability.parse("always") is Durability.ALWAYS
    assert Durability.parse(Durability.NONE) is Durability.NONE
    assert Durability.ALWAYS.lmdb_sync and not Durability.BATCH.lmdb_sync
    with pytest.raises(ValueError, match="durability 'sometimes' is not one of always, batch, none"):
        Durability.parse("sometimes")


def test_batch_policy_syncs_once_per_interval() -> None:
    p = SyncPolicy(Durability.BATCH, interval=1.0, last_sync=0.0)
    assert p.after_commit(0.5) is False
    assert p.after_commit(1.0) is True
    assert p.after_commit(1.9) is False
    assert p.after_commit(2.1) is True
    assert p.at_close()


@pytest.mark.parametrize("mode", [Durability.ALWAYS, Durability.NONE])
def test_other_modes_never_sync_explicitly(mode: Durability) -> None:
    p = SyncPolicy(mode, interval=0.0)
    assert not p.after_commit(100.0)
    assert not p.at_close()
