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
from flux.util.size import parse_size as _parse_size
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
#: most bytes of values loaded ahead of the walk (see ``walk``)
_AHEAD_BYTES = 16 << 20
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

    # blobs loaded ahead of need (the children of the subdirectories of the directory being
    # entered), so a connection keeps many loads in flight, and kept a while after use: the
    # same blob under many keys (equal jobspecs) is loaded once; oldest dropped past a bound
    ahead: dict[str, bytes | FluxError] = {}
    held = [0]
    decoded: dict[str, dict[str, Any]] = {}

    def keep(ref: str, got: bytes | FluxError) -> None:
        if ref in ahead:
            return
        ahead[ref] = got
        held[0] += len(got) if isinstance(got, bytes) else 0
        while held[0] > 2 * _AHEAD_BYTES and len(ahead) > 1:
            old = ahead.pop(next(iter(ahead)))
            held[0] -= len(old) if isinstance(old, bytes) else 0

    def fetch(refs: list[str]) -> dict[str, bytes | FluxError]:
        want = list(dict.fromkeys(refs))
        need = [r for r in want if r not in ahead]
        got = dict(zip(need, load_many(need))) if need else {}
        out = {r: got[r] if r in got else ahead[r] for r in want}
        for r, g in got.items():
            keep(r, g)
        return out

    def children_refs(obj: dict[str, Any]) -> Iterator[tuple[str, int]]:
        """(ref, size estimate) of what entering OBJ will load."""
        if obj["type"] == _t.HDIR:
            for b in obj["data"]["bucket"]:
                if b is not None:
                    yield b["data"][0], 4096
            return
        for e in obj["data"].values():
            t = e["type"]
            if t == _t.VALREF:
                n = e.get("size") or 0
                for ref in e["data"]:
                    yield ref, n // max(len(e["data"]), 1)
            elif t == _t.DIRREF:
                yield e["data"][0], 4096

    def look_ahead(items: list[tuple[str, dict[str, Any]]],
                   blobs: dict[str, bytes | FluxError]) -> None:
        refs: list[str] = []
        budget = _AHEAD_BYTES
        for _name, e in items:
            t = e["type"]
            if t == _t.DIRREF:
                ref = e["data"][0]
                raw = blobs.get(ref)
                if not isinstance(raw, bytes):
                    continue
                try:
                    obj = decoded[ref] = _t.decode_dir(raw, ref)
                except FluxError:
                    continue  # reported when the walk gets there
            elif t == _t.DIR:
                obj = e
            else:
                continue
            for ref, n in children_refs(obj):
                if ref not in ahead and ref not in blobs:
                    refs.append(ref)
                    budget -= n
            if budget <= 0:
                break
        refs = list(dict.fromkeys(refs))
        if refs:
            for r, g in zip(refs, load_many(refs)):
                keep(r, g)

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
            for ref, got in fetch(refs).items():
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
        blobs = fetch(refs) if refs else {}
        look_ahead(items, blobs)
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
            obj = decoded.pop(ref, None) or decode(key, ref, fr.blobs[ref])
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


def _octal(n: int, width: int) -> bytes:
    """A ustar number field: octal digits, zero-padded, NUL-terminated."""
    return b"%0*o\0" % (width - 1, n)


_BLOCK = tarfile.BLOCKSIZE
_ZEROS = bytes(_BLOCK)
_USTAR_MAX_SIZE = 8 ** 11  # what 11 octal digits hold


