"""Urgency and priority rules (RFC 21, RFC 30).

Urgency is what the user asks for (0-31, default 16); priority is what the
job manager assigns and the scheduler orders by (0-4294967295).  By default
priority = urgency, except that urgency 0 (hold) always gives priority 0,
which is never scheduled, and urgency 31 (expedite) always gives the
maximum priority, bypassing any priority plugin.
"""
from __future__ import annotations

import errno

from flux.errors import FluxError
from jobmgr.events import PRIORITY_MAX, PRIORITY_MIN, URGENCY_MAX, URGENCY_MIN
from jobmgr.states import JobState

__all__ = [
    "URGENCY_HOLD", "URGENCY_DEFAULT", "URGENCY_EXPEDITE", "URGENCY_GUEST_MAX",
    "URGENCY_MIN", "URGENCY_MAX", "PRIORITY_MIN", "PRIORITY_MAX", "PRIORITY_UNSET",
    "parse_urgency", "check_urgency", "priority_for", "is_held", "sched_key",
    "urgency_change_allowed",
]

URGENCY_HOLD = 0
URGENCY_DEFAULT = 16
URGENCY_EXPEDITE = 31
URGENCY_GUEST_MAX = 16
PRIORITY_UNSET = -1

_URGENCY_WORDS = {"hold": URGENCY_HOLD, "default": URGENCY_DEFAULT,
                  "expedite": URGENCY_EXPEDITE}


def parse_urgency(text: str | int) -> int:
    """``"hold"``/``"default"``/``"expedite"`` or a number -> urgency.

    Raises ValueError naming the text when it is neither a word nor an
    integer in 0-31.
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid urgency: {text!r}")
    if isinstance(text, int):
        value = text
    else:
        word = text.strip().lower()
        if word in _URGENCY_WORDS:
            return _URGENCY_WORDS[word]
        try:
            value = int(word, 10)
        except ValueError:
            raise ValueError(f"invalid urgency {text!r}: use 0-31, hold, default or expedite") \
                from None
    if not URGENCY_MIN <= value <= URGENCY_MAX:
        raise ValueError(f"invalid urgency {text!r}: must be in {URGENCY_MIN}-{URGENCY_MAX}")
    return value


def check_urgency(urgency: int, owner: bool) -> None:
    """Refuse an urgency out of range (EINVAL) or above 16 for a guest (EPERM)."""
    if isinstance(urgency, bool) or not isinstance(urgency, int) \
            or not URGENCY_MIN <= urgency <= URGENCY_MAX:
        # flux-core's job-ingest text
        raise FluxError(errno.EINVAL, f"urgency range is [{URGENCY_MIN}:{URGENCY_MAX}]")
    if not owner and urgency > URGENCY_GUEST_MAX:
        raise FluxError(errno.EPERM, f"guests may only set urgency {URGENCY_MIN}-"
                        f"{URGENCY_GUEST_MAX}, not {urgency}")


def priority_for(urgency: int, plugin_priority: int | None = None) -> int:
    """Priority of a job with ``urgency``.

    Hold and expedite are fixed; otherwise a priority plugin's value is used
    when given (clamped to the valid range) and the urgency when not.
    """
    if urgency == URGENCY_HOLD:
        return PRIORITY_MIN
    if urgency == URGENCY_EXPEDITE:
        return PRIORITY_MAX
    if plugin_priority is None:
        return urgency
    return min(max(plugin_priority, PRIORITY_MIN), PRIORITY_MAX)


def is_held(priority: int) -> bool:
    """A job at the minimum priority is never sent to the scheduler."""
    return priority == PRIORITY_MIN


def sched_key(priority: int, t_submit: float, jobid: int) -> tuple[int, float, int]:
    """Sort key for scheduling order: higher priority first, then older first."""
    return (-priority, t_submit, jobid)


def urgency_change_allowed(state: JobState) -> bool:
    """Urgency may change only before resources are allocated."""
    return bool(state & (JobState.NEW | JobState.PENDING))
