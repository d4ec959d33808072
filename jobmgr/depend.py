"""RFC 26 dependencies: parse them from jobspec and decide when they are met.

``parse_dependencies(jobspec_deps)`` turns the jobspec list
(``attributes.system.dependencies``) into ``Dependency`` records.
``evaluate(dep, antecedent, now)`` says whether one dependency is
SATISFIED, still PENDING, or can NEVER be met (the dependent job then gets
a fatal exception of type ``dependency``, see ``never_exception``).
``DependencyIndex`` keeps the dependents waiting on each antecedent job and
the begin-time timers, so a state change of one job resolves only the
dependencies that name it.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from jobmgr.states import JobResult, JobState

__all__ = [
    "Verdict", "Dependency", "Antecedent", "Outcome", "SCHEMES",
    "parse_dependency", "parse_dependencies", "evaluate", "never_exception",
    "antecedent_of", "DependencyIndex",
]

# schemes naming an antecedent job
_JOB_SCHEMES = ("after", "afterany", "afterok", "afternotok")
SCHEMES = _JOB_SCHEMES + ("begin-time",)


class Verdict(Enum):
    SATISFIED = "satisfied"
    PENDING = "pending"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class Dependency:
    """One dependency; ``description`` is what dependency-add/remove log."""

    scheme: str
    value: str
    description: str
    jobid: int | None = None          # the antecedent, for after* schemes
    begin_time: float | None = None   # for begin-time

    @property
    def by_plugin(self) -> bool:
        """A jobtap plugin's scheme: the plugin adds and removes what it holds."""
        return self.jobid is None and self.begin_time is None


@dataclass(frozen=True, slots=True)
class Antecedent:
    """What the dependency rules need to know about the antecedent job."""

    userid: int
    state: JobState
    started: bool
    result: JobResult | None


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    note: str = ""                    # why, when NEVER
    wake_at: float | None = None      # when to look again, for begin-time


_SATISFIED = Outcome(Verdict.SATISFIED)
_PENDING = Outcome(Verdict.PENDING)


def parse_dependency(obj: Any, where: str = "dependency",
                     plugin_schemes: Container[str] = (),
                     builtin_schemes: Container[str] | None = None) -> Dependency:
    """Turn one jobspec dependency object ``{scheme, value, ...}`` into a record.

    Raises ValueError naming ``where`` and the problem (unknown scheme, bad
    job id, bad begin time).  ``afterstart`` is accepted as ``after``.
    """
    from flux.job.dependency import begin_time, dependency_jobid

    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: must be an object with scheme and value")
    scheme = obj.get("scheme")
    if not isinstance(scheme, str) or not scheme:
        raise ValueError(f"{where}: scheme must be a non-empty string")
    if "value" not in obj:
        raise ValueError(f"{where}: missing value")
    value = obj["value"]
    if scheme in plugin_schemes:
        # a jobtap plugin's scheme: the plugin judges it (specs/jobtap.md)
        return Dependency(scheme, value if isinstance(value, str) else str(value),
                          f"{scheme}={value}")
    if builtin_schemes is not None and scheme not in builtin_schemes \
            and scheme in SCHEMES + ("afterstart",):
        raise ValueError(f"{where}: dependency scheme {scheme!r} is not supported "
                         "(its builtin jobtap plugin is removed)")
    if scheme == "afterstart":
        scheme = "after"
    if scheme in _JOB_SCHEMES:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        try:
            jobid = int(dependency_jobid({"scheme": scheme, "value": value}))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        return Dependency(scheme, value, f"{scheme}={value}", jobid=jobid)
    if scheme == "begin-time":
        # flux-core's CLI writes the time as a JSON number; RFC 26 says string
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value) and value >= 0:
            when = float(value)
        else:
            try:
                when = begin_time({"scheme": scheme, "value": value})
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{where}: {exc}") from None
        return Dependency(scheme, str(value), f"begin-time={when:.6f}", begin_time=when)
    raise ValueError(f"{where}: dependency scheme {scheme!r} is not supported "
                     f"(supported: {', '.join(SCHEMES)})")


def parse_dependencies(deps: Any, plugin_schemes: Container[str] = (),
                       builtin_schemes: Container[str] | None = None) -> list[Dependency]:
    """Parse the jobspec ``attributes.system.dependencies`` list (None -> []).

    PLUGIN_SCHEMES: schemes a jobtap plugin judges; BUILTIN_SCHEMES: the
    builtin schemes still loaded (None: all).
    """
    if deps is None:
        return []
    if not isinstance(deps, list):
        raise ValueError("attributes.system.dependencies: must be an array")
    return [parse_dependency(d, f"attributes.system.dependencies[{i}]", plugin_schemes,
                             builtin_schemes)
            for i, d in enumerate(deps)]


def antecedent_of(job: Any) -> Antecedent:
    """Build an Antecedent from a jobmgr.job.Job (or anything with its fields)."""
    return Antecedent(job.userid, job.state, job.started, job.result)


