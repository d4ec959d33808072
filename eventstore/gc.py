"""Offline garbage collection of the blob database: sweep what is not live.

Marking (which blobs the roots reach) is the KVS's business: it knows the
tree objects.  The store only sweeps, given the set of live digests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["GCResult", "sweep"]


@dataclass(slots=True, frozen=True)
class GCResult:
    """What a collection freed and kept."""

    freed_blobs: int
    freed_bytes: int
    kept_blobs: int
    kept_bytes: int


def sweep(txn: Any, db: Any, scratch: Any, live: set[bytes]) -> GCResult:
    """Keep only the blobs of ``db`` whose digest is in ``live``, inside ``txn``.

    The survivors are copied in key order into ``scratch`` and back into the
    emptied ``db`` with appends, which packs the B-tree's pages full (random
    inserts leave them about two-thirds full, deletes leave them sparse).
    """
    freed = freed_bytes = kept = kept_bytes = 0
    out = txn.cursor(scratch)
    for key, value in txn.cursor(db):
        n = len(value)
        if key in live:
            kept += 1
            kept_bytes += n
            out.put(key, value, append=True)
        else:
            freed += 1
            freed_bytes += n
    txn.drop(db, delete=False)
    back = txn.cursor(db)
    for key, value in txn.cursor(scratch):
        back.put(key, value, append=True)
    return GCResult(freed, freed_bytes, kept, kept_bytes)
