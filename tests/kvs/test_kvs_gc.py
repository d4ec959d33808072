"""GC through the engine: roots, pins and retained roots keep their trees."""
from __future__ import annotations

from pathlib import Path

from eventstore.store import Store
from kvs.engine import KVS
from kvs.txn import TxnBuilder
from kvs.walk import reachable, verify_tree


def test_gc_keeps_roots_pins_and_retained(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store)
        kvs.namespace_create("ns2")
        first = kvs.commit_one(TxnBuilder().put("a", "x" * 200).append("log", b"1\n").build())
        pinned = kvs.commit_one(TxnBuilder().put("a", "y" * 200).build())
        for i in range(20):
            kvs.commit_one(TxnBuilder().append("log", b"%d\n" % i).put("b", "z" * (100 + i)).build())
        kvs.commit_one(TxnBuilder().put("k", "in ns2" * 30).build("ns2"))
        snap = store.store(b"projection snapshot")
        store.pin("jobmgr.snapshot", snap, "blob")
        store.pin("jobmgr.root", pinned.rootref, "tree")
        before = store.stats().blob_count
        res = kvs.gc(retain=[first.rootref])
        assert res.freed_blobs > 0 and res.kept_blobs == store.stats().blob_count < before
        with store.reader() as rd:
            for root in (kvs.getroot().rootref, kvs.getroot("ns2").rootref, pinned.rootref, first.rootref):
                verify_tree(rd.load, root)
        assert store.load(snap) == b"projection snapshot"
        assert kvs.get("a", at=first.rootref) == b'"' + b"x" * 200 + b'"'
        # a second GC with nothing new frees nothing
        assert kvs.gc(retain=[first.rootref]).freed_blobs == 0
        # unpinned and unretained trees go
        store.unpin("jobmgr.root")
        kvs.gc()
        with store.reader() as rd:
            live = reachable(rd.load, [kvs.getroot().rootref, kvs.getroot("ns2").rootref])
        assert store.stats().blob_count == len(live) + 1  # + the pinned snapshot blob
