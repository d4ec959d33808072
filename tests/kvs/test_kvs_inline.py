"""Small subdirectories are stored inline in small parents (fewer blobs per commit)."""
from __future__ import annotations

from pathlib import Path

import orjson

from eventstore.store import Store
from kvs import treeobj as t
from kvs.engine import KVS
from kvs.tree import TreeConfig
from kvs.txn import TxnBuilder


def kinds(store: Store, kvs: KVS, key: str) -> dict[str, str]:
    listing = kvs.readdir(key)
    return {name: e["type"] for name, e in listing.items()}


def test_small_subdirs_inline_big_ones_by_reference(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(dir_inline_max=200, dir_inline_budget=1000, inline_parent_max=4,
                                           val_inline_max=64))
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


def test_appends_stay_a_val_until_the_bound(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(val_inline_max=20, merge_after=2, chunk_max=64))
        before = store.stats().blob_count
        for i in range(4):
            kvs.commit_one(TxnBuilder().append("log", b"e%d\n" % i).build())
            assert kvs.get_treeobj("log")["type"] == "val"
        assert kvs.get("log") == b"e0\ne1\ne2\ne3\n"
        # no blob for the value itself: only the roots
        assert store.stats().blob_count - before == 4
        kvs.commit_one(TxnBuilder().append("log", b"past the twenty byte bound\n").build())
        obj = kvs.get_treeobj("log")
        # the whole value (old bytes and new) moved into one blob
        assert obj["type"] == "valref" and len(obj["data"]) == 1 and obj["size"] == 39
        kvs.commit_one(TxnBuilder().append("log", b"x").build())
        obj = kvs.get_treeobj("log")
        assert len(obj["data"]) == 2 and obj["size"] == 40
        assert kvs.get("log") == b"e0\ne1\ne2\ne3\npast the twenty byte bound\nx"


def test_watchers_get_only_new_bytes_across_the_bound(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(val_inline_max=16, merge_after=2, chunk_max=32))
        old = None
        lines = [b"line %d\n" % i for i in range(12)]
        for line in lines:
            kvs.commit_one(TxnBuilder().append("log", line).build())
            new = kvs.get_treeobj("log")
            assert kvs.appended(old, new) == line
            old = new
        assert old["type"] == "valref" and kvs.get("log") == b"".join(lines)


def test_small_puts_are_vals_big_ones_valrefs(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(val_inline_max=100))
        kvs.commit_one(TxnBuilder().put_raw("a", b"x" * 100).put_raw("b", b"x" * 101).build())
        assert kvs.get_treeobj("a")["type"] == "val" and kvs.get_treeobj("b")["type"] == "valref"


def test_defaults_scale_with_a_small_blob_limit() -> None:
    cfg = TreeConfig.for_store(1000)
    assert cfg.val_inline_max == 250 and cfg.dir_inline_max == 250 and cfg.dir_inline_budget == 500
    assert cfg.chunk_max == 1000
    assert TreeConfig.for_store(1 << 20) == TreeConfig()


def test_raw_values_share_chunks_and_stay_inline_when_short(tmp_path: Path) -> None:
    from kvs.constants import FLUX_KVS_APPEND
    from kvs.txn import RawValue, Txn

    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(val_inline_max=64))
        spec = b'{"spec":"' + b"x" * 200 + b'"}'
        head = b'{"version":1,"jobspec":'
        ops = [{"key": "j.jobspec", "flags": 0, "dirent": RawValue(spec)},
               {"key": "j.J", "flags": 0, "dirent": RawValue(head, spec, b"}")},
               {"key": "j.short", "flags": 0, "dirent": RawValue(b"ab", b"cd")},
               {"key": "j.log", "flags": FLUX_KVS_APPEND, "dirent": RawValue(b"e1\n")}]
        kvs.commit_one(Txn(ops))
        assert kvs.get("j.J") == head + spec + b"}" and kvs.get("j.jobspec") == spec
        J, js = kvs.get_treeobj("j.J"), kvs.get_treeobj("j.jobspec")
        # J is the concatenation of three blobs, the middle one the jobspec's
        assert J["type"] == "valref" and J["data"][1] == js["data"][0] and len(J["data"]) == 3
        assert J["size"] == len(head + spec + b"}")
        assert kvs.get_treeobj("j.short") == t.val(b"abcd")
        kvs.commit_one(Txn([{"key": "j.log", "flags": FLUX_KVS_APPEND, "dirent": RawValue(b"e2\n")}]))
        assert kvs.get("j.log") == b"e1\ne2\n" and kvs.get_treeobj("j.log")["type"] == "val"


def test_a_chunk_object_given_twice_is_hashed_once(tmp_path: Path, monkeypatch) -> None:
    import kvs.tree as tree_mod
    from kvs.txn import RawValue, Txn

    hashed: list[int] = []
    real = tree_mod.blake3

    def counting(data: bytes):
        hashed.append(len(data))
        return real(data)

    monkeypatch.setattr(tree_mod, "blake3", counting)
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(val_inline_max=64))
        spec = b"s" * 500
        kvs.commit_one(Txn([{"key": "a", "flags": 0, "dirent": RawValue(spec)},
                            {"key": "b", "flags": 0, "dirent": RawValue(b"[", spec, b"]")}]))
        assert hashed.count(500) == 1
        assert kvs.get("b") == b"[" + spec + b"]"
        # equal bytes in another object are hashed (and still stored once)
        kvs.commit_one(Txn([{"key": "c", "flags": 0, "dirent": RawValue(b"s" * 500)}]))
        assert hashed.count(500) == 2
        assert kvs.get_treeobj("c")["data"] == kvs.get_treeobj("a")["data"]


def test_a_lone_change_among_many_inline_siblings_moves_them_out(tmp_path: Path) -> None:
    """Jobs that progress one at a time (real execution): the first commit that touches
    few of a directory's many inline subdirectories stores them all as blobs, so it and
    every later lone change rewrites a parent of dirrefs instead of every sibling."""
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store)
        b = TxnBuilder()
        for i in range(40):                    # jobs of one millisecond, submitted together
            b.put(f"ms.j{i}.eventlog", "e" * 400).put(f"ms.j{i}.R", "r" * 300)
        kvs.commit_one(b.build())
        assert set(kinds(store, kvs, "ms").values()) == {"dir"}
        kvs.commit_one(TxnBuilder().put("ms.j7.R", "changed").build())
        assert set(kinds(store, kvs, "ms").values()) == {"dirref"}
        before = store.stats().blob_bytes
        kvs.commit_one(TxnBuilder().put("ms.j8.R", "changed too").build())
        # j8's directory, the parent of 40 dirrefs, the root: not 40 directories again
        assert store.stats().blob_bytes - before < 8000
        assert kvs.get_json("ms.j7.R") == "changed" and kvs.get_json("ms.j9.R") == "r" * 300
        # a commit that rewrites most of them brings them back inline
        b = TxnBuilder()
        for i in range(40):
            b.put(f"ms.j{i}.R", f"again {i}")
        kvs.commit_one(b.build())
        assert set(kinds(store, kvs, "ms").values()) == {"dir"}
        assert kvs.get_json("ms.j39.R") == "again 39"
