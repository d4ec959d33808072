"""RFC 21 job states, results, their names, and the state transition function.

``transition(state, name, context)`` is the whole state machine: given the
job's current state and one eventlog event it returns the next state, or
raises ``JobEventError`` naming the event and the state when the event is
not allowed there (or its context is malformed).  The table it follows is
in specs/job-states.md.
"""
from __future__ import annotations

from collections.abc import Mapping
from enum import IntFlag
from typing import Any

from jobmgr.events import JobEventError, validate

__all__ = [
    "JobState", "JobResult", "transition", "job_result",
    "statetostr", "resulttostr", "strtostate", "strtoresult", "STATE_NAMES",
    "RESULT_NAMES",
]


class JobState(IntFlag):
    """Job states as bits, so sets of states are masks (flux-core values)."""

    NEW = 1
    DEPEND = 2
    PRIORITY = 4
    SCHED = 8
    RUN = 16
    CLEANUP = 32
    INACTIVE = 64
    PENDING = DEPEND | PRIORITY | SCHED
    RUNNING = RUN | CLEANUP
    ACTIVE = PENDING | RUNNING


class JobResult(IntFlag):
    """Result of an inactive job."""

    COMPLETED = 1
    FAILED = 2
    CANCELED = 4
    TIMEOUT = 8


_STATE_TEXT = {1: ("NEW", "N"), 2: ("DEPEND", "D"), 4: ("PRIORITY", "P"), 8: ("SCHED", "S"),
               16: ("RUN", "R"), 32: ("CLEANUP", "C"), 64: ("INACTIVE", "I")}
_RESULT_TEXT = {1: ("COMPLETED", "CD"), 2: ("FAILED", "F"), 4: ("CANCELED", "CA"),
                8: ("TIMEOUT", "TO")}

# lower-case names accepted by filters (flux jobs -f, job-list constraints)
STATE_NAMES: dict[str, int] = {
    "new": 1, "depend": 2, "priority": 4, "sched": 8, "run": 16, "cleanup": 32,
    "inactive": 64, "pending": 14, "running": 48, "active": 62,
}
RESULT_NAMES: dict[str, int] = {"completed": 1, "failed": 2, "canceled": 4, "timeout": 8}


def statetostr(state: int, singlechar: bool = False) -> str:
    """``JobState.RUN`` -> ``"RUN"`` (or ``"R"``); an unknown value -> ``"(unknown)"``/``"?"``."""
    text = _STATE_TEXT.get(int(state))
    if text is None:
        return "?" if singlechar else "(unknown)"
    return text[1] if singlechar else text[0]


def resulttostr(result: int, abbrev: bool = False) -> str:
    """``JobResult.CANCELED`` -> ``"CANCELED"`` (or ``"CA"``)."""
    text = _RESULT_TEXT.get(int(result))
    if text is None:
        return "?" if abbrev else "(unknown)"
    return text[1] if abbrev else text[0]


def strtostate(name: str) -> JobState:
    """Parse a state name, virtual state name or letter (any case) to a mask."""
    key = name.strip().lower()
    if key in STATE_NAMES:
        return JobState(STATE_NAMES[key])
    for value, (_, letter) in _STATE_TEXT.items():
        if key == letter.lower():
            return JobState(value)
    raise ValueError(f"invalid job state: {name!r}")


def strtoresult(name: str) -> JobResult:
    """Parse a result name or its short form (any case)."""
    key = name.strip().lower()
    if key in RESULT_NAMES:
        return JobResult(RESULT_NAMES[key])
    for value, (_, short) in _RESULT_TEXT.items():
        if key == short.lower():
            return JobResult(value)
    raise ValueError(f"invalid job result: {name!r}")


