"""The engine: group commit, merge rules, sequence numbers, namespaces, copy/move."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

from eventstore.store import Store
from flux.errors import FluxError
from kvs import treeobj as t
from kvs.constants import FLUX_KVS_APPEND, FLUX_KVS_NO_MERGE
from kvs.engine import KVS
from kvs.txn import Txn, TxnBuilder


@pytest.fixture
def kvs(tmp_path: Path) -> KVS:
    store = Store(tmp_path / "st", durability="none")
    yield KVS(store, owner=1000)
    store.close()


def put(key: str, value: object, ns: str = "primary", flags: int = 0) -> Txn:
    return TxnBuilder().put(key, value).build(ns, flags)


def test_fresh_store_has_empty_primary(kvs: KVS) -> None:
    root = kvs.getroot()
    assert (root.name, root.sequence, root.owner) == ("primary", 0, 1000)
    assert root.treeobj == t.dirref(root.rootref)
    assert kvs.listdir() == []


def test_commit_and_get(kvs: KVS) -> None:
    res = kvs.commit_one(TxnBuilder().put("a.b.c", {"x": 1}).put_raw("r", b"\0raw").build())
    assert res.ok and res.sequence == 1 and res.treeobj == kvs.getroot().treeobj
    assert kvs.get_json("a.b.c") == {"x": 1}
    assert kvs.get("r") == b"\0raw"
    assert kvs.listdir("a") == ["b"]


def test_contemporaneous_txns_merge_into_one_root(kvs: KVS) -> None:
    results = kvs.commit([put("a", 1), put("b", 2), put("a", 3)])
    assert {r.sequence for r in results} == {1}
    assert len({r.rootref for r in results}) == 1
    assert kvs.get_json("a") == 3  # later txn wins
    assert kvs.getroot().sequence == 1


def test_no_merge_txn_commits_alone_in_order(kvs: KVS) -> None:
    results = kvs.commit([put("a", 1), put("b", 2), put("a", 3, flags=FLUX_KVS_NO_MERGE), put("c", 4), put("d", 5)])
    assert [r.sequence for r in results] == [1, 1, 2, 3, 3]
    # each root is a real snapshot: the first one has a=1 and no c
    first = results[0].rootref
    assert kvs.get_json("a", at=first) == 1
    with pytest.raises(FluxError) as ei:
        kvs.get("c", at=first)
    assert ei.value.errno == errno.ENOENT
    assert kvs.get_json("a", at=results[2].rootref) == 3
    assert kvs.get_json("a") == 3 and kvs.get_json("d") == 5


def test_failing_txn_is_rolled_back_alone(kvs: KVS) -> None:
    kvs.commit_one(TxnBuilder().mkdir("dir").put("dir.x", 1).build())
    bad = TxnBuilder().put("ok-before-failure", 1).unlink("dir").build()  # NODIR unlink fails
    results = kvs.commit([put("a", 1), bad, put("b", 2)])
    assert results[0].ok and results[2].ok
    assert results[1].error is not None and results[1].error.errno == errno.EISDIR
    assert "dir: is a directory" in str(results[1].error)
    assert kvs.listdir() == ["a", "b", "dir"]  # nothing of the failed txn, all of the others
    assert results[0].sequence == results[2].sequence == 2


def test_failing_txn_rolls_back_nested_changes(kvs: KVS) -> None:
    kvs.commit_one(TxnBuilder().put("j.k.l", 1).append("j.k.log", b"a").mkdir("j.d").build())
    before = kvs.getroot().rootref
    bad = (TxnBuilder().put("j.k.l", 2).append("j.k.log", b"b").unlink("j.k.l").put("j.k.m.n", 3)
           .append("j.d", b"x").build())  # the last op appends to a directory
    res = kvs.commit([bad])[0]
    assert res.error is not None and res.error.errno == errno.EISDIR
    assert kvs.getroot().rootref == before and kvs.getroot().sequence == 1
    assert kvs.get("j.k.log") == b"a" and kvs.get_json("j.k.l") == 1


def test_all_failing_batch_makes_no_root(kvs: KVS) -> None:
    res = kvs.commit([Txn([{"key": "", "flags": 0, "dirent": None}]), put("x", 1, ns="nope")])
    assert res[0].error.errno == errno.EINVAL
    assert res[1].error.errno == errno.ENOTSUP
    assert kvs.getroot().sequence == 0


def test_sequence_per_namespace(kvs: KVS) -> None:
    kvs.namespace_create("other", owner=5)
    res = kvs.commit([put("a", 1), put("a", 2, ns="other"), put("b", 1)])
    assert [r.sequence for r in res] == [1, 1, 1]
    assert res[0].rootref != res[1].rootref
    kvs.commit([put("c", 1, ns="other")])
    assert kvs.getroot("other").sequence == 2 and kvs.getroot().sequence == 1
    assert kvs.get_json("a", ns="other") == 2


def test_namespaces(kvs: KVS) -> None:
    info = kvs.namespace_create("job-1", owner=42)
    assert (info.name, info.owner, info.sequence) == ("job-1", 42, 0)
    with pytest.raises(FluxError) as ei:
        kvs.namespace_create("job-1")
    assert ei.value.errno == errno.EEXIST
    assert [n.name for n in kvs.namespaces()] == ["job-1", "primary"]
    kvs.namespace_remove("job-1")
    with pytest.raises(FluxError) as ei:
        kvs.namespace_remove("job-1")
    assert ei.value.errno == errno.ENOTSUP
    with pytest.raises(FluxError) as ei:
        kvs.getroot("job-1")
    assert ei.value.errno == errno.ENOTSUP and "'job-1'" in str(ei.value)
    with pytest.raises(FluxError) as ei:
        kvs.namespace_remove("primary")
    assert ei.value.errno == errno.EINVAL
    for bad in ("", "a b", "a/b", "x" * 256):
        with pytest.raises(FluxError) as ei:
            kvs.namespace_create(bad)
        assert ei.value.errno == errno.EINVAL


def test_state_survives_reopen(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store:
        kvs = KVS(store)
        kvs.namespace_create("ns2", owner=7)
        kvs.commit([put("a", 1), put("b", 2, ns="ns2")])
        root = kvs.getroot()
    with Store(tmp_path / "s") as store:
        kvs = KVS(store)
        assert kvs.getroot() == root
        assert kvs.get_json("b", ns="ns2") == 2 and kvs.getroot("ns2").owner == 7


def test_put_replaces_values_in_the_way(kvs: KVS) -> None:
    kvs.commit_one(put("a", 1))
    kvs.commit_one(put("a.b", 2))  # a value in the path becomes a directory
    assert kvs.get_json("a.b") == 2
    kvs.commit_one(put("a", 3))  # and a directory can be replaced by a value
    assert kvs.get_json("a") == 3


def test_unlink(kvs: KVS) -> None:
    kvs.commit_one(TxnBuilder().put("d.x", 1).put("d.y", 2).put("v", 3).build())
    kvs.commit_one(TxnBuilder().unlink("v").unlink("missing").unlink("missing.deep").build())
    assert kvs.listdir() == ["d"]
    res = kvs.commit([TxnBuilder().unlink("d").build()])[0]
    assert res.error.errno == errno.EISDIR
    kvs.commit_one(TxnBuilder().unlink("d", recursive=True).build())
    assert kvs.listdir() == []


def test_cannot_write_the_root(kvs: KVS) -> None:
    res = kvs.commit([Txn([{"key": ".", "flags": 0, "dirent": t.val(b"")}])])[0]
    assert res.error.errno == errno.EINVAL and "root directory" in str(res.error)


def test_large_values_become_valrefs_and_split(tmp_path: Path) -> None:
    with Store(tmp_path / "s", blob_size_limit=1000, durability="none") as store:
        kvs = KVS(store)
        data = bytes(range(256)) * 20
        kvs.commit_one(TxnBuilder().put_raw("big", data).put_raw("small", b"tiny").build())
        obj = kvs.get_treeobj("big")
        assert obj["type"] == "valref" and obj["size"] == len(data) and len(obj["data"]) >= 6
        assert kvs.get("big") == data
        assert kvs.get_treeobj("small")["type"] == "val"


def test_put_treeobj_refs_must_exist(kvs: KVS) -> None:
    ref = kvs.store.store(b"content")
    kvs.commit_one(TxnBuilder().put_treeobj("v", {"ver": 1, "type": "valref", "data": [ref]}).build())
    assert kvs.get("v") == b"content" and kvs.get_treeobj("v")["size"] == 7
    missing = t.valref(["blake3-" + "0" * 64], 3)
    res = kvs.commit([TxnBuilder().put_treeobj("w", missing).build()])[0]
    assert res.error.errno == errno.ENOENT and "blake3-" + "0" * 64 in str(res.error)
    res = kvs.commit([TxnBuilder().put_treeobj("d", t.dirref(ref)).build()])[0]
    assert res.error.errno == errno.EINVAL and "dirref" in str(res.error)


def test_put_rolled_up_dir(kvs: KVS) -> None:
    snap = t.dir_({"a": t.val(b"1"), "sub": t.dir_({"b": t.val(b"x" * 500)}), "l": t.symlink("snap.a")})
    kvs.commit_one(TxnBuilder().put_treeobj("snap", snap).build())
    assert kvs.get("snap.a") == b"1" and kvs.get("snap.sub.b") == b"x" * 500
    assert kvs.get("snap.l") == b"1"


def test_copy_is_by_reference_and_move(kvs: KVS) -> None:
    kvs.commit_one(TxnBuilder().put("src.a", 1).put("src.b.c", 2).build())
    kvs.copy("src", "dst")
    assert kvs.get_treeobj("dst") == kvs.get_treeobj("src")
    kvs.commit_one(put("src.a", 9))
    assert kvs.get_json("dst.a") == 1
    kvs.namespace_create("other")
    kvs.copy("dst", "x", dst_ns="other")
    assert kvs.get_json("x.b.c", ns="other") == 2
    kvs.move("dst", "moved")
    assert kvs.get_json("moved.b.c") == 2 and "dst" not in kvs.listdir()
    kvs.move("moved", "m2", dst_ns="other")
    assert kvs.get_json("m2.a", ns="other") == 1 and "moved" not in kvs.listdir()


def test_store_failure_fails_the_batch_and_keeps_state(tmp_path: Path) -> None:
    with Store(tmp_path / "s", map_size=1 << 20, max_map_size=1 << 20, durability="none") as store:
        kvs = KVS(store)
        kvs.commit_one(put("a", 1))
        root = kvs.getroot()
        big = [TxnBuilder().put_raw(f"k{i}", bytes([i % 251]) * 200_000).build() for i in range(10)]
        results = kvs.commit(big)
        assert all(r.error is not None and r.error.errno == errno.ENOSPC for r in results)
        assert kvs.getroot() == root
        kvs.commit_one(put("b", 2))
        assert kvs.get_json("b") == 2


def test_appends(kvs: KVS) -> None:
    kvs.commit_one(put("v", "x"))
    kvs.commit([Txn([{"key": "v", "flags": FLUX_KVS_APPEND, "dirent": t.val(b"yz")}])])[0].check()
    assert kvs.get("v") == b'"x"yz'
    assert kvs.get_treeobj("v")["type"] == "val"   # still short: stays inline
    for i in range(400):
        kvs.commit_one(TxnBuilder().append("log", b"%d\n" % i).build())
    assert kvs.get("log") == b"".join(b"%d\n" % i for i in range(400))
    obj = kvs.get_treeobj("log")
    assert obj["type"] == "valref"   # past val_inline_max
    assert obj["size"] == len(kvs.get("log")) and len(obj["data"]) < 12
    kvs.commit_one(TxnBuilder().mkdir("d").build())
    assert kvs.commit([TxnBuilder().append("d", b"x").build()])[0].error.errno == errno.EISDIR
    kvs.commit_one(TxnBuilder().symlink("s", "log").build())
    assert kvs.commit([TxnBuilder().append("s", b"x").build()])[0].error.errno == errno.EOPNOTSUPP


def test_appends_in_one_batch_keep_order(kvs: KVS) -> None:
    txns = [TxnBuilder().append("log", b"%d," % i).build() for i in range(50)]
    assert all(r.ok for r in kvs.commit(txns))
    assert kvs.get("log") == b"".join(b"%d," % i for i in range(50))


def test_append_valref_op(kvs: KVS) -> None:
    ref = kvs.store.store(b"chunk")
    kvs.commit_one(Txn([{"key": "v", "flags": FLUX_KVS_APPEND, "dirent": t.valref([ref], 5)}]))
    kvs.commit_one(Txn([{"key": "v", "flags": FLUX_KVS_APPEND, "dirent": t.valref([ref], 5)}]))
    assert kvs.get("v") == b"chunkchunk"


def test_write_through_symlinks(kvs: KVS) -> None:
    kvs.commit_one(TxnBuilder().mkdir("real").symlink("link", "real").build())
    kvs.commit_one(put("link.x", 1))
    assert kvs.get_json("real.x") == 1
    kvs.namespace_create("o")
    kvs.commit_one(TxnBuilder().symlink("ext", "a", "o").build())
    res = kvs.commit([put("ext.x", 1)])[0]
    assert res.error.errno == errno.EINVAL and "namespace 'o'" in str(res.error)
    kvs.commit_one(TxnBuilder().symlink("loop", "loop").build())
    assert kvs.commit([put("loop.x", 1)])[0].error.errno == errno.ELOOP


def test_cache_is_bounded(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, cache_entries=50, cache_bytes=1 << 30)
        for i in range(40):
            kvs.commit_one(TxnBuilder().put(f"d{i}." + "x" * 300, i).build())
        assert len(kvs.cache) <= 50
        assert kvs.get_json(f"d0.{'x' * 300}") == 0


def test_readonly_store_serves_lookups(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store:
        KVS(store).commit_one(put("a", 1))
    with Store(tmp_path / "s", readonly=True) as store:
        kvs = KVS(store)
        assert kvs.get_json("a") == 1
        res = kvs.commit([put("b", 2)])[0]
        assert res.error is not None and res.error.errno == errno.EROFS


def test_get_many_reads_values_of_one_directory(tmp_path) -> None:
    from eventstore.store import Store
    from kvs.engine import KVS
    from kvs.txn import TxnBuilder

    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store)
        b = TxnBuilder().put("job.a.small", "x").put("job.a.big", "y" * 5000)
        b.append("job.a.log", b"1\n").append("job.a.log", b"2\n").put("job.a.sub.k", 1)
        for i in range(300):   # enough entries for an hdir
            b.put(f"wide.k{i}", i)
        kvs.commit_one(b.build())
        kvs.commit_one(TxnBuilder().append("job.a.log", b"3\n").build())
        got = kvs.get_many("job.a", ["small", "big", "log", "sub", "absent"])
        assert got == {"small": b'"x"', "big": b'"' + b"y" * 5000 + b'"',
                       "log": b"1\n2\n3\n", "sub": None, "absent": None}
        assert kvs.get_many("wide", ["k7", "k299"]) == {"k7": b"7", "k299": b"299"}
        assert kvs.get_many("job.a.small", ["x"]) is None
        assert kvs.get_many("nope.nope", ["x"]) is None
