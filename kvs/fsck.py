"""An fsck of the content store: every blob a root reaches is there and verifies.

``check_tree`` walks one root dir blobref the way the KVS reads it: each
dir, hdir bucket and value blob is loaded through ``load`` (a store
reader's, which checks the blob's digest), each dir blob must decode as an
RFC 11 dir or hdir, and a valref's blobs must add up to its ``size``.
Every problem is reported with the key it damages and the blobref at
fault; the walk goes on past it, so one run lists all the damage.  A blob
shared by several keys is read once (a missing one is reported for the
first key that needs it).  No recursion: depth is bounded by the explicit
stack only.
"""
from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flux.errors import FluxError
from kvs import treeobj as _t

__all__ = ["FsckResult", "Problem", "check_tree", "describe_error"]


@dataclass(slots=True, frozen=True)
class Problem:
    """One damaged key: where, which blob, and what is wrong with it."""

    key: str
    ref: str | None
    what: str

    def __str__(self) -> str:
        return f"{self.key}: {self.what}" + (f" ({self.ref})" if self.ref else "")


@dataclass(slots=True)
class FsckResult:
    """What a check read and found."""

    keys: int = 0
    dirs: int = 0
    blobs: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, other: FsckResult) -> None:
        self.keys += other.keys
        self.dirs += other.dirs
        self.blobs += other.blobs
        self.bytes += other.bytes
        self.problems.extend(other.problems)


def describe_error(exc: FluxError) -> str:
    if exc.errno == errno.ENOENT:
        return "missing blob"
    if exc.errno == errno.EIO:
        return "corrupt blob (content does not match its blobref)"
    if exc.errno == errno.EPROTO:
        text = exc.strerror or ""
        return "bad tree object" + (f": {text.split(': ', 1)[1]}" if ": " in text else "")
    return exc.strerror or str(exc)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class Seen:
    """Blobs already checked, shared by the checks of several roots (each blob is
    read once, and a damaged one reported once, for the first key reaching it)."""

    __slots__ = ("sizes", "status")

    def __init__(self) -> None:
        self.status: dict[str, Problem | None] = {}
        self.sizes: dict[str, int] = {}


