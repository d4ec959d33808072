"""What one job shell knows about its job: pure functions of jobspec, R and its rank.

``job_info(jobid, jobspec, R, broker_rank)`` returns a ``JobInfo``: the
job's shells (one per broker rank of R, in rank order), how many tasks each
runs and which global task ranks those are, the cores and GPUs of each
rank, the command, cwd, environment and shell options.  The task layout
itself (shared with exec and PMI) is flux/job/taskmap.py.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flux.hostlist import Hostlist
from flux.idset import IDset
from flux.job.summary import JobspecSummary, summarize
from flux.job.taskmap import cores_of_tasks, per_resource_option, r_ranks, tasks_per_rank
from flux.resource.ResourceSet import decode_R
from shell.pmi.mapping import map_tasks, tasks_by_node

__all__ = ["RankInfo", "JobInfo", "job_info", "r_ranks", "tasks_per_rank", "shell_options",
           "cores_of_tasks"]


@dataclass(slots=True, frozen=True)
class RankInfo:
    """One shell of the job: where it runs and which tasks are its own."""

    shell_rank: int
    broker_rank: int
    hostname: str
    cores: str                 # RFC 22 idset of the cores R gives this rank
    gpus: str
    ntasks: int
    first_task: int            # global rank of its first task
    #: its task ranks when the ``taskmap`` option makes them other than consecutive
    task_ids: tuple[int, ...] | None = None

    @property
    def task_ranks(self) -> range | tuple[int, ...]:
        if self.task_ids is not None:
            return self.task_ids
        return range(self.first_task, self.first_task + self.ntasks)


@dataclass(slots=True)
class JobInfo:
    jobid: int
    shell_rank: int            # this shell's rank in the job (index into ``ranks``)
    ranks: list[RankInfo]
    ntasks: int
    summary: JobspecSummary
    command: list[str]
    cwd: str | None
    environment: dict[str, str]
    options: dict[str, Any]
    jobspec: Mapping[str, Any]
    R: Mapping[str, Any]
    starttime: float = 0.0
    expiration: float = 0.0    # 0: no time limit
    extra: dict[str, Any] = field(default_factory=dict)
    #: the node (shell rank) of each task rank; None: block (consecutive ranks per node)
    nodeids: list[int] | None = None

    @property
    def size(self) -> int:
        """Number of shells in the job."""
        return len(self.ranks)

    @property
    def me(self) -> RankInfo:
        return self.ranks[self.shell_rank]

    @property
    def tasks_per_shell(self) -> list[int]:
        return [r.ntasks for r in self.ranks]




def _hostnames(R: Mapping[str, Any], count: int) -> list[str]:
    nodelist = (R.get("execution") or {}).get("nodelist")
    hosts: list[str] = []
    if isinstance(nodelist, list):
        for entry in nodelist:
            try:
                hosts.extend(Hostlist(str(entry)).expand())
            except (ValueError, TypeError):
                hosts = []
                break
    if len(hosts) != count:
        return [""] * count
    return hosts


def shell_options(jobspec: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes.system.shell.options`` (an empty dict when absent or not an object)."""
    system = ((jobspec.get("attributes") or {}).get("system") or {})
    shell = system.get("shell") if isinstance(system, Mapping) else None
    options = shell.get("options") if isinstance(shell, Mapping) else None
    return dict(options) if isinstance(options, Mapping) else {}






def _command(jobspec: Mapping[str, Any]) -> list[str]:
    tasks = jobspec.get("tasks")
    command = tasks[0].get("command") if isinstance(tasks, list) and tasks \
        and isinstance(tasks[0], Mapping) else None
    if isinstance(command, str):
        command = [command]
    if not isinstance(command, list) or not command \
            or not all(isinstance(a, str) for a in command):
        raise ValueError("tasks[0].command: must be a non-empty list of strings")
    return list(command)


def job_info(jobid: int, jobspec: Mapping[str, Any], R: Any, broker_rank: int) -> JobInfo:
    """The JobInfo of the shell on BROKER_RANK; ValueError names what is wrong."""
    R = decode_R(R)
    summary = summarize(jobspec)
    ranks = r_ranks(R)
    options = shell_options(jobspec)
    counts = tasks_per_rank(summary, [len(IDset(c)) if c else 0 for _r, c, _g in ranks],
                            per_resource_option(jobspec))
    hosts = _hostnames(R, len(ranks))
    nodeids = map_tasks(counts, options.get("taskmap"), hosts)
    by_node = tasks_by_node(nodeids) if nodeids is not None else []
    infos, first = [], 0
    for i, ((rank, cores, gpus), n) in enumerate(zip(ranks, counts)):
        ids = tuple(by_node[i]) if i < len(by_node) else ()
        infos.append(RankInfo(i, rank, hosts[i], cores, gpus, n,
                              ids[0] if ids else first, ids if nodeids is not None else None))
        first += n
    me = next((i.shell_rank for i in infos if i.broker_rank == broker_rank), None)
    if me is None:
        raise ValueError(f"R does not include broker rank {broker_rank}")
    system = (jobspec.get("attributes") or {}).get("system") or {}
    env = system.get("environment") if isinstance(system, Mapping) else None
    environment = {str(k): str(v) for k, v in env.items()} if isinstance(env, Mapping) else {}
    execution = R.get("execution") or {}
    return JobInfo(jobid=jobid, shell_rank=me, ranks=infos, ntasks=first, summary=summary,
                   command=_command(jobspec), cwd=summary.cwd, environment=environment,
                   options=options, jobspec=jobspec, R=R,
                   starttime=float(execution.get("starttime") or 0.0),
                   expiration=float(execution.get("expiration") or 0.0), nodeids=nodeids)
