"""The KVS engine: group commit, lookups, namespaces, watches and diffs over a Store.

``commit(txns)`` is the group-commit entry point: every transaction ready
at once is applied in order to copy-on-write trees (contemporaneous
transactions of a namespace merge into one new root; a NO_MERGE one gets a
root of its own), and ALL new blobs and roots go to the store in one write
transaction with one sync.  A failing transaction is rolled back alone and
reported; the others commit.  No broker and no messages here: the kvs
service wraps this.
"""
from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from eventstore import blobref as _blobref
from eventstore.checkpoint import PinKind, RootRecord
from eventstore.gc import GCResult
from eventstore.store import Reader, Store
from flux.errors import FluxError
from kvs import treeobj as _t
from kvs.cache import CacheStats, ObjectCache
from kvs.constants import (
    FLUX_KVS_NO_MERGE,
    FLUX_KVS_READDIR,
    FLUX_KVS_READLINK,
    FLUX_KVS_TREEOBJ,
    LOOKUP_FLAGS,
    PRIMARY_NAMESPACE,
)
from kvs.diff import Change, diff
from kvs.lookup import dir_entry as _dir_entry, resolve, sorted_dir
from kvs.namespace import NamespaceInfo, check_name
from kvs.tree import BlobSource, TreeConfig, WorkTree, load_dir
from kvs import keys as _keys
from kvs.txn import FLUX_KVS_SYNC, Op, Txn, check_commit_flags, parse_op, parse_ops
from kvs.walk import reachable
from kvs.watch import appended_bytes, changed_keys, changed_since, resolve_keys

__all__ = ["KVS", "CommitResult", "LookupResult", "TreeConfig"]

_SIZES_MAX = 1 << 14


@dataclass(slots=True)
class CommitResult:
    """Outcome of one transaction: its root and sequence, or the error that refused it."""

    namespace: str
    rootref: str | None = None
    sequence: int | None = None
    error: FluxError | None = None
    #: namespaces this transaction removed (``Txn.link``)
    removed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def treeobj(self) -> dict[str, Any] | None:
        return None if self.rootref is None else _t.dirref(self.rootref)

    def check(self) -> "CommitResult":
        """Raise the error, if any; else return self."""
        if self.error is not None:
            raise self.error
        return self


@dataclass(slots=True)
class LookupResult:
    """A looked-up key: its object (dir listing for READDIR) and, for values, the bytes."""

    key: str
    namespace: str
    treeobj: dict[str, Any]
    value: bytes | None = None


def _internal(exc: Exception) -> FluxError:
    return FluxError(errno.EIO, f"internal error: {type(exc).__name__}: {exc}")


