"""Copy-on-write application of ops to a namespace's tree, and its serialization.

A ``WorkTree`` starts from a root blobref.  Applying an op copies into
mutable working nodes (``WDir``, ``WHdir``) only the directories on the
path to the touched key; everything else stays shared as dirrefs.  Every
mutation is logged so that a failing transaction is rolled back exactly,
without disturbing the transactions merged with it.  ``freeze`` serializes
the dirty nodes bottom-up (dirs past ``maxdirent`` entries become hdirs,
small subdirectories stay inline in small parents), adds their blobs to the
batch, and returns the new root blobref.

A stored dir opened for writing is taken out of the object cache and its
data dict becomes the working copy, so nothing is copied; the objects the
engine hands out are entries, never those dicts, so this is safe.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from blake3 import blake3

from eventstore.blobref import PREFIX
from flux.errors import FluxError
from kvs import append as _append
from kvs import hdir as _hdir
from kvs import keys as _keys
from kvs import treeobj as _t
from kvs.cache import ObjectCache
from kvs.constants import SYMLINK_CYCLE_LIMIT
from kvs.txn import Op, OpKind

__all__ = ["TreeConfig", "BlobSource", "WorkTree", "WDir", "WHdir", "load_dir"]

_MISSING = object()


@dataclass(slots=True)
class TreeConfig:
    """Shape parameters of stored trees."""

    maxdirent: int = 128
    hdir_size: int = 16
    val_inline_max: int = 1024
    chunk_max: int = 256 << 10
    merge_after: int = 8  # a valref is compacted only past this many chunks
    blob_size_limit: int = 1 << 20
    # small subdirectories are kept inline in small parents (fewer blobs per commit)
    dir_inline_max: int = 2048
    dir_inline_budget: int = 64000
    inline_parent_max: int = 128
    # a commit that rewrites fewer than 1/sparse_ratio of a parent's (at least
    # sparse_min) entries stores the parent's subdirectories as blobs: rewriting
    # every inline sibling with them costs more than a blob each (0: never)
    sparse_ratio: int = 8
    sparse_min: int = 16

    def __post_init__(self) -> None:
        if self.maxdirent < 2 or self.hdir_size < 2:
            raise ValueError("maxdirent and hdir_size must be at least 2")
        if not 1 <= self.chunk_max <= self.blob_size_limit:
            raise ValueError("chunk_max must be between 1 and blob_size_limit")
        if self.val_inline_max >= self.blob_size_limit:
            raise ValueError("val_inline_max must be below blob_size_limit")

    @classmethod
    def for_store(cls, blob_size_limit: int) -> "TreeConfig":
        """The defaults, scaled down for a store whose blob limit is below them."""
        d = cls()
        return cls(blob_size_limit=blob_size_limit, chunk_max=min(d.chunk_max, blob_size_limit),
                   val_inline_max=min(d.val_inline_max, blob_size_limit // 4),
                   dir_inline_max=min(d.dir_inline_max, blob_size_limit // 4),
                   dir_inline_budget=min(d.dir_inline_budget, blob_size_limit // 2))

    @property
    def max_valref_refs(self) -> int:
        # keeps one dir entry well inside a blob, so any dir can be split to fit
        return max(1, self.blob_size_limit // 320)


class BlobSource:
    """Blobs for one batch: new ones (pending) and reads through to the store."""

    __slots__ = ("pending", "reader", "cache", "sizes", "added", "_seen")

    def __init__(self, reader: Any, cache: ObjectCache, sizes: dict[str, int] | None = None) -> None:
        self.pending: dict[str, bytes] = {}
        self.reader = reader
        self.cache = cache
        self.sizes = sizes if sizes is not None else {}
        self.added: list[str] | None = None  # refs added by the current txn
        # id(bytes) -> (the bytes, ref): a chunk object given again in the batch
        # (J's jobspec chunk is the jobspec's own bytes) is not hashed again;
        # the bytes are held, so the id cannot be reused meanwhile
        self._seen: dict[int, tuple[bytes, str]] = {}

    def add(self, data: bytes) -> str:
        seen = self._seen.get(id(data))
        if seen is not None and seen[0] is data:
            ref = seen[1]
        else:
            ref = PREFIX + blake3(data).hexdigest()
            self._seen[id(data)] = (data, ref)
        if ref not in self.pending:
            self.pending[ref] = data
            if self.added is not None:
                self.added.append(ref)
        self.sizes[ref] = len(data)
        return ref

    def get(self, ref: str) -> bytes:
        data = self.pending.get(ref)
        return data if data is not None else self.reader.load(ref)

    def size(self, ref: str) -> int:
        n = self.sizes.get(ref)
        if n is None:
            data = self.pending.get(ref)
            n = len(data) if data is not None else self.reader.size(ref)
            self.sizes[ref] = n
        return n

    def has(self, ref: str) -> bool:
        return ref in self.pending or self.reader.has(ref)

    def load_dir(self, ref: str) -> dict[str, Any]:
        """The dir/hdir object behind a dirref (validated, cached)."""
        return load_dir(self.cache, self.get, ref)

    def take_dir(self, ref: str) -> dict[str, Any]:
        """A dir/hdir object the caller may modify: taken out of the cache, or freshly loaded.

        Taking it also keeps the cache free of versions about to be replaced.
        """
        obj = self.cache.pop(ref)
        return obj if obj is not None else _t.decode_dir(self.get(ref), ref)


def load_dir(cache: ObjectCache, get: Any, ref: str) -> dict[str, Any]:
    """Cached dir/hdir object for ``ref``, loading and validating it on a miss."""
    obj = cache.get(ref)
    if obj is None:
        raw = get(ref)
        obj = _t.decode_dir(raw, ref)
        cache.put(ref, obj, len(raw))
    return obj


class WDir:
    """A directory being modified; ``split_level`` is the hdir level it would become."""

    __slots__ = ("entries", "wkids", "split_level")

    def __init__(self, entries: dict[str, Any], split_level: int = 0) -> None:
        self.entries = entries
        self.wkids: set[str] = set()
        self.split_level = split_level


class WHdir:
    """An hdir being modified: buckets are None, dirref objects, or working nodes."""

    __slots__ = ("size", "level", "buckets")

    def __init__(self, size: int, level: int, buckets: list[Any]) -> None:
        self.size = size
        self.level = level
        self.buckets = buckets


_WNODES = (WDir, WHdir)


def _is_dirlike(e: Any) -> bool:
    return type(e) in _WNODES or e["type"] in (_t.DIRREF, _t.DIR, _t.HDIR)


class WorkTree:
    """One namespace's tree under modification within a batch."""

    __slots__ = ("cfg", "src", "ns", "root", "undo")

    def __init__(self, cfg: TreeConfig, src: BlobSource, ns: str, root_ref: str) -> None:
        self.cfg = cfg
        self.src = src
        self.ns = ns
        self.root: WDir | WHdir = self._open(root_ref, 0)
        self.undo: list[tuple[Any, Any, Any]] | None = None

    # -- transactions ------------------------------------------------------------

    def apply_txn(self, ops: list[Op]) -> None:
        """Apply ``ops`` in order; on error undo them all and re-raise."""
        self.undo = []
        self.src.added = []
        try:
            for op in ops:
                self.apply(op)
        except BaseException:
            self._rollback()
            raise
        finally:
            self.undo = None
            self.src.added = None

    def _rollback(self) -> None:
        undo = self.undo or []
        for container, key, old in reversed(undo):
            if old is _MISSING:
                del container[key]
            else:
                container[key] = old
        for ref in self.src.added or ():
            self.src.pending.pop(ref, None)

    def _set(self, container: Any, key: Any, value: Any) -> None:
        if self.undo is not None:
            self.undo.append((container, key, container.get(key, _MISSING)
                              if type(container) is dict else container[key]))
        container[key] = value

    def _del(self, container: dict[str, Any], key: str) -> None:
        if self.undo is not None:
            self.undo.append((container, key, container[key]))
        del container[key]

    # -- opening stored dirs --------------------------------------------------------

    def _open(self, ref: str, split_level: int) -> WDir | WHdir:
        # the object is ours now (see take_dir): its data dict becomes the working copy
        obj = self.src.take_dir(ref)
        data = obj["data"]
        if obj["type"] == _t.DIR:
            return WDir(data, split_level)
        level = data.get("level", 0)
        if level != split_level:
            raise FluxError(errno.EPROTO, f"{ref}: hdir at level {level} where level {split_level} belongs")
        return WHdir(data["size"], level, list(data["bucket"]))

    def _slot(self, node: WDir | WHdir, name: str, create: bool) -> WDir | None:
        """The plain dir (or hdir bucket) where ``name`` lives in ``node``."""
        digest = None
        while type(node) is WHdir:
            if digest is None:
                digest = _hdir.name_digest(name)
            i = _hdir.bucket_of(digest, node.size, node.level)
            b = node.buckets[i]
            if b is None:
                if not create:
                    return None
                b = WDir({}, node.level + 1)
                self._set(node.buckets, i, b)
            elif type(b) is dict:
                b = self._open(b["data"][0], node.level + 1)
                self._set(node.buckets, i, b)
            node = b
        return node  # type: ignore[return-value]

    def _child_dir(self, parent: WDir, name: str, entry: Any) -> WDir | WHdir:
        """Working node for the subdirectory ``entry`` found at ``parent[name]``."""
        if entry["type"] == _t.DIRREF:
            w = self._open(entry["data"][0], 0)
        else:
            # an inline dir of the tree (validated when loaded); copied: it may be shared
            w = WDir(dict(entry["data"]), 0)
        self._set(parent.entries, name, w)
        parent.wkids.add(name)
        return w

    def _new_dir(self, parent: WDir, name: str) -> WDir:
        w = WDir({}, 0)
        self._set(parent.entries, name, w)
        parent.wkids.add(name)
        return w

    # -- walking for a write ------------------------------------------------------------

    def _walk(self, op: Op, create: bool) -> tuple[WDir, str] | None:
        """(dir holding the last component, its name), following symlinks on the way."""
        comps = op.comps
        node = self.root
        i = 0
        follows = 0
        n = len(comps)
        while True:
            name = comps[i]
            d = node if type(node) is WDir else self._slot(node, name, create)
            if d is None:
                return None
            if i == n - 1:
                return d, name
            e = d.entries.get(name)
            if e is None:
                if not create:
                    return None
                node = self._new_dir(d, name)
            elif type(e) in _WNODES:
                node = e
            else:
                t = e["type"]
                if t == _t.DIRREF or t == _t.DIR:
                    node = self._child_dir(d, name, e)
                elif t == _t.SYMLINK:
                    follows += 1
                    if follows > SYMLINK_CYCLE_LIMIT:
                        raise FluxError(errno.ELOOP, f"{op.key}: too many levels of symbolic links")
                    data = e["data"]
                    ns = data.get("namespace")
                    if ns is not None and ns != self.ns:
                        raise FluxError(errno.EINVAL, f"{op.key}: cannot write through a symlink "
                                                      f"into namespace {ns!r}")
                    comps = _keys.split(data["target"]) + comps[i + 1:]
                    n = len(comps)
                    if n == 0:
                        raise FluxError(errno.EINVAL, f"{op.key}: resolves to the root directory")
                    node, i = self.root, 0
                    continue
                else:
                    # a value in the way: a put replaces it with a directory
                    if not create:
                        return None
                    node = self._new_dir(d, name)
            i += 1

    # -- ops --------------------------------------------------------------------------------

    def apply(self, op: Op) -> None:
        if not op.comps:
            raise FluxError(errno.EINVAL, f"cannot {op.kind.name.lower()} the root directory")
        if op.kind is OpKind.UNLINK:
            loc = self._walk(op, False)
            if loc is None:
                return
            d, name = loc
            e = d.entries.get(name)
            if e is None:
                return
            if op.nodir and _is_dirlike(e):
                raise FluxError(errno.EISDIR, f"{op.key}: is a directory (unlink it recursively)")
            self._del(d.entries, name)
            return
        if op.kind is OpKind.PUT:
            value = (self._import(op.obj, op.data, op.key) if op.chunks is None
                     else self._chunked(op.chunks, op.data))  # type: ignore[arg-type]
            d, name = self._walk(op, True)  # type: ignore[misc]
            self._set(d.entries, name, value)
            if type(value) in _WNODES:
                d.wkids.add(name)
            return
        d, name = self._walk(op, True)  # type: ignore[misc]
        self._set(d.entries, name, self._appended(d.entries.get(name), op))

    # -- values ----------------------------------------------------------------------------

    def _value(self, data: bytes) -> dict[str, Any]:
        if len(data) <= self.cfg.val_inline_max:
            return _t.val(data)
        refs = [self.src.add(c) for c in _append.split_chunks(data, self.cfg.chunk_max)]
        return _t.valref(refs, len(data))

    def _chunked(self, chunks: tuple[bytes, ...], data: bytes) -> dict[str, Any]:
        """A RawValue's value: a val when short, else a valref with a blob per chunk."""
        if len(data) <= self.cfg.val_inline_max:
            return _t.val(data)
        add, cmax = self.src.add, self.cfg.chunk_max
        refs = [add(p) for c in chunks for p in _append.split_chunks(c, cmax)]
        return _t.valref(refs, len(data))

    def _check_refs(self, refs: list[str], key: str) -> int:
        if len(refs) > self.cfg.max_valref_refs:
            raise FluxError(errno.EFBIG, f"{key}: value of {len(refs)} blobs is too large "
                                         f"(at most {self.cfg.max_valref_refs})")
        total = 0
        src = self.src
        for ref in refs:
            # existence from the store itself: caches may know blobs that were never committed
            if not src.has(ref):
                raise FluxError(errno.ENOENT, f"{key}: {ref}: no such blob")
            total += src.size(ref)
        return total

    def _import(self, obj: dict[str, Any] | None, data: bytes | None, key: str) -> Any:
        """Turn a validated dirent into what the tree stores."""
        assert obj is not None
        t = obj["type"]
        if t == _t.VAL:
            return self._value(data if data is not None else _t.val_bytes(obj))
        if t == _t.VALREF:
            size = self._check_refs(obj["data"], key)
            return _t.valref(list(obj["data"]), size)
        if t == _t.DIRREF:
            ref = obj["data"][0]
            if not self.src.has(ref):
                raise FluxError(errno.ENOENT, f"{key}: dirref {ref}: no such blob")
            try:
                self.src.load_dir(ref)
            except FluxError as e:
                raise FluxError(e.errno if e.errno == errno.ENOENT else errno.EINVAL,
                                f"{key}: dirref {ref}: {e.strerror}") from None
            return _t.dirref(ref)
        if t == _t.DIR:
            return self._import_dir(obj, key)
        return _t.symlink(obj["data"]["target"], obj["data"].get("namespace"))

    def _import_dir(self, obj: dict[str, Any], key: str = "") -> WDir:
        w = WDir({}, 0)
        for name, entry in obj["data"].items():
            v = self._import(entry, None, f"{key}.{name}" if key else name)
            w.entries[name] = v
            if type(v) is WDir:
                w.wkids.add(name)
        return w

    def _appended(self, e: Any, op: Op) -> dict[str, Any]:
        """``e`` with the op's data appended: a val while the whole value stays within
        ``val_inline_max``, else a valref (its tail compacted)."""
        cfg = self.cfg
        data = op.data
        if data is not None and (e is None or type(e) is dict and e["type"] == _t.VAL):
            # a short value stays a val while it is short: no blob per append
            old = b"" if e is None else _t.val_bytes(e)
            if len(old) + len(data) <= cfg.val_inline_max:
                return _t.val(old + data)
            if old:
                data = old + data
                e = None
        if data is not None:
            new_refs = [self.src.add(c) for c in _append.split_chunks(data, cfg.chunk_max)]
            new_size = len(data)
        else:
            assert op.obj is not None  # a valref: blobs appended by reference
            new_refs = list(op.obj["data"])
            new_size = self._check_refs(new_refs, op.key)
        if e is None:
            refs: list[str] = []
            size = 0
        elif type(e) in _WNODES or e["type"] in (_t.DIRREF, _t.DIR, _t.HDIR):
            raise FluxError(errno.EISDIR, f"{op.key}: cannot append to a directory")
        elif e["type"] == _t.SYMLINK:
            raise FluxError(errno.EOPNOTSUPP, f"{op.key}: cannot append to a symlink")
        elif e["type"] == _t.VAL:
            old = _t.val_bytes(e)
            refs = [self.src.add(c) for c in _append.split_chunks(old, cfg.chunk_max)]
            size = len(old)
        else:
            refs = list(e["data"])
            size = e.get("size")
            if size is None:
                size = self._check_refs(refs, op.key)
        src = self.src
        size_at = lambda i: src.size(refs[i])  # noqa: E731
        for ref in new_refs:
            refs.append(ref)
            if len(refs) <= cfg.merge_after:
                continue  # merge_count's answer, without the call
            k = _append.merge_count(size_at, len(refs), cfg.chunk_max, cfg.merge_after)
            if k > 1:
                merged = src.add(b"".join([src.get(r) for r in refs[-k:]]))
                del refs[-k:]
                refs.append(merged)
        if len(refs) > cfg.max_valref_refs:
            raise FluxError(errno.EFBIG, f"{op.key}: value too large to append to")
        if not refs:
            return _t.val(b"")  # empty appended to absent or empty: a valref cannot be empty
        return _t.valref(refs, size + new_size)

    # -- serialization -----------------------------------------------------------------------

    def freeze(self) -> str:
        """Store every dirty node; returns the new root dir's blobref."""
        frozen = self._freeze_node(self.root, False)
        if frozen is None:
            frozen = self._store_entries({}, 0)
        return frozen["data"][0]  # type: ignore[index]

    def _freeze_node(self, node: WDir | WHdir, inline_ok: bool) -> dict[str, Any] | None:
        """The entry for a working node: an inline dir, a dirref, or None (empty bucket)."""
        if type(node) is WHdir:
            return self._freeze_hdir(node)
        cfg = self.cfg
        entries = node.entries
        n = len(entries)
        small = n <= cfg.inline_parent_max
        # a few jobs of a directory of many: their directories go out as blobs, and so
        # do the inline siblings (once), so this and later lone changes rewrite a
        # parent of dirrefs, not every sibling (specs/treeobj.md)
        sparse = (cfg.sparse_ratio > 0 and small and n >= cfg.sparse_min
                  and len(node.wkids) * cfg.sparse_ratio < n)
        for name in node.wkids:
            v = entries.get(name)
            if type(v) in _WNODES:
                entries[name] = self._freeze_node(v, small and not sparse)
        if sparse:
            self._outline(entries, None)
        if node.split_level:
            return self._store_entries(entries, node.split_level) if entries else None
        raw = None
        if inline_ok and small:
            obj = _t.dir_(entries)
            raw = _t.encode(obj)
            if len(raw) <= cfg.dir_inline_max:
                return obj
        return self._store_entries(entries, 0, raw)

    def _store_entries(self, entries: dict[str, Any], split_level: int,
                       raw: bytes | None = None) -> dict[str, Any] | None:
        """A dirref for ``entries``: one dir, or an hdir when too many or too big."""
        cfg = self.cfg
        n = len(entries)
        if n > cfg.maxdirent and split_level <= _hdir.MAX_LEVEL:
            return self._split(entries, split_level)
        if n > cfg.inline_parent_max:
            if self._outline(entries, None):
                raw = None
        obj = _t.dir_(entries)
        if raw is None:
            raw = _t.encode(obj)
        if len(raw) > cfg.dir_inline_budget and n <= cfg.inline_parent_max:
            if self._outline(entries, len(raw) - cfg.dir_inline_budget):
                raw = _t.encode(obj)
        if len(raw) > cfg.blob_size_limit and n > 1 and split_level <= _hdir.MAX_LEVEL:
            return self._split(entries, split_level)
        ref = self.src.add(raw)
        self._cache(ref, obj, len(raw))
        return _t.dirref(ref)

    def _outline(self, entries: dict[str, Any], excess: int | None) -> bool:
        """Store inline subdirectories as blobs: all of them, or the largest until
        ``excess`` bytes are saved.  True if any was moved out."""
        inline = [(name, v) for name, v in entries.items() if v["type"] == _t.DIR]
        if not inline:
            return False
        if excess is not None:
            sized = sorted(((len(_t.encode(v)), name, v) for name, v in inline), reverse=True)
            inline = []
            for size, name, v in sized:
                inline.append((name, v))
                excess -= size - 100  # a dirref entry takes about 100 bytes
                if excess <= 0:
                    break
        for name, v in inline:
            # copy: an inline object may be shared with earlier lookups' results
            entries[name] = self._store_entries(dict(v["data"]), 0)
        return True

    def _split(self, entries: dict[str, Any], level: int) -> dict[str, Any] | None:
        size = self.cfg.hdir_size
        groups: list[dict[str, Any] | None] = [None] * size
        for name, e in entries.items():
            i = _hdir.bucket_index(name, size, level)
            g = groups[i]
            if g is None:
                groups[i] = g = {}
            g[name] = e
        buckets = [None if g is None else self._store_entries(g, level + 1) for g in groups]
        return self._store_hdir(size, level, buckets)

    def _freeze_hdir(self, node: WHdir) -> dict[str, Any] | None:
        buckets = node.buckets
        for i, b in enumerate(buckets):
            if type(b) in _WNODES:
                buckets[i] = self._freeze_node(b, False)
        return self._store_hdir(node.size, node.level, buckets)

    def _store_hdir(self, size: int, level: int, buckets: list[Any]) -> dict[str, Any] | None:
        if all(b is None for b in buckets):
            return None if level else self._store_entries({}, 0)
        obj = _t.hdir(size, _hdir.FUNC, buckets, level)
        raw = _t.encode(obj)
        ref = self.src.add(raw)
        self._cache(ref, obj, len(raw))
        return _t.dirref(ref)

    def _cache(self, ref: str, obj: dict[str, Any], nbytes: int) -> None:
        self.src.cache.put(ref, obj, nbytes)
