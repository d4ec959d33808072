"""The ``cpu-affinity`` shell option: bind tasks to the cores R gives this rank.

``on`` (default): every task is bound to all of the rank's cores; ``per-task``:
the cores are split among the local tasks; ``off``: no binding.  Core ids
in R are taken as CPU numbers; ids this machine does not have (a test
instance configured with more cores than it has) are skipped, and nothing
is bound when none is left.  The shell sets ``task.cpus``; its host binds
the process to them just while it starts the task (tasks inherit it), so
no code runs in the task between fork and exec.
"""
from __future__ import annotations

import os
from typing import Any

from flux.idset import IDset
from shell.info import cores_of_tasks
from shell.plugstack import Plugin

__all__ = ["plugin", "usable_cpus"]


def usable_cpus(cores: list[int]) -> set[int]:
    try:
        allowed = os.sched_getaffinity(0)
    except OSError:
        return set()
    return {c for c in cores if c in allowed}


def plugin() -> Plugin:
    p = Plugin("affinity")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        state = sh.aux["affinity"] = {}
        mode = sh.getopt("cpu-affinity", "on")
        if mode in (None, True, 1):
            mode = "on"
        if mode not in ("on", "off", "per-task"):
            raise ValueError(f"cpu-affinity: invalid value {mode!r} (on, off or per-task)")
        state["mode"] = mode
        if mode == "off":
            return
        cores = IDset(sh.info.me.cores).expand() if sh.info.me.cores else []
        cpus = usable_cpus(cores)
        if not cpus:
            sh.log("cpu-affinity: none of the assigned cores exist here; not binding", 7)
            state["mode"] = "off"
            return
        if mode == "on":
            state["all"] = sorted(cpus)
        else:
            state["per_task"] = [sorted(usable_cpus(c) or cpus) for c in
                                 cores_of_tasks(sh.info.me.cores, sh.info.me.ntasks)]

    def task_init(_topic: str, sh: Any, task: Any) -> None:
        state = sh.aux.get("affinity") or {}
        mode = state.get("mode")
        if mode == "on":
            task.cpus = state["all"]
        elif mode == "per-task":
            task.cpus = state["per_task"][task.local_id]

    p.add_handler("shell.init", init)
    p.add_handler("task.init", task_init)
    return p
