"""RFC 21 job eventlog events: names, context keys and their types.

Each event of the job eventlog has a context whose required and optional
keys are listed in ``SPECS``.  ``validate(name, context)`` checks a context
and raises ``JobEventError`` naming the event and the bad key; the helpers
below (``submit``, ``exception``, ...) build valid contexts, and ``event``
builds a whole eventlog entry (``{"timestamp", "name", "context"}``).

Keys beyond those listed are allowed (RFC 21: "keys beyond those listed as
OPTIONAL and REQUIRED ... MAY be included"), and event names outside the
table are allowed too; only the listed keys are checked.
"""
from __future__ import annotations

import errno
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntFlag
from typing import Any

from flux.errors import FluxError

__all__ = [
    "JobEventError", "JobFlag", "EventSpec", "SPECS", "EVENT_NAMES", "FLAG_NAMES",
    "URGENCY_MIN", "URGENCY_MAX", "PRIORITY_MIN", "PRIORITY_MAX", "SEVERITY_MAX",
    "validate", "event",
    "submit", "validate_event", "invalidate", "jobspec_update", "resource_update",
    "set_flags", "dependency_add", "dependency_remove", "depend", "priority",
    "flux_restart", "urgency", "alloc", "prolog_start", "prolog_finish",
    "epilog_start", "epilog_finish", "start", "release", "finish", "free", "clean",
    "exception", "memo",
]

URGENCY_MIN = 0
URGENCY_MAX = 31
PRIORITY_MIN = 0
PRIORITY_MAX = 4294967295
SEVERITY_MAX = 7
_UINT32_MAX = 4294967295


class JobEventError(FluxError):
    """An event that is malformed or not allowed in the job's state (EINVAL).

    ``event`` is the event name, ``key`` the offending context key (or None)
    and ``state`` the job state it was applied to (or None).
    """

    def __init__(self, message: str, *, event: str | None = None, key: str | None = None,
                 state: Any = None) -> None:
        super().__init__(errno.EINVAL, message)
        self.event = event
        self.key = key
        self.state = state


class JobFlag(IntFlag):
    """Bits of the ``submit`` event's ``flags`` (flux-core FLUX_JOB_*)."""

    DEBUG = 1
    WAITABLE = 2
    NOVALIDATE = 4


# set-flags names -> bit; "immutable" is flux-core's marker that the owner
# changed a guest job past its limits (flux update), it has no submit bit.
FLAG_NAMES: dict[str, int] = {"debug": 1, "waitable": 2, "novalidate": 4, "immutable": 8}


# --- type checkers: return an error phrase, or None when the value is fine ---

Checker = Callable[[Any], "str | None"]


def _int_range(lo: int, hi: int) -> Checker:
    def check(value: Any) -> str | None:
        if type(value) is not int or not lo <= value <= hi:
            return f"must be an integer in {lo}-{hi}"
        return None
    return check


