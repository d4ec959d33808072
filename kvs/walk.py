"""Walk every blob a set of roots reaches: the mark phase of GC, and verification.

A dirref's blob is a dir or hdir and is read to find its children; a
valref's blobs are values and are only named (or, when verifying, loaded so
that their digests are checked).  Shared subtrees are visited once.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kvs import treeobj as _t

__all__ = ["reachable", "verify_tree", "TreeCheck"]


@dataclass(slots=True)
class TreeCheck:
    """What ``verify_tree`` read."""

    dirs: int = 0
    values: int = 0
    bytes: int = 0


def _children(obj: dict[str, Any]) -> Iterable[dict[str, Any]]:
    if obj["type"] == _t.HDIR:
        return (b for b in obj["data"]["bucket"] if b is not None)
    return obj["data"].values()


def _walk(get: Callable[[str], bytes], roots: Iterable[str],
          on_value: Callable[[str], None] | None) -> set[str]:
    seen: set[str] = set()
    stack: list[dict[str, Any]] = []
    for ref in roots:
        if ref not in seen:
            seen.add(ref)
            stack.append(_t.decode_dir(get(ref), ref))
    while stack:
        obj = stack.pop()
        for e in _children(obj):
            t = e["type"]
            if t == _t.DIRREF:
                ref = e["data"][0]
                if ref not in seen:
                    seen.add(ref)
                    stack.append(_t.decode_dir(get(ref), ref))
            elif t == _t.VALREF:
                for ref in e["data"]:
                    if ref not in seen:
                        seen.add(ref)
                        if on_value is not None:
                            on_value(ref)
            elif t == _t.DIR:
                stack.append(e)
    return seen


def reachable(get: Callable[[str], bytes], roots: Iterable[str]) -> set[str]:
    """Blobrefs reachable from the root dir blobrefs ``roots`` (roots included)."""
    return _walk(get, roots, None)


def verify_tree(get: Callable[[str], bytes], root: str) -> TreeCheck:
    """Load every blob under ``root`` through ``get`` (which verifies digests)."""
    check = TreeCheck()

    def value(ref: str) -> None:
        check.values += 1
        check.bytes += len(get(ref))

    seen = _walk(get, [root], value)
    check.dirs = len(seen) - check.values
    return check
