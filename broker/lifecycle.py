"""The broker state machine (flux-broker's lifecycle) as a pure transition table.

States follow flux-uptime(1): join, init (rc1: load modules), quorum,
run (initial program), cleanup, shutdown (wait for overlay children),
finalize (rc3: unload modules), then goodbye and exit.  Each transition is
named by the event that caused it; the broker logs
``"<event>: <old>-><new> <seconds>s"`` as flux-core does.
"""
from __future__ import annotations

from enum import Enum


class State(Enum):
    NONE = "none"
    JOIN = "join"
    INIT = "init"
    QUORUM = "quorum"
    RUN = "run"
    CLEANUP = "cleanup"
    SHUTDOWN = "shutdown"
    FINALIZE = "finalize"
    GOODBYE = "goodbye"
    EXIT = "exit"

    def __str__(self) -> str:
        return self.value


S = State

#: (state, event) -> next state
TRANSITIONS: dict[tuple[State, str], State] = {
    (S.NONE, "start"): S.JOIN,
    (S.JOIN, "parent-none"): S.INIT,
    (S.JOIN, "parent-ready"): S.INIT,
    (S.JOIN, "parent-fail"): S.SHUTDOWN,
    (S.JOIN, "shutdown"): S.SHUTDOWN,
    (S.INIT, "rc1-success"): S.QUORUM,
    (S.INIT, "rc1-fail"): S.SHUTDOWN,
    (S.INIT, "shutdown"): S.SHUTDOWN,
    (S.QUORUM, "quorum-full"): S.RUN,
    (S.QUORUM, "quorum-timeout"): S.SHUTDOWN,
    (S.QUORUM, "shutdown"): S.SHUTDOWN,
    (S.RUN, "rc2-success"): S.CLEANUP,
    (S.RUN, "rc2-fail"): S.CLEANUP,
    (S.RUN, "shutdown"): S.CLEANUP,
    (S.CLEANUP, "cleanup-success"): S.SHUTDOWN,
    (S.SHUTDOWN, "children-complete"): S.FINALIZE,
    (S.SHUTDOWN, "children-none"): S.FINALIZE,
    (S.SHUTDOWN, "children-timeout"): S.FINALIZE,
    (S.FINALIZE, "rc3-success"): S.GOODBYE,
    (S.FINALIZE, "rc3-fail"): S.GOODBYE,
    (S.GOODBYE, "goodbye"): S.EXIT,
}

#: events that may arrive in any state and are then ignored (no transition)
IGNORABLE = frozenset({"shutdown"})


def next_state(state: State, event: str) -> State:
    """The state after EVENT in STATE; ValueError names an impossible pair."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise ValueError(f"broker state machine: event '{event}' is not valid in "
                         f"state '{state}'") from None


def transition_line(event: str, old: State, new: State, seconds: float) -> str:
    """The log line for one transition, e.g. ``rc1-success: init->quorum 0.0123s``."""
    return f"{event}: {old}->{new} {seconds:.6g}s"


__all__ = ["State", "TRANSITIONS", "IGNORABLE", "next_state", "transition_line"]
