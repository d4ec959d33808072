"""The ``rlimit`` shell option: resource limits for the tasks.

``{"nofile": 1024, "core": 0, "stack": "unlimited", ...}`` (names are
RLIMIT_* without the prefix, lower case; values an integer, -1,
``"unlimited"`` or ``"infinity"``).  The shell's host sets them on its
process just while it starts each task (tasks inherit them), or, where
that start fails under them (a process count below the user's, a memory
limit below what the host uses), has the task set them itself
(shell/host.py ``Host.spawn``).  A limit above the node's hard limit is
lowered to it and logged, not fatal (the submitter's own limit was higher
than this node allows).
"""
from __future__ import annotations

import functools
import resource
from typing import Any

from shell.plugstack import Plugin

__all__ = ["plugin", "parse_limit", "limits_for"]


def parse_limit(name: str, value: Any) -> tuple[int, int]:
    """(RLIMIT constant, value) for an option entry; ValueError names what is wrong."""
    const = getattr(resource, "RLIMIT_" + str(name).upper(), None)
    if const is None:
        raise ValueError(f"rlimit: unknown resource limit {name!r}")
    if isinstance(value, str) and value.lower() in ("unlimited", "infinity", "inf"):
        return const, resource.RLIM_INFINITY
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"rlimit: {name}: invalid value {value!r}")
    return const, resource.RLIM_INFINITY if value < 0 else value


def limits_for(limits: dict[str, Any]) -> tuple[dict[int, int], list[str]]:
    """(RLIMIT constant -> soft limit for the tasks, warnings) for the option LIMITS."""
    out: dict[int, int] = {}
    warnings = []
    for name, value in limits.items():
        const, limit = parse_limit(name, value)
        _soft, hard = resource.getrlimit(const)
        if hard != resource.RLIM_INFINITY and (limit == resource.RLIM_INFINITY
                                               or limit > hard):
            # no "rlimit: " here: the log names the plugin (WARN: rlimit: ...)
            warnings.append(f"{name}: {value} exceeds the hard limit {hard}; using {hard}")
            limit = hard
        out[const] = limit
    return out, warnings


#: limits_for() by the option's items: every job of a submitter carries the same
#: limits, and a shell server's own hard limits do not change (a bad option raises,
#: and is not remembered)
_limits_of_items = functools.lru_cache(maxsize=256)(lambda items: limits_for(dict(items)))


def plugin() -> Plugin:
    p = Plugin("rlimit")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        limits = sh.getopt("rlimit")
        if not limits:
            return
        if not isinstance(limits, dict):
            raise ValueError("rlimit: shell option must be an object")
        try:
            values, warnings = _limits_of_items(tuple(limits.items()))
        except TypeError:           # an unhashable value: no cache, the same checks
            values, warnings = limits_for(limits)
        for text in warnings:
            sh.log(text, 4, "rlimit")
        sh.rlimits.update(values)

    p.add_handler("shell.init", init)
    return p
