"""Tree diff: the keys whose objects differ between two roots.

Subtrees whose dirref is the same in both trees are skipped without being
read, so the cost follows what changed, not the size of the tree.  Two
hdirs of the same shape are compared bucket by bucket for the same reason.
Changes come out ordered by key; a directory added or removed as a whole
yields each of its leaves.  Leaves are val, valref and symlink objects
(symlinks are not followed).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kvs import keys as _keys
from kvs import treeobj as _t
from kvs.lookup import dir_entry, dir_items

__all__ = ["Change", "diff"]

LoadDir = Callable[[str], dict[str, Any]]
_DIRS = (_t.DIR, _t.DIRREF)


@dataclass(slots=True, frozen=True)
class Change:
    """``key`` went from ``old`` to ``new`` (None: absent on that side)."""

    key: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _open(load_dir: LoadDir, e: dict[str, Any] | None) -> dict[str, Any] | None:
    if e is None:
        return None
    if e["type"] == _t.DIRREF:
        return load_dir(e["data"][0])
    return e if e["type"] == _t.DIR else None


def _changed_entries(load_dir: LoadDir, old: dict[str, Any] | None,
                     new: dict[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """(name, old entry, new entry) for names whose entries differ, by name."""
    if (old is not None and new is not None and old["type"] == _t.HDIR and new["type"] == _t.HDIR):
        od, nd = old["data"], new["data"]
        if od["size"] == nd["size"] and od.get("level", 0) == nd.get("level", 0):
            out: list[tuple[str, Any, Any]] = []
            for ob, nb in zip(od["bucket"], nd["bucket"]):
                if ob != nb:
                    out.extend(_changed_entries(load_dir, _open(load_dir, ob), _open(load_dir, nb)))
            out.sort(key=lambda x: x[0])
            return out
    om = dict(dir_items(load_dir, old)) if old is not None else {}
    nm = dict(dir_items(load_dir, new)) if new is not None else {}
    names = sorted(om.keys() | nm.keys())
    return [(n, om.get(n), nm.get(n)) for n in names if om.get(n) != nm.get(n)]


def _diff_dirs(load_dir: LoadDir, prefix: str, old: dict[str, Any] | None,
               new: dict[str, Any] | None) -> Iterator[Change]:
    for name, oe, ne in _changed_entries(load_dir, old, new):
        key = _join(prefix, name)
        odir = oe is not None and oe["type"] in _DIRS
        ndir = ne is not None and ne["type"] in _DIRS
        if not odir and not ndir:
            yield Change(key, oe, ne)
            continue
        if not odir and oe is not None:
            yield Change(key, oe, None)
        if not ndir and ne is not None:
            yield Change(key, None, ne)
        yield from _diff_dirs(load_dir, key, _open(load_dir, oe) if odir else None,
                              _open(load_dir, ne) if ndir else None)


def _subtree(load_dir: LoadDir, root: str, comps: tuple[str, ...]) -> dict[str, Any] | None:
    obj: dict[str, Any] | None = load_dir(root)
    for name in comps:
        assert obj is not None
        e = dir_entry(load_dir, obj, name)
        obj = _open(load_dir, e) if e is not None and e["type"] in _DIRS else None
        if obj is None:
            return None
    return obj


def diff(load_dir: LoadDir, old_root: str, new_root: str, prefix: str = ".") -> Iterator[Change]:
    """Leaf changes from ``old_root`` to ``new_root`` (root dir blobrefs) under ``prefix``."""
    if old_root == new_root:
        return
    comps = _keys.split(prefix)
    old = _subtree(load_dir, old_root, comps)
    new = _subtree(load_dir, new_root, comps)
    yield from _diff_dirs(load_dir, _keys.join(comps) if comps else "", old, new)
