"""The kvs and content services over real instances (raw RPCs, specs/kvs-service.md)."""
from __future__ import annotations

import base64
import errno
import os
import subprocess
import sys

import pytest

from broker.testing import TestInstance
from kvs.constants import FLUX_KVS_NO_MERGE, FLUX_KVS_READDIR, FLUX_KVS_READLINK, FLUX_KVS_TREEOBJ


def val(data: bytes) -> dict:
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode()}


def put(key: str, data: bytes, flags: int = 0) -> dict:
    return {"key": key, "flags": flags, "dirent": val(data)}


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


def commit(h, ops, namespace=None, flags=0):
    body = {"ops": ops, "flags": flags}
    if namespace:
        body["namespace"] = namespace
    return h.rpc("kvs.commit", body).get()


def lookup(h, key, flags=0, **kw):
    return h.rpc("kvs.lookup", {"key": key, "flags": flags, **kw}).get()["val"]


def test_commit_then_lookup_returns_val(h):
    res = commit(h, [put("svc.a", b"42")])
    assert res["rootref"].startswith("blake3-") and res["sequence"] >= 1
    assert lookup(h, "svc.a") == val(b"42")
    root = h.rpc("kvs.getroot", {"namespace": "primary"}).get()
    assert root["rootref"] == res["rootref"]
    assert root["treeobj"] == {"ver": 1, "type": "dirref", "data": [res["rootref"]]}
    assert root["sequence"] == res["sequence"] and root["owner"] == os.getuid()


def test_large_value_is_returned_as_val(h):
    data = os.urandom(300_000)
    commit(h, [put("svc.big", data)])
    assert base64.b64decode(lookup(h, "svc.big")["data"]) == data
    assert lookup(h, "svc.big", FLUX_KVS_TREEOBJ)["type"] == "valref"


def test_lookup_directory_needs_readdir(h):
    commit(h, [put("svc.d.x", b"1"), put("svc.d.y", b"2")])
    with pytest.raises(OSError) as e:
        lookup(h, "svc.d")
    assert e.value.errno == errno.EISDIR
    listing = lookup(h, "svc.d", FLUX_KVS_READDIR)
    assert listing["type"] == "dir" and list(listing["data"]) == ["x", "y"]


def test_lookup_missing_key_is_enoent_naming_key(h):
    with pytest.raises(OSError) as e:
        lookup(h, "svc.nope")
    assert e.value.errno == errno.ENOENT and "svc.nope" in e.value.strerror


def test_symlinks_followed_unless_readlink(h):
    commit(h, [put("svc.target", b"t"),
               {"key": "svc.link", "flags": 0,
                "dirent": {"ver": 1, "type": "symlink", "data": {"target": "svc.target"}}}])
    assert lookup(h, "svc.link") == val(b"t")
    assert lookup(h, "svc.link", FLUX_KVS_READLINK)["data"] == {"target": "svc.target"}


def test_lookup_at_snapshot_sees_old_value(h):
    first = commit(h, [put("svc.snap", b"old")])
    commit(h, [put("svc.snap", b"new")])
    rootdir = {"ver": 1, "type": "dirref", "data": [first["rootref"]]}
    assert lookup(h, "svc.snap", rootdir=rootdir) == val(b"old")
    assert lookup(h, "svc.snap") == val(b"new")


def test_bad_op_fails_only_its_commit(h):
    good = h.rpc("kvs.commit", {"ops": [put("svc.ok1", b"1")]})
    bad = h.rpc("kvs.commit", {"ops": [{"key": "svc.bad", "flags": 0, "dirent": {"ver": 9}}]})
    good2 = h.rpc("kvs.commit", {"ops": [put("svc.ok2", b"2")]})
    assert good.get()["sequence"] >= 1 and good2.get()["sequence"] >= 1
    with pytest.raises(OSError) as e:
        bad.get()
    assert e.value.errno == errno.EINVAL and "svc.bad" in e.value.strerror
    assert lookup(h, "svc.ok2") == val(b"2")


