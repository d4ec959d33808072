"""Hashed directories: the bucket function and the stored shape."""
from __future__ import annotations

from pathlib import Path

import pytest

from eventstore.store import Store
from kvs import hdir
from kvs.engine import KVS
from kvs.tree import TreeConfig
from kvs.txn import TxnBuilder


@pytest.mark.parametrize(
    "name, digest16, buckets64, bucket4",
    [
        ("a", "17762fddd969a453", [29, 19, 49], 1),
        ("eventlog", "4eae571123e12174", [17, 52, 42], 1),
        ("0000", "f583f5ff3a69dffd", [63, 61, 36], 3),
        ("ünï", "60bae8b4aa429aa3", [52, 35, 19], 0),
    ],
)
def test_bucket_function_vectors(name: str, digest16: str, buckets64: list[int], bucket4: int) -> None:
    assert hdir.name_digest(name).hex()[:16] == digest16
    assert [hdir.bucket_index(name, 64, level) for level in range(3)] == buckets64
    assert hdir.bucket_index(name, 4) == bucket4


def _shape(store: Store, ref: str, depth: int = 0) -> list[tuple[int, str, int]]:
    import orjson

    obj = orjson.loads(store.load(ref))
    if obj["type"] == "dir":
        return [(depth, "dir", len(obj["data"]))]
    out = [(depth, "hdir", obj["data"].get("level", 0))]
    for b in obj["data"]["bucket"]:
        if b is not None:
            out += _shape(store, b["data"][0], depth + 1)
    return out


def test_dir_becomes_nested_hdir_with_small_buckets(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(maxdirent=16, hdir_size=4, dir_inline_max=0))
        b = TxnBuilder()
        for i in range(16):
            b.put(f"d.k{i}", i)
        kvs.commit_one(b.build())
        assert _shape(store, kvs.get_treeobj("d")["data"][0]) == [(0, "dir", 16)]
        b = TxnBuilder()
        for i in range(16, 600):
            b.put(f"d.k{i}", i)
        kvs.commit_one(b.build())
        shape = _shape(store, kvs.get_treeobj("d")["data"][0])
        assert shape[0] == (0, "hdir", 0)
        assert any(kind == "hdir" and level == 1 for _, kind, level in shape)
        assert all(n <= 16 for _, kind, n in shape if kind == "dir")
        assert kvs.listdir("d") == sorted(f"k{i}" for i in range(600))


def test_emptied_hdir_becomes_an_empty_dir(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(maxdirent=4, hdir_size=2, dir_inline_max=0))
        b = TxnBuilder()
        for i in range(20):
            b.put(f"d.k{i}", i)
        kvs.commit_one(b.build())
        b = TxnBuilder()
        for i in range(20):
            b.unlink(f"d.k{i}")
        kvs.commit_one(b.build())
        assert kvs.listdir("d") == []
        assert _shape(store, kvs.get_treeobj("d")["data"][0]) == [(0, "dir", 0)]
