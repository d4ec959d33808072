"""flux.kvs, the Python API (Flux's bindings), against a real instance."""
from __future__ import annotations

import errno
import os

import pytest

import flux.kvs
from broker.testing import TestInstance
from eventstore.eventlog import decode_events
from kvs.constants import FLUX_KVS_NO_MERGE, FLUX_KVS_WATCH, FLUX_KVS_WATCH_APPEND


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=1).start()
    yield inst
    assert inst.stop() == 0


@pytest.fixture
def h(inst):
    h = inst.handle()
    yield h
    h.close()


def test_put_commit_get_roundtrip_types(h):
    values = {"py.int": 42, "py.str": "hello", "py.list": [1, "a", None],
              "py.dict": {"a": {"b": 1}}, "py.float": 1.5, "py.bool": True,
              "py.bytes": b"\x00\xffraw"}
    for k, v in values.items():
        flux.kvs.put(h, k, v)
    assert flux.kvs.commit(h) == 0
    for k, v in values.items():
        assert flux.kvs.get(h, k) == v


def test_commit_with_nothing_staged_is_minus_one(h):
    assert flux.kvs.commit(h) == -1


def test_non_json_text_comes_back_as_str_and_empty_as_none(h):
    flux.kvs.put(h, "py.text", b"not json")
    flux.kvs.put(h, "py.empty", b"")
    flux.kvs.commit(h)
    assert flux.kvs.get(h, "py.text") == "not json"
    assert flux.kvs.get(h, "py.empty") is None


def test_get_missing_raises_enoent(h):
    with pytest.raises(OSError) as e:
        flux.kvs.get(h, "py.missing")
    assert e.value.errno == errno.ENOENT


def test_put_unserializable_is_typeerror(h):
    with pytest.raises(TypeError):
        flux.kvs.put(h, "py.bad", {1, 2})


def test_exists_isdir_and_get_dir(h):
    flux.kvs.put(h, "pyd.a", 1)
    flux.kvs.put(h, "pyd.sub.b", 2)
    flux.kvs.commit(h)
    assert flux.kvs.exists(h, "pyd.a") and flux.kvs.exists(h, "pyd.sub")
    assert not flux.kvs.exists(h, "pyd.none")
    assert flux.kvs.isdir(h, "pyd.sub") and not flux.kvs.isdir(h, "pyd.a")
    assert not flux.kvs.isdir(h, "pyd.none")
    d = flux.kvs.get(h, "pyd")
    assert isinstance(d, flux.kvs.KVSDir)
    assert sorted(d) == ["a", "sub"] and len(d) == 2
    assert d["a"] == 1 and d["sub"]["b"] == 2
    assert list(d.files()) == ["a"] and list(d.directories()) == ["sub"]
    assert d.list_all() == (["a"], ["sub"])
    assert d.key_at("a") == "pyd.a" and d.exists("a") and not d.exists("zz")
    with pytest.raises(KeyError):
        d["zz"]


def test_kvsdir_writes_are_staged_until_commit(h):
    flux.kvs.put_mkdir(h, "pyw")
    flux.kvs.commit(h)
    d = flux.kvs.get_dir(h, "pyw")
    d["x"] = "one"
    assert not flux.kvs.exists(h, "pyw.x")
    d.commit()
    assert flux.kvs.get(h, "pyw.x") == "one"
    del d["x"]
    d.commit()
    assert not flux.kvs.exists(h, "pyw.x")


def test_kvsdir_fill_and_mkdir(h):
    flux.kvs.put_mkdir(h, "pyf")
    flux.kvs.commit(h)
    d = flux.kvs.get_dir(h, "pyf")
    d.fill({"a": 1, "s.t": "deep", "j": {"k": [1]}})
    assert flux.kvs.get(h, "pyf.s.t") == "deep" and flux.kvs.get(h, "pyf.j") == {"k": [1]}
    d.mkdir("m", {"x": 5})
    assert flux.kvs.get(h, "pyf.m.x") == 5


def test_kvsdir_of_missing_or_value_fails(h):
    with pytest.raises(OSError) as e:
        flux.kvs.KVSDir(h, "pyno.such")
    assert e.value.errno == errno.ENOENT
    flux.kvs.put(h, "pyv", 1)
    flux.kvs.commit(h)
    with pytest.raises(OSError) as e:
        flux.kvs.KVSDir(h, "pyv")
    assert e.value.errno == errno.ENOTDIR
    with pytest.raises(ValueError):
        flux.kvs.KVSDir(None, "pyv")


def test_walk_like_os_walk(h):
    for k in ("pwk.a", "pwk.d1.b", "pwk.d1.d2.c"):
        flux.kvs.put(h, k, 1)
    flux.kvs.commit(h)
    bottom_up = [(p, sorted(ds), sorted(fs)) for p, ds, fs in flux.kvs.walk("pwk", flux_handle=h)]
    assert bottom_up == [("d1.d2", [], ["c"]), ("d1", ["d2"], ["b"]), ("", ["d1"], ["a"])]
    top_down = [p for p, _ds, _fs in flux.kvs.walk("pwk", topdown=True, flux_handle=h)]
    assert top_down == ["", "d1", "d1.d2"]
    with pytest.raises(ValueError):
        list(flux.kvs.walk("pwk"))


