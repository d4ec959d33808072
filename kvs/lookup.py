"""Read-side tree walking: resolve a key at a root, list directories.

Intermediate symlinks are always followed (into other namespaces too, at
their current root); the last one is followed unless READLINK or TREEOBJ
asks for the link itself.  Errors are Flux's: ENOENT for a missing key,
ENOTDIR when a path component is a value, ELOOP past the symlink limit,
ENOTSUP for an unknown namespace, EPERM for one a guest does not own (both
raised by ``root_of``).
"""
from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flux.errors import FluxError
from kvs import hdir as _hdir
from kvs import keys as _keys
from kvs import treeobj as _t
from kvs.constants import FLUX_KVS_READLINK, FLUX_KVS_TREEOBJ, SYMLINK_CYCLE_LIMIT

__all__ = ["Resolved", "resolve", "dir_entry", "dir_items", "sorted_dir", "root_object"]

LoadDir = Callable[[str], dict[str, Any]]


@dataclass(slots=True)
class Resolved:
    """Where a key led: the final object and the namespace it lives in."""

    key: str
    namespace: str
    obj: dict[str, Any]


def dir_entry(load_dir: LoadDir, dirobj: dict[str, Any], name: str) -> dict[str, Any] | None:
    """Entry ``name`` of a dir or hdir object, or None."""
    digest = None
    while dirobj["type"] == _t.HDIR:
        data = dirobj["data"]
        if digest is None:
            digest = _hdir.name_digest(name)
        b = data["bucket"][_hdir.bucket_of(digest, data["size"], data.get("level", 0))]
        if b is None:
            return None
        dirobj = load_dir(b["data"][0])
    return dirobj["data"].get(name)


def dir_items(load_dir: LoadDir, dirobj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (name, entry) of a dir or hdir, in no particular order."""
    if dirobj["type"] == _t.DIR:
        yield from dirobj["data"].items()
        return
    for b in dirobj["data"]["bucket"]:
        if b is not None:
            yield from dir_items(load_dir, load_dir(b["data"][0]))


def sorted_dir(load_dir: LoadDir, dirobj: dict[str, Any]) -> dict[str, Any]:
    """A plain ``dir`` object with the entries of ``dirobj``, ordered by name."""
    return _t.dir_(dict(sorted(dir_items(load_dir, dirobj))))


def root_object(load_dir: LoadDir, at: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(dir object, object naming the root) for a snapshot given as blobref, dirref or dir."""
    if type(at) is str:
        return load_dir(at), _t.dirref(at)
    obj = _t.validate(at, path="root")
    if obj["type"] == _t.DIRREF:
        return load_dir(obj["data"][0]), obj
    if obj["type"] == _t.DIR:
        return obj, obj
    raise FluxError(errno.EINVAL, f"a root must be a dirref or dir treeobj, not a {obj['type']}")


def resolve(
    load_dir: LoadDir,
    root_of: Callable[[str], str],
    key: str,
    ns: str,
    flags: int = 0,
    at: Any = None,
) -> Resolved:
    """Walk ``key`` from the root of ``ns`` (or the snapshot ``at``)."""
    comps = _keys.split(key)
    nkey = _keys.join(comps)
    roots: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    if at is not None:
        roots[ns] = root_object(load_dir, at)

    def root(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        r = roots.get(name)
        if r is None:
            ref = root_of(name)
            r = roots[name] = (load_dir(ref), _t.dirref(ref))
        return r

    cur_ns = ns
    dirobj, rootobj = root(ns)
    keep_last_link = flags & (FLUX_KVS_READLINK | FLUX_KVS_TREEOBJ)
    follows = 0
    i = 0
    n = len(comps)
    while i < n:
        name = comps[i]
        e = dir_entry(load_dir, dirobj, name)
        if e is None:
            raise FluxError(errno.ENOENT, f"{nkey}: no such key")
        t = e["type"]
        last = i == n - 1
        if t == _t.SYMLINK and not (last and keep_last_link):
            follows += 1
            if follows > SYMLINK_CYCLE_LIMIT:
                raise FluxError(errno.ELOOP, f"{nkey}: too many levels of symbolic links")
            data = e["data"]
            cur_ns = data.get("namespace", cur_ns)
            dirobj, rootobj = root(cur_ns)
            comps = _keys.split(data["target"]) + comps[i + 1:]
            n = len(comps)
            i = 0
            continue
        if last:
            return Resolved(nkey, cur_ns, e)
        if t == _t.DIRREF:
            dirobj = load_dir(e["data"][0])
        elif t == _t.DIR:
            dirobj = e
        else:
            bad = _keys.join(comps[: i + 1])
            raise FluxError(errno.ENOTDIR, f"{nkey}: {bad} is not a directory")
        i += 1
    return Resolved(nkey, cur_ns, rootobj)
