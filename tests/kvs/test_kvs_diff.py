"""Tree diff between two roots."""
from __future__ import annotations

from pathlib import Path

import pytest

from eventstore.store import Store
from kvs.engine import KVS
from kvs.tree import TreeConfig
from kvs.txn import TxnBuilder


@pytest.fixture
def kvs(tmp_path: Path) -> KVS:
    store = Store(tmp_path / "st", durability="none")
    yield KVS(store, config=TreeConfig(maxdirent=8, hdir_size=4))
    store.close()


def test_diff_lists_leaf_changes_in_key_order(kvs: KVS) -> None:
    r0 = kvs.commit_one(TxnBuilder().put("a", 1).put("d.x", 1).put("d.y", 1).put("gone.z", 1).build())
    r1 = kvs.commit_one(TxnBuilder().put("d.x", 2).unlink("gone", recursive=True).put("n.m.k", 1)
                        .symlink("l", "a").build())
    changes = kvs.diff(r0.rootref, r1.rootref)
    assert [c.key for c in changes] == ["d.x", "gone.z", "l", "n.m.k"]
    by = {c.key: c for c in changes}
    assert by["gone.z"].new is None and by["n.m.k"].old is None
    assert by["l"].new["type"] == "symlink"
    assert kvs.diff(r1.rootref, r1.rootref) == []


def test_diff_value_to_dir_and_back(kvs: KVS) -> None:
    r0 = kvs.commit_one(TxnBuilder().put("a", 1).build())
    r1 = kvs.commit_one(TxnBuilder().put("a.b", 2).build())
    assert [(c.key, c.old is None, c.new is None) for c in kvs.diff(r0.rootref, r1.rootref)] == [
        ("a", False, True), ("a.b", True, False)]


def test_diff_prefix_and_big_dirs_skip_unchanged(kvs: KVS) -> None:
    b = TxnBuilder()
    for i in range(300):
        b.put(f"job.j{i:03d}.eventlog", i)
    r0 = kvs.commit_one(b.put("other", 1).build())
    r1 = kvs.commit_one(TxnBuilder().put("job.j007.eventlog", "x").put("job.j250.R", 1)
                        .put("other", 2).build())
    before = kvs.cache_stats()
    changes = kvs.diff(r0.rootref, r1.rootref, prefix="job")
    after = kvs.cache_stats()
    assert [c.key for c in changes] == ["job.j007.eventlog", "job.j250.R"]
    # an hdir of 300 entries in 8-entry buckets: only the changed buckets are read
    dir_reads = (after.hits + after.misses) - (before.hits + before.misses)
    assert dir_reads < 40
    assert kvs.diff(r0.rootref, r1.rootref, prefix="nothing.here") == []
