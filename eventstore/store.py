"""The content store: RFC 10 blobs, namespace roots and metadata in one LMDB environment.

One environment per instance directory holds the named databases

``blobs``       raw 32-byte blake3 digest -> blob bytes
``checkpoint``  namespace name -> root record (see ``checkpoint``)
``pins``        pin name -> blobref kept alive by GC
``metadata``    small instance facts (hash name, counters)
``startlog``    one record per open (see ``startlog``)

``commit`` writes a batch of new blobs and the new roots in ONE write
transaction, so a crash leaves either the old roots or the new ones, never
a root whose blobs are missing.  The map grows by itself when full; a full
disk raises ``FluxError(ENOSPC)`` and leaves the store as it was.
"""
from __future__ import annotations

import errno
import itertools
import os
import resource
import shutil
import struct
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import lmdb

from blake3 import blake3

from eventstore import blobref as _blobref
from eventstore.checkpoint import (
    Pin,
    PinKind,
    RootRecord,
    decode_pin,
    decode_root,
    encode_pin,
    encode_root,
)
from eventstore.durability import Durability, SyncPolicy
from eventstore.gc import GCResult, sweep
from eventstore.startlog import (
    StartRecord,
    decode_record,
    encode_record,
    record_index,
    record_key,
    was_unclean,
)
from eventstore.stats import StoreStats, pages_in_use
from flux.errors import FluxError

__all__ = ["Store", "Reader", "DEFAULT_BLOB_SIZE_LIMIT"]

DEFAULT_BLOB_SIZE_LIMIT = 1 << 20
_FORMAT_VERSION = b"1"
_COUNTER = struct.Struct(">Q")
_META_BLOB_BYTES = b"blob_bytes"
_DB_NAMES = (b"blobs", b"checkpoint", b"pins", b"metadata", b"startlog")
_GC_SCRATCH = b"gc.scratch"
# free space below which a failed write is taken for a full disk
_LOW_SPACE = 64 << 20


def _not_found(ref: str) -> FluxError:
    return FluxError(errno.ENOENT, f"{ref}: no such blob")


def _corrupt(ref: str) -> FluxError:
    return FluxError(errno.EIO, f"{ref}: stored content does not match its digest (store is corrupt)")


def _closed(key: Any) -> Any:
    raise FluxError(errno.EINVAL, "store reader used after its snapshot ended")


class Reader:
    """Blob reads inside one LMDB read transaction (a consistent snapshot)."""

    __slots__ = ("_get",)

    def __init__(self, txn: Any) -> None:
        # the transaction's default database is the blobs database
        self._get = txn.get

    def close(self) -> None:
        """Let go of the transaction: LMDB frees its reader slot only once nothing
        refers to it, and a Reader may outlive its ``with`` (an exception's
        traceback holding the frame), so no Reader may keep it alive."""
        self._get = _closed

    def load(self, ref: str) -> bytes:
        """The blob's bytes, verified against its digest (ENOENT / EIO naming ref)."""
        key = _blobref.parse(ref)
        mv = self._get(key)
        if mv is None:
            raise _not_found(ref)
        if blake3(mv).digest() != key:
            raise _corrupt(ref)
        return bytes(mv)

    def size(self, ref: str) -> int:
        """Length of the blob in bytes, without copying or verifying it."""
        mv = self._get(_blobref.parse(ref))
        if mv is None:
            raise _not_found(ref)
        return len(mv)

    def has(self, ref: str) -> bool:
        return self._get(_blobref.parse(ref)) is not None


def _xfsz(_signum: int, _frame: Any) -> None:
    """The write that passed the file size limit fails with EFBIG: reported as ENOSPC."""


def _survive_file_size_limit() -> None:
    """Let a file size limit (RLIMIT_FSIZE) fail the write instead of killing us.

    SIGXFSZ's default action ends the process; a handler (not SIG_IGN, which
    exec'd children would inherit) makes the write return EFBIG, which the
    store reports as a full disk: commits are refused, reads go on.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGXFSZ) == signal.SIG_DFL:
        signal.signal(signal.SIGXFSZ, _xfsz)



_LMDB_MAGIC = 0xBEEFC0DE


def check_data_file(path: str) -> None:
    """Refuse (EIO, saying what is wrong) an LMDB data file that is empty or shorter
    than its own meta page says: LMDB maps it and the first read past its end kills
    the process with SIGBUS, or an empty one is silently made a new, empty store."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return                  # no file yet: a new store
    with open(path, "rb") as fh:
        head = fh.read(2 * 65536)
    best = None
    for base in sorted({0, *(struct.unpack_from("<I", head, 40) if len(head) >= 44 else ())}):
        if len(head) < base + 152:
            continue
        magic, = struct.unpack_from("<I", head, base + 16)
        if magic != _LMDB_MAGIC:
            continue
        psize, = struct.unpack_from("<I", head, base + 40)
        last, txnid = struct.unpack_from("<QQ", head, base + 136)
        if best is None or txnid > best[2]:
            best = (psize, last, txnid)
    if best is None:
        raise FluxError(errno.EIO, f"{path}: {'empty' if size == 0 else 'not an LMDB store'}"
                                   " (damaged: restore the statedir from a dump, or move it "
                                   "away to start a new one)")
    psize, last, _txnid = best
    need = (last + 1) * psize
    if size < need:
        raise FluxError(errno.EIO, f"{path}: truncated ({size} bytes, its last page ends at "
                                   f"{need}); restore the statedir from a dump")


