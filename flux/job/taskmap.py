"""Where a job's tasks go: pure functions of its jobspec and R, shared by exec, shell and PMI.

- ``r_ranks(R)``: (broker rank, cores, gpus) for each rank of R, in rank order;
  shell rank i of the job runs on the i-th of them.
- ``tasks_per_rank(summary, ncores, per_resource)``: how many tasks each
  rank runs (block layout, as flux-core's default taskmap):
  a jobspec with a node level has ``slots_per_node`` slots on every rank;
  otherwise a rank has as many slots as its cores allow
  (``cores // cores_per_slot``), capped at the jobspec's slot count;
  ``per_slot: N`` gives N tasks per slot; ``total: T`` deals T tasks to the
  slots in order, each getting ``T // nslots`` and the first ``T % nslots``
  one more; the ``per-resource`` shell option (``{"type": "node"|"core",
  "count": N}``) gives N tasks per rank or per core instead.  Task ranks
  are handed out in shell-rank order.
- ``layout(jobspec, R)``: both at once, for exec.
- ``cores_of_tasks(cores, ntasks)``: a rank's cores split among its tasks.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flux.idset import IDset
from flux.job.summary import JobspecSummary, summarize
from flux.resource.ResourceSet import decode_R

__all__ = ["r_ranks", "tasks_per_rank", "cores_of_tasks", "layout", "per_resource_option"]

def _one_id(s: Any) -> bool:
    """S names one id in its canonical form (what IDset(S).encode() gives back)."""
    return type(s) is str and s.isdigit() and s.isascii() and (s[0] != "0" or s == "0")


def r_ranks(R: Mapping[str, Any]) -> list[tuple[int, str, str]]:
    """(broker rank, cores, gpus) for every rank of R, in rank order."""
    execution = R.get("execution")
    if not isinstance(execution, Mapping) or not isinstance(execution.get("R_lite"), list):
        raise ValueError("R: execution.R_lite is missing")
    lite = execution["R_lite"]
    if len(lite) == 1 and type(lite[0]) is dict:
        # one rank with one core (most small jobs): the idsets would give back the
        # strings themselves, so none is built (exec lays out every job it starts)
        entry = lite[0]
        rank, children = entry.get("rank"), entry.get("children")
        if type(children) is dict and _one_id(rank) and len(children) <= 2:
            core, gpu = children.get("core"), children.get("gpu")
            if _one_id(core) and (gpu is None or _one_id(gpu)) \
                    and len(children) == (1 if gpu is None else 2):
                return [(int(rank), core, gpu or "")]
    found: dict[int, tuple[IDset, IDset]] = {}
    for i, entry in enumerate(execution["R_lite"]):
        if not isinstance(entry, Mapping):
            raise ValueError(f"R: execution.R_lite[{i}] must be an object")
        children = entry.get("children") or {}
        try:
            ranks = IDset(str(entry.get("rank", "")))
            cores = IDset(str(children.get("core", "")))
            gpus = IDset(str(children.get("gpu", "")))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"R: execution.R_lite[{i}]: {exc}") from None
        for rank in ranks:
            have = found.get(rank)
            found[rank] = (cores, gpus) if have is None else (have[0] | cores, have[1] | gpus)
    if not found:
        raise ValueError("R: execution.R_lite lists no ranks")
    return [(rank, found[rank][0].encode(), found[rank][1].encode()) for rank in sorted(found)]



def tasks_per_rank(summary: JobspecSummary, ncores: Sequence[int],
                   per_resource: Mapping[str, Any] | None = None) -> list[int]:
    """How many tasks each rank runs, given the number of cores R gives each rank."""
    if per_resource is not None:
        kind, count = per_resource.get("type"), per_resource.get("count", 1)
        if type(count) is not int or count < 1:
            raise ValueError(f"per-resource: count must be an integer >= 1, got {count!r}")
        if kind == "node":
            return [count] * len(ncores)
        if kind == "core":
            return [count * n for n in ncores]
        raise ValueError(f"per-resource: type must be node or core, got {kind!r}")
    if summary.nnodes:
        slots = [summary.slots_per_node] * len(ncores)
    else:
        per = max(summary.cores_per_slot, 1)
        slots = [n // per for n in ncores]
        # never more slots than the jobspec asked for (R may hold whole nodes)
        excess = sum(slots) - summary.nslots
        for i in range(len(slots) - 1, -1, -1):
            if excess <= 0:
                break
            cut = min(slots[i], excess)
            slots[i] -= cut
            excess -= cut
    nslots = sum(slots)
    if nslots == 0:
        raise ValueError("R does not hold enough cores for one slot of the job")
    base, extra = divmod(summary.ntasks, nslots)
    out, slot = [], 0
    for s in slots:
        n = 0
        for _ in range(s):
            n += base + (1 if slot < extra else 0)
            slot += 1
        out.append(n)
    return out



def cores_of_tasks(cores: str, ntasks: int) -> list[list[int]]:
    """Split a rank's cores among its NTASKS local tasks (cpu-affinity=per-task).

    Each task gets an equal block; with more tasks than cores, tasks share
    cores round-robin.
    """
    ids = IDset(cores).expand() if cores else []
    if ntasks <= 0:
        return []
    if not ids:
        return [[] for _ in range(ntasks)]
    if ntasks >= len(ids):
        return [[ids[i % len(ids)]] for i in range(ntasks)]
    per, extra = divmod(len(ids), ntasks)
    out, at = [], 0
    for i in range(ntasks):
        n = per + (1 if i < extra else 0)
        out.append(ids[at:at + n])
        at += n
    return out


def per_resource_option(jobspec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``per-resource`` shell option, if set (ValueError if it is not an object)."""
    system = ((jobspec.get("attributes") or {}).get("system") or {})
    shell = system.get("shell") if isinstance(system, Mapping) else None
    options = shell.get("options") if isinstance(shell, Mapping) else None
    value = options.get("per-resource") if isinstance(options, Mapping) else None
    if value is not None and not isinstance(value, Mapping):
        raise ValueError("per-resource: must be an object {type, count}")
    return value


def layout(jobspec: Mapping[str, Any], R: Any,
           summary: JobspecSummary | None = None) -> tuple[list[int], list[int]]:
    """(broker ranks of the job's shells, tasks on each); ValueError names what is wrong.

    SUMMARY: the jobspec's, when the caller has it."""
    ranks = r_ranks(decode_R(R))
    ncores = [(1 if _one_id(c) else len(IDset(c))) if c else 0 for _r, c, _g in ranks]
    counts = tasks_per_rank(summary or summarize(jobspec), ncores, per_resource_option(jobspec))
    return [r for r, _c, _g in ranks], counts