def evaluate(dep: Dependency, antecedent: Antecedent | None, now: float,
             userid: int | None = None) -> Outcome:
    """Decide one dependency.

    ``antecedent`` is None when the job it names does not exist.  ``userid``
    is the dependent job's owner when it is a guest (None for the instance
    owner): a guest may only depend on its own jobs.
    """
    if dep.begin_time is not None:
        if now >= dep.begin_time:
            return _SATISFIED
        return Outcome(Verdict.PENDING, wake_at=dep.begin_time)
    if antecedent is None:
        return Outcome(Verdict.NEVER, f"{dep.scheme}: job {dep.value} not found")
    if userid is not None and antecedent.userid != userid:
        return Outcome(Verdict.NEVER, f"{dep.scheme}: Permission denied for job {dep.value}")
    inactive = antecedent.state == JobState.INACTIVE
    if dep.scheme == "after":
        if antecedent.started:
            return _SATISFIED
        if inactive:
            return Outcome(Verdict.NEVER,
                           f"after: job {dep.value} became inactive without starting")
        return _PENDING
    if not inactive:
        return _PENDING
    if dep.scheme == "afterany":
        return _SATISFIED
    ok = antecedent.result == JobResult.COMPLETED
    if dep.scheme == "afterok":
        if ok:
            return _SATISFIED
        return Outcome(Verdict.NEVER, f"afterok: job {dep.value} did not complete successfully")
    # afternotok
    if not ok:
        return _SATISFIED
    return Outcome(Verdict.NEVER, f"afternotok: job {dep.value} completed successfully")


def never_exception(dep: Dependency, outcome: Outcome) -> dict[str, Any]:
    """Context of the fatal exception raised on a job whose dependency fails."""
    return {"type": "dependency", "severity": 0,
            "note": outcome.note or f"dependency {dep.description} can never be satisfied"}


class DependencyIndex:
    """Outstanding dependencies, indexed by antecedent job and by begin time.

    ``waiting(antecedent_id)`` and ``resolve(antecedent_id, antecedent, now)``
    touch only the dependents of that one job; ``due(now)`` pops the
    begin-time dependencies whose time has come.
    """

    __slots__ = ("_by_antecedent", "_timers", "_count")

    def __init__(self) -> None:
        self._by_antecedent: dict[int, list[tuple[int, Dependency]]] = {}
        self._timers: list[tuple[float, int, Dependency]] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, dependent: int, dep: Dependency) -> None:
        if dep.begin_time is not None:
            heapq.heappush(self._timers, (dep.begin_time, dependent, dep))
        elif dep.jobid is not None:
            self._by_antecedent.setdefault(dep.jobid, []).append((dependent, dep))
        else:
            raise ValueError(f"dependency {dep.description!r} names neither a job nor a time")
        self._count += 1

    def waiting(self, antecedent_id: int) -> list[tuple[int, Dependency]]:
        return list(self._by_antecedent.get(antecedent_id, ()))

    def resolve(self, antecedent_id: int, antecedent: Antecedent | None, now: float,
                userids: Mapping[int, int | None] | None = None
                ) -> list[tuple[int, Dependency, Outcome]]:
        """Evaluate the dependents of one antecedent; drop and return the decided ones.

        ``userids`` maps a dependent job id to its guest userid (see evaluate).
        """
        entries = self._by_antecedent.get(antecedent_id)
        if not entries:
            return []
        decided: list[tuple[int, Dependency, Outcome]] = []
        still: list[tuple[int, Dependency]] = []
        for dependent, dep in entries:
            uid = userids.get(dependent) if userids else None
            outcome = evaluate(dep, antecedent, now, uid)
            if outcome.verdict is Verdict.PENDING:
                still.append((dependent, dep))
            else:
                decided.append((dependent, dep, outcome))
        if still:
            self._by_antecedent[antecedent_id] = still
        else:
            del self._by_antecedent[antecedent_id]
        self._count -= len(decided)
        return decided

    def next_wake(self) -> float | None:
        """Earliest begin time still waiting, or None."""
        return self._timers[0][0] if self._timers else None

    def due(self, now: float) -> list[tuple[int, Dependency]]:
        """Pop and return the begin-time dependencies due at ``now``."""
        out: list[tuple[int, Dependency]] = []
        while self._timers and self._timers[0][0] <= now:
            _, dependent, dep = heapq.heappop(self._timers)
            out.append((dependent, dep))
        self._count -= len(out)
        return out

    def discard_dependent(self, dependent: int, deps: Iterable[Dependency]) -> None:
        """Forget ``dependent``'s dependencies (e.g. it was canceled)."""
        for dep in deps:
            if dep.scheme == "begin-time":
                before = len(self._timers)
                self._timers = [t for t in self._timers if t[1] != dependent or t[2] != dep]
                if len(self._timers) != before:
                    heapq.heapify(self._timers)
                    self._count -= before - len(self._timers)
                continue
            entries = self._by_antecedent.get(dep.jobid)  # type: ignore[arg-type]
            if not entries:
                continue
            kept = [e for e in entries if not (e[0] == dependent and e[1] == dep)]
            self._count -= len(entries) - len(kept)
            if kept:
                self._by_antecedent[dep.jobid] = kept  # type: ignore[index]
            else:
                del self._by_antecedent[dep.jobid]  # type: ignore[arg-type]
