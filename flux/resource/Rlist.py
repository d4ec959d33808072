"""``Rlist``: R version 1 as flux-core's librlist binding presents it.

Set operations return new Rlists, ``append``/``add_rank``/``add_child``/
``remove_ranks`` change this one (and return it); ``remap()`` renumbers the
ranks 0..n-1 in order.  ``ResourceSet(rlist)`` gives a ResourceSet of the
same resources.  It holds a ResourceSet: there is no C library here.
"""
from __future__ import annotations

from typing import Any

from flux.hostlist import Hostlist
from flux.idset import IDset
from flux.resource.ResourceSet import ResourceSet
from flux.resource.ResourceSetImplementation import ResourceSetImplementation

__all__ = ["Rlist"]


def _rset(arg: Any) -> ResourceSet:
    if isinstance(arg, Rlist):
        return arg.rset
    if isinstance(arg, ResourceSet):
        return arg
    if isinstance(arg, (str, bytes)):
        return ResourceSet(arg)
    rset = getattr(arg, "rset", None)
    if isinstance(rset, ResourceSet):
        return rset
    raise TypeError(f"expected an Rlist, ResourceSet or R string, got {type(arg).__name__}")


class Rlist(ResourceSetImplementation):
    version = 1

    def __init__(self, rstring: str | bytes | None = None, handle: Any = None) -> None:
        self.rset = ResourceSet(rstring) if rstring is not None else ResourceSet()

    @classmethod
    def _of(cls, rset: ResourceSet) -> "Rlist":
        out = cls()
        out.rset = rset
        return out

    def __repr__(self) -> str:
        return f"Rlist({self.dumps()!r})"

    # -- building ------------------------------------------------------------------
    def add_rank(self, rank: int, hostname: str | None = None, cores: str = "0") -> "Rlist":
        self.rset.add_rank(rank, hostname, cores)
        return self

    def add_child(self, rank: int, name: str, ids: str) -> "Rlist":
        self.rset.add_child(rank, name, ids)
        return self

    def append(self, arg: Any) -> "Rlist":
        self.rset.append(_rset(arg))
        return self

    def remove_ranks(self, ranks: Any) -> "Rlist":
        self.rset.remove_ranks(ranks)
        return self

    def remap(self) -> "Rlist":
        """Renumber the ranks 0..n-1, keeping their order, hosts, children and properties."""
        old = list(self.rset.ranks)
        new_of = {rank: i for i, rank in enumerate(old)}
        out = ResourceSet()
        for rank in old:
            kids = self.rset.children(rank)
            out.add_rank(new_of[rank], self.rset.hostname(rank), cores=None)
            for name, ids in kids.items():
                out.add_child(new_of[rank], name, ids)
        for prop, ranks in self.rset.property_ranks().items():
            out.set_property(prop, IDset([new_of[r] for r in ranks]))
        out.starttime, out.expiration = self.rset.starttime, self.rset.expiration
        self.rset = out
        return self

    # -- looking -------------------------------------------------------------------
    def copy(self) -> "Rlist":
        return Rlist._of(self.rset.copy())

    def count(self, name: str) -> int:
        return self.rset.count(name)

    def dumps(self) -> str:
        return self.rset.dumps()

    def encode(self) -> str:
        return self.rset.encode()

    def nnodes(self) -> int:
        return self.rset.nnodes

    def nodelist(self) -> Hostlist:
        return self.rset.nodelist

    def ranks(self, hosts: Any = None) -> IDset:
        """The ranks, or those of HOSTS (a hostlist)."""
        if hosts is None:
            return self.rset.ranks
        return IDset(sorted(self.rset.host_ranks(hosts)))

    # -- sets ----------------------------------------------------------------------
    def union(self, arg: Any) -> "Rlist":
        return Rlist._of(self.rset.union(_rset(arg)))

    def diff(self, arg: Any) -> "Rlist":
        return Rlist._of(self.rset.diff(_rset(arg)))

    def intersect(self, arg: Any) -> "Rlist":
        return Rlist._of(self.rset.intersect(_rset(arg)))
