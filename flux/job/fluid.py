"""FLUID generation (RFC 19): unique, strictly increasing 64-bit job ids.

A FLUID is ``[timestamp:40 | generator id:14 | sequence:10]``.  The
timestamp counts milliseconds from a custom epoch: the moment the
generator was created, minus the ``timestamp`` it was seeded with.  As in
flux-core's job-ingest, a restarted instance seeds a new generator with
``fluid_timestamp(largest id in the store) + 1`` so ids keep increasing
across restarts (``FluidGenerator.after``).  At most 1024 ids are made per
millisecond; when the sequence runs out the generator waits for the next
millisecond of its clock.
"""
from __future__ import annotations

import errno
import time
from typing import Callable

from flux.errors import FluxError

__all__ = [
    "FluidGenerator", "fluid_timestamp", "fluid_generator_id", "fluid_sequence",
    "fluid_make", "TIMESTAMP_BITS", "GENERATOR_BITS", "SEQUENCE_BITS",
]

TIMESTAMP_BITS = 40
GENERATOR_BITS = 14
SEQUENCE_BITS = 10

_TS_MAX = (1 << TIMESTAMP_BITS) - 1
_GEN_MAX = (1 << GENERATOR_BITS) - 1
_SEQ_MAX = (1 << SEQUENCE_BITS) - 1
_TS_SHIFT = GENERATOR_BITS + SEQUENCE_BITS


def fluid_timestamp(fluid: int) -> int:
    """Milliseconds since the generator's epoch encoded in ``fluid``."""
    return int(fluid) >> _TS_SHIFT


def fluid_generator_id(fluid: int) -> int:
    """The generator id encoded in ``fluid``."""
    return (int(fluid) >> SEQUENCE_BITS) & _GEN_MAX


def fluid_sequence(fluid: int) -> int:
    """The per-millisecond sequence number encoded in ``fluid``."""
    return int(fluid) & _SEQ_MAX


def fluid_make(timestamp: int, generator_id: int, sequence: int) -> int:
    """Assemble a FLUID from its three fields, checking each one's range."""
    for name, value, top in (("timestamp", timestamp, _TS_MAX),
                             ("generator_id", generator_id, _GEN_MAX),
                             ("sequence", sequence, _SEQ_MAX)):
        if not 0 <= value <= top:
            raise ValueError(f"FLUID {name} {value} out of range 0..{top}")
    return (timestamp << _TS_SHIFT) | (generator_id << SEQUENCE_BITS) | sequence


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class FluidGenerator:
    """Make FLUIDs for one generator id; every id is larger than the last.

    ``clock`` returns milliseconds from any fixed origin and must not go
    backwards (the default is the monotonic clock); tests inject their own.
    """

    __slots__ = ("_clock", "_zero", "_offset", "_ts", "_seq", "_genbits", "generator_id")

    def __init__(self, generator_id: int = 0, timestamp: int = 0,
                 clock: Callable[[], int] | None = None) -> None:
        if not 0 <= generator_id <= _GEN_MAX:
            raise ValueError(f"FLUID generator id {generator_id} out of range 0..{_GEN_MAX}")
        if not 0 <= timestamp <= _TS_MAX:
            raise ValueError(f"FLUID timestamp {timestamp} out of range 0..{_TS_MAX}")
        self._clock = clock if clock is not None else _monotonic_ms
        self._zero = self._clock()
        self._offset = timestamp
        self._ts = timestamp
        self._seq = 0
        self.generator_id = generator_id
        self._genbits = generator_id << SEQUENCE_BITS

    @classmethod
    def after(cls, max_id: int, generator_id: int = 0,
              clock: Callable[[], int] | None = None) -> FluidGenerator:
        """A generator whose ids are all greater than ``max_id``."""
        return cls(generator_id, fluid_timestamp(max_id) + 1, clock)

    @property
    def timestamp(self) -> int:
        """The timestamp of the most recent id (or of the seed)."""
        return self._ts

    def _now(self) -> int:
        return self._clock() - self._zero + self._offset

    def _advance(self) -> None:
        """Move to a later millisecond, waiting for the clock if needed."""
        now = self._now()
        while now <= self._ts:
            now = self._now()
        if now > _TS_MAX:
            raise FluxError(errno.EOVERFLOW, "FLUID timestamp space (40 bits) exhausted")
        self._ts = now
        self._seq = 0

    def next(self) -> int:
        """Return the next id."""
        now = self._clock() - self._zero + self._offset
        if now > self._ts:
            if now > _TS_MAX:
                raise FluxError(errno.EOVERFLOW, "FLUID timestamp space (40 bits) exhausted")
            self._ts = now
            self._seq = 0
        elif self._seq > _SEQ_MAX:
            self._advance()
        seq = self._seq
        self._seq = seq + 1
        return (self._ts << _TS_SHIFT) | self._genbits | seq

    __next__ = next

    def __iter__(self) -> FluidGenerator:
        return self

    def next_batch(self, n: int) -> list[int]:
        """Return ``n`` ids in increasing order, reading the clock once per ms used."""
        if n < 0:
            raise ValueError(f"batch size {n} is negative")
        out: list[int] = []
        while n > 0:
            now = self._now()
            if now > self._ts:
                if now > _TS_MAX:
                    raise FluxError(errno.EOVERFLOW, "FLUID timestamp space (40 bits) exhausted")
                self._ts = now
                self._seq = 0
            elif self._seq > _SEQ_MAX:
                self._advance()
            k = min(n, _SEQ_MAX + 1 - self._seq)
            first = (self._ts << _TS_SHIFT) | self._genbits | self._seq
            out.extend(range(first, first + k))
            self._seq += k
            n -= k
        return out