def check_tree(load: Callable[[str], bytes], rootref: str, *, label: str = "",
               on_key: Callable[[str], None] | None = None,
               seen_before: Seen | None = None) -> FsckResult:
    """Check the tree at ROOTREF; keys are reported as LABEL + key (e.g. ``ns::``).

    With ``seen_before`` (one per run over several roots) a subtree already
    walked from an earlier root is not walked again.
    """
    res = FsckResult()
    memo = seen_before if seen_before is not None else Seen()
    seen, sizes = memo.status, memo.sizes

    def blob(key: str, ref: str) -> bytes | None:
        """The blob's bytes, or None after recording why it cannot be read."""
        if ref in seen:
            return None if seen[ref] is not None else b""
        try:
            data = load(ref)
        except FluxError as exc:
            p = Problem(label + key, ref, describe_error(exc))
            seen[ref] = p
            res.problems.append(p)
            return None
        seen[ref] = None
        sizes[ref] = len(data)
        res.blobs += 1
        res.bytes += len(data)
        return data

    def dirobj(key: str, ref: str) -> dict[str, Any] | None:
        first = ref not in seen
        raw = blob(key, ref)
        if raw is None or not first:
            return None  # damaged, or already walked from another key
        try:
            obj = _t.decode_dir(raw, ref)
        except FluxError as exc:
            p = Problem(label + key, ref, describe_error(exc))
            seen[ref] = p
            res.problems.append(p)
            return None
        res.dirs += 1
        return obj

    def items(prefix: str, obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """A dir's entries; an hdir's are in its buckets' dirs (or hdirs a level down)."""
        out: list[tuple[str, dict[str, Any]]] = []
        todo = [obj]
        while todo:
            o = todo.pop()
            if o["type"] == _t.DIR:
                out.extend(o["data"].items())
                continue
            for b in o["data"]["bucket"]:
                if b is not None:
                    sub = dirobj(prefix or ".", b["data"][0])
                    if sub is not None:
                        todo.append(sub)
        return out

    root = dirobj(".", rootref)
    # frames of (prefix, sorted entries, next index): keys are visited in order
    stack: list[tuple[str, list[tuple[str, dict[str, Any]]], list[int]]] = []

    def push(prefix: str, obj: dict[str, Any]) -> None:
        stack.append((prefix, sorted(items(prefix, obj), key=lambda kv: kv[0]), [0]))

    if root is not None:
        push("", root)
    while stack:
        prefix, entries, pos = stack[-1]
        if pos[0] >= len(entries):
            stack.pop()
            continue
        name, e = entries[pos[0]]
        pos[0] += 1
        key = _join(prefix, name)
        t = e["type"]
        if t == _t.DIR:
            push(key, e)
            continue
        if t == _t.DIRREF:
            sub = dirobj(key, e["data"][0])
            if sub is not None:
                push(key, sub)
            continue
        res.keys += 1
        if on_key is not None:
            on_key(label + key)
        if t == _t.VALREF:
            ok = True
            for ref in e["data"]:
                if ref not in seen:
                    blob(key, ref)
                ok = ok and seen[ref] is None
            size = e.get("size")
            total = sum(sizes[ref] for ref in e["data"]) if ok else 0
            if ok and size is not None and size != total:
                res.problems.append(Problem(label + key, None, f"valref size {size} does "
                                            f"not match its blobs' {total} bytes"))
    return res


# -- repair (flux fsck --repair) ---------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Damage:
    """A key of the tree that refers to blobs that cannot be read.

    ``obj`` is the key's tree object: a valref (some of whose blobs are bad),
    or the dirref/hdir of a directory whose blob (or a bucket's) is bad.
    """

    key: str
    obj: dict[str, Any]
    bad: frozenset[str]

    @property
    def is_dir(self) -> bool:
        return self.obj["type"] != _t.VALREF


def find_damage(load: Callable[[str], bytes], rootref: str) -> list[Damage]:
    """Every key under ROOTREF that refers to an unreadable blob (shared blobs included).

    A damaged root is ``Damage(".", ...)``: nothing under it can be reached.
    """
    ok: dict[str, bool] = {}
    dirs: dict[str, dict[str, Any] | None] = {}
    out: list[Damage] = []

    def good(ref: str) -> bool:
        if ref not in ok:
            try:
                load(ref)
                ok[ref] = True
            except FluxError:
                ok[ref] = False
        return ok[ref]

    def dir_of(ref: str) -> dict[str, Any] | None:
        if ref not in dirs:
            obj = None
            try:
                obj = _t.decode_dir(load(ref), ref)
            except FluxError:
                pass
            dirs[ref] = obj
        return dirs[ref]

    def entries(obj: dict[str, Any]) -> tuple[list[tuple[str, dict[str, Any]]], set[str]]:
        """A dir's entries, and the refs of the hdir buckets that cannot be read."""
        got: list[tuple[str, dict[str, Any]]] = []
        bad: set[str] = set()
        todo = [obj]
        while todo:
            o = todo.pop()
            if o["type"] == _t.DIR:
                got.extend(o["data"].items())
                continue
            for b in o["data"]["bucket"]:
                if b is not None:
                    sub = dir_of(b["data"][0])
                    if sub is None:
                        bad.add(b["data"][0])
                    else:
                        todo.append(sub)
        return got, bad

    root = dir_of(rootref)
    if root is None:
        return [Damage(".", _t.dirref(rootref), frozenset((rootref,)))]
    stack: list[tuple[str, dict[str, Any], dict[str, Any]]] = [("", root, _t.dirref(rootref))]
    while stack:
        prefix, obj, named = stack.pop()
        got, bad = entries(obj)
        if bad:
            out.append(Damage(prefix or ".", named, frozenset(bad)))
            continue
        for name, e in got:
            key = f"{prefix}.{name}" if prefix else name
            t = e["type"]
            if t == _t.DIR:
                stack.append((key, e, e))
            elif t == _t.DIRREF:
                sub = dir_of(e["data"][0])
                if sub is None:
                    out.append(Damage(key, e, frozenset(e["data"])))
                else:
                    stack.append((key, sub, e))
            elif t == _t.VALREF:
                missing = frozenset(r for r in e["data"] if not good(r))
                if missing:
                    out.append(Damage(key, e, missing))
    out.sort(key=lambda d: d.key)
    return out


LOST_FOUND = "lost+found"


def repair_ops(damage: list[Damage], size_of: Callable[[str], int]) -> tuple[list[dict[str, Any]],
                                                                          list[str]]:
    """(KVS ops, one line per key saying what becomes of it) that drop the dangling refs.

    A value keeps the blobs that are still good, under ``lost+found.KEY``
    (its value changed); a directory that cannot be read is unlinked; the
    original keys are unlinked.  A damaged root cannot be repaired (EIO).
    """
    import errno

    ops: list[dict[str, Any]] = []
    lines: list[str] = []
    for d in damage:
        if d.key == ".":
            raise FluxError(errno.EIO, "the root directory is damaged: nothing to repair from")
        ops.append({"key": d.key, "flags": 0, "dirent": None})
        if d.is_dir:
            lines.append(f"{d.key}: directory cannot be read: unlinked")
            continue
        keep = [r for r in d.obj["data"] if r not in d.bad]
        if not keep:
            lines.append(f"{d.key}: no blob of the value is left: unlinked")
            continue
        dest = f"{LOST_FOUND}.{d.key}"
        ops.append({"key": dest, "flags": 0,
                    "dirent": _t.valref(keep, sum(size_of(r) for r in keep))})
        lines.append(f"{d.key}: {len(keep)} of {len(d.obj['data'])} blobs left: "
                     f"moved to {dest}")
    return ops, lines
