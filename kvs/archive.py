"""KVS snapshots to and from tar archives: ``flux dump``, ``flux restore``, content.dump/restore.

The format is Flux's (flux-dump(1), specs/dump-restore.md): one tar member
per KVS value, named by its key with ``.`` turned into ``/``
(``job/0000/0004/b200/0000/eventlog``), a symlink member per KVS symlink
(target as stored, a namespace as a ``NAME::`` prefix), mode 0644, owner
the user who dumps, mtime the checkpoint's timestamp (or the dump's start).
Directories are not members, so empty directories are not kept.  POSIX
ustar, with pax headers only for a member ustar cannot name; gzip, bzip2
or xz by the output file's extension.

Reading (:func:`walk`) takes a ``load_many(refs)`` that returns each blob
or the error loading it, so a broker connection can keep many loads in
flight and a damaged store can be dumped around its holes
(``--ignore-failed-read``).  Writing back (:func:`restore_tree`) goes
through the KVS engine into a scratch namespace, so the trees are shaped
as every other commit shapes them; :func:`restore_checkpoint` then makes
that tree the primary namespace's root in one store commit.

``content_restore`` and ``content_dump`` are what the content module runs
for the ``content.restore`` / ``content.dump`` broker attributes at start
(before the kvs gets the store) and at stop (after the kvs is gone).
"""
from __future__ import annotations

import bz2
import errno
import gzip
import io
import lzma
import os
import sys
import tarfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from flux.errors import FluxError
from kvs import keys as _keys
from kvs import treeobj as _t
from kvs.constants import PRIMARY_NAMESPACE

if TYPE_CHECKING:
    from eventstore.store import Store
    from kvs.engine import KVS

__all__ = [
    "AUTO_RESTORE_SIZE_LIMIT",
    "DUMP_DIRNAME",
    "RESTORE_LINK",
    "ArchiveWriter",
    "Entry",
    "auto_dump_path",
    "auto_restore_path",
    "content_dump",
    "content_dump_hook",
    "content_restore",
    "content_restore_hook",
    "dump_store",
    "key_of_member",
    "member_name",
    "parse_size",
    "read_archive",
    "restore_checkpoint",
    "restore_tree",
    "store_loader",
    "walk",
]

#: blobs or errors, one per ref, in order
LoadMany = Callable[[Sequence[str]], list["bytes | FluxError"]]

DUMP_DIRNAME = "dump"
RESTORE_LINK = "RESTORE"
#: what content.restore skips, as flux-core's rc1 restores (--size-limit=100M)
AUTO_RESTORE_SIZE_LIMIT = 100 << 20
_EXTENSIONS = ((".tar.gz", "gz"), (".tgz", "gz"), (".tar.bz2", "bz2"), (".tbz2", "bz2"),
               (".tar.xz", "xz"), (".txz", "xz"), (".tar", ""))
_BATCH_OPS = 4096
_BATCH_BYTES = 32 << 20


@dataclass(slots=True)
class Entry:
    """One archived key: a value (``data``) or a symlink (``target``, ``namespace``)."""

    key: str
    data: bytes | None = None
    target: str | None = None
    namespace: str | None = None

    @property
    def is_symlink(self) -> bool:
        return self.target is not None


def _err(key: str, exc: FluxError) -> FluxError:
    return FluxError(exc.errno or errno.EIO, f"{key}: {exc.strerror or exc}")


# -- reading a tree --


