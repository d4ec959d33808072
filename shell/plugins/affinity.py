"""The ``cpu-affinity`` shell option: bind tasks to the cores R gives this rank.

``on`` (default): every task is bound to all of the rank's cores; ``per-task``:
the cores are split among the local tasks; ``off``: no binding; ``map:LIST``
(flux-shell-options(7)): local task *i* is bound to the *i*-th entry of
LIST, ``;``-separated CPU sets in hwloc's list (``0-3,5``), bitmask
(``0x0000000f,0x00000001``) or taskset (``0xf``) form.  A ``verbose,`` or
``dry-run,`` prefix logs the CPUs the shell and each task get (dry-run
then binds nothing).  Core ids
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


def parse_cpuset(text: str) -> list[int]:
    """One CPU set in hwloc's list, bitmask or taskset form (ValueError if none)."""
    text = text.strip()
    if text.lower().startswith("0x"):
        # bitmask: comma-separated 32-bit words, most significant first; taskset: one word
        value = int("".join(w.strip()[2:] if w.strip().lower().startswith("0x") else w.strip()
                            for w in text.split(",")) or "0", 16)
        return [i for i in range(value.bit_length()) if value >> i & 1]
    return IDset(text).expand()


def parse_map(value: str, what: str) -> list[list[int]]:
    """``map:LIST``'s LIST: one set per local task (ValueError names WHAT)."""
    try:
        sets = [parse_cpuset(item) for item in value.split(";") if item.strip()]
    except ValueError:
        raise ValueError(f"{what}: invalid map {value!r}") from None
    if not sets:
        raise ValueError(f"{what}: invalid map {value!r}")
    return sets


def split_mode(value: Any, what: str) -> tuple[str, bool, bool]:
    """(mode, verbose, dry_run) from the option VALUE: ``[verbose,|dry-run,]MODE``."""
    if value in (None, True, 1):
        return "on", False, False
    text = str(value)
    verbose = dry_run = False
    while True:
        head, comma, rest = text.partition(",")
        if head == "verbose" and not text.startswith("map:"):
            verbose, text = True, rest if comma else "on"
        elif head == "dry-run" and not text.startswith("map:"):
            verbose = dry_run = True
            text = rest if comma else "on"
        else:
            break
    if text not in ("on", "off", "per-task") and not text.startswith("map:"):
        raise ValueError(f"{what}: invalid value {value!r} (on, off, per-task or map:LIST)")
    return text, verbose, dry_run


def _say(sh: Any, message: str) -> None:
    # asked for with verbose: shown at the default verbosity (a NOTICE, no level name)
    sh.output.log(5, message, "cpu-affinity")


def plugin() -> Plugin:
    p = Plugin("affinity")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        state = sh.aux["affinity"] = {}
        mode, verbose, dry_run = split_mode(sh.getopt("cpu-affinity", "on"), "cpu-affinity")
        state["verbose"] = verbose
        state["mode"] = "off" if dry_run else mode
        if verbose:
            cores = IDset(sh.info.me.cores).encode() if sh.info.me.cores else "none"
            _say(sh, f"shell rank {sh.rank}: cores {cores}"
                     f"{' (dry run: not binding)' if dry_run else ''}")
        if mode.startswith("map:"):
            sets = parse_map(mode[4:], "cpu-affinity")
            if len(sets) < sh.info.me.ntasks:
                raise ValueError(f"cpu-affinity: map has {len(sets)} CPU set(s) for "
                                 f"{sh.info.me.ntasks} local task(s)")
            state["per_task"] = [sorted(usable_cpus(c)) for c in sets]
            if dry_run or verbose:
                for i, c in enumerate(sets[:sh.info.me.ntasks]):
                    _say(sh, f"task {i} (local): cpus {IDset(c).encode() or 'none'}")
            if not dry_run:
                state["mode"] = "per-task"
            return
        if mode == "off" or dry_run and mode == "on":
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
            if verbose:
                for i, c in enumerate(state["per_task"]):
                    _say(sh, f"task {i} (local): cpus {IDset(c).encode()}")
            if dry_run:
                state["mode"] = "off"

    def task_init(_topic: str, sh: Any, task: Any) -> None:
        state = sh.aux.get("affinity") or {}
        mode = state.get("mode")
        if mode == "on":
            task.cpus = state["all"]
        elif mode == "per-task":
            task.cpus = state["per_task"][task.local_id] or None    # none here: unbound

    p.add_handler("shell.init", init)
    p.add_handler("task.init", task_init)
    return p
