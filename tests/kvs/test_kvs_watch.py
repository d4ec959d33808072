"""Watches: changed keys between roots, and the appended bytes only."""
from __future__ import annotations

from pathlib import Path

import pytest

from eventstore.store import Store
from kvs import treeobj as t
from kvs.engine import KVS
from kvs.tree import TreeConfig
from kvs.txn import TxnBuilder


@pytest.fixture
def kvs(tmp_path: Path) -> KVS:
    store = Store(tmp_path / "st", durability="none")
    yield KVS(store, config=TreeConfig(merge_after=2, chunk_max=64, val_inline_max=4,
                                       blob_size_limit=store.blob_size_limit))
    store.close()


def test_changed_keys_between_roots(kvs: KVS) -> None:
    r0 = kvs.commit_one(TxnBuilder().put("a", 1).put("d.x", 1).put("d.y", 1).symlink("l", "d.x").build())
    r1 = kvs.commit_one(TxnBuilder().put("d.x", 2).put("new", 1).build())
    ch = kvs.changed(r0.rootref, r1.rootref, ["a", "d.x", "d.y", "l", "new", "gone", "d"])
    assert set(ch) == {"d.x", "l", "new", "d"}
    assert ch["new"][0] is None and ch["new"][1] == t.val(b"1")
    assert ch["l"][1] == t.val(b"2")  # watched through the symlink
    assert kvs.changed(r1.rootref, r1.rootref, ["a"]) == {}


def test_changed_since_remembered_objects(kvs: KVS) -> None:
    kvs.commit_one(TxnBuilder().put("a", 1).put("b", 1).build())
    known = kvs.watch_objects(["a", "b", "c"])
    assert known["c"] is None
    kvs.commit_one(TxnBuilder().put("a", 2).put("c", 3).unlink("b").build())
    ch = kvs.changed_since(known)
    assert set(ch) == {"a", "b", "c"} and ch["b"][1] is None


def test_appended_bytes_only_the_new_ones(kvs: KVS) -> None:
    seen = b""
    old = None
    for i in range(60):
        kvs.commit_one(TxnBuilder().append("log", b"event %d\n" % i).build())
        new = kvs.get_treeobj("log")
        got = kvs.appended(old, new)
        assert got == b"event %d\n" % i
        seen += got
        old = new
    assert seen == kvs.get("log")
    # several appends between looks
    for i in range(60, 65):
        kvs.commit_one(TxnBuilder().append("log", b"event %d\n" % i).build())
    assert kvs.appended(old, kvs.get_treeobj("log")) == b"".join(b"event %d\n" % i for i in range(60, 65))


def test_appended_after_val_conversion_and_rewrite(kvs: KVS) -> None:
    kvs.commit_one(TxnBuilder().put_raw("v", b"ab").build())
    old = kvs.get_treeobj("v")
    kvs.commit_one(TxnBuilder().append("v", b"cd").build())
    assert kvs.appended(old, kvs.get_treeobj("v")) == b"cd"
    before = kvs.get_treeobj("v")
    kvs.commit_one(TxnBuilder().put_raw("v", b"x").build())
    assert kvs.appended(before, kvs.get_treeobj("v")) is None  # shrank: a rewrite
    assert kvs.appended(None, kvs.get_treeobj("v")) == b"x"
    assert kvs.appended(before, t.empty_dir()) is None
