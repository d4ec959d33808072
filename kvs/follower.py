"""The KVS services on ranks > 0: their ``ping`` answered here, the rest on rank 0.

The store and the KVS live on rank 0 (ARCHITECTURE.md).  flux-core loads
``content``, ``kvs`` and ``kvs-watch`` on every broker, and flux-ping(1)'s
``flux ping 4!kvs`` expects a ``kvs`` on rank 4: these modules are that
service on a follower.  They hold no data: a request other than ``ping``
goes on to rank 0 unchanged (the sender's route and credentials), and its
response returns to the sender straight from there.
"""
from __future__ import annotations

from broker.module import Module

__all__ = ["ContentFollower", "KvsFollower", "KvsWatchFollower"]


class ContentFollower(Module):
    name = "content"
    services = ("content",)
    forward_to_leader = True


class KvsFollower(Module):
    name = "kvs"
    services = ("kvs",)
    forward_to_leader = True


class KvsWatchFollower(Module):
    name = "kvs-watch"
    services = ("kvs-watch",)
    forward_to_leader = True
