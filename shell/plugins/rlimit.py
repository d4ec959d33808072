"""The ``rlimit`` shell option: resource limits for the tasks.

``{"nofile": 1024, "core": 0, "stack": "unlimited", ...}`` (names are
RLIMIT_* without the prefix, lower case; values an integer, -1,
``"unlimited"`` or ``"infinity"``).  The shell's host sets them on its
process just while it starts each task (tasks inherit them); a limit above
the node's hard limit is lowered to it and logged, not fatal (the
submitter's own limit was higher than this node allows).
"""
from __future__ import annotations

import resource
from typing import Any

from shell.plugstack import Plugin

__all__ = ["plugin", "parse_limit"]


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


def plugin(shell: Any) -> Plugin:
    p = Plugin("rlimit")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        limits = sh.getopt("rlimit")
        if not limits:
            return
        if not isinstance(limits, dict):
            raise ValueError("rlimit: shell option must be an object")
        for name, value in limits.items():
            const, limit = parse_limit(name, value)
            _soft, hard = resource.getrlimit(const)
            if hard != resource.RLIM_INFINITY and (limit == resource.RLIM_INFINITY
                                                   or limit > hard):
                sh.log(f"rlimit: {name}: {value} exceeds the hard limit {hard}; using {hard}",
                       4, "rlimit")
                limit = hard
            sh.rlimits[const] = limit

    p.add_handler("shell.init", init)
    return p
