"""The facts about a job that the job list and the scheduler read from its jobspec.

``summarize(jobspec)`` walks an RFC 25 (V1) jobspec once and returns a
``JobspecSummary``: task, slot, node, core and gpu counts, duration, name,
queue, cwd, project, bank, constraints and dependencies.  It runs for every
submitted job, so it does plain dict lookups and trusts that ingest
validated the jobspec; anything it cannot read raises ValueError naming the
jobspec path.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["JobspecSummary", "summarize", "summarize_shared", "remember_summary",
           "forget_summary", "job_name"]


@dataclass(slots=True)
class JobspecSummary:
    ntasks: int
    nslots: int
    cores_per_slot: int
    gpus_per_slot: int
    nnodes: int              # 0 when the jobspec does not ask for nodes
    slots_per_node: int      # 0 when nnodes is 0
    exclusive: bool          # whole nodes requested
    duration: float          # seconds, 0 = unset
    name: str
    queue: str | None = None
    cwd: str | None = None
    project: str | None = None
    bank: str | None = None
    constraints: dict[str, Any] | None = None
    dependencies: list[Any] | None = None

    @property
    def ncores(self) -> int:
        return self.nslots * self.cores_per_slot

    @property
    def ngpus(self) -> int:
        return self.nslots * self.gpus_per_slot


def _count(res: Mapping[str, Any], path: str) -> int:
    count = res.get("count", 1)
    if type(count) is int:
        if count < 1:
            raise ValueError(f"{path}.count: must be >= 1, got {count}")
        return count
    if isinstance(count, Mapping):
        low = count.get("min")
        if type(low) is int and low >= 1:
            return low
        raise ValueError(f"{path}.count.min: must be an integer >= 1, got {low!r}")
    if isinstance(count, str):
        # RFC 45 range or RFC 22 idset form: the minimum is the first number
        head = count.lstrip("[").split(",")[0].split("-")[0].split("+")[0].split(":")[0]
        if head.isdigit() and int(head) >= 1:
            return int(head)
    raise ValueError(f"{path}.count: invalid count {count!r}")


def _slot_children(slot: Mapping[str, Any], path: str) -> tuple[int, int]:
    cores = gpus = 0
    children = slot.get("with")
    if not isinstance(children, list) or not children:
        raise ValueError(f"{path}.with: a slot must contain cores")
    for i, child in enumerate(children):
        cpath = f"{path}.with[{i}]"
        if not isinstance(child, Mapping):
            raise ValueError(f"{cpath}: must be an object")
        kind = child.get("type")
        if kind == "core":
            cores += _count(child, cpath)
        elif kind == "gpu":
            gpus += _count(child, cpath)
        elif kind not in ("memory", "storage"):
            raise ValueError(f"{cpath}.type: unexpected resource type {kind!r} in a slot")
    if cores == 0:
        raise ValueError(f"{path}.with: a slot must contain cores")
    return cores, gpus


def job_name(jobspec: Mapping[str, Any]) -> str:
    """``attributes.system.job.name``, else the basename of the command's argv[0]."""
    system = (jobspec.get("attributes") or {}).get("system") or {}
    job = system.get("job")
    if isinstance(job, Mapping) and isinstance(job.get("name"), str):
        return job["name"]
    tasks = jobspec.get("tasks")
    if isinstance(tasks, list) and tasks and isinstance(tasks[0], Mapping):
        command = tasks[0].get("command")
        if isinstance(command, list) and command and isinstance(command[0], str):
            return command[0].rsplit("/", 1)[-1]
        if isinstance(command, str) and command:
            return command.rsplit("/", 1)[-1]
    return ""


def _check_no_nul(command: Any, environment: Any) -> None:
    """A NUL cannot be in an argument or an environment entry of a process: refused
    here, naming where, rather than failing the job's start."""
    if isinstance(command, list):
        for i, arg in enumerate(command):
            if isinstance(arg, str) and "\0" in arg:
                raise ValueError(f"tasks[0].command[{i}]: contains a NUL character")
    if isinstance(environment, Mapping):
        for name, value in environment.items():
            if "\0" in name or (isinstance(value, str) and "\0" in value):
                raise ValueError(f"attributes.system.environment: {name!r} contains a NUL "
                                 "character")
    elif environment is not None:
        raise ValueError("attributes.system.environment: must be an object")


def _opt_str(system: Mapping[str, Any], key: str) -> str | None:
    value = system.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"attributes.system.{key}: must be a string, got {value!r}")
    return value