def test_pipelined_commits_share_a_root(h):
    futures = [h.rpc("kvs.commit", {"ops": [put(f"svc.pipe.k{i}", b"x")]}) for i in range(300)]
    seqs = [f.get()["sequence"] for f in futures]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) < len(seqs)  # merged: fewer roots than commits
    stats = h.rpc("kvs.stats", {}).get()
    assert stats["max_batch"] > 1 and stats["commits"] >= 300


def test_no_merge_commit_gets_its_own_root(h):
    a = h.rpc("kvs.commit", {"ops": [put("svc.nm.a", b"1")]})
    b = h.rpc("kvs.commit", {"ops": [put("svc.nm.b", b"1")], "flags": FLUX_KVS_NO_MERGE})
    c = h.rpc("kvs.commit", {"ops": [put("svc.nm.c", b"1")]})
    sa, sb, sc = (f.get()["sequence"] for f in (a, b, c))
    assert sa < sb < sc


def test_unknown_namespace_is_enotsup(h):
    with pytest.raises(OSError) as e:
        commit(h, [put("x", b"1")], namespace="no-such-ns")
    assert e.value.errno == errno.ENOTSUP and "no-such-ns" in e.value.strerror
    with pytest.raises(OSError) as e:
        lookup(h, "x", namespace="no-such-ns")
    assert e.value.errno == errno.ENOTSUP


def test_namespace_lifecycle(h):
    h.rpc("kvs.namespace-create", {"namespace": "svc-ns", "owner": -1, "flags": 0}).get()
    with pytest.raises(OSError) as e:
        h.rpc("kvs.namespace-create", {"namespace": "svc-ns", "owner": -1, "flags": 0}).get()
    assert e.value.errno == errno.EEXIST
    res = commit(h, [put("k", b"v")], namespace="svc-ns")
    assert res["sequence"] == 1
    listing = h.rpc("kvs.namespace-list", {}).get()["namespaces"]
    mine = [n for n in listing if n["namespace"] == "svc-ns"]
    assert mine == [{"namespace": "svc-ns", "owner": os.getuid(), "flags": 0, "sequence": 1}]
    h.rpc("kvs.namespace-remove", {"namespace": "svc-ns"}).get()
    with pytest.raises(OSError) as e:
        lookup(h, "k", namespace="svc-ns")
    assert e.value.errno == errno.ENOTSUP


def test_wait_version(h):
    seq = h.rpc("kvs.getroot", {}).get()["sequence"]
    now = h.rpc("kvs.wait-version", {"sequence": seq}).get()
    assert now["sequence"] == seq
    later = h.rpc("kvs.wait-version", {"sequence": seq + 1})
    with pytest.raises(OSError) as e:
        later.wait_for(0.2)
    assert e.value.errno == errno.ETIMEDOUT
    commit(h, [put("svc.wv", b"1")])
    assert later.get()["sequence"] == seq + 1


def test_diff_lists_changed_keys_under_prefix(h):
    base = commit(h, [put("diffp.a", b"1"), put("diffp.b", b"1"), put("other.z", b"1")])
    commit(h, [put("diffp.a", b"2"), put("diffp.c", b"3"),
               {"key": "diffp.b", "flags": 0, "dirent": None}, put("other.z", b"2")])
    out = h.rpc("kvs.diff", {"from": base["rootref"], "prefix": "diffp"}).get()
    assert out["changes"] == [{"key": "diffp.a", "kind": "change"},
                              {"key": "diffp.b", "kind": "remove"},
                              {"key": "diffp.c", "kind": "add"}]
    assert out["sequence"] == h.rpc("kvs.getroot", {}).get()["sequence"]


def test_bad_payloads_are_eproto(h):
    with pytest.raises(OSError) as e:
        h.rpc("kvs.commit", {"flags": 0}).get()
    assert e.value.errno == errno.EPROTO and "ops" in e.value.strerror
    with pytest.raises(OSError) as e:
        h.rpc("kvs.lookup", {"key": 5}).get()
    assert e.value.errno == errno.EPROTO and "key" in e.value.strerror
    with pytest.raises(OSError) as e:
        h.rpc("kvs.lookup", {"key": "a\x01b"}).get()
    assert e.value.errno == errno.EINVAL