def test_join():
    assert flux.kvs.join("a", "", "b.c") == "a.b.c"


def test_unlink_and_symlink(h):
    flux.kvs.put(h, "pys.target", "T")
    flux.kvs.put_symlink(h, "pys.link", "pys.target")
    flux.kvs.commit(h)
    assert flux.kvs.get(h, "pys.link") == "T"
    flux.kvs.put_unlink(h, "pys.target")
    flux.kvs.commit(h)
    with pytest.raises(OSError) as e:
        flux.kvs.get(h, "pys.link")
    assert e.value.errno == errno.ENOENT


def test_commit_async_pipelines(h):
    futures = []
    for i in range(200):
        flux.kvs.put(h, f"pya.k{i}", i)
        futures.append(flux.kvs.commit_async(h))
    seqs = [f.get()["sequence"] for f in futures]
    assert seqs == sorted(seqs)
    assert flux.kvs.get(h, "pya.k199") == 199
    flux.kvs.put(h, "pya.nm", 1)
    before = flux.kvs.get_version(h)
    flux.kvs.commit(h, FLUX_KVS_NO_MERGE)
    assert flux.kvs.get_version(h) == before + 1


def test_kvstxn_context_manager_and_base_path(h):
    with flux.kvs.KVSTxn(h, "pyt.base") as txn:
        txn.put("a", 1)
        txn.mkdir("d")
    assert flux.kvs.get(h, "pyt.base.a") == 1 and flux.kvs.isdir(h, "pyt.base.d")


def test_namespaces(h):
    flux.kvs.namespace_create(h, "pyns")
    assert "pyns" in flux.kvs.namespace_list(h)
    flux.kvs.put(h, "k", "in-ns")
    flux.kvs.commit(h, namespace="pyns")
    assert flux.kvs.get(h, "k", namespace="pyns") == "in-ns"
    assert not flux.kvs.exists(h, "k")
    flux.kvs.namespace_remove(h, "pyns")
    assert "pyns" not in flux.kvs.namespace_list(h)


def test_namespace_from_environment(h, monkeypatch):
    flux.kvs.namespace_create(h, "pyenv")
    monkeypatch.setenv("FLUX_KVS_NAMESPACE", "pyenv")
    flux.kvs.put(h, "e", 1)
    flux.kvs.commit(h)
    assert flux.kvs.get(h, "e") == 1
    monkeypatch.delenv("FLUX_KVS_NAMESPACE")
    assert not flux.kvs.exists(h, "e")


def test_versions(h):
    v = flux.kvs.get_version(h)
    assert flux.kvs.wait_version(h, v) == v
    flux.kvs.put(h, "pyver", 1)
    flux.kvs.commit(h)
    assert flux.kvs.wait_version(h, v + 1) >= v + 1


def test_dropcache(h):
    # its own key: under xdist the test that wrote "pyver" may run in another worker
    flux.kvs.put(h, "pydrop", 1)
    flux.kvs.commit(h)
    flux.kvs.dropcache(h)
    assert flux.kvs.get(h, "pydrop") == 1


def test_eventlog_append_and_watch(h):
    flux.kvs.eventlog_append(h, "pyel.log", "first", {"a": 1}, timestamp=1.5)
    f = flux.kvs.watch(h, "pyel.log", FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND)
    first = flux.kvs.val_data(f.get()["val"])
    f.reset()
    assert decode_events(first) == [{"timestamp": 1.5, "name": "first", "context": {"a": 1}}]
    flux.kvs.eventlog_append(h, "pyel.log", "second")
    second = decode_events(flux.kvs.val_data(f.get()["val"]))
    f.reset()
    assert [e["name"] for e in second] == ["second"]
    flux.kvs.watch_cancel(h, f)
    with pytest.raises(OSError) as e:
        f.get()
    assert e.value.errno == errno.ENODATA


def test_val_data_rejects_non_val():
    with pytest.raises(ValueError, match="dirref"):
        flux.kvs.val_data({"ver": 1, "type": "dirref", "data": ["x"]})
    with pytest.raises(ValueError, match="bad data"):
        flux.kvs.val_data({"ver": 1, "type": "val", "data": "!!"})


def test_lookup_at_snapshot(h):
    flux.kvs.put(h, "pysnap", "old")
    flux.kvs.commit(h)
    root = h.rpc("kvs.getroot", {}).get()["treeobj"]
    flux.kvs.put(h, "pysnap", "new")
    flux.kvs.commit(h)
    old = flux.kvs.lookup(h, "pysnap", rootdir=root).get()["val"]
    assert flux.kvs.val_data(old) == b'"old"'
    assert os.environ.get("FLUX_KVS_NAMESPACE") is None
