"""flux.kvs as a user script calls it (Flux's bindings, specs/python-api.md), on a real
instance: raw puts, _kvstxn, keys checked when staged, one transaction per KVSDir,
kvs_watch_async and kvs_checkpoint_lookup.  Error paths check type, errno and text."""
from __future__ import annotations

import errno
import os
import time

import pytest

import flux
import flux.kvs
from broker.testing import TestInstance
from flux.constants import FLUX_KVS_NO_MERGE, FLUX_KVS_SYNC, FLUX_KVS_TXN_COMPACT

ENOENT_TEXT = os.strerror(errno.ENOENT)
EINVAL_TEXT = os.strerror(errno.EINVAL)


@pytest.fixture(scope="module")
def inst():
    instance = TestInstance().start()
    yield instance
    instance.stop()


@pytest.fixture
def h(inst):
    handle = flux.Flux(inst.uri)
    yield handle
    handle.close()


def raw_value(h, key):
    return flux.kvs.val_data(flux.kvs.lookup(h, key).get()["val"])


# -- values -------------------------------------------------------------------------------


def test_put_raw(h):
    flux.kvs.put(h, "raw.str", "text ü", raw=True)
    flux.kvs.put(h, "raw.bytes", b"\x00\x01", raw=True)
    flux.kvs.put(h, "raw.anyway", b"\xffbytes")
    flux.kvs.put(h, "raw.json", "text")
    assert flux.kvs.commit(h) == 0
    assert raw_value(h, "raw.str") == "text ü".encode()
    assert raw_value(h, "raw.bytes") == b"\x00\x01"
    assert raw_value(h, "raw.anyway") == b"\xffbytes"
    assert raw_value(h, "raw.json") == b'"text"'
    assert flux.kvs.get(h, "raw.str") == "text ü"
    with pytest.raises(AttributeError):
        flux.kvs.put(h, "raw.int", 5, raw=True)
    txn = flux.kvs.KVSTxn(h)
    txn.put("raw.txn", "abc", raw=True)
    txn.commit()
    assert raw_value(h, "raw.txn") == b"abc"


def test_bad_keys_refused_when_staged(h):
    flux.kvs.put(h, "good.before", 1)
    for bad in ("", ".", "...", "a\x01b"):
        for stage in (lambda k: flux.kvs.put(h, k, 1),
                      lambda k: flux.kvs.put_mkdir(h, k),
                      lambda k: flux.kvs.put_unlink(h, k),
                      lambda k: flux.kvs.put_symlink(h, k, "good.before")):
            with pytest.raises(OSError) as exc:
                stage(bad)
            assert exc.value.errno == errno.EINVAL and exc.value.strerror == EINVAL_TEXT
    # nothing bad stayed queued: the next commit succeeds with the good op
    assert flux.kvs.commit(h) == 0
    assert flux.kvs.get(h, "good.before") == 1
    with pytest.raises(OSError) as exc:
        flux.kvs.KVSTxn(h).put("", 1)
    assert exc.value.errno == errno.EINVAL
    d = flux.kvs.get_dir(h)
    with pytest.raises(OSError) as exc:
        d[""] = 1
    assert exc.value.errno == errno.EINVAL
    assert d.commit() == -1


def test_commit_flags_accepted(h):
    for flags in (FLUX_KVS_NO_MERGE, FLUX_KVS_TXN_COMPACT, FLUX_KVS_SYNC,
                  FLUX_KVS_SYNC | FLUX_KVS_TXN_COMPACT):
        flux.kvs.put(h, "flags.k", flags)
        assert flux.kvs.commit(h, flags) == 0
        assert flux.kvs.get(h, "flags.k") == flags
    flux.kvs.put(h, "flags.k", 0)
    with pytest.raises(OSError) as exc:
        flux.kvs.commit(h, 0x100)
    assert exc.value.errno == errno.EINVAL


# -- transactions -------------------------------------------------------------------------


def test_kvstxn_argument(h):
    txn = flux.kvs.KVSTxn(h)
    flux.kvs.put(h, "tx.a", 1, _kvstxn=txn)
    flux.kvs.put_mkdir(h, "tx.dir", _kvstxn=txn)
    flux.kvs.put_symlink(h, "tx.link", "tx.a", _kvstxn=txn)
    flux.kvs.put(h, "tx.handle", 2)  # the handle's own transaction
    assert flux.kvs.commit(h, _kvstxn=txn) == 0
    assert flux.kvs.get(h, "tx.a") == 1 and flux.kvs.isdir(h, "tx.dir")
    assert flux.kvs.get(h, "tx.link") == 1
    assert not flux.kvs.exists(h, "tx.handle")
    flux.kvs.put_unlink(h, "tx.a", _kvstxn=txn)
    assert flux.kvs.commit_async(h, _kvstxn=txn).get()["sequence"] > 0
    assert not flux.kvs.exists(h, "tx.a")
    assert flux.kvs.commit(h) == 0
    assert flux.kvs.get(h, "tx.handle") == 2
    d = flux.kvs.get_dir(h, "tx", _kvstxn=txn)
    d["viadir"] = 3
    assert txn.ops and txn.commit() == 0
    assert flux.kvs.get(h, "tx.viadir") == 3
    sub = flux.kvs.get(h, "tx", _kvstxn=txn)
    assert sub.kvstxn is txn
    with pytest.raises(TypeError):
        flux.kvs.put(h, "tx.x", 1, _kvstxn="not a txn")


