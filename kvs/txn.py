"""KVS transactions: ops in flux-core's shape, their parsing, and a builder.

An op is ``{"key": str, "flags": int, "dirent": treeobj | null}``:
a treeobj puts it (replacing whatever is there, creating parent dirs), null
unlinks it, and a val/valref with ``FLUX_KVS_APPEND`` appends to it.  A null
dirent with ``FLUX_KVS_UNLINK_NODIR`` refuses (EISDIR) to remove a
directory; plain unlink removes a directory with everything under it, as
flux-core's does.  A transaction's ops apply in order, all or none.

Modules of the broker that runs the kvs may give a value as a
``RawValue`` instead of a treeobj: its bytes travel as they are (no base64
round trip), and its chunks become the value's blobs, so equal chunks are
stored once.  A RawValue is not JSON: no request from a socket can carry
one (see specs/kvs-service.md).
"""
from __future__ import annotations

import binascii
import enum
import errno
import functools
from dataclasses import dataclass, field
from typing import Any

import orjson

from flux.errors import FluxError
from kvs import keys as _keys
from kvs import treeobj as _t
from kvs.constants import (
    COMMIT_FLAGS,
    FLUX_KVS_APPEND,
    FLUX_KVS_UNLINK_NODIR,
    OP_FLAGS,
    PRIMARY_NAMESPACE,
)

__all__ = ["OpKind", "Op", "Txn", "TxnBuilder", "RawValue", "parse_op", "parse_ops"]

_OP_FIELDS = frozenset(("key", "flags", "dirent"))


class OpKind(enum.IntEnum):
    PUT = 1
    APPEND = 2
    UNLINK = 3


class RawValue:
    """An op's value as raw byte chunks, for modules in the kvs's own broker.

    The value is the chunks' concatenation.  Put: a value within
    ``val_inline_max`` is stored as a val, a longer one as a valref whose
    blobs are the chunks (each cut at ``chunk_max``), so a chunk shared by
    several values -- J's jobspec and the jobspec itself -- is one blob.
    Append: the bytes are appended as with a val.
    """

    __slots__ = ("chunks",)

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def __repr__(self) -> str:
        return f"RawValue({', '.join(repr(c[:20]) for c in self.chunks)})"


@dataclass(slots=True)
class Op:
    """A validated op: what to do, where, and with what."""

    kind: OpKind
    key: str
    comps: tuple[str, ...]
    obj: dict[str, Any] | None = None
    data: bytes | None = None  # the value's bytes (a val's, or a RawValue's joined)
    nodir: bool = False
    chunks: tuple[bytes, ...] | None = None  # a RawValue's chunks


@dataclass(slots=True)
class Txn:
    """A commit request: ops for one namespace, with commit flags (NO_MERGE).

    ``create``: the owner uid to create the namespace with if it does not
    exist yet (in the same store commit).  ``link``: (key, namespace) —
    after the ops, KEY becomes a dirref to that namespace's root as of this
    point in the batch, and that namespace is removed (how a job's guest
    namespace becomes part of its directory in one commit).
    """

    ops: list[dict[str, Any]]
    namespace: str = PRIMARY_NAMESPACE
    flags: int = 0
    create: int | None = None
    link: tuple[str, str] | None = None


def _proto(index: int, why: str) -> FluxError:
    return FluxError(errno.EPROTO, f"op {index}: {why}")


#: keys parsed lately: a job's keys come back in commit after commit (its eventlog,
#: a guest's exec.eventlog and output); the parse is pure, and a bad key raises
#: (not remembered).  Only strings reach it: the parse refuses other types itself.
_parse_key = functools.lru_cache(maxsize=4096)(_keys.parse)


def parse_op(op: Any, index: int = 0) -> Op:
    """Validate one op; EPROTO for a malformed op, EINVAL for a bad key/flag/treeobj."""
    try:
        key, flags, dirent = op["key"], op["flags"], op["dirent"]
        ok = type(op) is dict and len(op) == 3
    except (KeyError, TypeError, IndexError):
        ok = False
    if not ok:
        if type(op) is not dict:
            raise _proto(index, f"expected an object, got {type(op).__name__}")
        missing = sorted(_OP_FIELDS - set(op))
        extra = sorted(set(op) - _OP_FIELDS)
        raise _proto(index, f"missing field {missing[0]!r}" if missing else f"unexpected field {extra[0]!r}")
    if type(flags) is not int:
        raise _proto(index, f"flags must be an integer, not {type(flags).__name__}")
    if flags & ~OP_FLAGS:
        raise FluxError(errno.EINVAL, f"op {index} ({key!r}): unknown flags {flags & ~OP_FLAGS:#x}")
    try:
        comps, nkey = _parse_key(key) if type(key) is str else _keys.parse(key)
    except FluxError as e:
        raise FluxError(errno.EINVAL, f"op {index}: {e.strerror}") from None
    if dirent is None:
        if flags & FLUX_KVS_APPEND:
            raise FluxError(errno.EINVAL, f"op {index} ({nkey}): append needs a value")
        return Op(OpKind.UNLINK, nkey, comps, None, None, bool(flags & FLUX_KVS_UNLINK_NODIR))
    if flags & FLUX_KVS_UNLINK_NODIR:
        raise FluxError(errno.EINVAL, f"op {index} ({nkey}): UNLINK_NODIR on a put")
    if type(dirent) is RawValue:
        chunks = dirent.chunks
        for c in chunks:
            if type(c) is not bytes:
                raise FluxError(errno.EINVAL, f"op {index} ({nkey}): raw value chunks must be "
                                              f"bytes, not {type(c).__name__}")
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if flags & FLUX_KVS_APPEND:
            return Op(OpKind.APPEND, nkey, comps, None, data)
        return Op(OpKind.PUT, nkey, comps, None, data, False, chunks)
    obj, data = _dirent(dirent, index, nkey)
    if flags & FLUX_KVS_APPEND:
        if obj["type"] not in (_t.VAL, _t.VALREF):
            raise FluxError(errno.EINVAL, f"op {index} ({nkey}): can only append a val or valref, "
                                          f"not a {obj['type']}")
        return Op(OpKind.APPEND, nkey, comps, obj, data)
    return Op(OpKind.PUT, nkey, comps, obj, data)


