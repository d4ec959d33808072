"""The tree-based overlay network (TBON) shape.

By default a complete k-ary tree: rank 0 is the root; the children of
rank r are ranks k*r+1 .. k*r+k (those below the instance size).  Pure
functions, used by the overlay for routing and by ``flux overlay`` for
display.  ``Tree`` holds any shape as a list of parents (a configured
``[tbon] topo = "custom"`` tree, broker/bootstrap.py) and answers the same
questions; ``Tree.kary`` builds the k-ary one.
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


class Tree:
    """A TBON of any shape: ``parents[r]`` is rank r's parent (None for rank 0 only).

    Children are kept in rank order.  The constructor checks that the list
    is a tree rooted at 0 (every rank reaches 0, no cycle); ValueError names
    the first rank that does not.
    """

    __slots__ = ("parents", "size", "_children", "_levels", "fanout")

    def __init__(self, parents: list[int | None], fanout: int = 0) -> None:
        size = len(parents)
        if size < 1:
            raise ValueError("a tree needs at least one rank")
        if parents[0] is not None:
            raise ValueError("rank 0 is the root and has no parent")
        kids: list[list[int]] = [[] for _ in range(size)]
        for rank in range(1, size):
            up = parents[rank]
            if up is None or not 0 <= up < size or up == rank:
                raise ValueError(f"rank {rank}: bad parent {up!r}")
            kids[up].append(rank)
        levels: list[int] = [-1] * size
        levels[0] = 0
        for rank in range(1, size):
            path = []
            node: int | None = rank
            while node is not None and levels[node] < 0:
                if node in path:
                    raise ValueError(f"rank {rank}: its parents make a cycle "
                                     f"({' -> '.join(map(str, path + [node]))})")
                path.append(node)
                node = parents[node]
            depth = levels[node] if node is not None else 0
            for n in reversed(path):
                depth += 1
                levels[n] = depth
        self.parents = list(parents)
        self.size = size
        self._children = kids
        self._levels = levels
        self.fanout = fanout   # k of a k-ary tree, 0 for any other shape

    @classmethod
    def kary(cls, size: int, fanout: int) -> "Tree":
        """The complete FANOUT-ary tree of SIZE ranks (fanout 0: flat, rank 0 the parent
        of all)."""
        if size < 1:
            raise ValueError(f"instance size must be >= 1, got {size}")
        if fanout < 0:
            raise ValueError(f"tbon.fanout must be >= 1, got {fanout}")
        k = fanout or max(size - 1, 1)
        return cls([None] + [(r - 1) // k for r in range(1, size)], fanout=k)

    def _check(self, rank: int) -> None:
        if not 0 <= rank < self.size:
            raise ValueError(f"rank {rank} is out of range for size {self.size}")

    def parent(self, rank: int) -> int | None:
        self._check(rank)
        return self.parents[rank]

    def children(self, rank: int) -> list[int]:
        self._check(rank)
        return list(self._children[rank])

    def level(self, rank: int) -> int:
        self._check(rank)
        return self._levels[rank]

    def maxlevel(self) -> int:
        return max(self._levels)

    def subtree(self, rank: int) -> list[int]:
        """RANK and all its descendants, breadth first."""
        self._check(rank)
        out = [rank]
        i = 0
        while i < len(out):
            out.extend(self._children[out[i]])
            i += 1
        return out

    def descendants(self, rank: int) -> int:
        return len(self.subtree(rank)) - 1

    def child_toward(self, rank: int, target: int) -> int | None:
        """The child of RANK whose subtree holds TARGET, or None if TARGET is not below."""
        if not 0 <= target < self.size or target == rank:
            return None
        node = target
        while True:
            up = self.parents[node]
            if up is None:
                return None
            if up == rank:
                return node
            node = up


__all__ = ["Tree", "parent", "children", "level", "maxlevel", "subtree", "descendants", "child_toward"]
