"""Watch support: which watched keys changed between two roots, and appended bytes.

A watched key is compared by the object it resolves to (symlinks followed)
at the old and the new root.  For an append-only value the new bytes are
found from the valref's ``size``: the old value was ``old_size`` bytes, so
the new bytes are the last ``new_size - old_size`` bytes, read from the
tail chunks only (compaction may have merged old and new bytes into one
chunk, so the walk goes back from the end until enough bytes are covered).
An old value still inline (a ``val``) is small, so it is also checked to
start the new one: a put that grew it is a rewrite, not an append.  So is a
valref whose first chunk is no longer the old first chunk's bytes.
"""
from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flux.errors import FluxError
from kvs import treeobj as _t
from kvs.lookup import resolve

__all__ = ["resolve_keys", "changed_since", "changed_keys", "appended_bytes"]


def _resolve_or_none(load_dir: Callable[[str], dict[str, Any]], root_of: Callable[[str], str],
                     key: str, ns: str, root: str) -> dict[str, Any] | None:
    try:
        return resolve(load_dir, root_of, key, ns, 0, root).obj
    except FluxError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def resolve_keys(
    load_dir: Callable[[str], dict[str, Any]],
    root_of: Callable[[str], str],
    ns: str,
    root: str,
    keys: Iterable[str],
) -> dict[str, dict[str, Any] | None]:
    """{key: object it resolves to at ``root``, or None when absent}."""
    return {key: _resolve_or_none(load_dir, root_of, key, ns, root) for key in keys}


def changed_since(
    load_dir: Callable[[str], dict[str, Any]],
    root_of: Callable[[str], str],
    ns: str,
    root: str,
    known: Mapping[str, dict[str, Any] | None],
) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """{key: (known object, object at ``root``)} for the keys whose object differs.

    A watcher remembers what it last saw, so only the new root is walked.
    """
    out: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
    for key, old in known.items():
        new = _resolve_or_none(load_dir, root_of, key, ns, root)
        if old != new:
            out[key] = (old, new)
    return out


def changed_keys(
    load_dir: Callable[[str], dict[str, Any]],
    root_of: Callable[[str], str],
    ns: str,
    old_root: str,
    new_root: str,
    keys: Iterable[str],
) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """{key: (old object, new object)} for the watched keys that differ (None: absent)."""
    if old_root == new_root:
        return {}
    known = resolve_keys(load_dir, root_of, ns, old_root, keys)
    return changed_since(load_dir, root_of, ns, new_root, known)


def _size(obj: dict[str, Any], size_of: Callable[[str], int]) -> int:
    if obj["type"] == _t.VAL:
        return len(_t.val_bytes(obj))
    size = obj.get("size")
    return size if size is not None else sum(size_of(r) for r in obj["data"])


def _head(get: Callable[[str], bytes], obj: dict[str, Any], n: int) -> bytes:
    """The first N bytes of value OBJ (val or valref), reading only the chunks they span."""
    if obj["type"] == _t.VAL:
        return _t.val_bytes(obj)[:n]
    parts: list[bytes] = []
    got = 0
    for ref in obj["data"]:
        if got >= n:
            break
        data = get(ref)
        parts.append(data)
        got += len(data)
    return b"".join(parts)[:n]


def appended_bytes(
    get: Callable[[str], bytes],
    size_of: Callable[[str], int],
    old: dict[str, Any] | None,
    new: dict[str, Any],
) -> bytes | None:
    """Bytes added to a value from ``old`` to ``new``; None if ``new`` is not an append of it.

    ``old`` None means the key was absent, so the whole value is new.  The
    value must only grow: a shorter value, or a change of type to something
    that is not a value, is reported as None (a rewrite, not an append).
    """
    if new["type"] not in (_t.VAL, _t.VALREF):
        return None
    if old is None:
        if new["type"] == _t.VAL:
            return _t.val_bytes(new)
        return b"".join(get(r) for r in new["data"])
    if old["type"] not in (_t.VAL, _t.VALREF):
        return None
    old_size = _size(old, size_of)
    new_size = _size(new, size_of)
    need = new_size - old_size
    if need < 0:
        return None
    if old["type"] == _t.VAL and _head(get, new, old_size) != _t.val_bytes(old):
        # an inline old value is small enough to compare: the new value does
        # not start with it, so it was rewritten (a put), not appended to
        return None
    if old["type"] == _t.VALREF and new["type"] == _t.VALREF and old["data"] \
            and new["data"][0] != old["data"][0]:
        # the first chunk changed: a compaction that reached the head (rare: it
        # is the biggest chunk) or a rewrite; an append keeps its bytes in front
        first = get(old["data"][0])
        if _head(get, new, len(first)) != first:
            return None
    if need == 0:
        return b""
    if new["type"] == _t.VAL:
        return _t.val_bytes(new)[old_size:]
    refs = new["data"]
    if old["type"] == _t.VALREF and refs[: len(old["data"])] == old["data"]:
        # pure append: the old chunks are a prefix
        return b"".join(get(r) for r in refs[len(old["data"]):])
    parts: list[bytes] = []
    got = 0
    for ref in reversed(refs):
        data = get(ref)
        parts.append(data)
        got += len(data)
        if got >= need:
            break
    tail = b"".join(reversed(parts))
    return tail[len(tail) - need:]
