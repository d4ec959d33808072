"""Flux queues from Python: configuration, state, limits and resources (``flux queue list``).

>>> qlist = QueueList(flux.Flux())
>>> for queue in qlist:
...     print(queue.name, queue.enabled, queue.started, queue.resources.free.ncores)
>>> batch = qlist["batch"]          # or qlist.batch
>>> anon = qlist[""]                # the single anonymous queue (also qlist[None])

A ``QueueInfo`` has ``name`` (``""`` for the anonymous queue),
``is_default``, ``enabled``, ``started``, ``blocked``, ``parent``,
``defaults.duration``, ``limits.min``/``limits.max`` (``nnodes ncores
ngpus``), ``limits.duration`` and ``resources`` (ResourceSets ``all down up
allocated free``, limited to the queue's ``requires`` properties, or its
parent's for a virtual queue).

Data come from ``config.get``, ``job-manager.queue-status`` (one request
per queue) and the scheduler's resource view (``resource.sched-status``,
or ``sched.resource-status`` where that is not implemented), all requested
at once.  ``_resource_views`` is the one place that reads resources, so it
can become ``flux.resource.resource_list(handle).get()``.
"""
from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from flux.util.fsd import parse_fsd

__all__ = ["QueueList", "QueueInfo", "QueueResources", "QueueLimits", "QueueDefaults",
           "QueueResourceCounts"]


@dataclass
class QueueResourceCounts:
    """Counts of nodes, cores and gpus (``inf`` for no limit)."""

    nnodes: float
    ncores: float
    ngpus: float


@dataclass
class QueueLimits:
    """Job-size minimums and maximums, and the duration limit in seconds."""

    min: QueueResourceCounts
    max: QueueResourceCounts
    duration: float

    @property
    def timelimit(self) -> float:
        """``duration`` under the name ``flux queue list`` uses."""
        return self.duration


@dataclass
class QueueDefaults:
    """Defaults applied to the queue's jobs: ``duration`` in seconds."""

    duration: float

    @property
    def timelimit(self) -> float:
        return self.duration


# -- resources ----------------------------------------------------------------------

_VIEWS = ("all", "down", "up", "allocated", "free")


class _ResourceViews:
    """``all down up allocated free`` ResourceSets of an instance (each with ``state``)."""

    def __init__(self, all: Any, down: Any, allocated: Any) -> None:  # noqa: A002
        self.all = all
        self.down = down
        self.allocated = allocated
        self.up = all.diff(down)
        self.free = self.up.diff(allocated)
        for name in _VIEWS:
            try:
                getattr(self, name).state = name
            except AttributeError:
                pass

    def __getitem__(self, name: str) -> Any:
        if name not in _VIEWS:
            raise KeyError(name)
        return getattr(self, name)

    def copy_constraint(self, constraint: Mapping[str, Any]) -> "_ResourceViews":
        """The same views limited to the ranks matching ``constraint``.

        With ResourceSet.copy_constraint each view is filtered by it (as
        Flux's resource list does); otherwise a ``properties`` constraint is
        applied here, with the ranks taken from ``all``'s properties.
        """
        views = ("all", "down", "allocated")
        if hasattr(self.all, "copy_constraint"):
            return _ResourceViews(*(getattr(self, v).copy_constraint(dict(constraint))
                                    for v in views))
        ranks = _matching_ranks(self.all, constraint)
        return _ResourceViews(*(getattr(self, v).copy_ranks(ranks.intersect(getattr(self, v).ranks))
                                for v in views))


def _property_ranks(rset: Any) -> dict[str, Any]:
    """``{property: IDset}`` of a ResourceSet, whichever form it offers."""
    from flux.idset import IDset

    getter = getattr(rset, "get_properties", None)
    if callable(getter):
        import json

        return {name: IDset(ranks) for name, ranks in json.loads(getter() or "{}").items()}
    props = getattr(rset, "properties", None)
    if isinstance(props, Mapping):
        return {name: IDset(ranks) for name, ranks in props.items()}
    return {}


