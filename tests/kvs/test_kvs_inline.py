"""Small subdirectories are stored inline in small parents (fewer blobs per commit)."""
from __future__ import annotations

from pathlib import Path

import orjson

from eventstore.store import Store
from kvs.engine import KVS
from kvs.tree import TreeConfig
from kvs.txn import TxnBuilder


def kinds(store: Store, kvs: KVS, key: str) -> dict[str, str]:
    listing = kvs.readdir(key)
    return {name: e["type"] for name, e in listing.items()}


def test_small_subdirs_inline_big_ones_by_reference(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(dir_inline_max=200, dir_inline_budget=1000, inline_parent_max=4))
        before = store.stats().blob_count
        # three valref entries: an encoding over 200 bytes
        kvs.commit_one(TxnBuilder().put("p.small.x", 1).put("p.big.y0", "z" * 300).put("p.big.y1", "z" * 301)
                       .put("p.big.y2", "z" * 302).build())
        assert kinds(store, kvs, "p") == {"small": "dir", "big": "dirref"}
        # new blobs: 3 values, big, p (itself over 200 bytes) and the root; small is inline
        assert store.stats().blob_count - before == 6
        # a parent past inline_parent_max entries holds only dirrefs
        b = TxnBuilder()
        for i in range(5):
            b.put(f"p.e{i}", i)
        kvs.commit_one(b.build())
        assert kinds(store, kvs, "p")["small"] == "dirref"
        assert kvs.get_json("p.small.x") == 1


def test_inline_budget_moves_largest_out(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(dir_inline_max=400, dir_inline_budget=700, inline_parent_max=8,
                                           val_inline_max=300))
        b = TxnBuilder()
        for i, n in enumerate((50, 100, 150, 200)):
            b.put(f"p.d{i}.v", "x" * n)
        kvs.commit_one(b.build())
        k = kinds(store, kvs, "p")
        assert k["d3"] == "dirref" and k["d0"] == "dir"
        raw = store.load(kvs.get_treeobj("p")["data"][0]) if kvs.get_treeobj("p")["type"] == "dirref" \
            else orjson.dumps(kvs.get_treeobj("p"))
        assert len(raw) <= 700
        assert [kvs.get_json(f"p.d{i}.v") for i in range(4)] == ["x" * n for n in (50, 100, 150, 200)]


def test_disabled(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(dir_inline_max=0))
        kvs.commit_one(TxnBuilder().put("a.b.c", 1).build())
        assert kvs.get_treeobj("a")["type"] == "dirref" and kvs.get_treeobj("a.b")["type"] == "dirref"