def test_each_kvsdir_has_its_own_transaction(h):
    flux.kvs.put_mkdir(h, "kd.one")
    flux.kvs.put_mkdir(h, "kd.two.sub")
    flux.kvs.commit(h)
    one = flux.kvs.KVSDir(h, "kd.one")
    two = flux.kvs.KVSDir(h, "kd.two")
    one["a"] = 1
    two["b"] = 2
    sub = two["sub"]
    sub["c"] = 3
    assert one.commit() == 0
    assert flux.kvs.get(h, "kd.one.a") == 1
    assert not flux.kvs.exists(h, "kd.two.b") and not flux.kvs.exists(h, "kd.two.sub.c")
    # the subdirectory read through "two" shares its transaction: one commit does both
    f = two.commit_async()
    assert f.get()["sequence"] > 0
    assert flux.kvs.get(h, "kd.two.b") == 2 and flux.kvs.get(h, "kd.two.sub.c") == 3
    assert two.commit() == -1 and sub.commit() == -1
    # nor does the handle's transaction see a KVSDir's writes
    one["later"] = 4
    assert flux.kvs.commit(h) == -1
    with one:
        pass
    assert flux.kvs.get(h, "kd.one.later") == 4


def test_kvsdir_missing_is_enoent(h):
    with pytest.raises(OSError) as exc:
        flux.kvs.KVSDir(h, "missing.dir")
    assert exc.value.errno == errno.ENOENT and exc.value.strerror == ENOENT_TEXT
    with pytest.raises(OSError) as exc:
        flux.kvs.get(h, "missing.key")
    assert exc.value.errno == errno.ENOENT and exc.value.strerror == ENOENT_TEXT


# -- watches -------------------------------------------------------------------------------


def test_kvs_watch_async_values(inst, h):
    writer = flux.Flux(inst.uri)
    flux.kvs.put(writer, "w.key", 1)
    flux.kvs.commit(writer)
    f = flux.kvs.kvs_watch_async(h, "w.key")
    assert isinstance(f, flux.kvs.KVSWatchFuture)
    assert f.get() == 1
    flux.kvs.put(writer, "w.key", {"two": 2})
    flux.kvs.commit(writer)
    assert f.get() == {"two": 2}
    flux.kvs.put(writer, "w.key", "three")
    flux.kvs.commit(writer)
    assert f.get(autoreset=False) == "three"
    assert f.get() == "three"  # not reset above: the same value again
    f.cancel()
    assert f.get() is None and f.get() is None
    writer.close()


def test_kvs_watch_async_missing_key_and_waitcreate(inst, h):
    with pytest.raises(OSError) as exc:
        flux.kvs.kvs_watch_async(h, "w.none").get()
    assert exc.value.errno == errno.ENOENT and exc.value.strerror == ENOENT_TEXT
    f = flux.kvs.kvs_watch_async(h, "w.later", waitcreate=True)
    with pytest.raises(OSError) as exc:
        f.wait_for(0.2)
    assert exc.value.errno == errno.ETIMEDOUT
    flux.kvs.put(h, "w.later", "here")
    flux.kvs.commit(h)
    assert f.get() == "here"
    f.cancel()
    assert f.get() is None


def test_kvs_watch_async_uniq(h):
    flux.kvs.put(h, "w.u", 1)
    flux.kvs.commit(h)
    plain = flux.kvs.kvs_watch_async(h, "w.u")
    uniq = flux.kvs.kvs_watch_async(h, "w.u", uniq=True)
    assert plain.get() == 1 and uniq.get() == 1
    for value in (1, 1, 2):
        flux.kvs.put(h, "w.u", value)
        flux.kvs.commit(h)
    assert [plain.get() for _ in range(3)] == [1, 1, 2]
    assert uniq.get() == 2
    plain.cancel()
    uniq.cancel()


def test_kvs_watch_async_full(h):
    flux.kvs.put(h, "wf.dir.key", "v")
    flux.kvs.commit(h)
    full = flux.kvs.kvs_watch_async(h, "wf.dir.key", full=True)
    assert full.get() == "v"
    flux.kvs.put_unlink(h, "wf.dir")
    flux.kvs.commit(h)
    with pytest.raises(OSError) as exc:
        full.get()
    assert exc.value.errno == errno.ENOENT


def test_kvs_watch_async_then_and_cancel_stop(h):
    flux.kvs.put(h, "wt.k", 0)
    flux.kvs.commit(h)
    seen = []

    def cb(f):
        value = f.get()
        seen.append(value)
        if value == 0:
            flux.kvs.put(h, "wt.k", 1)
            flux.kvs.commit_async(h)
        elif value == 1:
            f.cancel(stop=True)

    flux.kvs.kvs_watch_async(h, "wt.k").then(cb)
    t0 = time.monotonic()
    h.reactor_run()
    assert seen == [0, 1] and time.monotonic() - t0 < 30


# -- checkpoints ---------------------------------------------------------------------------


def test_kvs_checkpoint_lookup(h):
    flux.kvs.put(h, "ckpt.k", 1)
    flux.kvs.commit(h)
    root = h.rpc("kvs.getroot", {}).get()
    for bypass in (False, True):
        ckpts = flux.kvs.kvs_checkpoint_lookup(h, cache_bypass=bypass)
        assert isinstance(ckpts, list) and len(ckpts) >= 1
        latest = ckpts[0]
        assert set(latest) == {"version", "sequence", "timestamp", "rootref"}
        assert latest["version"] == 1
        assert latest["rootref"] == root["rootref"]
        assert latest["sequence"] == root["sequence"]
        assert abs(latest["timestamp"] - time.time()) < 300
    assert h.rpc("content.checkpoint-get").get()["checkpoints"] == \
        h.rpc("content-backing.checkpoint-get").get()["checkpoints"]