def _matching_ranks(rset: Any, constraint: Mapping[str, Any]) -> Any:
    """Ranks of ``rset`` having every property of a ``{"properties": [...]}``
    constraint (``^name``: not having ``name``)."""
    from flux.idset import IDset

    unknown = set(constraint) - {"properties"}
    if unknown:
        raise ValueError(f"unsupported queue constraint operator(s): {', '.join(sorted(unknown))}")
    props = _property_ranks(rset)
    ranks = IDset(rset.ranks)
    for name in constraint.get("properties", []):
        if name.startswith("^"):
            ranks = ranks.difference(props.get(name[1:], IDset()))
        else:
            ranks = ranks.intersect(props.get(name, IDset()))
    return ranks


def _resource_rpc(handle: Any) -> Any:
    topic = os.environ.get("FLUX_RESOURCE_LIST_RPC", "resource.sched-status")
    return handle.rpc(topic)


def _resource_views(handle: Any, future: Any) -> _ResourceViews:
    """The instance's resource views from ``future`` (see ``_resource_rpc``)."""
    from flux.resource import ResourceSet

    try:
        status = future.get()
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        status = handle.rpc("sched.resource-status").get()

    def rset(key: str) -> Any:
        value = status.get(key)
        return ResourceSet(value) if value else ResourceSet()

    return _ResourceViews(rset("all"), rset("down"), rset("allocated"))


class QueueResources:
    """The resources of one queue: ResourceSets ``all``, ``down``, ``up``,
    ``allocated``, ``free`` limited to the queue's required properties."""

    def __init__(self, name: str | None, resources: Any, config: Mapping[str, Any]) -> None:
        requires = _queue_requires(config, name)
        if requires:
            resources = resources.copy_constraint({"properties": list(requires)})
        self._resource_list = resources

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self._resource_list, attr)

    def __getitem__(self, name: str) -> Any:
        return self._resource_list[name]


# -- configuration ------------------------------------------------------------------

def _queues_table(config: Mapping[str, Any]) -> Mapping[str, Any]:
    table = config.get("queues")
    return table if isinstance(table, Mapping) else {}


def _parent(config: Mapping[str, Any], name: str | None) -> str | None:
    if not name:
        return None
    parent = _queues_table(config).get(name, {}).get("parent")
    return parent if isinstance(parent, str) and parent else None


def _queue_requires(config: Mapping[str, Any], name: str | None) -> list[str]:
    """The queue's ``requires`` (a virtual queue uses its parent's)."""
    if not name:
        return []
    queues = _queues_table(config)
    parent = _parent(config, name)
    table = queues.get(parent if parent else name, {})
    requires = table.get("requires") if isinstance(table, Mapping) else None
    return list(requires) if isinstance(requires, list) else []