def _split_name(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) fields for a ustar path, or None when it does not fit."""
    if len(name) <= 100:
        return b"", name
    # prefix (<= 155) + "/" + name (<= 100), cut at the last slash that fits the prefix
    cut = name.rfind(b"/", 0, 156)
    if cut <= 0 or len(name) - cut - 1 > 100 or cut == len(name) - 1:
        return None
    return name[:cut], name[cut + 1:]


class ArchiveWriter:
    """A tar archive being written: ``add(entry)``, then ``close()``.

    Headers are POSIX ustar, built here (tarfile's per-member cost was most
    of a dump's time); a member ustar cannot describe (a long or non-ASCII
    name or target, a value of 8 GiB or more) gets tarfile's pax header.
    """

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
        self._raw: IO[bytes] | None = None  # a file we opened (closed by close())
        self._comp: Any = None
        if path == "-" or fileobj is not None:
            sink = fileobj if fileobj is not None else sys.stdout.buffer
        else:
            comp = _compression(path)
            try:
                self._raw = sink = open(path, "wb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise FluxError(exc.errno or errno.EIO,
                                f"{path}: {exc.strerror or exc}") from None
            if comp == "gz":
                self._comp = sink = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6,
                                                  mtime=self._mtime)
            elif comp == "bz2":
                self._comp = sink = bz2.BZ2File(sink, mode="wb", compresslevel=6)
            elif comp == "xz":
                self._comp = sink = lzma.LZMAFile(sink, mode="wb")  # noqa: SIM115
        self._sink = sink
        self._buf = bytearray()
        self._written = 0
        self._fixed = b"".join((
            _octal(self._uid, 8) if self._uid < 8 ** 7 else b"",
            _octal(self._gid, 8) if self._gid < 8 ** 7 else b"",
        ))
        self._owner = (self._uname.encode()[:31].ljust(32, b"\0")
                       + self._gname.encode()[:31].ljust(32, b"\0"))

    def _header(self, name: str, mode: int, size: int, typeflag: bytes,
                linkname: str) -> bytes:
        """The member's header block(s)."""
        fast = None
        if len(self._fixed) == 16 and size < _USTAR_MAX_SIZE and name.isascii() \
                and linkname.isascii() and len(linkname) <= 100:
            fast = _split_name(name.encode())
        if fast is None:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.size, info.type = self._mtime, mode, size, typeflag
            info.linkname = linkname
            info.uid, info.gid = self._uid, self._gid
            info.uname, info.gname = self._uname, self._gname
            return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        prefix, short = fast
        head = b"".join((
            short.ljust(100, b"\0"), _octal(mode, 8), self._fixed, _octal(size, 12),
            _octal(self._mtime, 12), b"        ", typeflag,
            linkname.encode().ljust(100, b"\0"), b"ustar\x0000", self._owner,
            _octal(0, 8), _octal(0, 8), prefix.ljust(155, b"\0"), bytes(12),
        ))
        chksum = b"%06o\0 " % sum(head)
        return head[:148] + chksum + head[156:]

    def _write(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) >= 1 << 20:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._sink.write(self._buf)
            self._written += len(self._buf)
            self._buf = bytearray()

    def add(self, entry: Entry) -> None:
        name = member_name(entry.key)
        if entry.target is not None:
            link = f"{entry.namespace}::{entry.target}" if entry.namespace else entry.target
            self._write(self._header(name, 0o777, 0, tarfile.SYMTYPE, link))
        else:
            data = entry.data or b""
            self._write(self._header(name, 0o644, len(data), tarfile.REGTYPE, ""))
            self._write(data)
            pad = -len(data) % _BLOCK
            if pad:
                self._write(_ZEROS[:pad])
        self.count += 1

    def close(self) -> None:
        """End the archive (two zero blocks, padded to a 10 KiB record) and close what we opened."""
        try:
            self._write(_ZEROS * 2)
            total = self._written + len(self._buf)
            self._write(bytes(-total % tarfile.RECORDSIZE))
            self._flush()
            if self._comp is not None:
                self._comp.close()
            else:
                self._sink.flush()
        finally:
            if self._raw is not None:
                self._raw.close()


# -- reading an archive --


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
    # big buffers: tarfile reads a header, the data and the padding of each member
    if magic[:2] == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), 1 << 20), opened
    if magic[:3] == b"BZh":
        return io.BufferedReader(bz2.BZ2File(buffered, mode="rb"), 1 << 20), opened
    if magic == b"\xfd7zXZ\x00":
        return io.BufferedReader(lzma.LZMAFile(buffered, mode="rb"), 1 << 20), opened
    return buffered, opened


def _size_text(n: int) -> str:
    return f"{n} bytes"


class _Bad(Exception):
    """A problem with the archive itself (its text follows the archive's name)."""


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    if field[:1] == b"\x80":  # GNU base-256 (large sizes, ids)
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    return int(digits, 8) if digits else 0


def _header_ok(block: bytes) -> bool:
    try:
        stored = _number(block[148:156])
    except ValueError:
        return False
    rest = sum(block[:148]) + sum(block[156:]) + 8 * 32
    signed = rest - 2 * sum(b for b in block[:148] + block[156:] if b > 127)
    return stored in (rest, signed)


