"""Root listeners that say they are not interested in a namespace are skipped."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import kvs.service as service
from kvs.txn import Txn
from kvs.watch_service import KvsWatch


class Listener:
    def __init__(self, wants: bool | None) -> None:
        self.roots: list[tuple[str, frozenset[str]]] = []
        if wants is not None:
            self.interested = lambda ns: wants

    def setroot(self, namespace: str, rootref: str, sequence: int, keys: frozenset[str]) -> None:
        self.roots.append((namespace, keys))

    def namespace_removed(self, namespace: str) -> None:
        return None


def _kvs(listeners: list[Any]) -> Any:
    kvs = object.__new__(service.Kvs)
    kvs._root_seq = service.OrderedDict()
    kvs._gc = SimpleNamespace(new_root=lambda ref: None)
    kvs._waiters = {}
    kvs._listeners = listeners
    kvs.ctx = SimpleNamespace(log=SimpleNamespace(exception=lambda *a, **k: None))
    return kvs


def test_uninterested_listeners_are_skipped_and_keys_made_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    real = service.written_keys
    monkeypatch.setattr(service, "written_keys", lambda txns: made.append(1) or real(txns))
    no, plain, yes = Listener(False), Listener(None), Listener(True)
    txn = Txn([{"key": "a.b", "flags": 0, "dirent": None}], "ns1")
    _kvs([no, plain, yes])._new_root("ns1", "blake3-x", 1, [txn])
    assert no.roots == [] and plain.roots == yes.roots == [("ns1", frozenset({"a.b"}))]
    assert made == [1]
    _kvs([no])._new_root("ns1", "blake3-y", 2, [txn])
    assert made == [1]          # nobody interested: the keys are not gathered


def test_kvs_watch_is_interested_only_in_watched_namespaces() -> None:
    watch = object.__new__(KvsWatch)
    watch._keyed, watch._scan = {}, {}
    assert not watch.interested("primary")
    watch._keyed["primary"] = {"a": [object()]}
    watch._scan["job-1"] = [object()]
    assert watch.interested("primary") and watch.interested("job-1")
    assert not watch.interested("job-2")