def summarize(jobspec: Mapping[str, Any]) -> JobspecSummary:
    """Summarize a V1 jobspec; raises ValueError naming the bad path."""
    resources = jobspec.get("resources")
    if not isinstance(resources, list) or len(resources) != 1 \
            or not isinstance(resources[0], Mapping):
        raise ValueError("resources: must be a list of exactly one node or slot")
    top = resources[0]
    kind = top.get("type")
    nnodes = slots_per_node = 0
    exclusive = False
    if kind == "node":
        nnodes = _count(top, "resources[0]")
        exclusive = bool(top.get("exclusive", False))
        inner = top.get("with")
        if not isinstance(inner, list) or len(inner) != 1 or not isinstance(inner[0], Mapping) \
                or inner[0].get("type") != "slot":
            raise ValueError("resources[0].with: a node must contain exactly one slot")
        slot, spath = inner[0], "resources[0].with[0]"
        slots_per_node = _count(slot, spath)
        nslots = nnodes * slots_per_node
    elif kind == "slot":
        slot, spath = top, "resources[0]"
        nslots = _count(slot, spath)
    else:
        raise ValueError(f"resources[0].type: must be node or slot, got {kind!r}")
    cores, gpus = _slot_children(slot, spath)

    tasks = jobspec.get("tasks")
    if not isinstance(tasks, list) or not tasks or not isinstance(tasks[0], Mapping):
        raise ValueError("tasks: must be a list with one task")
    tcount = tasks[0].get("count")
    if not isinstance(tcount, Mapping):
        raise ValueError("tasks[0].count: must be an object")
    if "per_slot" in tcount:
        per = tcount["per_slot"]
        if type(per) is not int or per < 1:
            raise ValueError(f"tasks[0].count.per_slot: must be an integer >= 1, got {per!r}")
        ntasks = nslots * per
    elif "total" in tcount:
        ntasks = tcount["total"]
        if type(ntasks) is not int or ntasks < 1:
            raise ValueError(f"tasks[0].count.total: must be an integer >= 1, got {ntasks!r}")
    elif "per_resource" in tcount:
        per_res = tcount["per_resource"]
        if not isinstance(per_res, Mapping) or type(per_res.get("count")) is not int:
            raise ValueError("tasks[0].count.per_resource: must be {type, count}")
        rtype = per_res.get("type")
        if rtype == "node":
            base = nnodes or 1
        elif rtype == "core":
            base = nslots * cores
        else:
            raise ValueError(f"tasks[0].count.per_resource.type: must be node or core, "
                             f"got {rtype!r}")
        ntasks = base * per_res["count"]
    else:
        raise ValueError("tasks[0].count: needs per_slot, total or per_resource")

    attributes = jobspec.get("attributes") or {}
    system = attributes.get("system") if isinstance(attributes, Mapping) else None
    if system is None:
        system = {}
    elif not isinstance(system, Mapping):
        raise ValueError("attributes.system: must be an object")
    duration = system.get("duration", 0)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0:
        raise ValueError(f"attributes.system.duration: must be a number >= 0, got {duration!r}")
    constraints = system.get("constraints")
    if constraints is not None and not isinstance(constraints, dict):
        raise ValueError("attributes.system.constraints: must be an object")
    deps = system.get("dependencies")
    if deps is not None and not isinstance(deps, list):
        raise ValueError("attributes.system.dependencies: must be an array")
    _check_no_nul(tasks[0].get("command"), system.get("environment"))

    return JobspecSummary(
        ntasks=ntasks, nslots=nslots, cores_per_slot=cores, gpus_per_slot=gpus,
        nnodes=nnodes, slots_per_node=slots_per_node, exclusive=exclusive,
        duration=float(duration), name=job_name(jobspec),
        queue=_opt_str(system, "queue"), cwd=_opt_str(system, "cwd"),
        project=_opt_str(system, "project"), bank=_opt_str(system, "bank"),
        constraints=constraints or None, dependencies=deps or None)


_SHARED: dict[int, tuple[Any, JobspecSummary]] = {}
_SHARED_MAX = 2048


def summarize_shared(jobspec: Mapping[str, Any]) -> JobspecSummary:
    """``summarize`` for a jobspec nobody changes in place, remembered by identity.

    The broker's modules replace a job's jobspec on update and never edit it,
    and pass the job's one object around in-process: ingest, the scheduler,
    the job list and exec each need every job's summary.  The last
    ``_SHARED_MAX`` are kept with their jobspecs (held, so an id is not
    reused while it is in the table): a burst of that many jobs is
    summarized once per job.  Callers must not change the summary either.
    """
    hit = _SHARED.get(id(jobspec))
    if hit is not None and hit[0] is jobspec:
        return hit[1]
    summary = summarize(jobspec)
    remember_summary(jobspec, summary)
    return summary


def remember_summary(jobspec: Mapping[str, Any], summary: JobspecSummary) -> None:
    """Give ``summarize_shared`` JOBSPEC's SUMMARY, made by ``summarize`` elsewhere."""
    if len(_SHARED) >= _SHARED_MAX and id(jobspec) not in _SHARED:
        del _SHARED[next(iter(_SHARED))]      # the oldest: its job is long past
    _SHARED[id(jobspec)] = (jobspec, summary)


def forget_summary(jobspec: Mapping[str, Any]) -> None:
    """JOBSPEC's job is over: stop holding it (an inactive job keeps no jobspec)."""
    hit = _SHARED.get(id(jobspec))
    if hit is not None and hit[0] is jobspec:
        del _SHARED[id(jobspec)]