@dataclass(slots=True)
class _Frame:
    prefix: str
    items: list[tuple[str, dict[str, Any]]]
    blobs: dict[str, bytes | FluxError]
    pos: int = 0


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def walk(load_many: LoadMany, rootref: str,
         on_error: Callable[[str, FluxError], None] | None = None) -> Iterator[Entry]:
    """Every value and symlink under the root dir ``rootref``, in key order.

    A blob that cannot be loaded or decoded is an error naming the key
    (``.`` for the root): raised, or with ``on_error`` reported and the
    key (a whole directory, for a directory's blob) left out.
    """

    def fail(key: str, exc: FluxError) -> None:
        if on_error is None:
            raise _err(key, exc) from None
        on_error(key, exc)

    def decode(key: str, ref: str, got: bytes | FluxError) -> dict[str, Any] | None:
        try:
            if isinstance(got, FluxError):
                raise got
            return _t.decode_dir(got, ref)
        except FluxError as exc:
            fail(key, exc)
            return None

    def frame(prefix: str, dirobj: dict[str, Any]) -> _Frame | None:
        # an hdir's names live in its buckets' dirs (nested hdirs one level down)
        items: list[tuple[str, dict[str, Any]]] = []
        todo = [dirobj]
        while todo:
            hdirs = [d for d in todo if d["type"] == _t.HDIR]
            for d in todo:
                if d["type"] == _t.DIR:
                    items.extend(d["data"].items())
            refs = [b["data"][0] for d in hdirs for b in d["data"]["bucket"] if b is not None]
            todo = []
            for ref, got in zip(refs, load_many(refs) if refs else []):
                obj = decode(prefix or ".", ref, got)
                if obj is None:
                    return None
                todo.append(obj)
        items.sort(key=lambda kv: kv[0])
        refs = []
        for _name, e in items:
            t = e["type"]
            if t == _t.DIRREF or t == _t.VALREF:
                refs.extend(e["data"])
        blobs = dict(zip(refs, load_many(refs))) if refs else {}
        return _Frame(prefix, items, blobs)

    root = load_many([rootref])[0]
    rootobj = decode(".", rootref, root)
    if rootobj is None:
        return
    top = frame("", rootobj)
    stack = [top] if top is not None else []
    while stack:
        fr = stack[-1]
        if fr.pos >= len(fr.items):
            stack.pop()
            continue
        name, e = fr.items[fr.pos]
        fr.pos += 1
        key = _join(fr.prefix, name)
        t = e["type"]
        if t == _t.VAL:
            yield Entry(key, _t.val_bytes(e))
        elif t == _t.VALREF:
            parts = []
            for ref in e["data"]:
                got = fr.blobs[ref]
                if isinstance(got, FluxError):
                    fail(key, got)
                    break
                parts.append(got)
            else:
                yield Entry(key, parts[0] if len(parts) == 1 else b"".join(parts))
        elif t == _t.SYMLINK:
            d = e["data"]
            yield Entry(key, target=d["target"], namespace=d.get("namespace"))
        elif t == _t.DIR:
            sub = frame(key, e)
            if sub is not None:
                stack.append(sub)
        elif t == _t.DIRREF:
            ref = e["data"][0]
            obj = decode(key, ref, fr.blobs[ref])
            if obj is not None:
                sub = frame(key, obj)
                if sub is not None:
                    stack.append(sub)
        # an hdir is never an entry (it is only behind a dirref)


def store_loader(reader: Any) -> LoadMany:
    """``load_many`` over a Store reader: verified loads, errors as values."""

    def load_many(refs: Sequence[str]) -> list[bytes | FluxError]:
        out: list[bytes | FluxError] = []
        for ref in refs:
            try:
                out.append(reader.load(ref))
            except FluxError as exc:
                out.append(exc)
        return out

    return load_many


# -- member names --


def member_name(key: str) -> str:
    """Tar member name of a key: the KVS separator becomes ``/``."""
    return key.replace(".", "/")


def key_of_member(name: str) -> str:
    """The key a member name restores to; EINVAL naming the member when it cannot be one."""

    def bad(why: str) -> FluxError:
        return FluxError(errno.EINVAL, f"archive member {name!r}: {why}")

    if name.startswith("/"):
        raise bad("absolute path")
    comps = [c for c in name.split("/") if c not in ("", ".")]
    if ".." in comps:
        raise bad("path contains '..'")
    if not comps:
        raise bad("names no key")
    try:
        return _keys.normalize(".".join(comps))
    except FluxError as exc:
        raise bad(exc.strerror or str(exc)) from None


# -- writing an archive --


def _compression(path: str) -> str:
    low = path.lower()
    for ext, comp in _EXTENSIONS:
        if low.endswith(ext):
            return comp
    known = ", ".join(ext for ext, _ in _EXTENSIONS)
    raise FluxError(errno.EINVAL, f"{path}: unknown archive extension (use one of {known}, "
                                  "or - for standard output)")


