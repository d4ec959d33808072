"""Online GC (kvs.collect): collections that interleave with commits lose nothing live."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore.store import Store
from kvs.collect import Collection, Marker
from kvs.engine import KVS
from kvs.txn import TxnBuilder
from kvs.walk import reachable, verify_tree


def _live(kvs: KVS, store: Store, extra: list[str] | None = None):
    def live():
        trees = [ns.rootref for ns in kvs.namespaces()] + list(extra or [])
        blobs = []
        for pin in store.pins().values():
            (trees if pin.kind == "tree" else blobs).append(pin.ref)
        return trees, blobs
    return live


def _run(coll: Collection):
    while (rep := coll.step()) is None:
        pass
    return rep


def test_collection_frees_garbage_and_keeps_the_tree(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store)
        for i in range(30):
            kvs.commit_one(TxnBuilder().put(f"d{i % 3}.k{i}", "v" * (200 + i))
                           .append("log", b"%d\n" % i).build())
        kvs.commit_one(TxnBuilder().unlink("d1", recursive=True).build())
        snap = store.store(b"a pinned blob")
        store.pin("p", snap, "blob")
        before = store.stats()
        rep = _run(Collection(store, _live(kvs, store), budget=0.0, chunk=7))
        after = store.stats()
        assert rep.freed_blobs > 0 and rep.freed_bytes > 0
        assert after.blob_count == before.blob_count - rep.freed_blobs == rep.kept_blobs
        assert after.blob_bytes == before.blob_bytes - rep.freed_bytes
        with store.reader() as rd:
            live = reachable(rd.load, [kvs.getroot().rootref])
            verify_tree(rd.load, kvs.getroot().rootref)
        assert after.blob_count == len(live) + 1
        assert store.load(snap) == b"a pinned blob"
        assert rep.steps > 3 and rep.longest_pause_s >= 0
        # nothing new: nothing freed
        assert _run(Collection(store, _live(kvs, store))).freed_blobs == 0


def test_marker_drains_in_bounded_pieces(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store)
        for i in range(200):
            kvs.commit_one(TxnBuilder().put(f"a{i}.b{i}.c", "x" * 300).build())
        root = kvs.getroot().rootref
        m = Marker()
        with store.reader() as rd:
            m.add_tree(root)
            pieces = 0
            while not m.drain(rd.load, deadline=0.0):
                pieces += 1
            expect = reachable(rd.load, [root])
        assert pieces > 1 and m.seen == expect


def test_a_commit_between_steps_that_rewrites_garbage_keeps_it(tmp_path: Path) -> None:
    """Dedup: a value written again after it became garbage is live once more."""
    with Store(tmp_path / "s", durability="none") as store:
        kvs = KVS(store)
        kvs.commit_one(TxnBuilder().put("x", "payload " * 100).put("y", "other " * 100).build())
        kvs.commit_one(TxnBuilder().unlink("x").build())
        coll = Collection(store, _live(kvs, store), budget=0.0, chunk=1)
        coll.step()  # marking starts without x
        while not coll.marker.done:
            coll.step()
        kvs.commit_one(TxnBuilder().put("z", "payload " * 100).build())  # same bytes as x
        _run(coll)
        assert kvs.get_json("z") == "payload " * 100
        with store.reader() as rd:
            verify_tree(rd.load, kvs.getroot().rootref)


_op = st.one_of(
    st.tuples(st.just("put"), st.integers(0, 15), st.integers(0, 3000)),
    st.tuples(st.just("append"), st.integers(0, 3), st.integers(1, 400)),
    st.tuples(st.just("unlink"), st.integers(0, 15), st.just(0)),
    st.tuples(st.just("step"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("gc"), st.just(0), st.just(0)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, min_size=1, max_size=60))
def test_interleaved_commits_and_collection_steps_lose_nothing(ops) -> None:
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s", durability="none") as store:
        kvs = KVS(store)
        model: dict[str, object] = {}
        coll: Collection | None = None
        for kind, a, b in ops:
            if kind == "put":
                key = f"d{a % 4}.k{a}"
                val = "v" * b
                kvs.commit_one(TxnBuilder().put(key, val).build())
                model[key] = val
            elif kind == "append":
                key = f"log{a}"
                data = (str(b) * b)[:b].encode() + b"\n"
                kvs.commit_one(TxnBuilder().append(key, data).build())
                model[key] = (model.get(key) or b"") + data  # type: ignore[operator]
            elif kind == "unlink":
                key = f"d{a % 4}.k{a}"
                if key in model:
                    kvs.commit_one(TxnBuilder().unlink(key).build())
                    del model[key]
            elif kind == "gc" or coll is None:
                coll = Collection(store, _live(kvs, store), budget=0.0, chunk=3)
            if kind == "step" and coll is not None:
                for _ in range(a):
                    if coll.step() is not None:
                        coll = None
                        break
            for key, want in model.items():
                if isinstance(want, bytes):
                    assert kvs.get(key) == want
                else:
                    assert kvs.get_json(key) == want
        if coll is not None:
            _run(coll)
        _run(Collection(store, _live(kvs, store)))
        with store.reader() as rd:
            root = kvs.getroot().rootref
            verify_tree(rd.load, root)
            assert store.stats().blob_count == len(reachable(rd.load, [root]))


def test_prune_stored_forgets_only_blobs_past_their_grace() -> None:
    from kvs.gc_service import STORED_GRACE, prune_stored

    recent = {"old": 100.0, "edge": 200.0 - STORED_GRACE, "new": 199.0}
    prune_stored(recent, 200.0)
    assert recent == {"edge": 200.0 - STORED_GRACE, "new": 199.0}
