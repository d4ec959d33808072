"""Process plumbing shared by the fork server and the shell: prctl, children of a pid."""
from __future__ import annotations

import ctypes
import os

__all__ = ["prctl", "children_of", "PR_SET_PDEATHSIG", "PR_SET_CHILD_SUBREAPER"]

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def children_of(pid: int, exact: bool = True) -> list[int]:
    """Processes whose parent is PID (read from /proc; only used when cleaning up).

    Not EXACT: from the kernel's per-thread lists of children, which is quick but
    may miss a child while others come and go (proc(5)); for sweeps that look
    again later.  EXACT: from every process's stat.
    """
    listed = None if exact else _listed_children(pid)
    if listed is not None:
        return listed
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces: split after it
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(name))
    return out


def _listed_children(pid: int) -> list[int] | None:
    """PID's children from /proc/PID/task/*/children (a few reads, not one per process
    on the machine); None where the kernel does not provide those files."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out.extend(int(p) for p in fh.read().split())
        except FileNotFoundError:
            if tid == str(pid):
                return None         # no such file: CONFIG_PROC_CHILDREN is off
        except OSError:
            continue
    return out