class ArchiveWriter:
    """A tar archive being written: ``add(entry)``, then ``close()``."""

    def __init__(self, path: str, *, mtime: float, fileobj: IO[bytes] | None = None) -> None:
        import grp
        import pwd

        self.path = path
        self.count = 0
        self._mtime = int(mtime)
        self._uid, self._gid = os.getuid(), os.getgid()
        try:
            self._uname = pwd.getpwuid(self._uid).pw_name
        except KeyError:
            self._uname = ""
        try:
            self._gname = grp.getgrgid(self._gid).gr_name
        except KeyError:
            self._gname = ""
        fmt = tarfile.PAX_FORMAT  # ustar headers; pax records only where ustar cannot say it
        if path == "-" or fileobj is not None:
            out = fileobj if fileobj is not None else sys.stdout.buffer
            self._tar = tarfile.open(fileobj=out, mode="w|", format=fmt)  # noqa: SIM115 - closed by close()
        else:
            comp = _compression(path)
            kw: dict[str, Any] = {"compresslevel": 6} if comp in ("gz", "bz2") else {}
            try:
                self._tar = tarfile.open(path, mode=f"w:{comp}", format=fmt, **kw)  # noqa: SIM115
            except OSError as exc:
                raise FluxError(exc.errno or errno.EIO,
                                f"{path}: {exc.strerror or exc}") from None

    def _info(self, name: str) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mtime = self._mtime
        info.uid, info.gid = self._uid, self._gid
        info.uname, info.gname = self._uname, self._gname
        return info

    def add(self, entry: Entry) -> None:
        info = self._info(member_name(entry.key))
        if entry.target is not None:
            info.type = tarfile.SYMTYPE
            info.mode = 0o777
            info.linkname = (f"{entry.namespace}::{entry.target}" if entry.namespace
                             else entry.target)
            self._tar.addfile(info)
        else:
            data = entry.data or b""
            info.mode = 0o644
            info.size = len(data)
            self._tar.addfile(info, io.BytesIO(data))
        self.count += 1

    def close(self) -> None:
        self._tar.close()


# -- reading an archive --


class _Tap:
    """A forward-only, seekable view of a byte stream that remembers the last block read.

    tarfile takes a header block that is neither a header nor zeros, or a
    short one, for the end of the archive; the last 512-byte read tells
    whether it really was the end-of-archive marker.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._pos = 0
        self.last_block: bytes | None = None

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n) if n is not None and n >= 0 else self._raw.read()
        self._pos += len(data)
        if n == tarfile.BLOCKSIZE:
            self.last_block = data
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 1:
            pos += self._pos
        elif whence != 0:
            raise io.UnsupportedOperation("seek from the end")
        if pos < self._pos:
            raise io.UnsupportedOperation("backward seek in an archive stream")
        while self._pos < pos:
            chunk = self._raw.read(min(pos - self._pos, 1 << 20))
            if not chunk:
                break
            self._pos += len(chunk)
        return self._pos


def _open_input(path: str, fileobj: IO[bytes] | None) -> tuple[IO[bytes], IO[bytes] | None]:
    """(decompressed stream, file to close) for PATH or FILEOBJ, by the data's magic."""
    if fileobj is None and path == "-":
        fileobj = sys.stdin.buffer
    opened = None
    if fileobj is None:
        try:
            fileobj = opened = open(path, "rb")  # noqa: SIM115 - closed by read_archive
        except OSError as exc:
            raise FluxError(exc.errno or errno.EIO, f"{path}: {exc.strerror or exc}") from None
    buffered = fileobj if hasattr(fileobj, "peek") else io.BufferedReader(fileobj)  # type: ignore[arg-type]
    magic = buffered.peek(6)[:6]  # type: ignore[attr-defined]
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=buffered, mode="rb"), opened
    if magic[:3] == b"BZh":
        return bz2.BZ2File(buffered, mode="rb"), opened
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(buffered, mode="rb"), opened
    return buffered, opened


def _size_text(n: int) -> str:
    return f"{n} bytes"


