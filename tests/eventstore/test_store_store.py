"""The LMDB store: blobs, roots, pins, startlog, GC, compaction, stats, map growth."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import lmdb
import pytest

from eventstore.blobref import blobref, parse
from eventstore.checkpoint import RootRecord
from eventstore.store import Store
from flux.errors import FluxError


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "st", durability="none")
    yield s
    s.close()


def test_store_load_roundtrip_and_dedup(store: Store) -> None:
    ref = store.store(b"hello")
    assert ref == blobref(b"hello")
    assert store.load(ref) == b"hello"
    assert store.has(ref) and store.size(ref) == 5
    assert store.store(b"hello") == ref
    st = store.stats()
    assert (st.blob_count, st.blob_bytes) == (1, 5)


def test_load_absent_is_enoent_naming_ref(store: Store) -> None:
    ref = blobref(b"nothing here")
    with pytest.raises(FluxError) as ei:
        store.load(ref)
    assert ei.value.errno == errno.ENOENT and ref in str(ei.value)
    assert not store.has(ref)


def test_load_bad_ref_is_einval(store: Store) -> None:
    with pytest.raises(FluxError) as ei:
        store.load("sha1-1234")
    assert ei.value.errno == errno.EINVAL


def test_efbig_over_limit(tmp_path: Path) -> None:
    with Store(tmp_path / "s", blob_size_limit=10, durability="none") as s:
        s.store(b"x" * 10)
        with pytest.raises(FluxError) as ei:
            s.store(b"x" * 11)
        assert ei.value.errno == errno.EFBIG and "11 bytes" in str(ei.value) and "10 bytes" in str(ei.value)
        data = b"y" * 11
        with pytest.raises(FluxError) as ei:
            s.commit([(blobref(data), data)])
        assert blobref(data) in str(ei.value)


def test_corrupt_blob_is_eio_naming_ref(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with Store(path, durability="none") as s:
        ref = s.store(b"precious")
    # flip the stored bytes behind the store's back
    env = lmdb.open(str(path), max_dbs=8)
    db = env.open_db(b"blobs")
    with env.begin(write=True, db=db) as txn:
        txn.put(parse(ref), b"tampered")
    env.close()
    with Store(path, durability="none") as s:
        with pytest.raises(FluxError) as ei:
            s.load(ref)
        assert ei.value.errno == errno.EIO and ref in str(ei.value)


def test_commit_rejects_mismatched_ref(store: Store) -> None:
    with pytest.raises(FluxError, match="does not match the blobref"):
        store.commit([(blobref(b"a"), b"b")])


def test_commit_writes_blobs_and_roots_together(tmp_path: Path) -> None:
    path = tmp_path / "s"
    data = b"root dir"
    ref = blobref(data)
    with Store(path) as s:
        added = s.commit({ref: data}, roots={"primary": RootRecord(ref, 1, 5.0, 100)})
        assert added == len(data)
        assert s.commit({ref: data}) == 0  # deduplicated
    with Store(path, readonly=True) as s:
        assert s.roots() == {"primary": RootRecord(ref, 1, 5.0, 100)}
        assert s.root("primary") == RootRecord(ref, 1, 5.0, 100)
        assert s.root("other") is None
        assert s.load(ref) == data


def test_deleted_roots(store: Store) -> None:
    ref = store.store(b"r")
    store.commit(roots={"a": RootRecord(ref, 0, 1.0, 0), "b": RootRecord(ref, 0, 1.0, 0)})
    store.commit(deleted_roots=["a"])
    assert set(store.roots()) == {"b"}


def test_startlog_clean_and_unclean(tmp_path: Path) -> None:
    path = tmp_path / "s"
    s = Store(path)
    assert not s.unclean
    s.close()
    s = Store(path)
    assert not s.unclean
    log = s.startlog()
    assert len(log) == 2 and log[0].clean and not log[1].clean
    # no close: as if the process died
    s._env.close()
    s._closed = True
    s = Store(path)
    assert s.unclean
    log = s.startlog()
    assert [r.clean for r in log] == [True, False, False]
    s.close()
    with Store(path, readonly=True) as ro:
        assert ro.unclean is False


def test_readonly_refuses_writes(tmp_path: Path) -> None:
    Store(tmp_path / "s").close()
    with Store(tmp_path / "s", readonly=True) as s:
        with pytest.raises(FluxError) as ei:
            s.store(b"x")
        assert ei.value.errno == errno.EROFS


def test_closed_store_refuses(tmp_path: Path) -> None:
    s = Store(tmp_path / "s")
    s.close()
    s.close()  # idempotent
    with pytest.raises(FluxError) as ei:
        s.load(blobref(b""))
    assert ei.value.errno == errno.EBADF


def test_pins(store: Store) -> None:
    ref = store.store(b"snapshot")
    store.pin("jobmgr", ref, "blob")
    assert store.pins()["jobmgr"].ref == ref
    assert store.unpin("jobmgr") and not store.unpin("jobmgr")
    with pytest.raises(ValueError, match="pin kind 'x'"):
        store.pin("a", ref, "x")
    with pytest.raises(FluxError):
        store.pin("a", "nope")


def test_meta(store: Store) -> None:
    assert store.meta_get("hash") == b"blake3"
    store.meta_put("k", b"v")
    assert store.meta_get("k") == b"v" and store.meta_get("nope") is None


def test_gc_keeps_live_and_reports_freed(store: Store) -> None:
    keep = [store.store(b"keep %d" % i) for i in range(50)]
    drop = [store.store(b"drop blob %d" % i) for i in range(100)]
    res = store.gc(keep)
    assert (res.freed_blobs, res.kept_blobs) == (100, 50)
    assert res.freed_bytes == sum(len(b"drop blob %d" % i) for i in range(100))
    assert res.kept_bytes == sum(len(b"keep %d" % i) for i in range(50))
    assert all(store.load(r) for r in keep)
    assert not any(store.has(r) for r in drop)
    st = store.stats()
    assert (st.blob_count, st.blob_bytes) == (50, res.kept_bytes)


def test_gc_repacks_pages(store: Store) -> None:
    refs = [store.store(os.urandom(200)) for _ in range(3000)]
    before = store.stats().pages_in_use
    store.gc(refs[::4])
    after = store.stats()
    # a quarter of the data, packed full: well under a quarter of the pages plus slack
    assert after.pages_in_use < before / 3
    assert after.live_bytes < 750 * (200 + 60) + 20 * 4096


def test_compact_shrinks_file(store: Store) -> None:
    refs = [store.store(os.urandom(500)) for _ in range(2000)]
    store.gc(refs[:10])
    big = store.stats().file_bytes
    store.compact()
    st = store.stats()
    assert st.file_bytes < big / 10
    assert all(store.load(r) for r in refs[:10])
    store.store(b"still writable")


def test_map_grows_by_itself(tmp_path: Path) -> None:
    with Store(tmp_path / "s", map_size=1 << 20, durability="none") as s:
        refs = [s.store(os.urandom(4000)) for _ in range(1000)]
        assert s.stats().map_size > 1 << 20
        assert s.load(refs[0]) and s.load(refs[-1])


def test_map_ceiling_is_enospc_and_store_stays_consistent(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with Store(path, map_size=1 << 20, max_map_size=2 << 20, durability="none") as s:
        kept = []
        with pytest.raises(FluxError) as ei:
            for _ in range(2000):
                data = os.urandom(4000)
                ref = blobref(data)
                s.commit([(ref, data)], roots={"primary": RootRecord(ref, len(kept), 1.0, 0)})
                kept.append(ref)
        assert ei.value.errno == errno.ENOSPC and "full" in str(ei.value)
        assert s.root("primary") == RootRecord(kept[-1], len(kept) - 1, 1.0, 0)
    with Store(path, durability="none") as s:
        assert all(s.load(r) for r in kept)
        assert s.root("primary").rootref == kept[-1]


def test_batch_durability_roundtrip(tmp_path: Path) -> None:
    with Store(tmp_path / "s", durability="batch", sync_interval=0.0) as s:
        ref = s.store(b"batched")
    with Store(tmp_path / "s") as s:
        assert s.load(ref) == b"batched"


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        Store(tmp_path / "a", durability="often")
    with pytest.raises(ValueError, match="blob_size_limit"):
        Store(tmp_path / "b", blob_size_limit=0)


def test_readonly_open_of_missing_store_is_enoent(tmp_path: Path) -> None:
    with pytest.raises(FluxError) as ei:
        Store(tmp_path / "nothing", readonly=True)
    assert ei.value.errno == errno.ENOENT and "nothing" in str(ei.value)


def test_a_reader_kept_past_its_snapshot_holds_no_reader_slot(store: Store) -> None:
    ref = store.store(b"x")
    kept = []
    for _ in range(1000):      # far past LMDB's 126 reader slots
        with store.reader() as r:
            assert r.load(ref) == b"x"
            kept.append(r)     # e.g. an exception's traceback keeps the frame alive
    with pytest.raises(FluxError) as exc:
        kept[0].load(ref)
    assert exc.value.errno == errno.EINVAL and "after its snapshot ended" in exc.value.strerror
    assert store.load(ref) == b"x"
