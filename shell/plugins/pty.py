"""The ``pty`` shell option: run a task on a pseudo-terminal.

``-o pty`` gives the job's first task (rank 0) a terminal; ``pty.ranks``
(an idset or ``all``) picks others.  The task's stdin, stdout and stderr
are the terminal; what it writes comes out as its stdout, and stdin
data for it goes to the terminal.  The task is a session leader with the
terminal as its controlling tty (a small trampoline sets that up, the
only case where a task starts through Python).  ``resize`` events in the
input log set the terminal's window size (shell/plugins/input.py).

``pty.interactive`` (``flux alloc`` on a terminal) is ``pty`` for rank 0:
``flux alloc`` puts its terminal in raw mode and copies every keystroke
to the job's input log and the job's output back, so ctrl-C, ctrl-D and
ctrl-Z are bytes the job's terminal turns into signals or EOF for its
foreground process group, as on a local terminal.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from flux.idset import IDset
from shell.plugstack import Plugin

__all__ = ["plugin", "TRAMPOLINE"]

TRAMPOLINE = ("import os,sys,fcntl,termios\n"
              "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
              "os.execvp(sys.argv[1], sys.argv[1:])\n")


def _ranks(option: Any) -> set[int] | None:
    """Task ranks that get a pty, None meaning all."""
    if option in (None, False, 0):
        return set()
    if option is True or option == 1 or not isinstance(option, dict):
        return {0}
    ranks = option.get("ranks", 0)
    if ranks == "all":
        return None
    return set(IDset(str(ranks)).expand())


def plugin() -> Plugin:
    p = Plugin("pty")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        sh.aux["pty.ranks"] = _ranks(sh.getopt("pty"))

    def task_init(_topic: str, sh: Any, task: Any) -> None:
        ranks = sh.aux.get("pty.ranks", set())
        if ranks is not None and task.rank not in ranks:
            return
        master, slave = os.openpty()
        for child_fd in (0, 1, 2):
            task.child_fds[child_fd] = os.dup(slave)
        os.close(slave)
        task.setsid = True
        task.argv = [sys.executable, "-P", "-c", TRAMPOLINE] + task.argv
        task.env.setdefault("TERM", os.environ.get("TERM", "xterm"))
        task.aux["pty"] = master
        router = getattr(sh, "aux", {}).get("input.router")
        if router is not None:
            router.add(task.rank, os.dup(master))
            router.terminals[task.rank] = os.dup(master)

    def task_fork(_topic: str, sh: Any, task: Any) -> None:
        master = task.aux.pop("pty", None)
        if master is not None:
            sh.watch_output(task, "stdout", master)
            sh.output.task_eof(task, "stderr")

    p.add_handler("shell.init", init)
    p.add_handler("task.init", task_init)
    p.add_handler("task.fork", task_fork)
    return p