class Store:
    """Content-addressed blobs plus namespace roots, one LMDB environment per directory."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str | Durability = Durability.ALWAYS,
        blob_size_limit: int = DEFAULT_BLOB_SIZE_LIMIT,
        map_size: int = 256 << 20,
        max_map_size: int | None = None,
        sync_interval: float = 0.05,
        readonly: bool = False,
        version: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        #: the software version recorded in this open's startlog record
        self.version = version
        self.durability = Durability.parse(durability)
        if type(blob_size_limit) is not int or blob_size_limit < 1:
            raise ValueError(f"blob_size_limit {blob_size_limit!r} must be a positive integer")
        self.blob_size_limit = blob_size_limit
        self.max_map_size = max_map_size
        self.readonly = readonly
        self._policy = SyncPolicy(self.durability, sync_interval, time.monotonic())
        self._env: Any = None
        self._closed = False
        if not readonly:
            _survive_file_size_limit()
        if max_map_size is not None and map_size > max_map_size:
            map_size = max_map_size
        if not readonly:
            os.makedirs(self.path, exist_ok=True)
        elif not os.path.exists(os.path.join(self.path, "data.mdb")):
            raise FluxError(errno.ENOENT, f"store {self.path}: no such store")
        self._open_env(map_size)
        self._start_index: int | None = None
        records = self.startlog()
        self.unclean = was_unclean(records)
        if not readonly:
            self._init_metadata()
            self._start_index = (record_index(self._last_startlog_key()) + 1) if records else 0
            self._write_start()

    # -- environment ---------------------------------------------------------

    def _open_env(self, map_size: int) -> None:
        check_data_file(os.path.join(self.path, "data.mdb"))
        try:
            self._env = lmdb.open(
                self.path,
                map_size=map_size,
                subdir=True,
                max_dbs=len(_DB_NAMES) + 1,
                readonly=self.readonly,
                sync=self.durability.lmdb_sync,
                metasync=self.durability.lmdb_sync,
                readahead=False,
                create=not self.readonly,
                lock=True,
            )
        except lmdb.Error as e:
            raise FluxError(errno.EIO, f"store {self.path}: cannot open: {e}") from None
        # readonly environments cannot create databases: open the ones that exist
        self._dbs: dict[bytes, Any] = {}
        for name in _DB_NAMES:
            try:
                self._dbs[name] = self._env.open_db(name, create=not self.readonly)
            except lmdb.NotFoundError:
                self._dbs[name] = None
        self._blobs = self._dbs[b"blobs"]

    def _need(self, name: bytes) -> Any:
        db = self._dbs[name]
        if db is None:
            raise FluxError(errno.ENOENT, f"store {self.path}: no {name.decode()} database")
        return db

    def _check_open(self) -> None:
        if self._closed:
            raise FluxError(errno.EBADF, f"store {self.path} is closed")

    def _grow(self) -> None:
        cur = self._env.info()["map_size"]
        new = cur * 2
        if self.max_map_size is not None:
            if cur >= self.max_map_size:
                raise FluxError(
                    errno.ENOSPC,
                    f"store {self.path}: full (map size reached its ceiling of {self.max_map_size} bytes)",
                )
            new = min(new, self.max_map_size)
        self._env.set_mapsize(new)

    def _write(self, fn: Any) -> Any:
        """Run ``fn(txn)`` in one write transaction, growing the map and retrying when full."""
        self._check_open()
        if self.readonly:
            raise FluxError(errno.EROFS, f"store {self.path} is open read-only")
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    result = fn(txn)
                break
            except lmdb.MapFullError:
                self._grow()
            except lmdb.Error as e:
                raise self._write_error(e) from None
        if self._policy.after_commit(time.monotonic()):
            self.sync()
        return result

    def _write_error(self, e: Exception) -> FluxError:
        text = str(e)
        full = isinstance(e, lmdb.DiskError) or any(
            s in text for s in ("No space", "File too large", "Disk quota"))
        # LMDB turns a short write (what a full disk gives) into EIO
        if full or ("Input/output error" in text and self._out_of_space()):
            return FluxError(errno.ENOSPC, f"store {self.path}: disk full, commit not written ({text})")
        return FluxError(errno.EIO, f"store {self.path}: write failed, commit not written ({text})")

    def _out_of_space(self) -> bool:
        """Whether the file system (or the process's file size limit) has no room left."""
        try:
            vfs = os.statvfs(self.path)
            size = os.stat(os.path.join(self.path, "data.mdb")).st_size
        except OSError:
            return False
        if vfs.f_bavail * vfs.f_frsize < _LOW_SPACE:
            return True
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        return soft != resource.RLIM_INFINITY and size + _LOW_SPACE > soft

    def _read_txn(self, **kw: Any) -> Any:
        try:
            return self._env.begin(**kw)
        except lmdb.MapResizedError:
            # another process grew the map: adopt its size
            self._env.set_mapsize(0)
            return self._env.begin(**kw)

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """A consistent read snapshot for many loads; keep it short (it pins pages)."""
        self._check_open()
        txn = self._read_txn(db=self._blobs, buffers=True)
        reader = Reader(txn)
        try:
            yield reader
        finally:
            reader.close()
            txn.abort()
            del txn

    # -- blobs ---------------------------------------------------------------

    def load(self, ref: str) -> bytes:
        """Blob bytes for ``ref``; ENOENT if absent, EIO if the content fails its digest."""
        with self.reader() as r:
            return r.load(ref)

    def has(self, ref: str) -> bool:
        with self.reader() as r:
            return r.has(ref)

    def size(self, ref: str) -> int:
        with self.reader() as r:
            return r.size(ref)

    def check_size(self, data: bytes, ref: str | None = None) -> None:
        if len(data) > self.blob_size_limit:
            what = f" ({ref})" if ref else ""
            raise FluxError(
                errno.EFBIG,
                f"blob of {len(data)} bytes{what} exceeds the limit of {self.blob_size_limit} bytes",
            )

    def store(self, data: bytes) -> str:
        """Store one blob; returns its blobref.  Idempotent (EFBIG over the limit)."""
        self.check_size(data)
        ref = _blobref.blobref(data)
        self.commit([(ref, data)], verify=False)  # hashed just now
        return ref

    def commit(
        self,
        blobs: Iterable[tuple[str, bytes]] | Mapping[str, bytes] = (),
        roots: Mapping[str, RootRecord] | None = None,
        deleted_roots: Iterable[str] = (),
        *,
        verify: bool = True,
    ) -> int:
        """Write new blobs and namespace roots in one write transaction; returns bytes added.

        With ``verify`` each blob's ref is checked against its content (the
        KVS passes False for blobs it has just hashed itself).
        """
        items = list(blobs.items()) if isinstance(blobs, Mapping) else list(blobs)
        keyed: list[tuple[bytes, bytes]] = []
        limit = self.blob_size_limit
        if verify:
            for ref, data in items:
                key = _blobref.parse(ref)
                self.check_size(data, ref)
                if blake3(data).digest() != key:
                    raise FluxError(errno.EINVAL, f"{ref}: blob content does not match the blobref")
                keyed.append((key, data))
        else:
            # trusted caller (it hashed the blobs itself): only convert and bound
            plen = len(_blobref.PREFIX)
            for ref, data in items:
                if len(data) > limit:
                    self.check_size(data, ref)
                keyed.append((bytes.fromhex(ref[plen:]), data))
        # sorted keys touch the B-tree in page order
        keyed.sort()
        root_items = [(ns.encode(), encode_root(rec)) for ns, rec in (roots or {}).items()]
        dead = [ns.encode() for ns in deleted_roots]
        for ns, _ in root_items:
            if not ns:
                raise FluxError(errno.EINVAL, "namespace name must not be empty")
        blobs_db, ckpt_db, meta_db = self._blobs, self._dbs[b"checkpoint"], self._dbs[b"metadata"]

        def write(txn: Any) -> int:
            added = 0
            if keyed:
                put = txn.cursor(blobs_db).put
                for key, data in keyed:
                    if put(key, data, overwrite=False):
                        added += len(data)
                if added:
                    old = txn.get(_META_BLOB_BYTES, db=meta_db)
                    total = (_COUNTER.unpack(old)[0] if old else 0) + added
                    txn.put(_META_BLOB_BYTES, _COUNTER.pack(total), db=meta_db)
            for ns in dead:
                txn.delete(ns, db=ckpt_db)
            for ns, val in root_items:
                txn.put(ns, val, db=ckpt_db)
            return added

        return self._write(write)

    # -- roots and pins --------------------------------------------------------

    def roots(self) -> dict[str, RootRecord]:
        """Current root record of every namespace."""
        self._check_open()
        db = self._dbs[b"checkpoint"]
        if db is None:
            return {}
        out: dict[str, RootRecord] = {}
        with self._read_txn(db=db) as txn:
            for k, v in txn.cursor():
                name = bytes(k).decode()
                out[name] = decode_root(name, bytes(v))
        return out

    def root(self, ns: str) -> RootRecord | None:
        self._check_open()
        db = self._dbs[b"checkpoint"]
        if db is None:
            return None
        with self._read_txn(db=db) as txn:
            v = txn.get(ns.encode())
            return None if v is None else decode_root(ns, bytes(v))

    def pin(self, name: str, ref: str, kind: str = PinKind.TREE) -> None:
        """Keep ``ref`` (a KVS root when kind is "tree", else one blob) alive across GC."""
        _blobref.parse(ref)
        if kind not in PinKind.ALL:
            raise ValueError(f"pin kind {kind!r} is not one of {sorted(PinKind.ALL)}")
        if not name:
            raise ValueError("pin name must not be empty")
        db = self._dbs[b"pins"]
        val = encode_pin(Pin(ref, kind))
        self._write(lambda txn: txn.put(name.encode(), val, db=db))

    def unpin(self, name: str) -> bool:
        db = self._dbs[b"pins"]
        return bool(self._write(lambda txn: txn.delete(name.encode(), db=db)))

    def pins(self) -> dict[str, Pin]:
        self._check_open()
        db = self._dbs[b"pins"]
        if db is None:
            return {}
        with self._read_txn(db=db) as txn:
            return {bytes(k).decode(): decode_pin(bytes(k).decode(), bytes(v)) for k, v in txn.cursor()}

    # -- metadata --------------------------------------------------------------

    def _init_metadata(self) -> None:
        db = self._dbs[b"metadata"]

        def init(txn: Any) -> None:
            hashname = txn.get(b"hash", db=db)
            if hashname is None:
                txn.put(b"hash", _blobref.HASH_NAME.encode(), db=db)
                txn.put(b"format", _FORMAT_VERSION, db=db)
            elif bytes(hashname) != _blobref.HASH_NAME.encode():
                raise FluxError(errno.EINVAL, f"store {self.path} uses hash {bytes(hashname).decode()!r}, "
                                              f"not {_blobref.HASH_NAME}")

        self._write(init)

    def meta_get(self, key: str) -> bytes | None:
        self._check_open()
        db = self._dbs[b"metadata"]
        if db is None:
            return None
        with self._read_txn(db=db) as txn:
            v = txn.get(key.encode())
            return None if v is None else bytes(v)

    def meta_put(self, key: str, value: bytes) -> None:
        db = self._dbs[b"metadata"]
        self._write(lambda txn: txn.put(key.encode(), value, db=db))

    # -- startlog --------------------------------------------------------------

    def _last_startlog_key(self) -> bytes:
        with self._read_txn(db=self._dbs[b"startlog"]) as txn:
            cur = txn.cursor()
            return bytes(cur.key()) if cur.last() else b""

    def startlog(self) -> list[StartRecord]:
        """Every open of this store, oldest first."""
        db = self._dbs[b"startlog"]
        if db is None:
            return []
        with self._read_txn(db=db) as txn:
            return [decode_record(record_index(bytes(k)), bytes(v)) for k, v in txn.cursor()]

    def _write_start(self) -> None:
        assert self._start_index is not None
        key = record_key(self._start_index)
        val = encode_record(StartRecord(time.time(), None, os.getpid(), self.version))
        db = self._dbs[b"startlog"]
        self._write(lambda txn: txn.put(key, val, db=db))
        if self.durability is not Durability.NONE:
            self.sync()

    def _write_finish(self) -> None:
        assert self._start_index is not None
        key = record_key(self._start_index)
        db = self._dbs[b"startlog"]

        def finish(txn: Any) -> None:
            raw = txn.get(key, db=db)
            rec = decode_record(self._start_index or 0, bytes(raw)) if raw else \
                StartRecord(time.time(), None, os.getpid(), self.version)
            txn.put(key, encode_record(StartRecord(rec.start, time.time(), rec.pid,
                                                   rec.version)), db=db)

        self._write(finish)

    # -- maintenance -------------------------------------------------------------

    def gc(self, live: Iterable[str]) -> GCResult:
        """Delete every blob whose ref is not in ``live`` (offline: no commits meanwhile)."""
        keep = {_blobref.parse(r) for r in live}
        meta_db = self._dbs[b"metadata"]

        def collect(txn: Any) -> GCResult:
            scratch = self._env.open_db(_GC_SCRATCH, txn=txn, create=True)
            txn.drop(scratch, delete=False)
            res = sweep(txn, self._blobs, scratch, keep)
            txn.drop(scratch, delete=True)
            txn.put(_META_BLOB_BYTES, _COUNTER.pack(res.kept_bytes), db=meta_db)
            return res

        res = self._write(collect)
        if self.durability is not Durability.NONE:
            self.sync()
        return res

    def blob_keys(self, after: bytes | None, limit: int) -> list[bytes]:
        """Up to LIMIT raw digests of stored blobs in key order, after AFTER.

        One short read transaction per call, so an online collector can scan
        the whole database in pieces without pinning old pages.  Keys only:
        reaching a value costs as much as the rest of the scan.
        """
        self._check_open()
        txn = self._read_txn(db=self._blobs)
        try:
            cur = txn.cursor()
            ok = cur.set_range(after) if after is not None else cur.first()
            if ok and after is not None and cur.key() == after:
                ok = cur.next()
            if not ok:
                return []
            return list(itertools.islice(cur.iternext(keys=True, values=False), limit))
        finally:
            txn.abort()
            del txn

    def delete_blobs(self, digests: Iterable[bytes]) -> tuple[int, int]:
        """Delete the blobs with these raw digests (absent ones are skipped) in one
        write transaction; returns (blobs, bytes) deleted.  Online GC's sweep: the
        caller has made sure nothing live is among them."""
        keys = sorted(digests)
        if not keys:
            return 0, 0
        blobs_db, meta_db = self._blobs, self._dbs[b"metadata"]

        def delete(txn: Any) -> tuple[int, int]:
            n = nbytes = 0
            cur = txn.cursor(blobs_db)
            for key in keys:
                if cur.set_key(key):
                    nbytes += len(cur.value())
                    cur.delete()
                    n += 1
            if nbytes:
                old = txn.get(_META_BLOB_BYTES, db=meta_db)
                total = max(0, (_COUNTER.unpack(old)[0] if old else 0) - nbytes)
                txn.put(_META_BLOB_BYTES, _COUNTER.pack(total), db=meta_db)
            return n, nbytes

        return self._write(delete)

    def compact(self) -> None:
        """Rewrite the file without free pages (offline; after ``gc`` this shrinks it)."""
        self._check_open()
        if self.readonly:
            raise FluxError(errno.EROFS, f"store {self.path} is open read-only")
        tmp = os.path.join(self.path, "compact.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        os.mkdir(tmp)
        try:
            self._env.copy(tmp, compact=True)
            map_size = self._env.info()["map_size"]
            self._env.close()
            os.replace(os.path.join(tmp, "data.mdb"), os.path.join(self.path, "data.mdb"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._open_env(map_size)

    def sync(self) -> None:
        """Force written commits to stable storage."""
        self._check_open()
        if not self.readonly:
            self._env.sync(True)

    def stats(self) -> StoreStats:
        self._check_open()
        with self._read_txn() as txn:
            db_stats = [txn.stat(db) for db in self._dbs.values() if db is not None]
            db_stats.append(self._env.stat())
            count = txn.stat(self._blobs)["entries"] if self._blobs is not None else 0
            raw = txn.get(_META_BLOB_BYTES, db=self._dbs[b"metadata"]) \
                if self._dbs[b"metadata"] is not None else None
        info = self._env.info()
        try:
            file_bytes = os.stat(os.path.join(self.path, "data.mdb")).st_size
        except FileNotFoundError:
            file_bytes = 0
        return StoreStats(
            blob_count=count,
            blob_bytes=_COUNTER.unpack(raw)[0] if raw else 0,
            file_bytes=file_bytes,
            pages_in_use=pages_in_use(db_stats),
            page_size=self._env.stat()["psize"],
            map_size=info["map_size"],
        )

    def close(self) -> None:
        """Record a clean stop and close the environment (idempotent)."""
        if self._closed:
            return
        try:
            if not self.readonly:
                self._write_finish()
                if self._policy.at_close():
                    self.sync()
        finally:
            self._closed = True
            self._env.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
