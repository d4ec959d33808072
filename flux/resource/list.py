"""flux.resource.list: the scheduler's view of the instance's resources.

``resource_list(h)`` asks rank 0's ``resource.sched-status`` (or the topic
in ``$FLUX_RESOURCE_LIST_RPC``; a service that does not exist, ENOSYS,
sends the request on to ``sched.resource-status``) and returns a future;
its ``get()`` is a ``SchedResourceList``::

    rl = flux.resource.resource_list(h).get()
    print(rl.free.ncores, rl["down"].nodelist)

``all``, ``down`` and ``allocated`` come from the response; ``up`` (all
but down) and ``free`` (up but not allocated) are computed.  Each is a
ResourceSet whose ``state`` is its name.  See specs/resource-service.md.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flux.future import FutureExt
from flux.hostlist import Hostlist
from flux.idset import IDset
from flux.resource.ResourceSet import ResourceSet

if TYPE_CHECKING:
    from flux.core.handle import Flux
    from flux.rpc import RPC

__all__ = ["SchedResourceList", "ResourceListRPC", "resource_list", "FALLBACK_TOPIC"]

#: where ``resource_list`` asks when its first topic has no service (ENOSYS)
FALLBACK_TOPIC = "sched.resource-status"
_STATES = ("all", "down", "allocated")


class SchedResourceList:
    """The ``all``, ``down`` and ``allocated`` resources, and the computed ``up``, ``free``.

    Built from a ``resource.sched-status`` response (a mapping whose
    values are R objects, R text, ResourceSets or None for an empty set).
    Each set's ``state`` is its name.  ``rl[state]`` is ``rl.state``; an
    unknown name raises AttributeError.
    """

    def __init__(self, resp: Mapping[str, Any]) -> None:
        if not isinstance(resp, Mapping):
            raise TypeError(f"SchedResourceList: expected a mapping, got {type(resp).__name__}")
        self._sets: dict[str, ResourceSet] = {}
        for state in _STATES:
            rset = resp.get(state)
            if not isinstance(rset, ResourceSet):
                rset = ResourceSet(rset)
            rset.state = state
            self._sets[state] = rset
        self._derived: dict[str, ResourceSet] = {}

    def __getattr__(self, attr: str) -> ResourceSet:
        if attr.startswith("_"):
            raise AttributeError(attr)
        if attr in self._sets:
            return self._sets[attr]
        if attr in ("up", "free"):
            return self._derive(attr)
        raise AttributeError(f"Invalid SchedResourceList attr {attr}")

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr in _STATES:
            if not isinstance(value, ResourceSet):
                value = ResourceSet(value)
            value.state = attr
            self._sets[attr] = value
            self._derived.clear()
        else:
            object.__setattr__(self, attr, value)

    def __getitem__(self, item: str) -> ResourceSet:
        return getattr(self, item)

    def _derive(self, state: str) -> ResourceSet:
        rset = self._derived.get(state)
        if rset is None:
            if state == "up":
                rset = self._sets["all"] - self._sets["down"]
            else:
                rset = self._derive("up") - self._sets["allocated"]
            rset.state = state
            self._derived[state] = rset
        return rset

    def _include_ranks(self, include: Any) -> IDset:
        if not isinstance(include, Hostlist):
            try:
                return IDset(include)
            except (TypeError, ValueError):
                pass
        return IDset(self._sets["all"].host_ranks(include, ignore_nomatch=True))

    def filter(self, include: Any) -> None:
        """Keep only the ranks in ``include``: an idset of ranks (str, IDset, ...) or
        a hostlist of hosts (str or Hostlist); unknown hosts are ignored."""
        ranks = self._include_ranks(include)
        for state in _STATES:
            setattr(self, state, self._sets[state].copy_ranks(ranks))

    def copy_constraint(self, constraint: Mapping[str, Any] | str) -> SchedResourceList:
        """A new SchedResourceList of the ranks matching the RFC 31 ``constraint``
        (ValueError if it is invalid)."""
        return SchedResourceList({state: self._sets[state].copy_constraint(constraint)
                                  for state in _STATES})

    def __repr__(self) -> str:
        return ("SchedResourceList(" + ", ".join(f"{s}={self[s].dumps()!r}"
                                                 for s in (*_STATES, "up", "free")) + ")")


class ResourceListRPC(FutureExt):
    """The future ``resource_list`` returns (a ``flux.future.FutureExt``); ``get()``
    gives a SchedResourceList.

    As with any FutureExt, the request goes to rank 0 at the first
    ``get()``, ``wait_for()`` or ``then()``.  If its service does not exist
    (ENOSYS), the same request goes to ``sched.resource-status``; any other
    error is the future's (``get()`` raises OSError with the service's
    text).  ``then(cb)`` calls ``cb(future)`` once the answer (or the
    error) is in.
    """

    def __init__(self, flux_handle: "Flux", topic: str, nodeid: int = 0) -> None:
        if flux_handle is None:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        self.topic = topic
        self.nodeid = nodeid
        super().__init__(self._init_cb, flux_handle=flux_handle)

    def _init_cb(self, future: "ResourceListRPC") -> None:
        future.get_flux().rpc(self.topic, nodeid=self.nodeid).then(self._list_cb)

    def _list_cb(self, rpc: "RPC") -> None:
        try:
            self.fulfill(rpc.get())
        except OSError as exc:
            if exc.errno == errno.ENOSYS and self.topic != FALLBACK_TOPIC:
                rpc.get_flux().rpc(FALLBACK_TOPIC, nodeid=self.nodeid).then(self._fallback_cb)
            else:
                self.fulfill_error(exc.errno or errno.EPROTO, exc.strerror)

    def _fallback_cb(self, rpc: "RPC") -> None:
        try:
            self.fulfill(rpc.get())
        except OSError as exc:
            self.fulfill_error(exc.errno or errno.EPROTO, exc.strerror)

    def get(self) -> SchedResourceList:
        """The SchedResourceList (waiting for it); OSError if the request failed."""
        return SchedResourceList(super().get())


def resource_list(flux_handle: "Flux") -> ResourceListRPC:
    """Ask rank 0 for the scheduler's view of resources; a future for a SchedResourceList.

    The topic is ``$FLUX_RESOURCE_LIST_RPC`` if set, else
    ``resource.sched-status``.
    """
    topic = os.getenv("FLUX_RESOURCE_LIST_RPC") or "resource.sched-status"
    return ResourceListRPC(flux_handle, topic, nodeid=0)