def read_archive(path: str, *, fileobj: IO[bytes] | None = None, size_limit: int | None = None,
                 on_skip: Callable[[str, str], None] | None = None) -> Iterator[Entry]:
    """The entries of the archive at PATH (``-``: standard input), in archive order.

    Directory members are ignored (a tar made from an unpacked dump has
    them).  A value over ``size_limit`` bytes is skipped and reported to
    ``on_skip(key, why)``.  Anything else that is not a regular file or a
    symlink, a member name that cannot be a key, a damaged or truncated
    archive: EINVAL naming the archive and the problem.
    """

    def bad(why: str) -> FluxError:
        return FluxError(errno.EINVAL, f"{path}: {why}")

    stream, opened = _open_input(path, fileobj)
    tap = _Tap(stream)
    try:
        try:
            tar = tarfile.open(fileobj=tap, mode="r:")  # type: ignore[call-overload]  # noqa: SIM115
        except tarfile.ReadError as exc:
            text = str(exc)
            if text == "empty file":
                raise bad("empty file, not a tar archive") from None
            raise bad(f"not a tar archive ({text})") from None
        except (EOFError, OSError, lzma.LZMAError, ValueError) as exc:
            raise bad(f"cannot read archive ({exc})") from None
        while True:
            try:
                info = tar.next()
                if info is None:
                    block = tap.last_block
                    if block is None or len(block) < tarfile.BLOCKSIZE:
                        raise bad("truncated archive (no end-of-archive marker)")
                    if block.count(0) != len(block):
                        raise bad(f"damaged archive: invalid tar header at offset "
                                  f"{tap.tell() - len(block)}")
                    return
                if info.isdir():
                    continue
                if info.issym():
                    key = key_of_member(info.name)
                    ns = None
                    target = info.linkname
                    if "::" in target:
                        ns, target = target.split("::", 1)
                    if not target:
                        raise bad(f"archive member {info.name!r}: symlink has no target")
                    obj = _t.symlink(target, ns or None)
                    try:
                        _t.validate(obj, path=key)
                    except FluxError as exc:
                        raise bad(f"archive member {info.name!r}: {exc.strerror}") from None
                    yield Entry(key, target=target, namespace=ns or None)
                    continue
                if not info.isreg():
                    kind = {tarfile.LNKTYPE: "a hard link", tarfile.CHRTYPE: "a character device",
                            tarfile.BLKTYPE: "a block device", tarfile.FIFOTYPE: "a fifo"} \
                        .get(info.type, f"of tar type {info.type!r}")
                    raise bad(f"archive member {info.name!r} is {kind}: only files and "
                              "symlinks can be restored")
                key = key_of_member(info.name)
                if size_limit is not None and info.size > size_limit:
                    if on_skip is not None:
                        on_skip(key, f"{_size_text(info.size)} exceeds the size limit of "
                                     f"{_size_text(size_limit)}")
                    continue
                member = tar.extractfile(info)
                data = member.read() if member is not None else b""
                if len(data) != info.size:
                    raise bad("truncated archive (unexpected end of data)")
                yield Entry(key, data)
            except FluxError as exc:
                if exc.strerror and exc.strerror.startswith(path + ": "):
                    raise
                raise bad(exc.strerror or str(exc)) from None
            except tarfile.ReadError as exc:
                what = "truncated archive" if "end of data" in str(exc) else "damaged archive"
                raise bad(f"{what} ({exc})") from None
            except EOFError as exc:
                raise bad(f"truncated archive ({exc})") from None
            except (OSError, lzma.LZMAError, zlib.error, ValueError) as exc:
                raise bad(f"damaged archive ({exc})") from None
    finally:
        if opened is not None:
            opened.close()


# -- writing a tree --


def _op(entry: Entry) -> dict[str, Any]:
    from kvs.txn import RawValue

    if entry.target is not None:
        return {"key": entry.key, "flags": 0,
                "dirent": _t.symlink(entry.target, entry.namespace)}
    return {"key": entry.key, "flags": 0, "dirent": RawValue(entry.data or b"")}


