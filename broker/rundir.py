"""Rundirs left behind by brokers that were killed.

A broker removes the rundir it made when it exits, but one killed with
SIGKILL (or by the OOM killer) cannot, and its rundir holds the instance's
store when it had no statedir: such leftovers would pile up in the system's
temporary directory. A new broker removes them before it makes its own.

A leftover is ``flux-<pid>-<suffix>`` (the name ``Broker`` gives a rundir),
owned by this user, whose pid is not a live process and whose ``local``
socket has no listener. The socket test keeps the rundir of a live broker
in another pid namespace that shares the directory.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import socket
from collections.abc import Iterable

_NAME = re.compile(r"flux-([0-9]+)-[A-Za-z0-9_]+")


def candidates(names: Iterable[str]) -> list[tuple[str, int]]:
    """The names among NAMES that a broker gives its rundir, with their pids."""
    out = []
    for name in names:
        m = _NAME.fullmatch(name)
        if m:
            out.append((name, int(m.group(1))))
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True         # someone else's live process
    return True


def socket_listening(path: str) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(0.2)
    try:
        sock.connect(path)
    except OSError as exc:
        # a refused or missing socket has no broker behind it; anything else
        # (a full backlog, a timeout) might have one
        return exc.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    finally:
        sock.close()
    return True


def remove_stale(tmpdir: str) -> list[str]:
    """Remove this user's leftover rundirs under TMPDIR; returns their paths."""
    try:
        names = os.listdir(tmpdir)
    except OSError:
        return []
    uid = os.geteuid()
    removed = []
    for name, pid in candidates(names):
        path = os.path.join(tmpdir, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != uid:
            continue
        if pid == os.getpid() or pid_alive(pid):
            continue
        if socket_listening(os.path.join(path, "local")):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
