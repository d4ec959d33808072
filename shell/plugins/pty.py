"""The ``pty`` shell option: run a task on a pseudo-terminal.

``-o pty`` gives the job's first task (rank 0) a terminal; ``pty.ranks``
(an idset or ``all``) picks others.  The task's stdin, stdout and stderr
are the terminal (stdin is the file of ``input.stdin.type=file``, as
``CMD <FILE`` on a terminal); what it writes comes out as its stdout, and
stdin data for it goes to the terminal.  The task is a session leader with the
terminal as its controlling tty (a small Python trampoline sets that
up).  ``resize`` events in the
input log set the terminal's window size (shell/plugins/input.py); the end
of the input is the terminal's EOF character, as a user would type it.
Output that is only captured (not rank 0's ``pty.interactive`` terminal)
keeps its newlines as the task wrote them: no ONLCR, so a line ends in LF
in the job's output, not in a terminal's CR LF.  Keys other than ``ranks``,
``capture`` and ``interactive`` fail the job, as in flux-core.

``pty.interactive`` (``flux alloc`` on a terminal) is ``pty`` for rank 0
(added to ``pty.ranks`` if they lack it, with a warning):
``flux alloc`` puts its terminal in raw mode and copies every keystroke
to the job's input log and the job's output back, so ctrl-C, ctrl-D and
ctrl-Z are bytes the job's terminal turns into signals or EOF for its
foreground process group, as on a local terminal.
"""
from __future__ import annotations

import os
import sys
import termios
from typing import Any

from flux.idset import IDset
from shell.plugstack import Plugin

__all__ = ["plugin", "TRAMPOLINE"]

#: makes the terminal (stdout: stdin may be a file) the controlling tty, then becomes
#: the task
TRAMPOLINE = ("import os,sys,fcntl,termios\n"
              "fcntl.ioctl(1, termios.TIOCSCTTY, 0)\n"
              "os.execvp(sys.argv[1], sys.argv[1:])\n")


#: the keys of a ``pty`` option object (flux-shell-options(7))
_KEYS = ("ranks", "capture", "interactive")


def _ranks(option: Any) -> set[int] | None:
    """Task ranks that get a pty, None meaning all; ValueError for an option
    the shell does not know (``-o pty.foo``), as flux-core's shell fails it."""
    if option in (None, False, 0):
        return set()
    if option is True or option == 1 or not isinstance(option, dict):
        return {0}
    unknown = [key for key in option if key not in _KEYS]
    if unknown:
        raise ValueError(f"invalid shell pty option: {len(unknown)} object item(s) "
                         f"left unpacked: {', '.join(unknown)}")
    ranks = option.get("ranks", 0)
    if ranks == "all":
        return None
    return set(IDset(str(ranks)).expand())


def _interactive(option: Any) -> bool:
    return isinstance(option, dict) and bool(option.get("interactive"))


def _no_crlf(fd: int) -> None:
    """Have the terminal FD pass a task's newlines as they are (no ONLCR): its output
    is captured to the job's output, where a line ends in LF, not in the CR LF a
    terminal shows (``flux run -o pty CMD >file``, ``-l`` labels)."""
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def plugin() -> Plugin:
    p = Plugin("pty")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        option = sh.getopt("pty")
        ranks = _ranks(option)
        interactive = _interactive(option)
        if interactive and ranks is not None and 0 not in ranks:
            # the terminal a front end attaches to is rank 0's; flux-core adds it too
            ranks.add(0)
            if sh.rank == 0:
                sh.log("adding pty to rank 0 for interactive support", 4, "pty")
        sh.aux["pty.ranks"] = ranks
        sh.aux["pty.interactive"] = interactive

    def task_init(_topic: str, sh: Any, task: Any) -> None:
        ranks = sh.aux.get("pty.ranks", set())
        if ranks is not None and task.rank not in ranks:
            return
        master, slave = os.openpty()
        if task.rank != 0 or not sh.aux.get("pty.interactive"):
            # an interactive terminal's output goes to a terminal in raw mode, which
            # needs the CR; any other is only captured
            _no_crlf(slave)
        for child_fd in (1, 2):
            task.child_fds[child_fd] = os.dup(slave)
        source = (getattr(sh, "aux", {}).get("input") or {}).get("file")
        if source is not None:
            # --input=FILE: the task reads the file, as `CMD <FILE` on a terminal does
            # (nothing is ever typed at this one: the task waited forever)
            task.child_fds[0] = os.open(f"/proc/self/fd/{source}", os.O_RDONLY)
        else:
            task.child_fds[0] = os.dup(slave)
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