def _dirent(dirent: Any, index: int, nkey: str) -> tuple[dict[str, Any], bytes | None]:
    """(validated treeobj, decoded bytes when it is a val)."""
    # fast path for the common {"ver":1,"type":"val","data":"..."}: one base64 decode
    if type(dirent) is dict and len(dirent) == 3 and dirent.get("type") == _t.VAL \
            and dirent.get("ver") == 1 and type(dirent.get("data")) is str and type(dirent["ver"]) is int:
        try:
            return dirent, binascii.a2b_base64(dirent["data"], strict_mode=True)
        except binascii.Error:
            pass  # full validation below names the problem
    try:
        obj = _t.validate(dirent, path=nkey)
    except FluxError as e:
        raise FluxError(errno.EINVAL, f"op {index}: {e.strerror}") from None
    return obj, (binascii.a2b_base64(obj["data"]) if obj["type"] == _t.VAL else None)


#: most ops in one transaction (the job manager's biggest, a purge, has 10,000)
MAX_OPS = 100_000


def parse_ops(ops: Any) -> list[Op]:
    if type(ops) is not list:
        raise FluxError(errno.EPROTO, f"ops must be an array, not {type(ops).__name__}")
    if len(ops) > MAX_OPS:
        raise FluxError(errno.EFBIG, f"transaction has {len(ops)} ops; the limit is {MAX_OPS}")
    return [parse_op(op, i) for i, op in enumerate(ops)]


# flux-core's other commit flags, accepted as it accepts them: FLUX_KVS_TXN_COMPACT
# (combine a txn's ops on one key: every op here is applied in order, nothing to
# combine) and FLUX_KVS_SYNC (flush and checkpoint: the kvs service syncs the
# store before answering; with durability "always" every commit already is)
FLUX_KVS_TXN_COMPACT = 2
FLUX_KVS_SYNC = 4
_COMMIT_FLAGS = COMMIT_FLAGS | FLUX_KVS_TXN_COMPACT | FLUX_KVS_SYNC


def check_commit_flags(flags: Any) -> int:
    if type(flags) is not int or flags & ~_COMMIT_FLAGS:
        raise FluxError(errno.EINVAL, f"unknown commit flags {flags!r}")
    return flags


@dataclass(slots=True)
class TxnBuilder:
    """Builds the ops of a transaction; keys are checked as they are added."""

    ops: list[dict[str, Any]] = field(default_factory=list)

    def _add(self, key: str, flags: int, dirent: dict[str, Any] | None) -> "TxnBuilder":
        self.ops.append({"key": _keys.normalize(key), "flags": flags, "dirent": dirent})
        return self

    def put(self, key: str, value: Any) -> "TxnBuilder":
        """Store ``value`` encoded as compact JSON."""
        return self._add(key, 0, _t.val(orjson.dumps(value)))

    def put_raw(self, key: str, data: bytes) -> "TxnBuilder":
        return self._add(key, 0, _t.val(bytes(data)))

    def put_treeobj(self, key: str, obj: dict[str, Any]) -> "TxnBuilder":
        return self._add(key, 0, _t.validate(obj, path=key))

    def mkdir(self, key: str) -> "TxnBuilder":
        return self._add(key, 0, _t.empty_dir())

    def unlink(self, key: str, *, recursive: bool = False) -> "TxnBuilder":
        """Remove ``key``; a directory only when ``recursive`` (else EISDIR at commit)."""
        return self._add(key, 0 if recursive else FLUX_KVS_UNLINK_NODIR, None)

    def symlink(self, key: str, target: str, namespace: str | None = None) -> "TxnBuilder":
        return self._add(key, 0, _t.validate(_t.symlink(target, namespace), path=key))

    def append(self, key: str, data: bytes | str) -> "TxnBuilder":
        raw = data.encode() if isinstance(data, str) else bytes(data)
        return self._add(key, FLUX_KVS_APPEND, _t.val(raw))

    def build(self, namespace: str = PRIMARY_NAMESPACE, flags: int = 0) -> Txn:
        return Txn(list(self.ops), namespace, check_commit_flags(flags))