def test_in_process_requests_refused_from_clients(h):
    for topic in ("content.backing", "kvs.watch-attach"):
        with pytest.raises(OSError) as e:
            h.rpc(topic, {"listener": 1}).get()
        assert e.value.errno == errno.EPERM


def test_content_store_load_roundtrip(h):
    ref = h.rpc("content.store", b"hello").get()["blobref"]
    assert ref == "blake3-ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
    assert h.rpc("content.load", ref).get_raw() == b"hello"
    assert h.rpc("content.load", {"blobref": ref}).get_raw() == b"hello"
    empty = h.rpc("content.store", b"").get()["blobref"]
    assert h.rpc("content.load", empty).get_raw() in (b"", None)
    assert h.rpc("content.flush", {}).get() == {}
    assert h.rpc("content.dropcache", {}).get() == {}


def test_content_errors(h):
    missing = "blake3-" + "0" * 64
    with pytest.raises(OSError) as e:
        h.rpc("content.load", missing).get()
    assert e.value.errno == errno.ENOENT and missing in e.value.strerror
    with pytest.raises(OSError) as e:
        h.rpc("content.load", "sha1-1234").get()
    assert e.value.errno == errno.EINVAL and "sha1" in e.value.strerror
    with pytest.raises(OSError) as e:
        h.rpc("content.store", b"x" * ((1 << 20) + 1)).get()
    assert e.value.errno == errno.EFBIG


def test_content_attributes(h):
    path = h.attr_get("content.backing-path")
    assert path.endswith("content.lmdb") and os.path.isdir(path)
    # no statedir: the store is removed at exit, so it is not synced
    assert h.attr_get("content.durability") == "none"
    assert h.attr_get("content.blob-size-limit") == str(1 << 20)
    assert h.attr_get("content.hash") == "blake3"


def test_a_statedir_instance_is_durable_by_default(tmp_path):
    inst = TestInstance(setattrs=[f"statedir={tmp_path}"]).start()
    try:
        assert inst.flux("getattr", "content.durability").stdout == "always\n"
    finally:
        inst.stop()


GUEST = """
import os, sys, base64
import flux, flux.core.handle, flux.rpc
os.setgid(65534); os.setuid(65534)
h = flux.Flux(sys.argv[1])
op = {"key": "g", "flags": 0, "dirent": {"ver": 1, "type": "val", "data": "MQ=="}}
for ns in ("primary", "guestns"):
    try:
        h.rpc("kvs.commit", {"namespace": ns, "ops": [op]}).get()
        print(ns, "commit ok", h.rpc("kvs.lookup", {"namespace": ns, "key": "g"}).get()["val"]["data"])
    except OSError as e:
        print(ns, "commit", e.errno)
try:
    h.rpc("kvs.lookup", {"key": "svc.a"}).get()
except OSError as e:
    print("primary lookup", e.errno)
print("list", [n["namespace"] for n in h.rpc("kvs.namespace-list", {}).get()["namespaces"]])
for ns in ("primary", "guestns"):
    try:
        r = h.rpc("kvs-watch.lookup", {"namespace": ns, "key": "g", "flags": 0}).get()
        print(ns, "watch ok", r["val"]["data"])
    except OSError as e:
        print(ns, "watch", e.errno)
try:
    h.rpc("kvs.namespace-create", {"namespace": "mine", "owner": 65534, "flags": 0}).get()
except OSError as e:
    print("create", e.errno)
"""


def test_guest_uses_only_own_namespace(tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    (tmp_path / "access.toml").write_text("[access]\nallow-guest-user = true\n")
    inst = TestInstance(config_path=str(tmp_path)).start()
    try:
        h = inst.handle()
        h.rpc("kvs.namespace-create", {"namespace": "guestns", "owner": 65534, "flags": 0}).get()
        out = subprocess.run([sys.executable, "-c", GUEST, inst.uri], capture_output=True,
                             text=True, timeout=30)
        assert out.stdout.splitlines() == [
            f"primary commit {errno.EPERM}",
            "guestns commit ok MQ==",
            f"primary lookup {errno.EPERM}",
            "list ['guestns']",
            f"primary watch {errno.EPERM}",
            "guestns watch ok MQ==",
            f"create {errno.EPERM}",
        ], out.stderr
    finally:
        assert inst.stop() == 0