def job_result(finish_status: int | None, fatal_type: str | None) -> JobResult:
    """The result rule: COMPLETED iff finish status 0 and no fatal exception.

    Otherwise the type of the first severity-0 exception decides: ``cancel``
    -> CANCELED, ``timeout`` -> TIMEOUT, anything else (or a non-zero exit)
    -> FAILED.
    """
    if fatal_type is None:
        return JobResult.COMPLETED if finish_status == 0 else JobResult.FAILED
    if fatal_type == "cancel":
        return JobResult.CANCELED
    if fatal_type == "timeout":
        return JobResult.TIMEOUT
    return JobResult.FAILED


# --- the transition table ---------------------------------------------------

_N, _D, _P, _S, _R, _C, _I = (JobState.NEW, JobState.DEPEND, JobState.PRIORITY,
                              JobState.SCHED, JobState.RUN, JobState.CLEANUP,
                              JobState.INACTIVE)


def _same(*states: JobState) -> dict[JobState, JobState]:
    return {s: s for s in states}


_ANY_ACTIVE = (_N, _D, _P, _S, _R, _C)

# event name -> {state it is allowed in -> next state}
TABLE: dict[str, dict[JobState, JobState]] = {
    "validate": {_N: _D},
    "invalidate": {_N: _I},
    "jobspec-update": {**_same(_N, _D, _P, _R), _S: _P},
    "resource-update": _same(_R),
    "set-flags": _same(*_ANY_ACTIVE),
    "dependency-add": _same(_N, _D),
    "dependency-remove": _same(_N, _D),
    "depend": {_D: _P},
    "priority": {_P: _S, _S: _S},
    "flux-restart": {**_same(_D, _P, _R, _C), _S: _P},
    "urgency": {**_same(_N, _D, _P), _S: _P},
    # an alloc can be answered after a fatal exception already moved the job
    # to CLEANUP; it is logged so the resources are freed again.
    "alloc": {_S: _R, _C: _C},
    "prolog-start": _same(_R),
    "prolog-finish": _same(_R, _C),
    "epilog-start": _same(_C),
    "epilog-finish": _same(_C),
    "start": _same(_R, _C),
    "release": _same(_R, _C),
    "finish": {_R: _C, _C: _C},
    "free": _same(_C),
    "clean": {_C: _I},
    "memo": _same(*_ANY_ACTIVE),
}
_FATAL_EXCEPTION = {_D: _C, _P: _C, _S: _C, _R: _C, _C: _C}
_NONFATAL_EXCEPTION = _same(_D, _P, _S, _R, _C)
_OTHER = _same(*_ANY_ACTIVE)     # debug.* and events RFC 21 does not list


def allowed_states(name: str, context: Mapping[str, Any] | None = None) -> dict[JobState, JobState]:
    """The states event ``name`` is allowed in, mapped to the state it leads to."""
    if name == "exception":
        severity = (context or {}).get("severity")
        return _FATAL_EXCEPTION if severity == 0 else _NONFATAL_EXCEPTION
    if name == "submit":
        return {}
    return TABLE.get(name, _OTHER)


def transition(state: JobState | None, name: str,
               context: Mapping[str, Any] | None = None, checked: bool = False) -> JobState:
    """Return the state after event ``name`` (with ``context``) in ``state``.

    ``state`` is None before the first event, which must be ``submit``.
    Raises JobEventError naming the event and state if the event is not
    allowed there, or naming the key if the context is malformed.  CHECKED:
    the context was validated already (the job manager's own events, checked
    when posted), so only the state table is consulted.
    """
    if not checked:
        validate(name, context)
    if state is None:
        if name != "submit":
            raise JobEventError(f"event {name!r} before submit: submit must be the first event",
                                event=name)
        return JobState.NEW
    if name == "submit":
        raise JobEventError(
            f"event 'submit' is not valid in state {statetostr(state)}: "
            "submit must be the first event", event=name, state=state)
    nxt = allowed_states(name, context).get(state)
    if nxt is None:
        raise JobEventError(f"event {name!r} is not valid in state {statetostr(state)}",
                            event=name, state=state)
    return nxt
