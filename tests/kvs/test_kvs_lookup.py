"""Lookups: errors as Flux gives them, symlinks, snapshots, directory listings."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

from eventstore.store import Store
from flux.errors import FluxError
from kvs import treeobj as t
from kvs.constants import FLUX_KVS_READDIR, FLUX_KVS_READLINK, FLUX_KVS_TREEOBJ
from kvs.engine import KVS
from kvs.txn import TxnBuilder


@pytest.fixture
def kvs(tmp_path: Path) -> KVS:
    store = Store(tmp_path / "st", durability="none")
    k = KVS(store)
    k.namespace_create("other")
    k.commit_one(TxnBuilder().put("a.b.c", "v").put("a.val", 1).symlink("lnk", "a.b").symlink("lnk2", "lnk")
                 .symlink("dangling", "nowhere").symlink("self", "self").symlink("ext", "x.y", "other")
                 .symlink("nons", "x", "missing-ns").build())
    k.commit_one(TxnBuilder().put("x.y.z", "in other").build("other"))
    yield k
    store.close()


def err(fn, *args, **kw) -> FluxError:
    with pytest.raises(FluxError) as ei:
        fn(*args, **kw)
    return ei.value


def test_errors(kvs: KVS) -> None:
    e = err(kvs.get, "a.nope")
    assert e.errno == errno.ENOENT and "a.nope" in str(e)
    e = err(kvs.get, "a.val.deeper")
    assert e.errno == errno.ENOTDIR and "a.val is not a directory" in str(e)
    e = err(kvs.get, "a.b")
    assert e.errno == errno.EISDIR and "a.b: is a directory" in str(e)
    e = err(kvs.get, ".")
    assert e.errno == errno.EISDIR
    e = err(kvs.readdir, "a.val")
    assert e.errno == errno.ENOTDIR
    e = err(kvs.readlink, "a.val")
    assert e.errno == errno.EINVAL and "not a symlink" in str(e)
    e = err(kvs.get, "dangling")
    assert e.errno == errno.ENOENT
    e = err(kvs.get, "self")
    assert e.errno == errno.ELOOP
    e = err(kvs.get, "nons")
    assert e.errno == errno.ENOTSUP and "missing-ns" in str(e)
    e = err(kvs.get, "a", ns="missing")
    assert e.errno == errno.ENOTSUP
    e = err(kvs.lookup, "a", flags=1 << 12)
    assert e.errno == errno.EINVAL and "unknown lookup flags" in str(e)
    e = err(kvs.get, "")
    assert e.errno == errno.EINVAL


def test_symlinks_are_followed(kvs: KVS) -> None:
    assert kvs.get_json("lnk.c") == "v"
    assert kvs.get_json("lnk2.c") == "v"
    assert kvs.listdir("lnk") == ["c"]
    r = kvs.lookup("ext.z")
    assert r.namespace == "other" and r.value == b'"in other"'


def test_readlink_and_treeobj_do_not_follow_the_last_link(kvs: KVS) -> None:
    assert kvs.readlink("lnk") == (None, "a.b")
    assert kvs.readlink("ext") == ("other", "x.y")
    assert kvs.readlink("lnk2") == (None, "lnk")
    assert kvs.get_treeobj("lnk") == t.symlink("a.b")
    assert kvs.lookup("lnk", flags=FLUX_KVS_READLINK).treeobj["type"] == "symlink"
    # but links before the last component are followed
    assert kvs.readlink("lnk2", ns="primary") == (None, "lnk")


def test_treeobj_and_readdir(kvs: KVS) -> None:
    root = kvs.lookup(".", flags=FLUX_KVS_TREEOBJ).treeobj
    assert root == kvs.getroot().treeobj
    listing = kvs.lookup(".", flags=FLUX_KVS_READDIR).treeobj
    assert listing["type"] == "dir"
    assert list(listing["data"]) == sorted(listing["data"])
    assert kvs.listdir() == ["a", "dangling", "ext", "lnk", "lnk2", "nons", "self"]
    assert kvs.get_treeobj("a.val") == t.val(b"1")


def test_snapshots(kvs: KVS) -> None:
    old = kvs.getroot()
    kvs.commit_one(TxnBuilder().put("a.val", 2).build())
    assert kvs.get_json("a.val") == 2
    assert kvs.get_json("a.val", at=old.rootref) == 1
    assert kvs.get_json("a.val", at=old.treeobj) == 1
    # a symlink inside a snapshot resolves within the snapshot
    assert kvs.get_json("lnk.c", at=old.rootref) == "v"
    inline = t.dir_({"k": t.val(b"inline"), "d": t.dir_({"e": t.val(b"deep")})})
    assert kvs.get("k", at=inline) == b"inline" and kvs.get("d.e", at=inline) == b"deep"
    e = err(kvs.get, "k", at=t.val(b"x"))
    assert e.errno == errno.EINVAL


def test_large_directory_lookup_and_ordered_listing(tmp_path: Path) -> None:
    from kvs.tree import TreeConfig

    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store, config=TreeConfig(maxdirent=8, hdir_size=4))
        names = [f"n{i:03d}" for i in range(300)]
        for lo in range(0, 300, 50):
            b = TxnBuilder()
            for n in names[lo:lo + 50]:
                b.put(f"big.{n}", n)
            kvs.commit_one(b.build())
        # stored as an hdir
        top = store.load(kvs.get_treeobj("big")["data"][0])
        assert b'"type":"hdir"' in top
        assert kvs.listdir("big") == names
        assert all(kvs.get_json(f"big.{n}") == n for n in names[::7])
        e = err(kvs.get, "big.n999")
        assert e.errno == errno.ENOENT
        kvs.commit_one(TxnBuilder().unlink("big.n005").put("big.n5000", 1).build())
        assert "n005" not in kvs.listdir("big") and "n5000" in kvs.listdir("big")
        assert len(kvs.listdir("big")) == 300
