"""The modules a broker loads at rc1, in load order (unloaded in reverse at rc3).

Each entry names the module, where its class lives (``package.module:Class``),
and which ranks load it: ``"all"``, ``"leader"`` (rank 0) or
``"followers"`` (ranks > 0).  Later parts of the system add their lines
here, e.g.::

    RcModule("content", "kvs.content_module:Content", "all"),
    RcModule("kvs", "kvs.kvs_module:Kvs", "all"),
    RcModule("job-manager", "jobmgr.manager.module:JobManager", "leader"),

``LOADABLE`` lists extra modules ``flux module load NAME`` knows by name;
any ``package.module:Class`` may also be loaded directly.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RcModule:
    name: str
    target: str
    ranks: str = "all"

    def loads_on(self, rank: int) -> bool:
        if self.ranks == "all":
            return True
        if self.ranks == "leader":
            return rank == 0
        if self.ranks == "followers":
            return rank > 0
        raise ValueError(f"rc1 module {self.name}: ranks must be all, leader or followers, "
                         f"not '{self.ranks}'")


RC1: tuple[RcModule, ...] = (
    # Planned load order; each line is uncommented by the task that adds the module.
    RcModule("content", "kvs.content_service:Content", "leader"),
    RcModule("content", "kvs.follower:ContentFollower", "followers"),
    RcModule("kvs", "kvs.service:Kvs", "leader"),
    RcModule("kvs", "kvs.follower:KvsFollower", "followers"),
    RcModule("kvs-watch", "kvs.watch_service:KvsWatch", "leader"),
    RcModule("kvs-watch", "kvs.follower:KvsWatchFollower", "followers"),
    RcModule("resource", "jobmgr.resource.module:Resource", "all"),
    RcModule("job-manager", "jobmgr.manager.module:JobManager", "leader"),
    RcModule("job-ingest", "jobmgr.ingest.module:JobIngest", "leader"),
    RcModule("job-exec", "jobmgr.exec.module:JobExec", "all"),
    RcModule("sched", "jobmgr.sched.module:Sched", "leader"),
    RcModule("job-list", "jobmgr.joblist.module:JobListModule", "leader"),
    RcModule("job-info", "jobmgr.jobinfo.module:JobInfoModule", "leader"),
    RcModule("cron", "broker.cron.module:Cron", "leader"),
    RcModule("barrier", "broker.barrier:Barrier", "leader"),
    RcModule("heartbeat", "broker.modules.heartbeat:Heartbeat", "all"),
)

LOADABLE: dict[str, str] = {
    "testmod": "broker.modules.testmod:TestModule",
    "testmod-b": "broker.modules.testmod:TestModuleB",
}


def known_target(name: str, rank: int = 0) -> str | None:
    """The ``package.module:Class`` for module NAME on RANK, if it is known by name."""
    for entry in RC1:
        if entry.name == name and entry.loads_on(rank):
            return entry.target
    return LOADABLE.get(name)


__all__ = ["RcModule", "RC1", "LOADABLE", "known_target"]