class KVS:
    """Hash-tree KVS over a ``Store``; single-threaded, one instance per store.

    Over a read-only store it serves lookups, watches and diffs only.
    """

    def __init__(
        self,
        store: Store,
        *,
        owner: int | None = None,
        config: TreeConfig | None = None,
        cache_entries: int = 16384,
        cache_bytes: int = 12 << 20,
    ) -> None:
        self.store = store
        self.owner = os.getuid() if owner is None else owner
        self.config = config or TreeConfig.for_store(store.blob_size_limit)
        if self.config.blob_size_limit > store.blob_size_limit:
            raise ValueError("tree blob_size_limit exceeds the store's")
        self.cache = ObjectCache(cache_entries, cache_bytes)
        self._sizes: dict[str, int] = {}
        self._roots: dict[str, RootRecord] = store.roots()
        if PRIMARY_NAMESPACE not in self._roots and not store.readonly:
            self._create(PRIMARY_NAMESPACE, self.owner)

    # -- namespaces -------------------------------------------------------------------

    def _create(self, name: str, owner: int, rootref: str | None = None) -> NamespaceInfo:
        """Namespace NAME at ROOTREF (a directory already stored), or an empty one."""
        blobs = []
        if rootref is None:
            raw = _t.encode(_t.empty_dir())
            rootref = _blobref.blobref(raw)
            blobs.append((rootref, raw))
        rec = RootRecord(rootref, 0, time.time(), owner)
        self.store.commit(blobs, roots={name: rec}, verify=False)
        self._roots[name] = rec
        return NamespaceInfo(name, rootref, 0, owner)

    def namespace_create(self, name: str, owner: int | None = None,
                         rootref: str | None = None) -> NamespaceInfo:
        """A new namespace with an empty root, or ROOTREF's directory; EEXIST if it exists.

        ROOTREF must be the blobref of a directory in the store (EINVAL, or
        ENOENT when there is no such blob), so the namespace is readable.
        """
        check_name(name)
        if name in self._roots:
            raise FluxError(errno.EEXIST, f"namespace {name!r} already exists")
        if owner is not None and (type(owner) is not int or owner < 0):
            raise FluxError(errno.EINVAL, f"namespace owner {owner!r} is not a uid")
        owner = self.owner if owner is None else owner
        if rootref is not None:
            if not _blobref.is_blobref(rootref):
                raise FluxError(errno.EINVAL, f"rootref {rootref!r} is not a blobref")
            with self._loader() as (ld, _rd):
                ld(rootref)  # ENOENT if missing; EINVAL if not a directory
        return self._create(name, owner, rootref)

    def namespace_remove(self, name: str) -> None:
        """Forget a namespace (its blobs go at the next GC); ENOTSUP if unknown."""
        self._rec(name)
        if name == PRIMARY_NAMESPACE:
            raise FluxError(errno.EINVAL, "the primary namespace cannot be removed")
        self.store.commit(deleted_roots=[name])
        del self._roots[name]

    def namespaces(self) -> list[NamespaceInfo]:
        return [self._info(n, r) for n, r in sorted(self._roots.items())]

    def getroot(self, ns: str = PRIMARY_NAMESPACE) -> NamespaceInfo:
        """Current root of ``ns``: ``.treeobj`` is the dirref, plus sequence and owner."""
        return self._info(ns, self._rec(ns))

    @staticmethod
    def _info(name: str, rec: RootRecord) -> NamespaceInfo:
        return NamespaceInfo(name, rec.rootref, rec.sequence, rec.owner)

    def _rec(self, ns: str) -> RootRecord:
        rec = self._roots.get(ns)
        if rec is None:
            raise FluxError(errno.ENOTSUP, f"namespace {ns!r} does not exist")
        return rec

    def _root_of(self, ns: str) -> str:
        return self._rec(ns).rootref

    def _root_of_for(self, userid: int | None) -> Callable[[str], str]:
        """``_root_of`` for a walk by USERID (a guest's; None: the owner's): EPERM for a
        namespace that user does not own, as flux-core checks where a symlink leads."""
        if userid is None:
            return self._root_of

        def root_of(name: str) -> str:
            rec = self._rec(name)
            if rec.owner != userid:
                raise FluxError(errno.EPERM, f"namespace {name!r} belongs to uid {rec.owner}, "
                                             f"not {userid}")
            return rec.rootref

        return root_of

    # -- group commit -------------------------------------------------------------------

    def commit(self, txns: Sequence[Txn]) -> list[CommitResult]:
        """Commit a batch of transactions together (see module doc); one result per txn."""
        results: list[CommitResult | None] = [None] * len(txns)
        parsed: list[list[Op] | None] = []
        creating: dict[str, int] = {}
        for i, txn in enumerate(txns):
            try:
                ns = txn.namespace
                if ns not in self._roots and ns not in creating:
                    if txn.create is None:
                        self._rec(ns)
                    check_name(ns)
                    if type(txn.create) is not int or txn.create < 0:
                        raise FluxError(errno.EINVAL, f"namespace owner {txn.create!r} "
                                                      "is not a uid")
                    creating[ns] = txn.create
                if check_commit_flags(txn.flags) & FLUX_KVS_SYNC and ns != PRIMARY_NAMESPACE:
                    # as flux-core: the sync (checkpoint) flag is for the primary namespace
                    raise FluxError(errno.EINVAL, "the sync flag is only valid in the "
                                                  "primary namespace")
                ops = parse_ops(txn.ops)
                if txn.link is not None:
                    key, src = txn.link
                    check_name(src)
                    if src == PRIMARY_NAMESPACE or src == ns:
                        raise FluxError(errno.EINVAL, f"cannot link namespace {src!r} into "
                                                      f"{ns!r}")
                    if _keys.normalize(key) == ".":
                        raise FluxError(errno.EINVAL, "cannot link a namespace over the root")
                parsed.append(ops)
            except FluxError as e:
                results[i] = CommitResult(txn.namespace, error=e.with_traceback(None))
                parsed.append(None)
            except Exception as e:  # noqa: BLE001 - a bad txn fails alone, never its group
                results[i] = CommitResult(txn.namespace, error=_internal(e))
                parsed.append(None)
        if len(self._sizes) > _SIZES_MAX:
            self._sizes.clear()
        new_roots: dict[str, RootRecord] = {}
        removed: set[str] = set()
        open_groups: dict[str, tuple[WorkTree, list[int]]] = {}
        cfg = self.config
        with self.store.reader() as rd:
            src = BlobSource(rd, self.cache, self._sizes)
            if creating:
                empty = src.add(_t.encode(_t.empty_dir()))
                now = time.time()
                for ns, owner in creating.items():
                    new_roots[ns] = RootRecord(empty, 0, now, owner)

            def current(ns: str) -> RootRecord:
                return new_roots.get(ns) or self._roots[ns]

            # txn index -> the namespace its link removes, once its group is frozen
            linked: dict[int, str] = {}

            def finalize(ns: str) -> None:
                tree, members = open_groups.pop(ns)
                if not members:
                    return
                ref = tree.freeze()
                prev = current(ns)
                rec = RootRecord(ref, prev.sequence + 1, time.time(), prev.owner)
                new_roots[ns] = rec
                for m in members:
                    gone = linked.get(m)
                    results[m] = CommitResult(ns, ref, rec.sequence,
                                              removed=(gone,) if gone is not None else ())

            for i, ops in enumerate(parsed):
                if ops is None:
                    continue
                txn = txns[i]
                ns = txn.namespace
                if ns in removed:
                    results[i] = CommitResult(ns, error=FluxError(
                        errno.ENOTSUP, f"namespace {ns!r} does not exist"))
                    continue
                link_src = None
                if txn.link is not None:
                    key, link_src = txn.link
                    if link_src in removed or (link_src not in self._roots
                                               and link_src not in new_roots):
                        results[i] = CommitResult(ns, error=FluxError(
                            errno.ENOTSUP, f"namespace {link_src!r} does not exist"))
                        continue
                    if link_src in open_groups:
                        finalize(link_src)           # its root as of this point in the batch
                    ops = ops + [parse_op({"key": key, "flags": 0,
                                           "dirent": _t.dirref(current(link_src).rootref)})]
                # a link merges with its namespace's other txns: the moved root is
                # fixed above, and its removal is reported when the group is frozen
                # (one freeze of the target per batch, however many jobs end in it)
                alone = txn.flags & FLUX_KVS_NO_MERGE
                if alone and ns in open_groups:
                    finalize(ns)
                group = open_groups.get(ns)
                if group is None:
                    group = open_groups[ns] = (WorkTree(cfg, src, ns, current(ns).rootref), [])
                try:
                    group[0].apply_txn(ops)      # rolled back on any error
                except FluxError as e:
                    results[i] = CommitResult(ns, error=e.with_traceback(None))
                    continue
                except Exception as e:  # noqa: BLE001 - a bad txn fails alone
                    results[i] = CommitResult(ns, error=_internal(e))
                    continue
                group[1].append(i)
                if alone:
                    finalize(ns)
                if link_src is not None:
                    removed.add(link_src)
                    new_roots.pop(link_src, None)
                    linked[i] = link_src
            for ns in list(open_groups):
                finalize(ns)
        if new_roots or removed:
            try:
                self.store.commit(src.pending.items(), roots=new_roots, deleted_roots=removed,
                                  verify=False)
            except FluxError as e:
                # nothing was written: every txn that had succeeded fails with the store's error
                results = [r if r is not None and r.error is not None
                           else CommitResult(txns[i].namespace, error=e.with_traceback(None)) for i, r in enumerate(results)]
            else:
                self._roots.update(new_roots)
                for ns in removed:
                    self._roots.pop(ns, None)
        return results  # type: ignore[return-value]  # every slot is filled by now

    def commit_one(self, txn: Txn) -> CommitResult:
        """Commit one transaction; raises its error."""
        return self.commit([txn])[0].check()

    # -- lookups ------------------------------------------------------------------------------

    @contextmanager
    def _loader(self) -> Iterator[tuple[Any, Reader]]:
        with self.store.reader() as rd:
            cache = self.cache
            load = rd.load
            yield (lambda ref: load_dir(cache, load, ref)), rd

    def lookup(self, key: str, ns: str = PRIMARY_NAMESPACE, flags: int = 0,
               at: Any = None, userid: int | None = None) -> LookupResult:
        """Look ``key`` up at the current root of ``ns`` or at snapshot ``at``.

        ``at`` is a root blobref, dirref or dir treeobj.  Flags are flux-core's
        READDIR, READLINK and TREEOBJ; without them a value's bytes are returned.
        With ``userid`` (a guest's) a symlink may lead only into namespaces
        that user owns: EPERM otherwise, as flux-core's lookup checks.
        """
        if flags & ~LOOKUP_FLAGS:
            raise FluxError(errno.EINVAL, f"{key}: unknown lookup flags {flags & ~LOOKUP_FLAGS:#x}")
        if at is None:
            self._rec(ns)
        with self._loader() as (ld, rd):
            r = resolve(ld, self._root_of_for(userid), key, ns, flags, at)
            obj = r.obj
            t = obj["type"]
            if flags & FLUX_KVS_READLINK:
                if t != _t.SYMLINK:
                    raise FluxError(errno.EINVAL, f"{r.key}: not a symlink")
                return LookupResult(r.key, r.namespace, obj)
            if flags & FLUX_KVS_TREEOBJ:
                if flags & FLUX_KVS_READDIR and not _t.is_dir_like(obj):
                    raise FluxError(errno.ENOTDIR, f"{r.key}: not a directory")
                return LookupResult(r.key, r.namespace, obj)
            if flags & FLUX_KVS_READDIR:
                if not _t.is_dir_like(obj):
                    raise FluxError(errno.ENOTDIR, f"{r.key}: not a directory")
                dirobj = ld(obj["data"][0]) if t == _t.DIRREF else obj
                return LookupResult(r.key, r.namespace, sorted_dir(ld, dirobj))
            if _t.is_dir_like(obj):
                raise FluxError(errno.EISDIR, f"{r.key}: is a directory")
            return LookupResult(r.key, r.namespace, obj, self._value(obj, rd))

    def get_many(self, key: str, names: Sequence[str],
                 ns: str = PRIMARY_NAMESPACE) -> dict[str, bytes | None] | None:
        """The values NAMES in directory KEY (None for one that is absent or not a
        value), resolving KEY once; None when KEY is not a directory.  For readers
        of many small records (a job's eventlog, jobspec and R)."""
        self._rec(ns)
        with self._loader() as (ld, rd):
            try:
                r = resolve(ld, self._root_of, key, ns, FLUX_KVS_READDIR, None)
            except FluxError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    return None
                raise
            obj = r.obj
            if not _t.is_dir_like(obj):
                return None
            dirobj = ld(obj["data"][0]) if obj["type"] == _t.DIRREF else obj
            out: dict[str, bytes | None] = {}
            for name in names:
                ent = _dir_entry(ld, dirobj, name)
                out[name] = (self._value(ent, rd) if ent is not None
                             and ent["type"] in (_t.VAL, _t.VALREF) else None)
            return out

    @staticmethod
    def _value(obj: dict[str, Any], rd: Reader) -> bytes:
        if obj["type"] == _t.VAL:
            return _t.val_bytes(obj)
        refs = obj["data"]
        if len(refs) == 1:
            return rd.load(refs[0])
        return b"".join([rd.load(r) for r in refs])

    def get(self, key: str, ns: str = PRIMARY_NAMESPACE, at: Any = None) -> bytes:
        """The value's bytes (EISDIR for a directory)."""
        value = self.lookup(key, ns, 0, at).value
        assert value is not None
        return value

    def get_json(self, key: str, ns: str = PRIMARY_NAMESPACE, at: Any = None) -> Any:
        raw = self.get(key, ns, at)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise FluxError(errno.EINVAL, f"{key}: value is not JSON ({e})") from None

    def get_treeobj(self, key: str, ns: str = PRIMARY_NAMESPACE, at: Any = None) -> dict[str, Any]:
        return self.lookup(key, ns, FLUX_KVS_TREEOBJ, at).treeobj

    def readdir(self, key: str = ".", ns: str = PRIMARY_NAMESPACE, at: Any = None) -> dict[str, Any]:
        """Entries of a directory, {name: treeobj}, ordered by name (ENOTDIR otherwise)."""
        return self.lookup(key, ns, FLUX_KVS_READDIR, at).treeobj["data"]

    def listdir(self, key: str = ".", ns: str = PRIMARY_NAMESPACE, at: Any = None) -> list[str]:
        return list(self.readdir(key, ns, at))

    def readlink(self, key: str, ns: str = PRIMARY_NAMESPACE, at: Any = None) -> tuple[str | None, str]:
        """(namespace or None, target) of a symlink (EINVAL if not a symlink)."""
        data = self.lookup(key, ns, FLUX_KVS_READLINK, at).treeobj["data"]
        return data.get("namespace"), data["target"]

    # -- copy and move ------------------------------------------------------------------

    def copy(self, src: str, dst: str, *, src_ns: str = PRIMARY_NAMESPACE,
             dst_ns: str | None = None) -> CommitResult:
        """Copy ``src`` to ``dst``; a directory is copied by reference, not recursion."""
        obj = self.lookup(src, src_ns, FLUX_KVS_TREEOBJ).treeobj
        op = {"key": dst, "flags": 0, "dirent": obj}
        return self.commit_one(Txn([op], dst_ns or src_ns))

    def move(self, src: str, dst: str, *, src_ns: str = PRIMARY_NAMESPACE,
             dst_ns: str | None = None) -> CommitResult:
        """Copy then unlink ``src``; in one transaction when both are in one namespace."""
        dst_ns = dst_ns or src_ns
        obj = self.lookup(src, src_ns, FLUX_KVS_TREEOBJ).treeobj
        put = {"key": dst, "flags": 0, "dirent": obj}
        unlink = {"key": src, "flags": 0, "dirent": None}
        if dst_ns == src_ns:
            return self.commit_one(Txn([put, unlink], src_ns))
        res = self.commit_one(Txn([put], dst_ns))
        self.commit_one(Txn([unlink], src_ns))
        return res

    # -- watches and diffs ------------------------------------------------------------------

    def changed(self, old_root: str, new_root: str, keys: Iterable[str],
                ns: str = PRIMARY_NAMESPACE) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        """Watched keys whose object differs between two roots of ``ns``."""
        with self._loader() as (ld, _):
            return changed_keys(ld, self._root_of, ns, old_root, new_root, keys)

    def watch_objects(self, keys: Iterable[str], ns: str = PRIMARY_NAMESPACE,
                      root: str | None = None, userid: int | None = None
                      ) -> dict[str, dict[str, Any] | None]:
        """What each key resolves to now (or at ``root``): the starting point of a watch.

        With ``userid`` (a guest's) symlinks may lead only into its own namespaces.
        """
        with self._loader() as (ld, _):
            return resolve_keys(ld, self._root_of_for(userid), ns, root or self._root_of(ns),
                                keys)

    def changed_since(self, known: Mapping[str, dict[str, Any] | None], ns: str = PRIMARY_NAMESPACE,
                      root: str | None = None) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        """Keys of ``known`` whose object differs at the current root (or ``root``)."""
        with self._loader() as (ld, _):
            return changed_since(ld, self._root_of, ns, root or self._root_of(ns), known)

    def appended(self, old: dict[str, Any] | None, new: dict[str, Any]) -> bytes | None:
        """New bytes of an appended value (see ``kvs.watch.appended_bytes``)."""
        with self.store.reader() as rd:
            return appended_bytes(rd.load, rd.size, old, new)

    def diff(self, old_root: str, new_root: str, prefix: str = ".") -> list[Change]:
        """Leaf keys that differ between two root blobrefs, under ``prefix``."""
        with self._loader() as (ld, _):
            return list(diff(ld, old_root, new_root, prefix))

    # -- maintenance ------------------------------------------------------------------------

    def live_refs(self, retain: Iterable[str] = ()) -> set[str]:
        """Blobrefs reachable from every namespace root, the store's pins and ``retain``."""
        roots = [r.rootref for r in self._roots.values()]
        blobs: list[str] = []
        for pin in self.store.pins().values():
            (roots if pin.kind == PinKind.TREE else blobs).append(pin.ref)
        roots.extend(retain)
        with self.store.reader() as rd:
            live = reachable(rd.load, roots)
        live.update(blobs)
        return live

    def gc(self, retain: Iterable[str] = ()) -> GCResult:
        """Offline GC: drop blobs unreachable from roots, pins and ``retain`` (root blobrefs)."""
        res = self.store.gc(self.live_refs(retain))
        self._sizes.clear()
        return res

    def dropcache(self) -> None:
        self.cache.clear()
        self._sizes.clear()

    def cache_stats(self) -> CacheStats:
        return self.cache.stats()

