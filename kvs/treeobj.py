"""RFC 11 tree objects: constructors, strict validation, canonical bytes.

Every object is ``{"ver":1,"type":T,"data":D}`` (plus ``size`` on val and
valref).  Types: ``val`` (base64 data), ``valref`` (blobrefs of the value's
chunks, ``size`` = total bytes), ``dir`` (name -> object), ``dirref`` (one
blobref of a stored dir or hdir), ``hdir`` (hashed buckets, see ``hdir``),
``symlink`` (``{"target": key}`` with optional ``"namespace"``).

Objects are plain dicts treated as immutable once built: the object cache
shares them.  Arrays (valref/dirref data, hdir buckets) are tuples in the
objects this package builds or loads, which keeps them from being mutated
by accident and lets Python's cyclic GC stop tracking cached trees (a large
part of commit cost otherwise).  Lists are accepted on input.  The
canonical bytes of an object are its compact JSON with sorted keys, so
equal objects have equal blobrefs.
"""
from __future__ import annotations

import binascii
import errno
import re
from collections.abc import Sequence
from typing import Any

import orjson

from eventstore.blobref import is_blobref
from flux.errors import FluxError
from kvs.hdir import FUNCS
from kvs.keys import _CONTROL, MAX_COMPONENT, MAX_DEPTH, check_component

__all__ = [
    "VAL",
    "VALREF",
    "DIR",
    "DIRREF",
    "HDIR",
    "SYMLINK",
    "TYPES",
    "val",
    "valref",
    "dirref",
    "dir_",
    "empty_dir",
    "symlink",
    "hdir",
    "validate",
    "validate_stored_dir",
    "encode",
    "decode_dir",
    "val_bytes",
    "value_size",
    "is_dir_like",
    "MAX_SYMLINK",
]

VAL = "val"
VALREF = "valref"
DIR = "dir"
DIRREF = "dirref"
HDIR = "hdir"
SYMLINK = "symlink"
TYPES = frozenset((VAL, VALREF, DIR, DIRREF, HDIR, SYMLINK))
MAX_SYMLINK = 4096
_SORT = orjson.OPT_SORT_KEYS
_ARRAYS = (list, tuple)
_REF = re.compile(r"blake3-[0-9a-f]{64}").fullmatch
_BASE_KEYS = frozenset(("ver", "type", "data"))
_VALUE_KEYS = _BASE_KEYS | {"size"}


def _bad(path: str, why: str) -> FluxError:
    where = f" at {path}" if path else ""
    return FluxError(errno.EINVAL, f"invalid treeobj{where}: {why}")


# -- constructors ----------------------------------------------------------------


def val(data: bytes) -> dict[str, Any]:
    return {"ver": 1, "type": VAL, "data": binascii.b2a_base64(data, newline=False).decode()}


def valref(refs: Sequence[str], size: int) -> dict[str, Any]:
    return {"ver": 1, "type": VALREF, "data": tuple(refs), "size": size}


def dirref(ref: str) -> dict[str, Any]:
    return {"ver": 1, "type": DIRREF, "data": (ref,)}


def dir_(entries: dict[str, Any]) -> dict[str, Any]:
    return {"ver": 1, "type": DIR, "data": entries}


def empty_dir() -> dict[str, Any]:
    return {"ver": 1, "type": DIR, "data": {}}


def symlink(target: str, namespace: str | None = None) -> dict[str, Any]:
    data: dict[str, str] = {"target": target}
    if namespace is not None:
        data["namespace"] = namespace
    return {"ver": 1, "type": SYMLINK, "data": data}