def restore_tree(kvs: KVS, entries: Iterable[Entry], *,
                 on_entry: Callable[[Entry], None] | None = None) -> tuple[str, int]:
    """Write ENTRIES into a fresh tree in KVS's store; returns (root blobref, count).

    The tree is built in a scratch namespace that is removed again; its
    blobs stay (they are the tree) until something makes it reachable or
    a GC drops them.
    """
    from kvs.txn import Txn

    scratch = f"restore-{os.getpid()}-{time.time_ns()}"
    created = False
    count = 0
    ops: list[dict[str, Any]] = []
    size = 0

    def flush() -> None:
        nonlocal created, ops, size
        if not ops and created:
            return
        txn = Txn(ops, scratch, create=None if created else kvs.owner)
        kvs.commit_one(txn)
        created = True
        ops, size = [], 0

    try:
        for entry in entries:
            ops.append(_op(entry))
            size += len(entry.data or b"") + len(entry.key)
            count += 1
            if on_entry is not None:
                on_entry(entry)
            if len(ops) >= _BATCH_OPS or size >= _BATCH_BYTES:
                flush()
        flush()
        return kvs.getroot(scratch).rootref, count
    finally:
        if created:
            kvs.namespace_remove(scratch)


def restore_checkpoint(store: Store, entries: Iterable[Entry], *,
                       on_entry: Callable[[Entry], None] | None = None,
                       only_primary: bool = False) -> tuple[str, int]:
    """Make the restored ENTRIES the primary namespace's root; returns (rootref, count).

    With ``only_primary`` (content.restore: the store is rebuilt from the
    dump, as flux-core truncates its database) every other namespace and
    every pin goes too, and the blobs nothing reaches any more are dropped.
    """
    from eventstore.checkpoint import RootRecord
    from kvs.engine import KVS

    kvs = KVS(store)
    rootref, count = restore_tree(kvs, entries, on_entry=on_entry)
    old = store.root(PRIMARY_NAMESPACE)
    owner = old.owner if old is not None else kvs.owner
    seq = old.sequence + 1 if old is not None else 0
    others = [ns for ns in store.roots() if ns != PRIMARY_NAMESPACE] if only_primary else []
    store.commit(roots={PRIMARY_NAMESPACE: RootRecord(rootref, seq, time.time(), owner)},
                 deleted_roots=others)
    if only_primary:
        for name in list(store.pins()):
            store.unpin(name)
        KVS(store).gc()
        store.compact()
    store.sync()
    return rootref, count


def dump_store(store: Store, out: ArchiveWriter, rootref: str, *,
               on_error: Callable[[str, FluxError], None] | None = None,
               on_entry: Callable[[Entry], None] | None = None) -> int:
    """Archive the tree at ROOTREF of STORE into OUT (one read snapshot); returns the count."""
    n = 0
    with store.reader() as rd:
        for entry in walk(store_loader(rd), rootref, on_error):
            out.add(entry)
            n += 1
            if on_entry is not None:
                on_entry(entry)
    return n


# -- sizes --

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """flux-restore's SIZE: a number with an optional suffix b, k/K, M or G (powers of 1024)."""
    s = text.strip()
    unit = s[-1:] if s[-1:] in _UNITS and s[-1:] else ""
    num = s[: len(s) - len(unit)]
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"invalid size {text!r} (a number with an optional suffix "
                         "k, M or G)") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"invalid size {text!r}: must be a non-negative number")
    n = int(value * _UNITS[unit])
    if n > (1 << 31) - 1:
        raise ValueError(f"invalid size {text!r}: larger than {(1 << 31) - 1} bytes")
    return n


# -- content.dump / content.restore --


def auto_dump_path(statedir: str | None, now: float | None = None) -> str:
    """``<statedir>/dump/<YYYYmmdd_HHMMSS>.tgz`` (``./dump/...`` without a statedir)."""
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(now if now is not None else time.time()))
    return os.path.join(statedir or ".", DUMP_DIRNAME, f"{stamp}.tgz")


def auto_restore_path(statedir: str | None) -> str | None:
    """The dump ``<statedir>/dump/RESTORE`` points to, or None when there is no such link."""
    link = os.path.join(statedir or ".", DUMP_DIRNAME, RESTORE_LINK)
    if not os.path.islink(link):
        return None
    return os.path.join(os.path.dirname(link), os.readlink(link))