def _is_string(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def _is_nonempty_string(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "must be a non-empty string"


def _is_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be a boolean"


def _is_object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be an object"


def _is_object_or_null(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict) else "must be an object or null"


def _is_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return "must be a non-negative number"
    return None


_IDSET_CHARS = re.compile(r"^[0-9,\-\[\]]+$")


def _is_idset_or_all(value: Any) -> str | None:
    if value == "all" or (isinstance(value, str) and _IDSET_CHARS.match(value)):
        return None
    return 'must be an RFC 22 idset string or "all"'


def _is_flag_list(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return "must be a non-empty array of flag names"
    for flag in value:
        if flag not in FLAG_NAMES:
            return f"has unknown flag {flag!r} (known: {', '.join(FLAG_NAMES)})"
    return None


def _is_version_1(value: Any) -> str | None:
    if type(value) is not int:
        return "must be an integer"
    if value != 1:
        return f"is {value}, only eventlog version 1 is supported"
    return None


@dataclass(frozen=True, slots=True)
class EventSpec:
    """Context keys of one event: name -> checker, REQUIRED and OPTIONAL."""

    name: str
    required: tuple[tuple[str, Checker], ...] = ()
    optional: tuple[tuple[str, Checker], ...] = ()


_UINT32 = _int_range(0, _UINT32_MAX)
_STATUS = _int_range(0, 2**31 - 1)
_DESC = (("description", _is_nonempty_string),)

SPECS: dict[str, EventSpec] = {spec.name: spec for spec in (
    EventSpec("submit", required=(("urgency", _int_range(URGENCY_MIN, URGENCY_MAX)),
                                  ("userid", _UINT32), ("flags", _UINT32),
                                  ("version", _is_version_1))),
    EventSpec("validate"),
    EventSpec("invalidate"),
    EventSpec("jobspec-update"),     # checked by _check_jobspec_update
    EventSpec("resource-update", required=(("expiration", _is_number),)),
    EventSpec("set-flags", required=(("flags", _is_flag_list),)),
    EventSpec("dependency-add", required=_DESC),
    EventSpec("dependency-remove", required=_DESC),
    EventSpec("depend"),
    EventSpec("priority", required=(("priority", _int_range(PRIORITY_MIN, PRIORITY_MAX)),)),
    EventSpec("flux-restart"),
    EventSpec("urgency", required=(("urgency", _int_range(URGENCY_MIN, URGENCY_MAX)),
                                   ("userid", _UINT32))),
    EventSpec("alloc", optional=(("annotations", _is_object_or_null),)),
    EventSpec("prolog-start", required=_DESC),
    EventSpec("prolog-finish", required=_DESC + (("status", _STATUS),)),
    EventSpec("epilog-start", required=_DESC),
    EventSpec("epilog-finish", required=_DESC + (("status", _STATUS),)),
    EventSpec("start"),
    EventSpec("release", required=(("ranks", _is_idset_or_all), ("final", _is_bool))),
    EventSpec("finish", required=(("status", _STATUS),)),
    EventSpec("free"),
    EventSpec("clean"),
    EventSpec("exception", required=(("type", _is_nonempty_string),
                                     ("severity", _int_range(0, SEVERITY_MAX)),
                                     ("note", _is_string)),
              optional=(("userid", _UINT32), ("wait_status", _STATUS))),
    EventSpec("memo"),               # any object; null values delete keys
)}

EVENT_NAMES: frozenset[str] = frozenset(SPECS)

_JOBSPEC_UPDATE_PREFIXES = ("attributes.", "tasks", "resources")


def _check_jobspec_update(context: Mapping[str, Any]) -> None:
    if not context:
        raise JobEventError("jobspec-update: context must contain at least one key",
                            event="jobspec-update")
    for key in context:
        if not key.startswith(_JOBSPEC_UPDATE_PREFIXES):
            raise JobEventError(
                f"jobspec-update: key {key!r} must start with 'attributes.', "
                "'tasks' or 'resources'", event="jobspec-update", key=key)


def validate(name: str, context: Any) -> None:
    """Check ``context`` against the spec of event ``name``.

    Raises JobEventError naming the event and the key that is missing or of
    the wrong type.  Unknown event names pass (RFC 21 allows other events).
    """
    if context is not None and not isinstance(context, dict):
        raise JobEventError(f"{name}: context must be an object", event=name)
    spec = SPECS.get(name)
    if spec is None:
        return
    ctx = context or {}
    for key, check in spec.required:
        if key not in ctx:
            raise JobEventError(f"{name}: context is missing required key {key!r}",
                                event=name, key=key)
        problem = check(ctx[key])
        if problem is not None:
            raise JobEventError(f"{name}: context key {key!r} {problem}, got {ctx[key]!r}",
                                event=name, key=key)
    for key, check in spec.optional:
        if key in ctx:
            problem = check(ctx[key])
            if problem is not None:
                raise JobEventError(
                    f"{name}: context key {key!r} {problem}, got {ctx[key]!r}",
                    event=name, key=key)
    if name == "jobspec-update":
        _check_jobspec_update(ctx)


def event(name: str, context: Mapping[str, Any] | None = None,
          timestamp: float | None = None) -> dict[str, Any]:
    """Return a validated RFC 18 entry ``{"timestamp", "name"[, "context"]}``.

    The timestamp defaults to now; an empty context is left out, as flux-core
    writes events such as ``{"timestamp":...,"name":"clean"}``.
    """
    if not isinstance(name, str) or not name:
        raise JobEventError(f"event name must be a non-empty string, got {name!r}")
    ctx = dict(context) if context else None
    validate(name, ctx)
    ts = time.time() if timestamp is None else timestamp
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts <= 0:
        raise JobEventError(f"{name}: timestamp must be a number > 0, got {ts!r}", event=name)
    entry: dict[str, Any] = {"timestamp": ts, "name": name}
    if ctx:
        entry["context"] = ctx
    return entry


# --- context constructors (one per event; no-context events return {}) ---

def submit(userid: int, urgency: int = 16, flags: int = 0) -> dict[str, Any]:
    return {"userid": userid, "urgency": urgency, "flags": flags, "version": 1}


def validate_event() -> dict[str, Any]:
    return {}


def invalidate() -> dict[str, Any]:
    return {}


def jobspec_update(updates: Mapping[str, Any]) -> dict[str, Any]:
    return dict(updates)


def resource_update(expiration: float) -> dict[str, Any]:
    return {"expiration": expiration}


def set_flags(flags: list[str]) -> dict[str, Any]:
    return {"flags": list(flags)}


def dependency_add(description: str) -> dict[str, Any]:
    return {"description": description}


def dependency_remove(description: str) -> dict[str, Any]:
    return {"description": description}


def depend() -> dict[str, Any]:
    return {}


def priority(value: int) -> dict[str, Any]:
    return {"priority": value}


def flux_restart() -> dict[str, Any]:
    return {}


def urgency(value: int, userid: int) -> dict[str, Any]:
    return {"urgency": value, "userid": userid}


def alloc(annotations: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"annotations": dict(annotations)} if annotations else {}


def prolog_start(description: str) -> dict[str, Any]:
    return {"description": description}


def prolog_finish(description: str, status: int = 0) -> dict[str, Any]:
    return {"description": description, "status": status}


def epilog_start(description: str) -> dict[str, Any]:
    return {"description": description}


def epilog_finish(description: str, status: int = 0) -> dict[str, Any]:
    return {"description": description, "status": status}


def start() -> dict[str, Any]:
    return {}


def release(ranks: str = "all", final: bool = True) -> dict[str, Any]:
    return {"ranks": ranks, "final": final}


def finish(status: int) -> dict[str, Any]:
    return {"status": status}


def free() -> dict[str, Any]:
    return {}


def clean() -> dict[str, Any]:
    return {}


def exception(type: str, severity: int = 0, note: str = "", userid: int | None = None,
              wait_status: int | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"type": type, "severity": severity, "note": note}
    if userid is not None:
        ctx["userid"] = userid
    if wait_status is not None:
        ctx["wait_status"] = wait_status
    return ctx


def memo(**values: Any) -> dict[str, Any]:
    return dict(values)
