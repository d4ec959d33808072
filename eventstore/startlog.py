"""The startlog: one record per open of the store, finished by a clean close.

A record with no ``finish`` that is followed by another start (or found at
open) means the store was not closed: the process crashed or was killed.
Records live in the ``startlog`` database keyed by a big-endian counter.
"""
from __future__ import annotations

import errno
import struct
from dataclasses import dataclass

import orjson

from flux.errors import FluxError

__all__ = ["StartRecord", "encode_record", "decode_record", "record_key", "was_unclean"]

_KEY = struct.Struct(">Q")


@dataclass(slots=True, frozen=True)
class StartRecord:
    """An open of the store at ``start``; ``finish`` is None until a clean close.
    ``version``: the software version of that run (None in records written
    before it was kept, like flux-core's start events without core_version)."""

    start: float
    finish: float | None
    pid: int
    version: str | None = None

    @property
    def clean(self) -> bool:
        return self.finish is not None


def record_key(index: int) -> bytes:
    return _KEY.pack(index)


def record_index(key: bytes) -> int:
    return _KEY.unpack(key)[0]


def encode_record(rec: StartRecord) -> bytes:
    obj: dict[str, object] = {"start": rec.start, "finish": rec.finish, "pid": rec.pid}
    if rec.version is not None:
        obj["version"] = rec.version
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def decode_record(index: int, raw: bytes) -> StartRecord:
    try:
        obj = orjson.loads(raw)
        start, finish, pid = obj["start"], obj["finish"], obj["pid"]
        version = obj.get("version")
    except (orjson.JSONDecodeError, KeyError, TypeError) as e:
        raise FluxError(errno.EPROTO, f"startlog record {index}: malformed ({e})") from None
    if type(start) not in (int, float) or (finish is not None and type(finish) not in (int, float)):
        raise FluxError(errno.EPROTO, f"startlog record {index}: timestamps must be numbers")
    if type(pid) is not int:
        raise FluxError(errno.EPROTO, f"startlog record {index}: pid must be an integer")
    if version is not None and type(version) is not str:
        raise FluxError(errno.EPROTO, f"startlog record {index}: version must be a string")
    return StartRecord(float(start), None if finish is None else float(finish), pid, version)


def was_unclean(records: list[StartRecord]) -> bool:
    """True when the last open before now never recorded a clean close."""
    return bool(records) and not records[-1].clean
