"""Model-based test: random batches of transactions against a plain-dict model.

The tree is configured tiny (4 entries per dir, 2-3 hdir buckets, small
chunks and inline limits) so that hdir splits, nesting, inline dirs and
valref compaction all happen within a few operations.  After every group
commit every key and directory listing must match the model, the tree must
verify, and a reopen or a GC must change nothing.
"""
from __future__ import annotations

import copy
import errno
import shutil
import tempfile
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eventstore.store import Store
from flux.errors import FluxError
from kvs.engine import KVS
from kvs.tree import TreeConfig
from kvs.txn import TxnBuilder
from kvs.walk import verify_tree

NAMES = ["a", "b", "c"] + [f"n{i}" for i in range(14)]
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(tuple)
values = st.binary(max_size=40)


class Refused(Exception):
    pass


def model_walk(root: dict[str, Any], path: tuple[str, ...], create: bool) -> dict[str, Any] | None:
    d = root
    for name in path[:-1]:
        nxt = d.get(name)
        if not isinstance(nxt, dict):
            if not create:
                return None
            nxt = d[name] = {}
        d = nxt
    return d


def model_apply(root: dict[str, Any], op: tuple) -> None:
    kind, path = op[0], op[1]
    if kind == "put":
        model_walk(root, path, True)[path[-1]] = op[2]  # type: ignore[index]
    elif kind == "mkdir":
        model_walk(root, path, True)[path[-1]] = {}  # type: ignore[index]
    elif kind == "append":
        d = model_walk(root, path, True)
        assert d is not None
        old = d.get(path[-1], b"")
        if isinstance(old, dict):
            raise Refused("append to a dir")
        d[path[-1]] = old + op[2]
    else:
        d = model_walk(root, path, False)
        if d is None or path[-1] not in d:
            return
        if isinstance(d[path[-1]], dict) and not op[2]:
            raise Refused("unlink of a dir")
        del d[path[-1]]


def model_items(d: dict[str, Any], prefix: tuple[str, ...] = ()):
    for name, v in d.items():
        yield prefix + (name,), v
        if isinstance(v, dict):
            yield from model_items(v, prefix + (name,))


class KVSModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="kvsmodel.")
        self.cfg = TreeConfig(maxdirent=4, hdir_size=3, val_inline_max=8, chunk_max=64, merge_after=2,
                              blob_size_limit=4096, dir_inline_max=120, dir_inline_budget=300,
                              inline_parent_max=3)
        self.open()
        self.model: dict[str, Any] = {}
        self.pending: list[list[tuple]] = []

    def open(self) -> None:
        self.store = Store(self.dir, durability="none", blob_size_limit=4096)
        self.kvs = KVS(self.store, config=self.cfg, cache_entries=16)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(ops=st.lists(st.one_of(
        st.tuples(st.just("put"), paths, values),
        st.tuples(st.just("append"), paths, values),
        st.tuples(st.just("mkdir"), paths),
        st.tuples(st.just("unlink"), paths, st.booleans()),
    ), min_size=1, max_size=4))
    def add_txn(self, ops: list[tuple]) -> None:
        self.pending.append(ops)

    @precondition(lambda self: self.pending)
    @rule(no_merge=st.lists(st.booleans(), min_size=8, max_size=8))
    def commit(self, no_merge: list[bool]) -> None:
        txns = []
        for i, ops in enumerate(self.pending):
            b = TxnBuilder()
            for op in ops:
                if op[0] == "put":
                    b.put_raw(".".join(op[1]), op[2])
                elif op[0] == "append":
                    b.append(".".join(op[1]), op[2])
                elif op[0] == "mkdir":
                    b.mkdir(".".join(op[1]))
                else:
                    b.unlink(".".join(op[1]), recursive=op[2])
            txns.append(b.build(flags=int(no_merge[i % 8])))
        seq0 = self.kvs.getroot().sequence
        results = self.kvs.commit(txns)
        for ops, res in zip(self.pending, results):
            trial = copy.deepcopy(self.model)
            try:
                for op in ops:
                    model_apply(trial, op)
            except Refused:
                assert res.error is not None and res.error.errno == errno.EISDIR, (ops, res)
                continue
            assert res.error is None, (ops, res.error)
            self.model = trial
        ok = [r.sequence for r in results if r.ok]
        assert ok == sorted(ok) and all(s > seq0 for s in ok)
        self.pending = []

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.open()

    @rule()
    def gc(self) -> None:
        self.kvs.gc()

    @invariant()
    def matches_model(self) -> None:
        for path, v in model_items(self.model):
            key = ".".join(path)
            if isinstance(v, dict):
                assert self.kvs.listdir(key) == sorted(v), key
            else:
                assert self.kvs.get(key) == v, key
        assert self.kvs.listdir() == sorted(self.model)
        for name in NAMES:
            if name not in self.model:
                try:
                    self.kvs.get(name)
                except FluxError as e:
                    assert e.errno == errno.ENOENT
                else:
                    raise AssertionError(f"{name} should not exist")
        with self.store.reader() as rd:
            verify_tree(rd.load, self.kvs.getroot().rootref)


KVSModel.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestKVSModel = KVSModel.TestCase
