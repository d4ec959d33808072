"""kvs.commit's ``create`` (a namespace made by its first commit) and ``link`` (a
namespace moved into a key of another and removed, in one commit)."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

from broker.testing import TestInstance
from eventstore.store import Store
from flux.errors import FluxError
from kvs import treeobj as t
from kvs.constants import FLUX_KVS_APPEND
from kvs.engine import KVS
from kvs.txn import Txn, TxnBuilder


@pytest.fixture
def kvs(tmp_path: Path) -> KVS:
    store = Store(tmp_path / "st", durability="none")
    yield KVS(store, owner=1000)
    store.close()


def append(key: str, data: bytes, ns: str) -> Txn:
    return Txn([{"key": key, "flags": FLUX_KVS_APPEND, "dirent": t.val(data)}], ns)


def test_create_makes_the_namespace_in_the_same_commit(kvs: KVS) -> None:
    txn = TxnBuilder().put("a", 1).build("job-1")
    txn.create = 2000
    (res,) = kvs.commit([txn])
    assert res.ok and res.sequence == 1
    info = kvs.getroot("job-1")
    assert info.owner == 2000 and kvs.get_json("a", ns="job-1") == 1
    # an existing namespace is simply committed to
    again = TxnBuilder().put("b", 2).build("job-1")
    again.create = 3000
    (res,) = kvs.commit([again])
    assert res.sequence == 2 and kvs.getroot("job-1").owner == 2000


def test_without_create_an_unknown_namespace_is_enotsup(kvs: KVS) -> None:
    (res,) = kvs.commit([TxnBuilder().put("a", 1).build("nope")])
    assert res.error is not None and res.error.errno == errno.ENOTSUP


def test_link_moves_the_root_after_earlier_commits_and_removes_the_namespace(kvs: KVS) -> None:
    first = TxnBuilder().put("log", "x").build("job-7")
    first.create = 1000
    kvs.commit([first])
    link = Txn([], "primary", link=("job.7.guest", "job-7"))
    later = append("log", b"late", "job-7")
    results = kvs.commit([append("log", b"-more", "job-7"), link, later])
    assert results[0].ok and results[1].ok and results[1].removed == ("job-7",)
    # the appended bytes made it into the moved copy; the commit after the link did not
    assert kvs.get("job.7.guest.log") == b'"x"-more'
    assert results[2].error is not None and results[2].error.errno == errno.ENOTSUP
    assert "job-7" not in [n.name for n in kvs.namespaces()]
    with pytest.raises(FluxError) as ei:
        kvs.getroot("job-7")
    assert ei.value.errno == errno.ENOTSUP


def test_link_survives_a_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path / "st", durability="none")
    kvs = KVS(store, owner=1000)
    make = TxnBuilder().put("k", "v").build("job-9")
    make.create = 1000
    kvs.commit([make])
    kvs.commit([Txn([], "primary", link=("job.9.guest", "job-9"))])
    store.close()
    store = Store(tmp_path / "st", durability="none")
    again = KVS(store, owner=1000)
    assert again.get_json("job.9.guest.k") == "v"
    assert [n.name for n in again.namespaces()] == ["primary"]
    store.close()


@pytest.mark.parametrize("link, errnum", [(("x", "primary"), errno.EINVAL),
                                          (("x", "gone"), errno.ENOTSUP),
                                          ((".", "job-1"), errno.EINVAL)])
def test_bad_links(kvs: KVS, link, errnum) -> None:
    make = TxnBuilder().put("k", 1).build("job-1")
    make.create = 1000
    kvs.commit([make])
    (res,) = kvs.commit([Txn([], "primary", link=link)])
    assert res.error is not None and res.error.errno == errnum


def test_create_and_link_are_owner_only_over_rpc():
    inst = TestInstance().start()
    try:
        h = inst.handle()
        op = {"key": "a", "flags": 0, "dirent": t.val(b"1")}
        h.rpc("kvs.commit", {"namespace": "job-5", "ops": [op], "create": {"owner": -1}}).get()
        h.rpc("kvs.commit", {"namespace": "primary", "ops": [],
                             "link": {"key": "moved", "namespace": "job-5"}}).get()
        assert inst.flux("kvs", "get", "moved.a").stdout == "1\n"
        with pytest.raises(OSError) as ei:
            h.rpc("kvs.commit", {"namespace": "x", "ops": [], "create": "nobody"}).get()
        assert ei.value.errno == errno.EPROTO
        with pytest.raises(OSError) as ei:
            h.rpc("kvs.commit", {"ops": [], "link": {"key": 1}}).get()
        assert ei.value.errno == errno.EPROTO
    finally:
        inst.stop()


def test_links_merge_with_the_batch_into_one_new_root(kvs: KVS) -> None:
    """Jobs ending together: their links and the other primary commits of the batch
    make one new primary root (one freeze of the shared directories, not one per link),
    and each link still reports the namespace it removed."""
    for n in (1, 2, 3):
        make = TxnBuilder().put("log", f"job{n}").build(f"job-{n}")
        make.create = 1000
        kvs.commit([make])
    before = kvs.getroot("primary").sequence
    bad = Txn([{"key": "x", "flags": FLUX_KVS_APPEND, "dirent": t.dirref("blake3-" + "0" * 64)}],
              "primary")
    results = kvs.commit([TxnBuilder().put("a", 1).build("primary"),
                          Txn([], "primary", link=("job.1.guest", "job-1")),
                          append("log", b"+", "job-2"),
                          Txn([], "primary", link=("job.2.guest", "job-2")),
                          bad,
                          Txn([], "primary", link=("job.3.guest", "job-3")),
                          TxnBuilder().put("b", 2).build("primary")])
    ok = [r for r in results if r.error is None]
    assert len(ok) == 6 and results[4].error is not None
    primary = [r for r in ok if r.namespace == "primary"]
    assert {r.sequence for r in primary} == {before + 1}
    assert {r.rootref for r in primary} == {kvs.getroot("primary").rootref}
    assert [r.removed for r in results[1::2] if r.error is None] == [("job-1",), ("job-2",),
                                                                     ("job-3",)]
    assert results[0].removed == () and results[6].removed == ()
    assert kvs.get("job.2.guest.log") == b'"job2"+'
    assert kvs.get_json("job.3.guest.log") == "job3" and kvs.get_json("b") == 2
    assert [n.name for n in kvs.namespaces()] == ["primary"]
