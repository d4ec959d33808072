"""Checkpoint records: the current root of each KVS namespace.

Stored in the ``checkpoint`` database, keyed by namespace name, as
``{"version":1,"rootref":R,"sequence":N,"timestamp":T,"owner":UID}``
(flux-core's checkpoint object plus the namespace owner).
"""
from __future__ import annotations

import errno
from dataclasses import dataclass

import orjson

from eventstore import blobref as _blobref
from flux.errors import FluxError

__all__ = ["RootRecord", "encode_root", "decode_root", "Pin", "PinKind", "encode_pin", "decode_pin"]

_FIELDS = frozenset(("version", "rootref", "sequence", "timestamp", "owner"))


@dataclass(slots=True, frozen=True)
class RootRecord:
    """One namespace's root: blobref of its root dir, sequence, commit time, owner uid."""

    rootref: str
    sequence: int
    timestamp: float
    owner: int


def encode_root(rec: RootRecord) -> bytes:
    return orjson.dumps(
        {
            "version": 1,
            "rootref": rec.rootref,
            "sequence": rec.sequence,
            "timestamp": rec.timestamp,
            "owner": rec.owner,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def decode_root(name: str, raw: bytes) -> RootRecord:
    """Parse a checkpoint value; EPROTO naming the namespace and field when bad."""

    def bad(why: str) -> FluxError:
        return FluxError(errno.EPROTO, f"checkpoint of namespace {name!r}: {why}")

    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise bad(f"not JSON ({e})") from None
    if not isinstance(obj, dict):
        raise bad("not a JSON object")
    extra = set(obj) - _FIELDS
    if extra:
        raise bad(f"unknown field {sorted(extra)[0]!r}")
    if obj.get("version") != 1:
        raise bad(f"unsupported version {obj.get('version')!r}")
    ref = obj.get("rootref")
    if not _blobref.is_blobref(ref):
        raise bad(f"rootref {ref!r} is not a blobref")
    seq = obj.get("sequence")
    if type(seq) is not int or seq < 0:
        raise bad(f"sequence {seq!r} is not a non-negative integer")
    ts = obj.get("timestamp")
    if type(ts) not in (int, float) or ts < 0:
        raise bad(f"timestamp {ts!r} is not a non-negative number")
    owner = obj.get("owner")
    if type(owner) is not int or owner < 0:
        raise bad(f"owner {owner!r} is not a uid")
    return RootRecord(ref, seq, float(ts), owner)


class PinKind:
    """What a pinned blobref refers to: a KVS tree (walked by GC) or one blob."""

    TREE = "tree"
    BLOB = "blob"
    ALL = frozenset((TREE, BLOB))


@dataclass(slots=True, frozen=True)
class Pin:
    """A blobref kept alive by GC besides the namespace roots (e.g. a projection snapshot)."""

    ref: str
    kind: str


def encode_pin(pin: Pin) -> bytes:
    return orjson.dumps({"ref": pin.ref, "kind": pin.kind}, option=orjson.OPT_SORT_KEYS)


def decode_pin(name: str, raw: bytes) -> Pin:
    try:
        obj = orjson.loads(raw)
        ref, kind = obj["ref"], obj["kind"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as e:
        raise FluxError(errno.EPROTO, f"pin {name!r}: malformed ({e})") from None
    if not _blobref.is_blobref(ref) or kind not in PinKind.ALL:
        raise FluxError(errno.EPROTO, f"pin {name!r}: bad ref {ref!r} or kind {kind!r}")
    return Pin(ref, kind)
