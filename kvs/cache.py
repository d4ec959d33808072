"""A bounded LRU cache of parsed tree objects, keyed by blobref.

Objects in it are shared and must not be mutated.  Bounded both by count
and by the serialized size of what it holds, so memory stays flat however
many jobs the store has.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["ObjectCache", "CacheStats"]


@dataclass(slots=True, frozen=True)
class CacheStats:
    entries: int
    bytes: int
    hits: int
    misses: int


class ObjectCache:
    __slots__ = ("_d", "_bytes", "max_entries", "max_bytes", "hits", "misses")

    def __init__(self, max_entries: int = 32768, max_bytes: int = 16 << 20) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("cache bounds must be positive")
        self._d: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0

    def get(self, ref: str) -> Any:
        """The cached object, or None."""
        item = self._d.get(ref)
        if item is None:
            self.misses += 1
            return None
        self._d.move_to_end(ref)
        self.hits += 1
        return item[0]

    def put(self, ref: str, obj: Any, nbytes: int) -> None:
        old = self._d.pop(ref, None)
        if old is not None:
            self._bytes -= old[1]
        self._d[ref] = (obj, nbytes)
        self._bytes += nbytes
        d = self._d
        while len(d) > self.max_entries or (self._bytes > self.max_bytes and len(d) > 1):
            _, (_, n) = d.popitem(last=False)
            self._bytes -= n

    def set_max_bytes(self, max_bytes: int) -> None:
        """Purge target (``content.purge-target-size``): least recently used entries
        go, now and at every later insertion, until the cache holds at most MAX_BYTES
        (or a single entry)."""
        if max_bytes < 0:
            raise ValueError("cache size target must not be negative")
        self.max_bytes = max_bytes
        d = self._d
        while self._bytes > max_bytes and len(d) > 1:
            _, (_, n) = d.popitem(last=False)
            self._bytes -= n

    @property
    def nbytes(self) -> int:
        """The serialized size of what the cache holds."""
        return self._bytes

    def pop(self, ref: str) -> Any:
        """Remove and return the cached object (None if absent), e.g. to modify it."""
        item = self._d.pop(ref, None)
        if item is None:
            return None
        self._bytes -= item[1]
        return item[0]

    def __contains__(self, ref: str) -> bool:
        return ref in self._d

    def __len__(self) -> int:
        return len(self._d)

    def clear(self) -> None:
        self._d.clear()
        self._bytes = 0

    def stats(self) -> CacheStats:
        return CacheStats(len(self._d), self._bytes, self.hits, self.misses)