def _lookup(table: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(table, Mapping) or part not in table:
            raise KeyError(part)
        table = table[part]
    return table


def _policy(config: Mapping[str, Any], name: str | None, path: tuple[str, ...]) -> Any:
    """``policy.PATH`` of queue ``name``, else of its parent, else the general
    ``[policy]``; KeyError if none sets it."""
    queues = _queues_table(config)
    chain = []
    if name:
        chain.append(queues.get(name, {}))
        parent = _parent(config, name)
        if parent:
            chain.append(queues.get(parent, {}))
    chain.append(config)
    for table in chain:
        try:
            return _lookup(table, ("policy", *path))
        except KeyError:
            continue
    raise KeyError(".".join(path))


def _duration(value: Any, what: str) -> float:
    try:
        return parse_fsd(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


class QueueInfo:
    """One queue's configuration, state, limits and resources (see the module)."""

    def __init__(self, name: str | None, config: Mapping[str, Any], resources: Any,
                 enabled: bool, started: bool, default: bool, blocked: bool = False) -> None:
        self.name = name or ""
        self.config = config
        self.is_default = bool(default)
        self.enabled = bool(enabled)
        self.started = bool(started)
        self.blocked = bool(blocked)
        self.parent = _parent(config, name)
        self.resources = QueueResources(name, resources, config)
        where = f"queue {self.name}" if self.name else "policy"
        try:
            default_duration = _policy(config, name, ("jobspec", "defaults", "system",
                                                      "duration"))
        except KeyError:
            default_duration = "inf"
        self.defaults = QueueDefaults(
            duration=_duration(default_duration, f"{where}: default duration"))
        try:
            limit = _policy(config, name, ("limits", "duration"))
        except KeyError:
            limit = "inf"
        self.limits = QueueLimits(
            min=QueueResourceCounts(*(self._size_limit(k, False) for k in
                                      ("nnodes", "ncores", "ngpus"))),
            max=QueueResourceCounts(*(self._size_limit(k, True) for k in
                                      ("nnodes", "ncores", "ngpus"))),
            duration=_duration(limit, f"{where}: duration limit"))

    def _size_limit(self, key: str, maximum: bool) -> float:
        bound = "max" if maximum else "min"
        try:
            value = _policy(self.config, self.name, ("limits", "job-size", bound, key))
        except KeyError:
            return math.inf if maximum else 0
        if maximum and isinstance(value, (int, float)) and value < 0:
            return math.inf  # -1: unlimited
        return value

    def __repr__(self) -> str:
        return (f"QueueInfo(name={self.name!r}, enabled={self.enabled}, "
                f"started={self.started}, is_default={self.is_default})")


class QueueList:
    """The instance's queues (all, or those named in ``queues``), as QueueInfos.

    Iterating gives them in configured order; ``qlist[name]`` or
    ``qlist.name`` one of them; ``qlist[""]`` / ``qlist[None]`` the single
    anonymous queue of an instance without ``[queues]``.  A name in
    ``queues`` that is not configured raises ``ValueError("No such queue:
    NAME")``.
    """

    def __init__(self, handle: Any, queues: list[str] | None = None) -> None:
        # ask for everything at once, then wait
        resource_future = _resource_rpc(handle)
        config = handle.rpc("config.get").get()
        if not isinstance(config, Mapping):
            config = {}
        self.default_queue = self._default_queue(config)
        selected = self._select(config, queues)
        # a virtual queue needs its parent's state too (for ``blocked``)
        wanted = list(selected)
        for name in selected:
            parent = _parent(config, name)
            if parent and parent not in wanted and parent in _queues_table(config):
                wanted.append(parent)
        if wanted:
            futures = {name: handle.rpc("job-manager.queue-status", {"name": name})
                       for name in wanted}
        else:
            futures = {"": handle.rpc("job-manager.queue-status", {})}
        resources = _resource_views(handle, resource_future)
        status = {name: future.get() for name, future in futures.items()}

        self._anonymous: QueueInfo | None = None
        self._queues: dict[str, QueueInfo] = {}
        if not selected:
            info = status[""]
            self._anonymous = QueueInfo(None, config, resources, info.get("enable", True),
                                        info.get("start", True), True)
            self._queues[""] = self._anonymous
            return
        for name in selected:
            info = status[name]
            parent = _parent(config, name)
            if "blocked" in info:
                blocked = bool(info["blocked"])
            else:
                # a virtual queue's jobs run only while its parent is started too
                blocked = bool(parent) and not status.get(parent, {}).get("start", True)
            self._queues[name] = QueueInfo(name, config, resources, info.get("enable", True),
                                           info.get("start", True), name == self.default_queue,
                                           blocked=blocked)

    @staticmethod
    def _default_queue(config: Mapping[str, Any]) -> str:
        try:
            value = _lookup(config, ("policy", "jobspec", "defaults", "system", "queue"))
        except KeyError:
            return ""
        return value if isinstance(value, str) else ""

    @staticmethod
    def _select(config: Mapping[str, Any], queues: list[str] | None) -> list[str]:
        table = _queues_table(config)
        if not queues:
            return list(table)
        if isinstance(queues, str):
            queues = [queues]
        for name in queues:
            if name not in table:
                raise ValueError(f"No such queue: {name}")
        return list(queues)

    def __iter__(self) -> Iterator[QueueInfo]:
        return iter(list(self._queues.values()))

    def __len__(self) -> int:
        return len(self._queues)

    def __contains__(self, name: object) -> bool:
        return name in self._queues or (name is None and self._anonymous is not None)

    def __getitem__(self, name: str | None) -> QueueInfo:
        if name is None or name == "":
            if self._anonymous is None:
                raise KeyError("No anonymous queue: queues are configured "
                               f"({', '.join(self._queues)})")
            return self._anonymous
        try:
            return self._queues[name]
        except KeyError:
            raise KeyError(f"No such queue: {name}") from None

    def __getattr__(self, name: str) -> QueueInfo:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._queues[name]
        except KeyError:
            raise AttributeError(f"No such queue: {name}") from None