def hdir(size: int, func: str, buckets: Sequence[Any], level: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {"size": size, "func": func, "bucket": tuple(buckets)}
    if level:
        data["level"] = level
    return {"ver": 1, "type": HDIR, "data": data}


# -- validation ------------------------------------------------------------------


def _check_refs(data: Any, path: str, what: str, exactly_one: bool) -> None:
    if type(data) not in (list, tuple) or not data:
        raise _bad(path, f"{what} data must be a non-empty array of blobrefs")
    if exactly_one and len(data) != 1:
        raise _bad(path, f"{what} data must hold exactly one blobref, not {len(data)}")
    for i, ref in enumerate(data):
        if not is_blobref(ref):
            raise _bad(path, f"{what} data[{i}] {str(ref)[:80]!r} is not a blobref")


def _check_size(obj: dict[str, Any], path: str, required: bool) -> int | None:
    size = obj.get("size")
    if size is None:
        if required:
            raise _bad(path, "missing size")
        return None
    if type(size) is not int or size < 0:
        raise _bad(path, f"size {size!r} is not a non-negative integer")
    return size


def _check_header(obj: Any, path: str) -> str:
    if type(obj) is not dict:
        raise _bad(path, f"expected a JSON object, got {type(obj).__name__}")
    ver = obj.get("ver")
    if type(ver) is not int or ver != 1:
        raise _bad(path, f"unsupported ver {ver!r}")
    t = obj.get("type")
    if t not in TYPES:
        raise _bad(path, f"unknown type {t!r}")
    if "data" not in obj:
        raise _bad(path, "missing data")
    if len(obj) > 3:
        allowed = _VALUE_KEYS if t in (VAL, VALREF) else _BASE_KEYS
        if not allowed.issuperset(obj):
            raise _bad(path, f"unexpected field {sorted(set(obj) - allowed)[0]!r} in {t}")
    return t


def validate(obj: Any, *, path: str = "", allow_hdir: bool = False) -> dict[str, Any]:
    """Check ``obj`` strictly (recursively for dirs); EINVAL naming the field path."""
    if _ok(obj, allow_hdir, 0):
        return obj
    _explain(obj, path, allow_hdir, 0)
    raise _bad(path, "rejected")  # _explain raises first; kept for safety


# The same rules twice: _ok answers fast (it runs on every load of a stored
# dir), _explain says what is wrong.  test_kvs_treeobj checks they agree.


def _ok(obj: Any, allow_hdir: bool, depth: int) -> bool:
    if type(obj) is not dict:
        return False
    ver = obj.get("ver")
    if type(ver) is not int or ver != 1:
        return False
    t = obj.get("type")
    data = obj.get("data")
    n = len(obj)
    if t == DIRREF:
        return (n == 3 and type(data) in _ARRAYS and len(data) == 1 and type(data[0]) is str
                and _REF(data[0]) is not None)
    if t == VAL:
        if type(data) is not str:
            return False
        try:
            raw = binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error:
            return False
        size = obj.get("size")
        return n == 3 or (n == 4 and type(size) is int and size == len(raw))
    if t == VALREF:
        if type(data) not in _ARRAYS or not data:
            return False
        for ref in data:
            if type(ref) is not str or _REF(ref) is None:
                return False
        size = obj.get("size")
        return n == 3 or (n == 4 and type(size) is int and size >= 0)
    if t == DIR:
        if n != 3 or type(data) is not dict or depth >= MAX_DEPTH:
            return False
        for name, e in data.items():
            if (type(name) is not str or not name or "." in name or len(name) > MAX_COMPONENT
                    or not (name.isascii() and name.isprintable()) and _CONTROL.search(name)):
                return False
            if not _ok(e, False, depth + 1):
                return False
        return True
    if t == SYMLINK:
        if n != 3 or type(data) is not dict:
            return False
        target = data.get("target")
        if type(target) is not str or not target or len(target) > MAX_SYMLINK:
            return False
        if len(data) == 1:
            return True
        ns = data.get("namespace")
        return len(data) == 2 and type(ns) is str and 0 < len(ns) <= MAX_SYMLINK
    if t == HDIR:
        if not allow_hdir or n != 3 or type(data) is not dict:
            return False
        size, buckets, level = data.get("size"), data.get("bucket"), data.get("level", 0)
        if (type(size) is not int or size < 1 or data.get("func") not in FUNCS or type(level) is not int
                or level < 0 or type(buckets) not in _ARRAYS or len(buckets) != size
                or len(data) != (4 if "level" in data else 3)):
            return False
        for b in buckets:  # each a dirref, checked inline (hdirs are loaded often)
            if b is None:
                continue
            if type(b) is not dict or len(b) != 3 or b.get("type") != DIRREF:
                return False
            ver, d = b.get("ver"), b.get("data")
            if (type(ver) is not int or ver != 1 or type(d) not in _ARRAYS or len(d) != 1
                    or type(d[0]) is not str or _REF(d[0]) is None):
                return False
        return True
    return False


def _explain(obj: Any, path: str, allow_hdir: bool, depth: int) -> dict[str, Any]:
    t = _check_header(obj, path)
    data = obj["data"]
    if t == VAL:
        if type(data) is not str:
            raise _bad(path, "val data must be a base64 string")
        try:
            raw = binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error as e:
            raise _bad(path, f"val data is not valid base64 ({e})") from None
        size = _check_size(obj, path, False)
        if size is not None and size != len(raw):
            raise _bad(path, f"val size {size} does not match its {len(raw)} data bytes")
    elif t == VALREF:
        _check_refs(data, path, "valref", False)
        _check_size(obj, path, False)
    elif t == DIRREF:
        _check_refs(data, path, "dirref", True)
    elif t == SYMLINK:
        _check_symlink(data, path)
    elif t == DIR:
        if type(data) is not dict:
            raise _bad(path, "dir data must be an object")
        if depth >= MAX_DEPTH:
            raise _bad(path, f"directories nested more than {MAX_DEPTH} deep")
        for name, entry in data.items():
            sub = f"{path}.{name}" if path else name
            try:
                check_component(name)
            except FluxError as e:
                raise _bad(sub, e.strerror or "bad name") from None
            _explain(entry, sub, False, depth + 1)
    else:  # hdir
        if not allow_hdir:
            raise _bad(path, "an hdir may only be stored behind a dirref")
        _check_hdir(data, path)
    return obj


def _check_symlink(data: Any, path: str) -> None:
    if type(data) is not dict:
        raise _bad(path, "symlink data must be an object")
    target = data.get("target")
    if type(target) is not str or not target:
        raise _bad(path, "symlink target must be a non-empty string")
    if len(target) > MAX_SYMLINK:
        raise _bad(path, f"symlink target longer than {MAX_SYMLINK} characters")
    if len(data) > 1:
        if set(data) != {"target", "namespace"}:
            extra = sorted(set(data) - {"target", "namespace"})
            raise _bad(path, f"unexpected symlink field {extra[0]!r}")
        ns = data["namespace"]
        if type(ns) is not str or not ns or len(ns) > MAX_SYMLINK:
            raise _bad(path, "symlink namespace must be a non-empty string")


def _check_hdir(data: Any, path: str) -> None:
    if type(data) is not dict:
        raise _bad(path, "hdir data must be an object")
    extra = set(data) - {"size", "func", "bucket", "level"}
    if extra:
        raise _bad(path, f"unexpected hdir field {sorted(extra)[0]!r}")
    size, func, buckets = data.get("size"), data.get("func"), data.get("bucket")
    level = data.get("level", 0)
    if type(size) is not int or size < 1:
        raise _bad(path, f"hdir size {size!r} is not a positive integer")
    if func not in FUNCS:
        raise _bad(path, f"hdir func {func!r} is not supported (known: {', '.join(sorted(FUNCS))})")
    if type(level) is not int or level < 0:
        raise _bad(path, f"hdir level {level!r} is not a non-negative integer")
    if type(buckets) not in (list, tuple) or len(buckets) != size:
        raise _bad(path, f"hdir bucket must be an array of {size} entries")
    for i, b in enumerate(buckets):
        if b is None:
            continue
        sub = f"{path}.bucket[{i}]"
        if _check_header(b, sub) != DIRREF:
            raise _bad(sub, "hdir buckets must be dirrefs or null")
        _check_refs(b["data"], sub, "dirref", True)


def validate_stored_dir(obj: Any, ref: str) -> dict[str, Any]:
    """Validate an object loaded through a dirref: a dir or an hdir."""
    try:
        t = _check_header(obj, "")
        if t not in (DIR, HDIR):
            raise _bad("", f"a dirref must point at a dir or hdir, not {t}")
        return validate(obj, allow_hdir=True)
    except FluxError as e:
        raise FluxError(errno.EPROTO, f"{ref}: {e.strerror}") from None


# -- bytes ---------------------------------------------------------------------------


def encode(obj: dict[str, Any]) -> bytes:
    """Canonical bytes: compact JSON, keys sorted."""
    return orjson.dumps(obj, option=_SORT)


def decode_dir(raw: bytes, ref: str) -> dict[str, Any]:
    """Parse and validate a stored dir/hdir blob; EPROTO naming its blobref."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise FluxError(errno.EPROTO, f"{ref}: not a tree object ({e})") from None
    return _tuples(validate_stored_dir(obj, ref))


def _tuples(obj: dict[str, Any]) -> dict[str, Any]:
    """Turn the arrays of a validated dir/hdir into tuples, in place."""
    data = obj["data"]
    if obj["type"] == HDIR:
        data["bucket"] = tuple(None if b is None else _tuples(b) for b in data["bucket"])
        return obj
    if obj["type"] == DIR:
        for e in data.values():
            t = e["type"]
            if t == VALREF or t == DIRREF:
                e["data"] = tuple(e["data"])
            elif t == DIR:
                _tuples(e)
    elif obj["type"] == DIRREF:
        obj["data"] = tuple(data)
    return obj


def val_bytes(obj: dict[str, Any]) -> bytes:
    """Decoded data of a val object."""
    return binascii.a2b_base64(obj["data"])


def value_size(obj: dict[str, Any]) -> int | None:
    """Size of a val/valref's value when known without loading blobs."""
    if obj["type"] == VAL:
        return len(binascii.a2b_base64(obj["data"]))
    return obj.get("size")


def is_dir_like(obj: dict[str, Any]) -> bool:
    return obj["type"] in (DIR, DIRREF, HDIR)
