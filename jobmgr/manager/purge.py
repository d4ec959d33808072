"""Inactive jobs the job manager still answers for: the purge index.

Inactive jobs leave the active table (job-list and the KVS keep their
facts).  The job manager keeps only what purge needs: each inactive job's
id and the time it became inactive, oldest first, 16 bytes a job in two
arrays.  ``Purger`` picks the jobs past ``[job-manager] inactive-age-limit``
or beyond ``inactive-num-limit`` (oldest first), or the ones named in a
``job-manager.purge`` request; the caller unlinks their ``job.<dothex>``
directories in one commit and reports them to the journal.
"""
from __future__ import annotations

import errno
import math
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flux.errors import FluxError
from flux.util.fsd import parse_fsd

__all__ = ["InactiveIndex", "PurgeLimits", "parse_purge_limits", "select"]


class InactiveIndex:
    """Inactive jobs in the order they became inactive: (id, time) pairs."""

    __slots__ = ("_ids", "_times", "_head", "_removed")

    def __init__(self) -> None:
        self._ids = array("Q")
        self._times = array("d")
        self._head = 0
        self._removed = 0          # tombstones (id 0) between head and tail

    def __len__(self) -> int:
        return len(self._ids) - self._head - self._removed

    def add(self, jobid: int, t_inactive: float) -> None:
        ids, times = self._ids, self._times
        # jobs usually arrive in time order; keep the arrays sorted anyway
        if times and t_inactive < times[-1]:
            lo, hi = self._head, len(times)
            while lo < hi:
                mid = (lo + hi) // 2
                if times[mid] <= t_inactive:
                    lo = mid + 1
                else:
                    hi = mid
            ids.insert(lo, jobid)
            times.insert(lo, t_inactive)
        else:
            ids.append(jobid)
            times.append(t_inactive)

    def items(self) -> list[tuple[int, float]]:
        return [(i, t) for i, t in zip(self._ids[self._head:], self._times[self._head:]) if i]

    def ids(self) -> list[int]:
        return [i for i in self._ids[self._head:] if i]

    def oldest(self, count: int, older_than: float | None = None) -> list[int]:
        """Up to COUNT ids from the oldest, stopping at the first not older than OLDER_THAN."""
        out: list[int] = []
        ids, times = self._ids, self._times
        i = self._head
        while i < len(ids) and len(out) < count:
            if older_than is not None and times[i] >= older_than:
                break
            if ids[i]:
                out.append(ids[i])
            i += 1
        return out

    def discard(self, jobids: Iterable[int]) -> int:
        """Forget JOBIDS (purged); returns how many were here."""
        wanted = set(jobids)
        if not wanted:
            return 0
        ids = self._ids
        found = 0
        # the common case is the oldest jobs: pop them from the head
        while self._head < len(ids) and (ids[self._head] in wanted or ids[self._head] == 0):
            if ids[self._head]:
                found += 1
                wanted.discard(ids[self._head])
            else:
                self._removed -= 1
            self._head += 1
        if wanted:
            for i in range(self._head, len(ids)):
                if ids[i] in wanted:
                    wanted.discard(ids[i])
                    ids[i] = 0
                    self._removed += 1
                    found += 1
                    if not wanted:
                        break
        if self._head > 4096 and self._head * 2 > len(ids):
            self._compact()
        return found

    def __contains__(self, jobid: int) -> bool:
        """A linear search (without copying the index)."""
        if jobid == 0:
            return False
        try:
            self._ids.index(jobid, self._head)
        except ValueError:
            return False
        return True

    def _compact(self) -> None:
        keep = [(i, t) for i, t in zip(self._ids[self._head:], self._times[self._head:]) if i]
        self._ids = array("Q", (i for i, _ in keep))
        self._times = array("d", (t for _, t in keep))
        self._head = 0
        self._removed = 0

    def encode(self) -> bytes:
        """Compressed bytes for the checkpoint (ids then times)."""
        if self._removed:
            self._compact()
        # array slices stay in C: no per-job Python work for a checkpoint
        return zlib.compress(self._ids[self._head:].tobytes()
                             + self._times[self._head:].tobytes(), 1)

    @classmethod
    def decode(cls, data: bytes) -> "InactiveIndex":
        raw = zlib.decompress(data)
        if len(raw) % 16:
            raise ValueError(f"inactive index: {len(raw)} bytes is not a whole number of entries")
        half = len(raw) // 2
        index = cls()
        index._ids.frombytes(raw[:half])
        index._times.frombytes(raw[half:])
        return index


@dataclass(slots=True, frozen=True)
class PurgeLimits:
    """``[job-manager]`` limits: None means no limit."""

    age: float | None = None
    num: int | None = None


def parse_purge_limits(table: Any) -> PurgeLimits:
    """Read ``inactive-age-limit`` (FSD) and ``inactive-num-limit`` (int >= 0)."""
    if table is None:
        return PurgeLimits()
    if not isinstance(table, dict):
        raise ValueError("job-manager: must be a table")
    age = num = None
    if "inactive-age-limit" in table:
        try:
            age = parse_fsd(table["inactive-age-limit"])
        except ValueError:
            raise ValueError("job-manager.inactive-age-limit: invalid duration "
                             f"{table['inactive-age-limit']!r}") from None
        if math.isinf(age):
            age = None
    if "inactive-num-limit" in table:
        num = table["inactive-num-limit"]
        if type(num) is not int or num < 0:
            raise ValueError(f"job-manager.inactive-num-limit: must be an integer >= 0, "
                             f"got {num!r}")
    return PurgeLimits(age, num)


def select(index: InactiveIndex, now: float, age_limit: float | None, num_limit: int | None,
           max_count: int | None = None) -> list[int]:
    """The jobs to purge, oldest first: older than AGE_LIMIT, or beyond NUM_LIMIT kept."""
    if age_limit is not None and age_limit < 0:
        raise FluxError(errno.EINVAL, f"age limit must be >= 0, got {age_limit}")
    if num_limit is not None and num_limit < 0:
        raise FluxError(errno.EINVAL, f"num limit must be >= 0, got {num_limit}")
    count = 0
    if num_limit is not None:
        count = max(0, len(index) - num_limit)
    chosen = index.oldest(count) if count else []
    if age_limit is not None:
        by_age = index.oldest(len(index), older_than=now - age_limit)
        if len(by_age) > len(chosen):
            chosen = by_age
    if max_count is not None:
        chosen = chosen[:max_count]
    return chosen
