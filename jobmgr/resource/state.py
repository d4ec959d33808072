"""Projection of ``resource.eventlog``: what ``flux resource status`` shows.

``ResourceState.apply(event)`` folds one resource eventlog entry into
per-rank facts: online or not, excluded, torpid, drained (with the time and
reason).  ``rank_state(rank, busy)`` then names the rank's state --
``exclude``, ``draining`` (drained while jobs still run there), ``drained``,
``torpid`` or ``avail`` -- and ``states(busy)`` / ``status_groups(busy)`` /
``drain_entries(busy)`` give the sets and rows the commands print.
``unavailable()`` is what the scheduler must not allocate.

Events (context keys): ``resource-define`` {method, R?}, ``restart``
{ranks?, online?}, ``online``/``offline``/``torpid``/``lively``/``exclude``/
``unexclude`` {idset}, ``drain`` {idset, reason?, overwrite? 0|1|2 (keep,
replace the reason, replace reason and time), nodelist?}, ``undrain``
{idset, nodelist?}, ``resource-update``
{expiration}, ``truncate`` {online?, torpid?, exclude?, drain?}.  Other
event names are ignored, so newer logs still load.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["ResourceState", "DrainInfo", "StatusGroup", "DrainEntry", "STATES",
           "ResourceEventError"]

STATES = ("avail", "exclude", "draining", "drained", "torpid", "offline", "online", "all")


class ResourceEventError(ValueError):
    """A resource eventlog entry that is malformed (names the event and key)."""


@dataclass(frozen=True, slots=True)
class DrainInfo:
    timestamp: float
    reason: str


@dataclass(frozen=True, slots=True)
class StatusGroup:
    """One ``flux resource status`` row: ranks sharing a state and up/down."""

    state: str
    up: bool
    ranks: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DrainEntry:
    """One ``flux resource drain`` row: ranks drained together for one reason."""

    timestamp: float
    state: str           # "draining" or "drained"
    reason: str
    ranks: tuple[int, ...]


def _idset(value: Any, event: str, key: str) -> set[int]:
    from flux.idset import IDset

    if not isinstance(value, str):
        raise ResourceEventError(f"{event}: context key {key!r} must be an idset string, "
                                 f"got {value!r}")
    try:
        return set(IDset(value).expand())
    except (ValueError, TypeError) as exc:
        raise ResourceEventError(f"{event}: context key {key!r}: {exc}") from None


def _ranks_and_hosts(R: Any) -> tuple[set[int], dict[int, str]]:
    from flux.hostlist import Hostlist
    from flux.idset import IDset

    if isinstance(R, (str, bytes)):
        R = orjson.loads(R)
    execution = R["execution"]
    ranks: list[int] = []
    for entry in execution["R_lite"]:
        ranks.extend(IDset(entry["rank"]).expand())
    ranks = sorted(set(ranks))
    hosts: list[str] = []
    for text in execution.get("nodelist") or []:
        hosts.extend(Hostlist(text).expand())
    names = dict(zip(ranks, hosts)) if len(hosts) == len(ranks) else {}
    return set(ranks), names


class ResourceState:
    """Per-rank resource facts folded from resource.eventlog."""

    __slots__ = ("ranks", "hostnames", "online", "torpid", "excluded", "drained",
                 "expiration", "method")

    def __init__(self, ranks: Iterable[int] = (), hostnames: Mapping[int, str] | None = None,
                 R: Mapping[str, Any] | str | bytes | None = None) -> None:
        self.ranks: set[int] = set(ranks)
        self.hostnames: dict[int, str] = dict(hostnames or {})
        if R is not None:
            self.define(R)
        self.online: set[int] = set()
        self.torpid: set[int] = set()
        self.excluded: set[int] = set()
        self.drained: dict[int, DrainInfo] = {}
        self.expiration = 0.0
        self.method: str | None = None

    def define(self, R: Mapping[str, Any] | str | bytes) -> None:
        """Set the instance's ranks (and host names) from its R."""
        try:
            ranks, names = _ranks_and_hosts(R)
        except (KeyError, TypeError, ValueError) as exc:
            raise ResourceEventError(f"resource-define: invalid R: {exc}") from None
        self.ranks = ranks
        self.hostnames = names

    # -- the fold --------------------------------------------------------------

    def apply(self, event: Mapping[str, Any]) -> None:
        """Fold one resource.eventlog entry; ResourceEventError names what is wrong."""
        name = event.get("name")
        if not isinstance(name, str) or not name:
            raise ResourceEventError(f"event name must be a non-empty string, got {name!r}")
        ts = event.get("timestamp")
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts <= 0:
            raise ResourceEventError(f"{name}: timestamp must be a number > 0, got {ts!r}")
        ctx = event.get("context") or {}
        if not isinstance(ctx, Mapping):
            raise ResourceEventError(f"{name}: context must be an object")
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, name, float(ts), ctx)

    def _resource_define(self, name: str, ts: float, ctx: Mapping[str, Any]) -> None:
        method = ctx.get("method")
        if method is not None and not isinstance(method, str):
            raise ResourceEventError(f"{name}: context key 'method' must be a string")
        self.method = method
        if "R" in ctx:
            self.define(ctx["R"])

    def _restart(self, name: str, ts: float, ctx: Mapping[str, Any]) -> None:
        if "ranks" in ctx:
            self.ranks = _idset(ctx["ranks"], name, "ranks")
        self.online = _idset(ctx["online"], name, "online") if "online" in ctx else set()
        self.torpid = set()

    def _set_op(self, name: str, ts: float, ctx: Mapping[str, Any]) -> None:
        if "idset" not in ctx:
            raise ResourceEventError(f"{name}: context is missing required key 'idset'")
        ids = _idset(ctx["idset"], name, "idset")
        if name == "online":
            self.online |= ids
            self.torpid -= ids
        elif name == "offline":
            self.online -= ids
            self.torpid -= ids
        elif name == "torpid":
            self.torpid |= ids
        elif name == "lively":
            self.torpid -= ids
        elif name == "exclude":
            self.excluded |= ids
        elif name == "unexclude":
            self.excluded -= ids

    def _drain(self, name: str, ts: float, ctx: Mapping[str, Any]) -> None:
        if "idset" not in ctx:
            raise ResourceEventError(f"{name}: context is missing required key 'idset'")
        ids = _idset(ctx["idset"], name, "idset")
        reason = ctx.get("reason") or ""
        if not isinstance(reason, str):
            raise ResourceEventError(f"{name}: context key 'reason' must be a string")
        overwrite = ctx.get("overwrite", 0)
        if overwrite not in (0, 1, 2) or isinstance(overwrite, bool):
            raise ResourceEventError(f"{name}: context key 'overwrite' must be 0, 1 or 2, "
                                     f"got {overwrite!r}")
        info = DrainInfo(ts, reason)
        for rank in ids:
            # as flux-core: 0 keeps a drained rank's reason (one without a reason gets
            # this one), 1 (drain -f) replaces the reason, 2 (-ff) reason and time;
            # a rank that stays drained keeps its time unless 2
            old = self.drained.get(rank)
            if old is None or overwrite == 2:
                self.drained[rank] = info
            elif overwrite == 1 or not old.reason:
                self.drained[rank] = DrainInfo(old.timestamp, reason)

    def _undrain(self, name: str, ts: float, ctx: Mapping[str, Any]) -> None:
        if "idset" not in ctx:
            raise ResourceEventError(f"{name}: context is missing required key 'idset'")
        for rank in _idset(ctx["idset"], name, "idset"):
            self.drained.pop(rank, None)

    def _resource_update(self, name: str, ts: float, ctx: Mapping[str, Any]) -> None:
        expiration = ctx.get("expiration")
        if isinstance(expiration, bool) or not isinstance(expiration, (int, float)) \
                or expiration < 0:
            raise ResourceEventError(f"{name}: context key 'expiration' must be a number >= 0, "
                                     f"got {expiration!r}")
        self.expiration = float(expiration)

    def _truncate(self, name: str, ts: float, ctx: Mapping[str, Any]) -> None:
        self.online = _idset(ctx.get("online", ""), name, "online")
        self.torpid = _idset(ctx.get("torpid", ""), name, "torpid")
        self.excluded = _idset(ctx.get("exclude", ""), name, "exclude")
        drained: dict[int, DrainInfo] = {}
        drain = ctx.get("drain") or {}
        if not isinstance(drain, Mapping):
            raise ResourceEventError(f"{name}: context key 'drain' must be an object")
        for ids, info in drain.items():
            if not isinstance(info, Mapping):
                raise ResourceEventError(f"{name}: drain entry {ids!r} must be an object")
            entry = DrainInfo(float(info.get("timestamp", ts)), str(info.get("reason", "")))
            for rank in _idset(ids, name, "drain"):
                drained[rank] = entry
        self.drained = drained

    # -- views -----------------------------------------------------------------

    def rank_state(self, rank: int, busy: Iterable[int] | set[int] = ()) -> str:
        """``exclude``, ``draining``, ``drained``, ``torpid`` or ``avail``."""
        if rank in self.excluded:
            return "exclude"
        if rank in self.drained:
            return "draining" if rank in busy else "drained"
        if rank in self.torpid:
            return "torpid"
        return "avail"

    def states(self, busy: Iterable[int] = ()) -> dict[str, list[int]]:
        """Sorted ranks per state name (see STATES); ``busy`` = ranks running jobs."""
        busy_set = set(busy)
        out: dict[str, list[int]] = {name: [] for name in STATES}
        for rank in sorted(self.ranks):
            out[self.rank_state(rank, busy_set)].append(rank)
            out["online" if rank in self.online else "offline"].append(rank)
            out["all"].append(rank)
        return out

    def status_groups(self, busy: Iterable[int] = ()) -> list[StatusGroup]:
        """Rows of ``flux resource status``: (state, up) groups, empty ones left out."""
        busy_set = set(busy)
        groups: dict[tuple[str, bool], list[int]] = {}
        for rank in sorted(self.ranks):
            key = (self.rank_state(rank, busy_set), rank in self.online)
            groups.setdefault(key, []).append(rank)
        order = {name: i for i, name in enumerate(STATES)}
        return [StatusGroup(state, up, tuple(ranks)) for (state, up), ranks in
                sorted(groups.items(), key=lambda kv: (order[kv[0][0]], not kv[0][1]))]

    def drain_entries(self, busy: Iterable[int] = ()) -> list[DrainEntry]:
        """Rows of ``flux resource drain``: drained ranks grouped by time, state and reason."""
        busy_set = set(busy)
        groups: dict[tuple[float, str, str], list[int]] = {}
        for rank in sorted(self.drained):
            info = self.drained[rank]
            state = "draining" if rank in busy_set else "drained"
            groups.setdefault((info.timestamp, state, info.reason), []).append(rank)
        return [DrainEntry(ts, state, reason, tuple(ranks))
                for (ts, state, reason), ranks in sorted(groups.items())]

    def unavailable(self) -> set[int]:
        """Ranks the scheduler must not allocate: offline, excluded, drained or torpid."""
        return (self.ranks - self.online) | self.excluded | set(self.drained) | self.torpid

    def truncate_context(self) -> dict[str, Any]:
        """The state as a ``truncate`` context (lets a log be cut short)."""
        from flux.idset import IDset

        drain: dict[str, dict[str, Any]] = {}
        by_info: dict[DrainInfo, list[int]] = {}
        for rank, info in self.drained.items():
            by_info.setdefault(info, []).append(rank)
        for info, ranks in by_info.items():
            drain[IDset(ranks).encode()] = {"timestamp": info.timestamp, "reason": info.reason}
        return {"online": IDset(self.online).encode(), "torpid": IDset(self.torpid).encode(),
                "exclude": IDset(self.excluded).encode(), "drain": drain}


_HANDLERS = {
    "resource-define": ResourceState._resource_define,
    "restart": ResourceState._restart,
    "online": ResourceState._set_op, "offline": ResourceState._set_op,
    "torpid": ResourceState._set_op, "lively": ResourceState._set_op,
    "exclude": ResourceState._set_op, "unexclude": ResourceState._set_op,
    "drain": ResourceState._drain,
    "undrain": ResourceState._undrain,
    "resource-update": ResourceState._resource_update,
    "truncate": ResourceState._truncate,
}
