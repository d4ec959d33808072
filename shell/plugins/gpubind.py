"""The ``gpu-affinity`` shell option: CUDA_VISIBLE_DEVICES from the GPUs R gives this rank.

``on`` (default): every task sees all of the rank's GPUs; ``per-task``: the
GPUs are split among the local tasks; ``off``: the variable is left alone;
``map:LIST`` (flux-shell-options(7)): local task *i* sees the *i*-th of
LIST's ``;``-separated GPU sets (the forms of ``cpu-affinity``'s map).
A rank with no GPUs leaves it alone too (a map is applied all the same).
"""
from __future__ import annotations

from typing import Any

from flux.idset import IDset
from shell.info import cores_of_tasks
from shell.plugstack import Plugin

__all__ = ["plugin"]


def plugin() -> Plugin:
    p = Plugin("gpubind")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        state = sh.aux["gpubind"] = {}
        mode = sh.getopt("gpu-affinity", "on")
        if mode in (None, True, 1):
            mode = "on"
        if isinstance(mode, str) and mode.startswith("map:"):
            from shell.plugins.affinity import parse_map

            sets = parse_map(mode[4:], "gpu-affinity")
            if len(sets) < sh.info.me.ntasks:
                raise ValueError(f"gpu-affinity: map has {len(sets)} GPU set(s) for "
                                 f"{sh.info.me.ntasks} local task(s)")
            state["mode"] = "per-task"
            state["split"] = sets
            return
        if mode not in ("on", "off", "per-task"):
            raise ValueError(f"gpu-affinity: invalid value {mode!r} "
                             "(on, off, per-task or map:LIST)")
        gpus = sh.info.me.gpus
        if mode == "off" or not gpus:
            return
        state["mode"] = mode
        if mode == "on":
            sh.env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in IDset(gpus).expand())
        else:
            state["split"] = cores_of_tasks(gpus, sh.info.me.ntasks)

    def task_init(_topic: str, sh: Any, task: Any) -> None:
        state = sh.aux.get("gpubind") or {}
        if state.get("mode") == "per-task":
            task.env["CUDA_VISIBLE_DEVICES"] = ",".join(
                str(g) for g in state["split"][task.local_id])

    p.add_handler("shell.init", init)
    p.add_handler("task.init", task_init)
    return p
