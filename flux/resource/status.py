"""flux.resource.status: the state of each rank, as ``flux resource status`` shows it.

``resource_status(h).get()`` combines three answers from rank 0:
``resource.status`` (R, online/offline, excluded, torpid and drained
ranks), ``resource_list`` (the ranks the scheduler has allocated) and
``job-manager.stats-get`` (the ranks still running housekeeping).  The
last two are optional: an instance without them has nothing allocated or
in housekeeping.  The result is a ``ResourceStatus`` of IDsets::

    rs = flux.resource.resource_status(h).get()
    print(rs.avail, rs["drained"], rs.get_drain_info(3))

See specs/resource-service.md.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from flux.hostlist import Hostlist
from flux.idset import IDset
from flux.resource.list import resource_list
from flux.resource.ResourceSet import ResourceSet

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["DrainInfo", "ResourceStatus", "ResourceStatusRPC", "resource_status"]

#: the IDset attributes of a ResourceStatus
STATES = ("all", "avail", "online", "offline", "exclude", "torpid", "housekeeping",
          "allocated", "drained", "draining")


class DrainInfo(NamedTuple):
    """Ranks drained together: their IDset, the drain time and the reason."""

    ranks: IDset
    timestamp: float
    reason: str


def _ids(value: Any) -> IDset:
    if isinstance(value, IDset):
        return value.copy()
    return IDset(value or "")


class ResourceStatus:
    """The ranks of the instance by state.

    IDset attributes: ``all`` (R's ranks), ``online``, ``offline``,
    ``exclude`` (excluded by configuration), ``torpid``, ``allocated``
    (ranks where the scheduler has allocated something), ``housekeeping``,
    ``drained`` (drained and not allocated), ``draining`` (drained and
    allocated), ``avail`` (all but exclude, drained, draining, torpid and
    housekeeping).  Also ``nodelist`` (Hostlist, rank order) and
    ``drain_info`` (a list of DrainInfo).  ``rs[state]`` is ``rs.state``.

    ``rstatus`` is a ``resource.status`` response (None: an empty status).
    """

    def __init__(self, rstatus: Mapping[str, Any] | None = None,
                 allocated_ranks: IDset | str | None = None,
                 housekeeping_ranks: IDset | str | None = None) -> None:
        if rstatus is None:
            rstatus = {"R": None, "online": "", "offline": "", "exclude": "", "torpid": "",
                       "drain": {}}
        if not isinstance(rstatus, Mapping):
            raise TypeError(f"ResourceStatus: expected a mapping, got {type(rstatus).__name__}")
        self.rstatus = rstatus
        self.rset = ResourceSet(rstatus.get("R"))
        self.nodelist: Hostlist = self.rset.nodelist
        self.allocated_ranks = _ids(allocated_ranks)
        self.housekeeping_ranks = _ids(housekeeping_ranks)
        self._recalculate()

    def _recalculate(self, include: IDset | None = None) -> None:
        status = self.rstatus
        self.all = self.rset.ranks
        self.online = _ids(status.get("online"))
        self.offline = _ids(status.get("offline"))
        self.exclude = _ids(status.get("exclude"))
        self.torpid = _ids(status.get("torpid"))
        self.allocated = self.allocated_ranks.copy()
        self.housekeeping = self.housekeeping_ranks.copy()
        if include is not None:
            for name in ("all", "online", "offline", "exclude", "torpid", "allocated",
                         "housekeeping"):
                setattr(self, name, getattr(self, name).intersect(include))
        drained = IDset()
        self.drain_info: list[DrainInfo] = []
        self._drain_lookup: dict[int, DrainInfo] = {}
        drain = status.get("drain") or {}
        for text, entry in drain.items():
            ranks = IDset(text)
            if include is not None:
                ranks = ranks.intersect(include)
                if not len(ranks):
                    continue
            info = DrainInfo(ranks, float(entry.get("timestamp", 0.0)),
                             str(entry.get("reason", "")))
            self.drain_info.append(info)
            drained = drained.union(ranks)
            for rank in ranks:
                self._drain_lookup[rank] = info
        self.draining = drained.intersect(self.allocated)
        self.drained = drained - self.draining
        self.avail = self.all - self.get_idset("exclude", "drained", "draining", "torpid",
                                               "housekeeping")

    def filter(self, include: Any) -> None:
        """Keep only the ranks in ``include``: an idset of ranks (str, IDset, ...) or
        a hostlist (str or Hostlist); hosts not in the instance are ignored."""
        ranks = None
        if not isinstance(include, Hostlist):
            try:
                ranks = IDset(include)
            except (TypeError, ValueError):
                ranks = None
        if ranks is None:
            ranks = IDset(self.rset.host_ranks(include, ignore_nomatch=True))
        self._recalculate(ranks)

    def __getitem__(self, state: str) -> Any:
        return getattr(self, state)

    def get_idset(self, *states: str) -> IDset:
        """The union of the ranks in each of ``states``."""
        ids = IDset()
        for state in states:
            ids.add(self[state])
        return ids

    def get_drain_info(self, rank: int) -> DrainInfo | None:
        """The DrainInfo of ``rank`` (None if it is not drained); ValueError if it is
        not a rank of the instance."""
        if rank not in self.all:
            raise ValueError(f"invalid rank {rank}")
        return self._drain_lookup.get(rank)

    def __repr__(self) -> str:
        return "ResourceStatus(" + ", ".join(f"{s}={self[s].encode()!r}" for s in STATES) + ")"


def _housekeeping_ranks(stats: Any) -> IDset:
    """Ranks still running housekeeping, from a ``job-manager.stats-get`` response."""
    ranks = IDset()
    running = ((stats or {}).get("housekeeping") or {}).get("running") or {}
    for job in running.values():
        ranks.add(IDset(job.get("pending") or ""))
    return ranks


class ResourceStatusRPC:
    """The requests behind ``resource_status``; ``get()`` gives a ResourceStatus."""

    def __init__(self, flux_handle: "Flux") -> None:
        if flux_handle is None:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        self.rpcs = [flux_handle.rpc("resource.status", nodeid=0),
                     resource_list(flux_handle),
                     flux_handle.rpc("job-manager.stats-get", nodeid=0)]
        self.rstatus: Any = None
        self.rlist: Any = None
        self.allocated_ranks: IDset | None = None
        self.housekeeping_ranks: IDset | None = None

    def get_status(self) -> Any:
        """The ``resource.status`` response (OSError if it failed)."""
        if self.rstatus is None:
            self.rstatus = self.rpcs[0].get()
        return self.rstatus

    def get_allocated_ranks(self) -> IDset:
        """Ranks with allocated resources (empty if the scheduler cannot say)."""
        if self.allocated_ranks is None:
            try:
                self.rlist = self.rpcs[1].get()
                self.allocated_ranks = self.rlist.allocated.ranks
            except OSError:
                self.allocated_ranks = IDset()
        return self.allocated_ranks

    def get_housekeeping_ranks(self) -> IDset:
        """Ranks running housekeeping (empty if the job manager cannot say)."""
        if self.housekeeping_ranks is None:
            try:
                self.housekeeping_ranks = _housekeeping_ranks(self.rpcs[2].get())
            except (OSError, AttributeError, TypeError, ValueError):
                self.housekeeping_ranks = IDset()
        return self.housekeeping_ranks

    def get(self) -> ResourceStatus:
        """The ResourceStatus (waiting for the answers); OSError if resource.status failed."""
        return ResourceStatus(self.get_status(), self.get_allocated_ranks(),
                              self.get_housekeeping_ranks())


def resource_status(flux_handle: "Flux") -> ResourceStatusRPC:
    """Ask rank 0 for the state of every rank; ``get()`` gives a ResourceStatus."""
    return ResourceStatusRPC(flux_handle)
