"""Valref compaction for appends: the policy, as pure functions.

Each append adds one chunk (blob) at the tail of the key's valref.  While
the valref has at most ``min_chunks`` chunks nothing else happens.  Past
that, trailing chunks are merged while the chunk before the merged tail is
no larger than the tail, and the merge stays within ``chunk_max`` bytes.  With equal appends this is a binary counter: chunk sizes fall
strictly from head to tail, so a valref of n appends holds about log2(n)
chunks (plus one sealed chunk per ``chunk_max`` bytes), and each byte is
rewritten about log2(n) times in all -- an append's amortized cost grows
with log n bytes hashed, while the fixed per-commit cost dominates.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["merge_count", "split_chunks", "simulate"]


def merge_count(size_at: Callable[[int], int], n: int, chunk_max: int, min_chunks: int = 0) -> int:
    """How many trailing chunks (of ``n``) to merge into one; 1 means none.

    Nothing is merged while there are at most ``min_chunks`` chunks, so a
    short log costs one blob per append.  ``size_at(i)`` gives chunk i's
    size and is only called for the chunks the decision needs (usually
    two), so callers can fetch sizes lazily.
    """
    if n < 2 or n <= min_chunks:
        return 1
    acc = size_at(n - 1)
    k = 1
    i = n - 2
    while i >= 0:
        s = size_at(i)
        if s > acc or s + acc > chunk_max:
            break
        acc += s
        k += 1
        i -= 1
    return k


def split_chunks(data: bytes, chunk_max: int) -> list[bytes]:
    """``data`` cut into pieces of at most ``chunk_max`` bytes (none for empty data)."""
    if len(data) <= chunk_max:
        return [data] if data else []
    return [data[i:i + chunk_max] for i in range(0, len(data), chunk_max)]


def simulate(appends: Sequence[int], chunk_max: int, min_chunks: int = 0) -> tuple[list[int], int]:
    """Chunk sizes after appends of the given sizes, and total bytes written."""
    sizes: list[int] = []
    written = 0
    for a in appends:
        full, rest = divmod(a, chunk_max)
        for p in [chunk_max] * full + ([rest] if rest else []):
            sizes.append(p)
            written += p
            k = merge_count(sizes.__getitem__, len(sizes), chunk_max, min_chunks)
            if k > 1:
                merged = sum(sizes[-k:])
                del sizes[-k:]
                sizes.append(merged)
                written += merged
    return sizes, written
