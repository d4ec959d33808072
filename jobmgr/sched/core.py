"""The scheduler's allocation core: R in, R out, no I/O.

``SchedCore(R)`` takes the instance's RFC 20 R and keeps, per node, which
cores and gpus are free (as bitmasks).  ``allocate(jobid, request, now)``
picks resources first-fit in rank order and returns the job's R (version 1,
with starttime and expiration), or None when they are not free now;
``free(jobid)`` gives them back.  ``feasible(request)`` says whether a
request could ever be met by the instance (None) or why not
(``"unsatisfiable request: ..."``), so impossible jobs are refused at submit.

Nodes that are offline, drained, excluded or torpid are left out of new
allocations (``set_unavailable``); jobs already on them keep their resources
until freed.  Named queues restrict jobs to nodes with the queue's
properties; a job's own RFC 31 constraint narrows that further.

Cost: an allocation walks only nodes that have free cores, a request that
cannot fit is refused from per-count tallies without a walk, and a free
touches only the job's nodes.  The scheduling order (priority, then submit
order) belongs to the caller.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from flux.resource.ResourceSet import decode_R

__all__ = ["SchedCore", "Request", "resource_summary", "REASON_INSUFFICIENT"]

REASON_INSUFFICIENT = "insufficient resources"


@dataclass(frozen=True, slots=True)
class Request:
    """What a job asks for: ``nslots`` slots of cores (+ gpus) each.

    ``nnodes`` > 0 spreads the slots over exactly that many nodes
    (``slots_per_node`` on each); ``exclusive`` takes those nodes whole.
    """

    nslots: int
    cores_per_slot: int = 1
    gpus_per_slot: int = 0
    nnodes: int = 0
    slots_per_node: int = 0
    exclusive: bool = False
    duration: float = 0.0
    constraint: Mapping[str, Any] | None = None
    queue: str | None = None

    @classmethod
    def from_summary(cls, summary: Any) -> Request:
        """From a flux.job.summary.JobspecSummary."""
        return cls(nslots=summary.nslots, cores_per_slot=summary.cores_per_slot,
                   gpus_per_slot=summary.gpus_per_slot, nnodes=summary.nnodes,
                   slots_per_node=summary.slots_per_node, exclusive=summary.exclusive,
                   duration=summary.duration, constraint=summary.constraints,
                   queue=summary.queue)

    @classmethod
    def from_jobspec(cls, jobspec: Mapping[str, Any]) -> Request:
        from flux.job.summary import summarize_shared

        return cls.from_summary(summarize_shared(jobspec))

    def per_node(self) -> int:
        if self.nnodes <= 0:
            return 0
        if self.slots_per_node > 0:
            return self.slots_per_node
        return -(-self.nslots // self.nnodes)


# -- small encoders --------------------------------------------------------------

def _ranges(ids: Iterable[int]) -> str:
    """Sorted ints -> RFC 22 ranges (``0-3,5``)."""
    out: list[str] = []
    start = prev = None
    for i in ids:
        if start is None:
            start = prev = i
        elif i == prev + 1:  # type: ignore[operator]
            prev = i
        else:
            out.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = i
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else str(start))
    return ",".join(out)


def _mask_ids(mask: int) -> list[int]:
    ids = []
    while mask:
        low = mask & -mask
        ids.append(low.bit_length() - 1)
        mask ^= low
    return ids


def _mask_to_idset(mask: int) -> str:
    if not mask:
        return ""
    lo = (mask & -mask).bit_length() - 1
    hi = mask.bit_length() - 1
    if mask == (1 << (hi + 1)) - (1 << lo):
        return str(lo) if lo == hi else f"{lo}-{hi}"
    return _ranges(_mask_ids(mask))


def _idset_to_mask(text: str, where: str) -> int:
    from flux.idset import IDset

    try:
        ids = IDset(text)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    mask = 0
    for lo, hi in ids.ranges():
        mask |= (1 << (hi + 1)) - (1 << lo)
    return mask


def _lowest(mask: int, count: int) -> int:
    """The ``count`` lowest set bits of ``mask``."""
    taken = 0
    for _ in range(count):
        low = mask & -mask
        taken |= low
        mask ^= low
    return taken


def _bracket(name: str, ids: str) -> str:
    return f"{name}{ids}" if ids.isdigit() else f"{name}[{ids}]"


def resource_summary(R: Mapping[str, Any]) -> str:
    """Short form of an R, e.g. ``rank0/core[0-1]`` or ``rank[0-3]/core[0-7],gpu0``."""
    parts = []
    for entry in R["execution"]["R_lite"]:
        children = entry.get("children") or {}
        kids = [_bracket(kind, children[kind]) for kind in ("core", "gpu")
                if children.get(kind)]
        parts.append(_bracket("rank", entry["rank"]) + "/" + ",".join(kids))
    return " ".join(parts)


@dataclass(slots=True)
class _Alloc:
    picks: list[tuple[int, int, int]]       # (node index, core mask, gpu mask)
    R: dict[str, Any]


class SchedCore:
    """Free and allocated resources of one instance, and first-fit allocation."""

    def __init__(self, R: Mapping[str, Any] | str | bytes | Any,
                 queues: Mapping[str, Sequence[str]] | None = None) -> None:
        """``R`` is the instance R (dict, JSON, or anything with ``encode()``);
        ``queues`` maps each named queue to the properties its nodes need."""
        R = self._as_dict(R)
        self._parse(R)
        self.queues: dict[str, tuple[str, ...]] = {
            name: tuple(props or ()) for name, props in (queues or {}).items()}
        self._constraint_cache: dict[bytes, frozenset[int] | None] = {}
        self._allocs: dict[int, _Alloc] = {}

    # -- setup -------------------------------------------------------------------

    @staticmethod
    def _as_dict(R: Any) -> dict[str, Any]:
        if hasattr(R, "encode") and not isinstance(R, (str, bytes)):
            R = R.encode()
        if not isinstance(R, (str, bytes, Mapping)):
            raise ValueError(f"R: expected an object or JSON, got {type(R).__name__}")
        return dict(decode_R(R))

    def _parse(self, R: Mapping[str, Any]) -> None:
        from flux.hostlist import Hostlist
        from flux.idset import IDset

        if R.get("version") != 1:
            raise ValueError(f"R.version: must be 1, got {R.get('version')!r}")
        execution = R.get("execution")
        if not isinstance(execution, Mapping):
            raise ValueError("R.execution: must be an object")
        r_lite = execution.get("R_lite")
        if not isinstance(r_lite, list):
            raise ValueError("R.execution.R_lite: must be an array")
        nodes: dict[int, list[int]] = {}
        for i, entry in enumerate(r_lite):
            where = f"R.execution.R_lite[{i}]"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("rank"), str):
                raise ValueError(f"{where}.rank: must be an idset string")
            children = entry.get("children")
            if not isinstance(children, Mapping):
                raise ValueError(f"{where}.children: must be an object")
            cores = _idset_to_mask(children.get("core", ""), f"{where}.children.core")
            gpus = _idset_to_mask(children.get("gpu", ""), f"{where}.children.gpu")
            try:
                ranks = IDset(entry["rank"]).expand()
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{where}.rank: {exc}") from None
            for rank in ranks:
                node = nodes.setdefault(rank, [0, 0])
                node[0] |= cores
                node[1] |= gpus
        ranks = sorted(nodes)
        hosts: list[str] = []
        for text in execution.get("nodelist") or []:
            try:
                hosts.extend(Hostlist(text).expand())
            except (ValueError, TypeError) as exc:
                raise ValueError(f"R.execution.nodelist: {exc}") from None
        if hosts and len(hosts) != len(ranks):
            raise ValueError(f"R.execution.nodelist: {len(hosts)} hosts for "
                             f"{len(ranks)} ranks")
        if not hosts:
            hosts = [f"rank{r}" for r in ranks]
        props: dict[int, set[str]] = {r: set() for r in ranks}
        for pname, idset in (execution.get("properties") or {}).items():
            try:
                for rank in IDset(idset).expand():
                    if rank in props:
                        props[rank].add(pname)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"R.execution.properties.{pname}: {exc}") from None

        self._rank = ranks
        self._host = hosts
        self._index = {rank: i for i, rank in enumerate(ranks)}
        self._all_cores = [nodes[r][0] for r in ranks]
        self._all_gpus = [nodes[r][1] for r in ranks]
        self._ncores = [m.bit_count() for m in self._all_cores]
        self._ngpus = [m.bit_count() for m in self._all_gpus]
        self._props = [frozenset(props[r]) for r in ranks]
        self._free_cores = list(self._all_cores)
        self._free_gpus = list(self._all_gpus)
        self._nfree = list(self._ncores)
        self._nfree_gpu = list(self._ngpus)
        self._usable = [True] * len(ranks)
        self._maxcores = max(self._ncores, default=0)
        self._hist = [0] * (self._maxcores + 1)      # usable nodes by free core count
        for n in self._nfree:
            self._hist[n] += 1
        self._free_total = sum(self._nfree)
        self._free_gpu_total = sum(self._nfree_gpu)
        self._cand = [i for i, n in enumerate(self._nfree) if n > 0]
        self.starttime = float(execution.get("starttime") or 0.0)
        self.expiration = float(execution.get("expiration") or 0.0)
        self._properties = {k: v for k, v in (execution.get("properties") or {}).items()}

    # -- bookkeeping -------------------------------------------------------------

    def _set_free(self, i: int, cores: int, gpus: int) -> None:
        """Change node i's free masks, keeping tallies and the candidate list right."""
        old_n = self._nfree[i]
        new_n = cores.bit_count()
        new_g = gpus.bit_count()
        if self._usable[i]:
            self._hist[old_n] -= 1
            self._hist[new_n] += 1
            self._free_total += new_n - old_n
            self._free_gpu_total += new_g - self._nfree_gpu[i]
            if old_n == 0 and new_n > 0:
                _insort(self._cand, i)
            elif old_n > 0 and new_n == 0:
                _discard(self._cand, i)
        self._free_cores[i] = cores
        self._free_gpus[i] = gpus
        self._nfree[i] = new_n
        self._nfree_gpu[i] = new_g

    def set_unavailable(self, ranks: Iterable[int]) -> None:
        """Ranks that must get no new allocations (offline, drained, excluded, torpid)."""
        down = {self._index[r] for r in ranks if r in self._index}
        for i in range(len(self._rank)):
            usable = i not in down
            if usable == self._usable[i]:
                continue
            n = self._nfree[i]
            sign = 1 if usable else -1
            self._hist[n] += sign
            self._free_total += sign * n
            self._free_gpu_total += sign * self._nfree_gpu[i]
            self._usable[i] = usable
            if n > 0:
                if usable:
                    _insort(self._cand, i)
                else:
                    _discard(self._cand, i)

    @property
    def unavailable(self) -> list[int]:
        return [self._rank[i] for i, ok in enumerate(self._usable) if not ok]

    def set_expiration(self, expiration: float) -> None:
        """The instance's own expiration (0 = none), used for jobs without a duration."""
        self.expiration = float(expiration)

    def set_queues(self, queues: Mapping[str, Sequence[str]]) -> None:
        """New queue requirements (``flux config reload``); allocations are kept."""
        self.queues = {name: tuple(props or ()) for name, props in queues.items()}
        self._constraint_cache.clear()

    # -- constraints ---------------------------------------------------------------

    def _match(self, request: Request) -> frozenset[int] | None:
        """Node indexes the request may use (None = all)."""
        parts: list[Any] = []
        if request.queue is not None and self.queues:
            if request.queue not in self.queues:
                raise ValueError(f"unknown queue {request.queue!r}")
            required = self.queues[request.queue]
            if required:
                parts.append({"properties": list(required)})
        if request.constraint:
            parts.append(request.constraint)
        if not parts:
            return None
        cons = parts[0] if len(parts) == 1 else {"and": parts}
        key = orjson.dumps(cons, option=orjson.OPT_SORT_KEYS)
        if key not in self._constraint_cache:
            self._constraint_cache[key] = frozenset(self._eval(cons, "constraint"))
        return self._constraint_cache[key]

    def _eval(self, cons: Any, where: str) -> set[int]:
        everything = set(range(len(self._rank)))
        if not isinstance(cons, Mapping):
            raise ValueError(f"{where}: must be an object")
        if not cons:
            return everything
        result = set(everything)
        for op, args in cons.items():
            path = f"{where}.{op}"
            if not isinstance(args, list):
                raise ValueError(f"{path}: must be an array")
            if op == "and":
                for i, sub in enumerate(args):
                    result &= self._eval(sub, f"{path}[{i}]")
            elif op == "or":
                if not args:       # RFC 31: an empty "or" matches everything
                    continue
                union: set[int] = set()
                for i, sub in enumerate(args):
                    union |= self._eval(sub, f"{path}[{i}]")
                result &= union
            elif op == "not":
                inner = set(everything)
                for i, sub in enumerate(args):
                    inner &= self._eval(sub, f"{path}[{i}]")
                result &= everything - inner
            elif op == "properties":
                for prop in args:
                    if not isinstance(prop, str) or not prop.lstrip("^"):
                        raise ValueError(f"{path}: invalid property {prop!r}")
                    if prop.startswith("^"):
                        result &= {i for i in everything if prop[1:] not in self._props[i]}
                    else:
                        result &= {i for i in everything if prop in self._props[i]}
            elif op == "hostlist":
                from flux.hostlist import Hostlist

                hosts: set[str] = set()
                for text in args:
                    try:
                        hosts.update(Hostlist(text).expand())
                    except (ValueError, TypeError) as exc:
                        raise ValueError(f"{path}: {exc}") from None
                result &= {i for i in everything if self._host[i] in hosts}
            elif op == "ranks":
                from flux.idset import IDset

                wanted: set[int] = set()
                for text in args:
                    try:
                        wanted.update(IDset(text).expand())
                    except (ValueError, TypeError) as exc:
                        raise ValueError(f"{path}: {exc}") from None
                result &= {i for i in everything if self._rank[i] in wanted}
            else:
                raise ValueError(f"{path}: unknown constraint operator {op!r}")
        return result

    # -- requests ------------------------------------------------------------------

    @staticmethod
    def _check_request(request: Request) -> None:
        if request.nslots < 1 or request.cores_per_slot < 1 or request.gpus_per_slot < 0 \
                or request.nnodes < 0:
            raise ValueError(f"invalid request: {request}")
        if request.nnodes > request.nslots:
            raise ValueError(f"invalid request: {request.nnodes} nodes for "
                             f"{request.nslots} slots")

    def feasible(self, request: Request) -> str | None:
        """None if the instance could ever satisfy ``request``, else the reason."""
        self._check_request(request)
        try:
            allowed = self._match(request)
        except ValueError as exc:
            return f"unsatisfiable request: {exc}"
        nodes = range(len(self._rank)) if allowed is None else sorted(allowed)
        if not nodes:
            return "unsatisfiable request: no resources match the job's constraints"
        c, g = request.cores_per_slot, request.gpus_per_slot
        if request.nnodes > 0:
            per = request.per_node()
            fit = sum(1 for i in nodes if self._ncores[i] >= per * c and self._ngpus[i] >= per * g)
            if fit < request.nnodes:
                return (f"unsatisfiable request: {request.nnodes} node(s) with "
                        f"{per * c} core(s)" + (f" and {per * g} gpu(s)" if g else "")
                        + f" requested, only {fit} available")
            return None
        slots = 0
        for i in nodes:
            k = self._ncores[i] // c
            if g:
                k = min(k, self._ngpus[i] // g)
            slots += k
        if slots < request.nslots:
            what = f"{c} core(s)" + (f" and {g} gpu(s)" if g else "")
            return (f"unsatisfiable request: {request.nslots} slot(s) of {what} requested, "
                    f"the instance has room for {slots}")
        return None

    def _quick_reject(self, request: Request) -> bool:
        c, g = request.cores_per_slot, request.gpus_per_slot
        per = request.per_node() or 1
        if request.exclusive and request.nnodes:
            return False
        if self._free_total < request.nslots * c or self._free_gpu_total < request.nslots * g:
            return True
        need = per * c if request.nnodes else c
        if need > self._maxcores:
            return True
        return not any(self._hist[need:])

    def allocate(self, jobid: int, request: Request, now: float) -> dict[str, Any] | None:
        """Allocate for ``jobid`` first-fit; the job's R, or None if it does not fit now."""
        if jobid in self._allocs:
            raise ValueError(f"job {jobid} already holds resources")
        self._check_request(request)
        allowed = self._match(request)
        if self._quick_reject(request):
            return None
        picks = self._pick_nodes(request, allowed) if request.nnodes \
            else self._pick_slots(request, allowed)
        if picks is None:
            return None
        for i, cores, gpus in picks:
            self._set_free(i, self._free_cores[i] & ~cores, self._free_gpus[i] & ~gpus)
        expiration = now + request.duration if request.duration > 0 else self.expiration
        R = self._build_R(picks, now, expiration)
        self._allocs[jobid] = _Alloc(picks, R)
        return R

    def _candidates(self, allowed: frozenset[int] | None) -> Iterable[int]:
        # picking does not change the candidate list (commits come after), so
        # it is walked in place, only as far as the request needs
        if allowed is None:
            return self._cand
        if len(allowed) < len(self._cand):
            return (i for i in sorted(allowed) if self._usable[i] and self._nfree[i])
        return (i for i in self._cand if i in allowed)

    def _pick_slots(self, request: Request,
                    allowed: frozenset[int] | None) -> list[tuple[int, int, int]] | None:
        c, g = request.cores_per_slot, request.gpus_per_slot
        need = request.nslots
        picks = []
        for i in self._candidates(allowed):
            k = self._nfree[i] // c
            if g:
                k = min(k, self._nfree_gpu[i] // g)
            if k <= 0:
                continue
            take = min(k, need)
            picks.append((i, _lowest(self._free_cores[i], take * c),
                          _lowest(self._free_gpus[i], take * g)))
            need -= take
            if need == 0:
                return picks
        return None

    def _pick_nodes(self, request: Request,
                    allowed: frozenset[int] | None) -> list[tuple[int, int, int]] | None:
        per = request.per_node()
        c, g = per * request.cores_per_slot, per * request.gpus_per_slot
        picks = []
        for i in self._candidates(allowed):
            if request.exclusive:
                if self._free_cores[i] != self._all_cores[i] \
                        or self._free_gpus[i] != self._all_gpus[i] \
                        or self._ncores[i] < c or self._ngpus[i] < g:
                    continue
                picks.append((i, self._all_cores[i], self._all_gpus[i]))
            else:
                if self._nfree[i] < c or self._nfree_gpu[i] < g:
                    continue
                picks.append((i, _lowest(self._free_cores[i], c),
                              _lowest(self._free_gpus[i], g)))
            if len(picks) == request.nnodes:
                return picks
        return None

    def _build_R(self, picks: Sequence[tuple[int, int, int]], starttime: float,
                 expiration: float) -> dict[str, Any]:
        from flux.hostlist import Hostlist

        r_lite: list[dict[str, Any]] = []
        group_ranks: list[int] = []
        group_key: tuple[int, int] | None = None
        ordered = sorted(picks)

        def flush() -> None:
            if group_key is None:
                return
            children = {"core": _mask_to_idset(group_key[0])}
            if group_key[1]:
                children["gpu"] = _mask_to_idset(group_key[1])
            r_lite.append({"rank": _ranges(group_ranks), "children": children})

        for i, cores, gpus in ordered:
            key = (cores, gpus)
            if key != group_key:
                flush()
                group_key, group_ranks = key, []
            group_ranks.append(self._rank[i])
        flush()
        execution: dict[str, Any] = {
            "R_lite": r_lite,
            "nodelist": [Hostlist([self._host[i] for i, _, _ in ordered]).encode()],
            "starttime": float(starttime),
            "expiration": float(expiration),
        }
        props: dict[str, list[int]] = {}
        for i, _, _ in ordered:
            for prop in self._props[i]:
                if not prop.startswith("+"):
                    props.setdefault(prop, []).append(self._rank[i])
        if props:
            execution["properties"] = {k: _ranges(v) for k, v in sorted(props.items())}
        return {"version": 1, "execution": execution}

    # -- free and restore ----------------------------------------------------------

    def _picks_from_R(self, R: Mapping[str, Any], where: str) -> list[tuple[int, int, int]]:
        from flux.idset import IDset

        R = self._as_dict(R)
        try:
            r_lite = R["execution"]["R_lite"]
        except (KeyError, TypeError):
            raise ValueError(f"{where}: R has no execution.R_lite") from None
        picks: dict[int, list[int]] = {}
        for n, entry in enumerate(r_lite):
            children = entry.get("children") or {}
            cores = _idset_to_mask(children.get("core", ""), f"{where}.R_lite[{n}].core")
            gpus = _idset_to_mask(children.get("gpu", ""), f"{where}.R_lite[{n}].gpu")
            for rank in IDset(entry["rank"]).expand():
                i = self._index.get(rank)
                if i is None:
                    raise ValueError(f"{where}: rank {rank} is not in the instance")
                if cores & ~self._all_cores[i] or gpus & ~self._all_gpus[i]:
                    raise ValueError(f"{where}: rank {rank} has no such cores/gpus")
                pick = picks.setdefault(i, [0, 0])
                pick[0] |= cores
                pick[1] |= gpus
        return [(i, c, g) for i, (c, g) in sorted(picks.items())]

    def restore(self, jobid: int, R: Mapping[str, Any] | str | bytes) -> None:
        """Mark an existing allocation (RFC 27 hello after a restart) as taken."""
        if jobid in self._allocs:
            raise ValueError(f"job {jobid} already holds resources")
        picks = self._picks_from_R(R, f"job {jobid}")
        for i, cores, gpus in picks:
            if cores & ~self._free_cores[i] or gpus & ~self._free_gpus[i]:
                raise ValueError(f"job {jobid}: resources on rank {self._rank[i]} are "
                                 "already allocated")
        for i, cores, gpus in picks:
            self._set_free(i, self._free_cores[i] & ~cores, self._free_gpus[i] & ~gpus)
        self._allocs[jobid] = _Alloc(picks, self._as_dict(R))

    def free(self, jobid: int, R: Mapping[str, Any] | str | bytes | None = None,
             final: bool = True) -> None:
        """Return a job's resources (only those in ``R`` for a partial free).

        With ``final`` the job is forgotten even if some of its resources
        were not named in ``R``.  KeyError if the job holds nothing.
        """
        alloc = self._allocs.get(jobid)
        if alloc is None:
            raise KeyError(f"job {jobid} holds no resources")
        if R is None:
            release = alloc.picks
        else:
            release = self._picks_from_R(R, f"job {jobid}")
        held = {i: (c, g) for i, c, g in alloc.picks}
        remaining = []
        for i, cores, gpus in release:
            have = held.get(i)
            if have is None:
                raise ValueError(f"job {jobid}: rank {self._rank[i]} is not allocated to it")
            cores &= have[0]
            gpus &= have[1]
            self._set_free(i, self._free_cores[i] | cores, self._free_gpus[i] | gpus)
            held[i] = (have[0] & ~cores, have[1] & ~gpus)
        if final:
            for i, (c, g) in held.items():
                if c or g:
                    self._set_free(i, self._free_cores[i] | c, self._free_gpus[i] | g)
            del self._allocs[jobid]
            return
        remaining = [(i, c, g) for i, (c, g) in sorted(held.items()) if c or g]
        if remaining:
            alloc.picks = remaining
        else:
            del self._allocs[jobid]

    # -- views ---------------------------------------------------------------------

    def __contains__(self, jobid: int) -> bool:
        return jobid in self._allocs

    def R_of(self, jobid: int) -> dict[str, Any]:
        return self._allocs[jobid].R

    @property
    def jobs(self) -> list[int]:
        return list(self._allocs)

    @property
    def free_cores(self) -> int:
        """Free cores on usable nodes."""
        return self._free_total

    @property
    def free_gpus(self) -> int:
        return self._free_gpu_total

    @property
    def ncores(self) -> int:
        return sum(self._ncores)

    @property
    def ngpus(self) -> int:
        return sum(self._ngpus)

    def busy_ranks(self) -> set[int]:
        """Ranks with something allocated (for drain vs draining)."""
        return {self._rank[i] for i in range(len(self._rank))
                if self._free_cores[i] != self._all_cores[i]
                or self._free_gpus[i] != self._all_gpus[i]}

    def reason_pending(self, request: Request) -> str | None:
        """The ``sched.reason_pending`` annotation for a request that waits."""
        why = self.feasible(request)
        return REASON_INSUFFICIENT if why is None else why

    def status(self) -> dict[str, dict[str, Any]]:
        """R of ``all``, ``allocated``, ``free`` and ``down`` resources (flux resource list).

        ``down`` is every resource on an unavailable node; ``free`` and
        ``allocated`` cover the usable nodes.
        """
        everything = [(i, self._all_cores[i], self._all_gpus[i]) for i in range(len(self._rank))]
        allocated = []
        free = []
        down = []
        for i in range(len(self._rank)):
            used_c = self._all_cores[i] & ~self._free_cores[i]
            used_g = self._all_gpus[i] & ~self._free_gpus[i]
            if used_c or used_g:
                allocated.append((i, used_c, used_g))
            if not self._usable[i]:
                down.append((i, self._all_cores[i], self._all_gpus[i]))
            elif self._free_cores[i] or self._free_gpus[i]:
                free.append((i, self._free_cores[i], self._free_gpus[i]))
        from flux.idset import IDset

        out = {}
        for name, picks in (("all", everything), ("allocated", allocated), ("free", free),
                            ("down", down)):
            R = self._build_R(picks, self.starttime, self.expiration) if picks else \
                {"version": 1, "execution": {"R_lite": [], "nodelist": [],
                                             "starttime": self.starttime,
                                             "expiration": self.expiration}}
            if picks and self._properties:
                # keep instance-local (+name) properties in the instance's own views
                ranks = {self._rank[i] for i, _, _ in picks}
                props = {}
                for prop, text in self._properties.items():
                    kept = [r for r in IDset(text).expand() if r in ranks]
                    if kept:
                        props[prop] = _ranges(kept)
                if props:
                    R["execution"]["properties"] = props
            out[name] = R
        return out


def _insort(seq: list[int], value: int) -> None:
    import bisect

    if not seq or value > seq[-1]:
        seq.append(value)
    else:
        bisect.insort(seq, value)


def _discard(seq: list[int], value: int) -> None:
    import bisect

    index = bisect.bisect_left(seq, value)
    if index < len(seq) and seq[index] == value:
        del seq[index]