def _pax_records(data: bytes) -> dict[str, str]:
    """The ``LEN key=value\n`` records of a pax extended header."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        sp = data.find(b" ", pos)
        if sp < 0:
            raise _Bad("damaged archive: malformed pax header")
        try:
            n = int(data[pos:sp])
        except ValueError:
            raise _Bad("damaged archive: malformed pax header") from None
        rec = data[sp + 1:pos + n]
        if n <= 0 or not rec.endswith(b"\n") or b"=" not in rec:
            raise _Bad("damaged archive: malformed pax header")
        key, _, value = rec[:-1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += n
    return out


_KINDS = {b"1": "a hard link", b"3": "a character device", b"4": "a block device",
          b"6": "a fifo"}
_REGULAR = (b"0", b"\0", b"7")


def _members(stream: IO[bytes], size_limit: int | None,
             skipped: Callable[[str, int], None]) -> Iterator[tuple[str, bytes, str, bytes]]:
    """(name, typeflag, linkname, data) of each file, symlink or directory member.

    A value over ``size_limit`` is passed to ``skipped(name, size)`` and not
    read.  Follows POSIX ustar with pax extended headers and GNU long names;
    every header's checksum is verified; the archive must end with the
    end-of-archive marker.
    """
    offset = 0
    pax: dict[str, str] = {}
    long_name: str | None = None
    long_link: str | None = None

    def read(n: int) -> bytes:
        nonlocal offset
        data = stream.read(n)
        if len(data) != n:
            raise _Bad("truncated archive (unexpected end of data)")
        offset += n
        return data

    def body(size: int) -> bytes:
        data = read(size)
        pad = -size % _BLOCK
        if pad:
            read(pad)
        return data

    while True:
        block = stream.read(_BLOCK)
        if len(block) < _BLOCK:
            if offset == 0:
                raise _Bad("empty file, not a tar archive" if not block
                           else "not a tar archive (shorter than one block)")
            raise _Bad("truncated archive (no end-of-archive marker)")
        if block == _ZEROS:  # the end-of-archive marker (an empty archive is only that)
            return
        if not _header_ok(block):
            if offset == 0:
                raise _Bad("not a tar archive (no valid tar header)")
            raise _Bad(f"damaged archive: invalid tar header at offset {offset}")
        offset += _BLOCK
        flag = block[156:157]
        try:
            size = _number(block[124:136])
        except ValueError:
            raise _Bad(f"damaged archive: invalid tar header at offset {offset - _BLOCK}") \
                from None
        if flag in (b"x", b"g", b"L", b"K"):
            data = body(size)
            if flag == b"x":
                pax = _pax_records(data)
            elif flag == b"L":
                long_name = _text(data)
            elif flag == b"K":
                long_link = _text(data)
            continue
        name = _text(block[0:100])
        if block[257:263] == b"ustar\x00" and block[345:346] != b"\0":
            name = _text(block[345:500]) + "/" + name
        link = _text(block[157:257])
        if long_name is not None:
            name = long_name
        if long_link is not None:
            link = long_link
        name = pax.get("path", name)
        link = pax.get("linkpath", link)
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise _Bad("damaged archive: malformed pax size") from None
        pax, long_name, long_link = {}, None, None
        if flag in _REGULAR:
            if size_limit is not None and size > size_limit:
                skipped(name, size)
                body(size)  # read past it
                continue
            yield name, b"0", link, body(size)
        elif flag in (b"2", b"5"):
            body(size)
            yield name, flag, link, b""
        else:
            kind = _KINDS.get(flag, f"of tar type {flag!r}")
            raise _Bad(f"archive member {name!r} is {kind}: only files and symlinks can "
                       "be restored")


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

    def skipped(name: str, size: int) -> None:
        if on_skip is not None:
            on_skip(key_of_member(name), f"{_size_text(size)} exceeds the size limit of "
                                         f"{_size_text(size_limit or 0)}")

    stream, opened = _open_input(path, fileobj)
    try:
        try:
            for name, flag, link, data in _members(stream, size_limit, skipped):
                if flag == b"5":
                    continue
                key = key_of_member(name)
                if flag == b"0":
                    yield Entry(key, data)
                    continue
                ns = None
                target = link
                if "::" in target:
                    ns, target = target.split("::", 1)
                if not target:
                    raise bad(f"archive member {name!r}: symlink has no target")
                try:
                    _t.validate(_t.symlink(target, ns or None), path=key)
                except FluxError as exc:
                    raise bad(f"archive member {name!r}: {exc.strerror}") from None
                yield Entry(key, target=target, namespace=ns or None)
        except _Bad as exc:
            raise bad(str(exc)) from None
        except FluxError as exc:
            if exc.strerror and exc.strerror.startswith(path + ": "):
                raise
            raise bad(exc.strerror or str(exc)) from None
        except EOFError as exc:
            raise bad(f"truncated archive ({exc})") from None
        except (OSError, lzma.LZMAError, zlib.error) as exc:
            if isinstance(exc, FluxError):
                raise
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

def parse_size(text: str) -> int:
    """flux-restore's SIZE: a number with an optional suffix b, k/K, M or G (powers of 1024)."""
    return _parse_size(text, maximum=(1 << 31) - 1)


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
