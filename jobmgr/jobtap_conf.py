"""Pure parts of jobtap: ``[job-manager] plugins`` directives, name matching,
the states a commit moved a job through, and the KEY=VAL plugin config
(jobtap-plugins(7), flux-jobtap(1), specs/jobtap.md)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from jobmgr.events import JobEventError
from jobmgr.states import JobState, transition

__all__ = [
    "BUILTINS",
    "Directive",
    "parse_directives",
    "parse_keyvals",
    "plugin_dirs",
    "plugin_name",
    "select_removals",
    "states_entered",
]

#: what the job manager does itself, listed by ``flux jobtap list -a`` and removable
#: by exact name (or a pattern that starts with ``.``)
BUILTINS = (".priority-default", ".dependency-after", ".begin-time")

_DIRECTIVE_KEYS = ("load", "conf", "remove")


@dataclass(frozen=True, slots=True)
class Directive:
    """One ``[job-manager] plugins`` entry: remove first, then load."""

    load: str | None = None
    conf: Mapping[str, Any] = field(default_factory=dict)
    remove: str | None = None


def parse_directives(value: Any) -> list[Directive]:
    """``[job-manager] plugins`` (an array of tables) -> directives.

    Raises ValueError naming the entry and what is wrong with it.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("plugins must be an array of tables")
    out: list[Directive] = []
    for i, entry in enumerate(value):
        where = f"plugins[{i}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: must be a table with load and/or remove")
        unknown = sorted(set(entry) - set(_DIRECTIVE_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} "
                             f"(known: {', '.join(_DIRECTIVE_KEYS)})")
        load, remove, conf = entry.get("load"), entry.get("remove"), entry.get("conf")
        if load is None and remove is None:
            raise ValueError(f"{where}: needs load or remove")
        for key, val in (("load", load), ("remove", remove)):
            if val is not None and (not isinstance(val, str) or not val):
                raise ValueError(f"{where}: {key} must be a non-empty string")
        if conf is not None:
            if load is None:
                raise ValueError(f"{where}: conf is only allowed with load")
            if not isinstance(conf, Mapping):
                raise ValueError(f"{where}: conf must be a table")
        out.append(Directive(load, dict(conf or {}), remove))
    return out


def select_removals(loaded: Sequence[str], pattern: str) -> list[str]:
    """The plugins of LOADED (in order) that ``remove PATTERN`` takes away.

    A glob(7) pattern; ``all`` means ``*``.  Builtins (a leading ``.``) are
    taken only by their exact name or by a pattern that starts with ``.``.  A
    file's plugin is also taken by its name without ``.py``.
    """
    import fnmatch

    if pattern == "all":
        pattern = "*"
    dotted = pattern.startswith(".")
    return [name for name in loaded
            if name == pattern or name == pattern + ".py"
            or ((dotted or not name.startswith(".")) and fnmatch.fnmatchcase(name, pattern))]


def states_entered(before: JobState, events: Iterable[Mapping[str, Any]]) -> list[JobState]:
    """The states a job went through, in order, as EVENTS were applied in BEFORE.

    Events the state table refuses are skipped (they were never applied).
    """
    out: list[JobState] = []
    state = before
    for event in events:
        name = event.get("name")
        if name == "submit":
            continue
        try:
            nxt = transition(state, str(name), event.get("context"), checked=True)
        except JobEventError:
            continue
        if nxt != state:
            out.append(nxt)
            state = nxt
    return out


def plugin_dirs(value: Any, where: str) -> list[str]:
    """A ``pluginpath`` config value (a directory or an array of them) as a list."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValueError(f"{where} must be a directory or an array of directories")
    return value


def parse_keyvals(words: Sequence[str]) -> dict[str, Any]:
    """``KEY=VAL`` words -> a config table; VAL is JSON when it parses, else a string."""
    conf: dict[str, Any] = {}
    for word in words:
        key, sep, val = word.partition("=")
        if not sep or not key:
            raise ValueError(f"{word!r}: plugin config must be KEY=VAL")
        try:
            conf[key] = orjson.loads(val)
        except orjson.JSONDecodeError:
            conf[key] = val
    return conf


def plugin_name(spec: str) -> str:
    """The name a plugin is listed by: a file's base name (``prio.py``, as flux-core
    lists ``prio.so``), else the module name."""
    return spec.rstrip("/").rsplit("/", 1)[-1]
