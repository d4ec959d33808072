"""fsck of the content store: every blob a root reaches is present and verifies (kvs/fsck.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from eventstore import blobref
from eventstore.store import Store
from kvs.engine import KVS
from kvs.fsck import check_tree
from kvs.txn import TxnBuilder
from kvs.walk import reachable


def all_refs(store: Store) -> list[str]:
    with store._env.begin() as txn:
        return [blobref.from_digest(bytes(k)) for k, _ in txn.cursor(db=store._blobs)]


def delete_blob(store: Store, ref: str) -> None:
    """Damage the store through its API: a GC that keeps every blob but REF."""
    store.gc([r for r in all_refs(store) if r != ref])


def corrupt_blob(store: Store, ref: str, data: bytes) -> None:
    """Replace REF's content with DATA (which does not hash to REF)."""
    delete_blob(store, ref)
    store.commit([(ref, data)], verify=False)


def fsck(store: Store, root: str | None = None):
    with store.reader() as rd:
        return check_tree(rd.load, root or store.root("primary").rootref)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "s", durability="none", blob_size_limit=4096) as s:
        b = TxnBuilder().put_raw("a.big", b"x" * 10000).put_raw("a.small", b"1") \
            .symlink("lnk", "a.small")
        for i in range(200):  # past maxdirent: an hdir with buckets
            b.put_raw(f"many.k{i}", b"v%d" % i * 200)
        KVS(s).commit_one(b.build())
        yield s


def test_clean_store(store: Store) -> None:
    res = fsck(store)
    assert res.ok and res.keys == 203
    with store.reader() as rd:
        live = reachable(rd.load, [store.root("primary").rootref])
    assert res.blobs == len(live)  # every blob is reached, none twice
    assert res.dirs >= 3


def test_missing_value_blob(store: Store) -> None:
    kvs = KVS(store)
    victim = kvs.get_treeobj("a.big")["data"][1]
    delete_blob(store, victim)
    res = fsck(store)
    assert [str(p) for p in res.problems] == [f"a.big: missing blob ({victim})"]
    assert res.keys == 203  # the walk went on


def test_corrupt_value_blob(store: Store) -> None:
    obj = KVS(store).get_treeobj("a.big")
    assert obj["type"] == "valref"
    victim = obj["data"][0]
    corrupt_blob(store, victim, b"not what was stored")
    res = fsck(store)
    assert [(p.key, p.ref) for p in res.problems] == [("a.big", victim)]
    assert "corrupt blob" in res.problems[0].what


def test_missing_and_bad_directory_blobs(store: Store) -> None:
    kvs = KVS(store)
    many = kvs.get_treeobj("many")
    assert many["type"] == "dirref"
    delete_blob(store, many["data"][0])
    res = fsck(store)
    assert [(p.key, p.what) for p in res.problems] == [("many", "missing blob")]
    assert res.keys == 3  # the keys under it cannot be reached


def test_tree_object_that_does_not_decode(tmp_path: Path) -> None:
    with Store(tmp_path / "t", durability="none") as s:
        kvs = KVS(s)
        for i in range(200):
            kvs.commit_one(TxnBuilder().put_raw(f"d.k{i}", b"%d" % i).build())
        sub = kvs.get_treeobj("d")["data"][0]
        corrupt_blob(s, sub, b"{not json")
        res = fsck(s)
        assert len(res.problems) == 1 and res.problems[0].key == "d"
        # a blob whose digest matches but is not a dir object is a bad tree object
        bogus = s.store(b'{"ver":1,"type":"val","data":""}')
        res = fsck(s, bogus)
        assert [p.key for p in res.problems] == ["."]
        assert res.problems[0].what.startswith("bad tree object")


def test_missing_root(store: Store) -> None:
    ghost = blobref.blobref(b"never stored")
    res = fsck(store, ghost)
    assert [(p.key, p.ref, p.what) for p in res.problems] == [(".", ghost, "missing blob")]


def test_labels_and_key_callback(store: Store) -> None:
    seen: list[str] = []
    with store.reader() as rd:
        res = check_tree(rd.load, store.root("primary").rootref, label="ns::", on_key=seen.append)
    assert res.ok and len(seen) == 203 and seen[0] == "ns::a.big" and "ns::lnk" in seen


def test_repair_drops_dangling_refs(store: Store) -> None:
    from kvs.fsck import find_damage, repair_ops
    from kvs.txn import Txn

    kvs = KVS(store)
    big = kvs.get_treeobj("a.big")
    assert len(big["data"]) >= 3
    many = kvs.get_treeobj("many")
    # share the blob to be damaged with a second key: both are found
    kvs.commit_one(TxnBuilder().put_treeobj("copy", big).build())
    delete_blob(store, big["data"][1])
    root = kvs.getroot().rootref
    with store.reader() as rd:
        bucket = kvs.store.load(many["data"][0])
        assert b'"hdir"' in bucket
        damage = find_damage(rd.load, root)
        assert [(d.key, d.is_dir) for d in damage] == [("a.big", False), ("copy", False)]
        ops, lines = repair_ops(damage, rd.size)
    kvs.commit_one(Txn(ops))
    assert fsck(store).ok
    kept = [r for r in big["data"] if r != big["data"][1]]
    left = kvs.get("lost+found.a.big")
    assert left == b"x" * sum(store.size(r) for r in kept) and 0 < len(left) < 10000
    assert lines[0] == f"a.big: {len(kept)} of {len(big['data'])} blobs left: " \
                       "moved to lost+found.a.big"
    assert sorted(kvs.listdir("a")) == ["small"]


def test_repair_unlinks_unreadable_dirs_not_the_root(store: Store) -> None:
    from kvs.fsck import find_damage, repair_ops

    kvs = KVS(store)
    many = kvs.get_treeobj("many")
    hdir = kvs.store.load(many["data"][0])
    import orjson

    bucket = next(b for b in orjson.loads(hdir)["data"]["bucket"] if b is not None)
    delete_blob(store, bucket["data"][0])
    with store.reader() as rd:
        damage = find_damage(rd.load, kvs.getroot().rootref)
        assert [(d.key, d.is_dir) for d in damage] == [("many", True)]
        ops, lines = repair_ops(damage, rd.size)
    assert ops == [{"key": "many", "flags": 0, "dirent": None}]
    assert lines == ["many: directory cannot be read: unlinked"]
    delete_blob(store, kvs.getroot().rootref)
    with store.reader() as rd:
        damage = find_damage(rd.load, kvs.getroot().rootref)
    assert [d.key for d in damage] == ["."]
    with pytest.raises(OSError, match="root directory is damaged"):
        repair_ops(damage, len)
