"""The tree-based overlay network (TBON) shape: a complete k-ary tree.

Rank 0 is the root; the children of rank r are ranks k*r+1 .. k*r+k
(those below the instance size).  Pure functions, used by the overlay
for routing and by ``flux overlay`` for display.
"""
from __future__ import annotations


def _check(rank: int, fanout: int, size: int | None = None) -> None:
    if fanout < 1:
        raise ValueError(f"tbon.fanout must be >= 1, got {fanout}")
    if rank < 0 or (size is not None and rank >= size):
        raise ValueError(f"rank {rank} is out of range for size {size}")


def parent(rank: int, fanout: int) -> int | None:
    """Parent rank of RANK (None for the root)."""
    _check(rank, fanout)
    return None if rank == 0 else (rank - 1) // fanout


def children(rank: int, fanout: int, size: int) -> list[int]:
    """Direct children of RANK, in rank order."""
    _check(rank, fanout, size)
    first = rank * fanout + 1
    return list(range(first, min(first + fanout, size)))


def level(rank: int, fanout: int) -> int:
    """Depth of RANK in the tree (root is 0)."""
    _check(rank, fanout)
    depth = 0
    while rank > 0:
        rank = (rank - 1) // fanout
        depth += 1
    return depth


def maxlevel(size: int, fanout: int) -> int:
    """Deepest level of a SIZE-broker tree (0 for size 1)."""
    if size < 1:
        raise ValueError(f"instance size must be >= 1, got {size}")
    return level(size - 1, fanout)


def subtree(rank: int, fanout: int, size: int) -> list[int]:
    """RANK and all its descendants, breadth first."""
    _check(rank, fanout, size)
    out = [rank]
    i = 0
    while i < len(out):
        out.extend(children(out[i], fanout, size))
        i += 1
    return out


def descendants(rank: int, fanout: int, size: int) -> int:
    """Number of brokers below RANK."""
    return len(subtree(rank, fanout, size)) - 1


def child_toward(rank: int, target: int, fanout: int) -> int | None:
    """The child of RANK whose subtree holds TARGET, or None if TARGET is not below RANK."""
    _check(rank, fanout)
    if target <= rank:
        return None
    node = target
    while node > rank:
        up = (node - 1) // fanout
        if up == rank:
            return node
        node = up
    return None


__all__ = ["parent", "children", "level", "maxlevel", "subtree", "descendants", "child_toward"]
