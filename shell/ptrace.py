"""The ``stop-tasks-in-exec`` shell option: tasks stopped at their exec, for a debugger.

flux-shell(1): "Stops tasks in exec() using PTRACE_TRACEME." Tasks start
without Python in the child (posix_spawn), so the request to be traced is
made by a small trampoline that then execs the command: the kernel stops
the task with SIGTRAP right after that exec, its tracer (the shell's
process, which started it) detaches with SIGSTOP, and the task stays
stopped, unstarted in all but name, until a debugger (or ``flux job kill
-s SIGCONT``) continues it. Only jobs with the option pay for the trampoline.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["trampoline_argv", "detach_stopped", "resume"]

_PTRACE_CONT = 7
_PTRACE_DETACH = 17

#: run as ``python -S -c TRAMPOLINE COMMAND ARGS...``: ask to be traced, become COMMAND
_TRAMPOLINE = """\
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace(0, 0, None, None) != 0:
    sys.stderr.write("flux-shell: stop-tasks-in-exec: ptrace(PTRACE_TRACEME): "
                     + os.strerror(ctypes.get_errno()) + "\\n")
    sys.exit(1)
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as exc:
    missing = exc.errno == 2
    sys.stderr.write(sys.argv[1] + ": " + str(exc.strerror) + "\\n")
    sys.exit(127 if missing else 126)
"""

_libc: ctypes.CDLL | None = None


def _ptrace(request: int, pid: int, data: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        _libc.ptrace.restype = ctypes.c_long
    if _libc.ptrace(request, pid, None, ctypes.c_void_p(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def trampoline_argv(argv: list[str]) -> list[str]:
    """ARGV started through the trampoline that stops it in exec."""
    return [sys.executable, "-S", "-c", _TRAMPOLINE, *argv]


def detach_stopped(pid: int) -> None:
    """Let go of traced task PID, leaving it stopped (SIGSTOP)."""
    _ptrace(_PTRACE_DETACH, pid, int(signal.SIGSTOP))


def resume(pid: int, signum: int) -> None:
    """Continue traced task PID, delivering SIGNUM (a signal that stopped it)."""
    _ptrace(_PTRACE_CONT, pid, signum)