@dataclass(slots=True)
class HookResult:
    """What a content.dump / content.restore hook did, for the log."""

    path: str
    keys: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)


def content_dump(store: Store, value: str, statedir: str | None,
                 log: Callable[[str], None] | None = None) -> HookResult | None:
    """Dump the primary namespace's checkpoint to VALUE (``auto``: see auto_dump_path).

    Damaged keys are skipped and reported (``--ignore-failed-read``).  For
    ``auto`` the link ``dump/RESTORE`` is pointed at the new dump, for
    content.restore=auto to find at the next start.  None when there is
    nothing to dump (no primary namespace).
    """
    rec = store.root(PRIMARY_NAMESPACE)
    if rec is None:
        return None
    t0 = time.monotonic()
    auto = value == "auto"
    path = auto_dump_path(statedir) if auto else value
    if auto:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    res = HookResult(path)

    def skipped(key: str, exc: FluxError) -> None:
        res.skipped.append(f"{key}: {exc.strerror or exc}")

    if log is not None:
        log(f"dumping content to {path}")
    out = ArchiveWriter(path, mtime=rec.timestamp)
    try:
        res.keys = dump_store(store, out, rec.rootref, on_error=skipped)
        out.close()
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    if auto:
        link = os.path.join(os.path.dirname(path), RESTORE_LINK)
        tmp = link + ".new"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(os.path.basename(path), tmp)
        os.replace(tmp, link)
    res.seconds = time.monotonic() - t0
    return res


def content_restore(store: Store, value: str, statedir: str | None,
                    log: Callable[[str], None] | None = None) -> HookResult | None:
    """Rebuild STORE from the dump VALUE names (``auto``: the dump/RESTORE link, if any).

    The primary namespace becomes the dump's tree and nothing else is
    kept (flux-core truncates its database first); values over 100 MiB are
    skipped, as flux-core's rc1 restores.  With ``auto`` the link is
    removed once the restore is done.  None when ``auto`` finds no link.
    """
    t0 = time.monotonic()
    link = None
    if value == "auto":
        path = auto_restore_path(statedir)
        if path is None:
            return None
        link = os.path.join(statedir or ".", DUMP_DIRNAME, RESTORE_LINK)
    else:
        path = value
    res = HookResult(path)
    if log is not None:
        log(f"restoring content from {path}")

    def skip(key: str, why: str) -> None:
        res.skipped.append(f"{key}: {why}")

    entries = read_archive(path, size_limit=AUTO_RESTORE_SIZE_LIMIT, on_skip=skip)
    _ref, res.keys = restore_checkpoint(store, entries, only_primary=True)
    if link is not None:
        os.unlink(link)
    res.seconds = time.monotonic() - t0
    return res


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def content_restore_hook(store: Store, value: str, statedir: str | None, log: Any) -> None:
    """content.restore at the content module's start: restore, log it, or fail naming why."""
    try:
        res = content_restore(store, value, statedir, log.info)
    except OSError as exc:
        raise FluxError(exc.errno or errno.EIO,
                        f"content.restore: {exc.strerror or exc}") from None
    if res is None:
        log.debug("content.restore=auto: no dump/RESTORE link, nothing to restore")
        return
    for text in res.skipped:
        log.warning(f"content.restore: skipped {text}")
    log.info(f"restored {_plural(res.keys, 'key')} from {res.path} in {res.seconds:.3f}s")


def content_dump_hook(store: Store, value: str, statedir: str | None, log: Any) -> None:
    """content.dump (or flux shutdown --dump) at the content module's stop; never raises:
    a failed dump is logged and the shutdown goes on."""
    try:
        res = content_dump(store, value, statedir, log.info)
    except Exception as exc:  # noqa: BLE001 - the store must still be closed cleanly
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.error(f"content.dump: {value}: dump failed: {text}")
        return
    if res is None:
        log.warning("content.dump: the store has no checkpoint to dump")
        return
    for text in res.skipped:
        log.error(f"content.dump: skipped {text}")
    log.info(f"dumped {_plural(res.keys, 'key')} to {res.path} in {res.seconds:.3f}s")
