"""Where a request goes next (RFC 3 "Default/Rank Request Routing"), as a pure function.

- nodeid ANY: a local service wins (unless the sender is that same
  service); otherwise go upstream; at rank 0 the answer is ENOSYS.
- UPSTREAM flag (nodeid holds the sender's rank): as ANY, except that the
  sending broker never delivers it locally.
- nodeid == this rank: the local service, or ENOSYS.
- nodeid below this rank in the tree: down to the child whose subtree
  holds it; elsewhere: upstream; beyond the instance size: EHOSTUNREACH.
"""
from __future__ import annotations

from broker.topology import Tree, child_toward
from flux.constants import FLUX_NODEID_ANY

LOCAL = 0
UPSTREAM = 1
DOWNSTREAM = 2
ENOSYS = 3
EHOSTUNREACH = 4

ACTION_NAMES = ("local", "upstream", "downstream", "enosys", "ehostunreach")


def route_request(rank: int, size: int, fanout: "int | Tree", nodeid: int, upstream_flag: bool,
                  has_local_service: bool, sender_is_service: bool = False
                  ) -> tuple[int, int | None]:
    """(action, child rank for DOWNSTREAM else None) for one request (FANOUT: the k of a
    k-ary tree, or the Tree)."""
    if nodeid == FLUX_NODEID_ANY or upstream_flag:
        local_ok = has_local_service and not sender_is_service
        if upstream_flag and nodeid == rank:
            local_ok = False
        if local_ok:
            return LOCAL, None
        return (UPSTREAM, None) if rank > 0 else (ENOSYS, None)
    if nodeid == rank:
        return (LOCAL, None) if has_local_service else (ENOSYS, None)
    if nodeid >= size:
        return EHOSTUNREACH, None
    child = (fanout.child_toward(rank, nodeid) if isinstance(fanout, Tree)
             else child_toward(rank, nodeid, fanout))
    if child is not None:
        return DOWNSTREAM, child
    return (UPSTREAM, None) if rank > 0 else (EHOSTUNREACH, None)


__all__ = ["route_request", "LOCAL", "UPSTREAM", "DOWNSTREAM", "ENOSYS", "EHOSTUNREACH",
           "ACTION_NAMES"]
