"""Finding and opening an instance's content store from outside the broker.

``flux dump --checkpoint``, ``flux restore --checkpoint`` and ``flux fsck``
work on the LMDB store itself (specs/dump-restore.md).  The store is named
by ``--statedir=DIR`` (``DIR/content.lmdb``, or DIR itself when it holds
``data.mdb``) or, inside an instance, by its ``content.backing-path``
attribute.

Reading is safe while a broker runs: LMDB readers see one committed
snapshot and never block its writer.  Writing is not: the running kvs
keeps the roots in memory and would overwrite a root written behind its
back, so :func:`open_store` refuses to open for writing a store whose
last start record belongs to a live process.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from flux.errors import FluxError

__all__ = ["STORE_DIRNAME", "StoreUser", "lock_store", "open_store", "store_locked",
           "store_path", "store_user"]

STORE_DIRNAME = "content.lmdb"
#: held (flock) by the broker that has the store open, for as long as it runs
LOCK_NAME = "broker.lock"


def lock_store(path: str) -> int:
    """Take store PATH's broker lock for this process's life (the descriptor to close
    at the end): EBUSY if another broker has it. LMDB lets two processes open one
    store; two brokers writing roots behind each other's back lose commits."""
    import fcntl

    os.makedirs(path, exist_ok=True)
    fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        raise FluxError(errno.EBUSY, f"content store {path} is in use by another broker; "
                                     "stop that instance first") from None
    return fd


def store_locked(path: str) -> bool:
    """Whether a running broker holds store PATH's lock."""
    import fcntl

    try:
        fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)     # closing drops a lock taken here
    return False


@dataclass(slots=True, frozen=True)
class StoreUser:
    """The live process that has the store open (from its start record)."""

    pid: int
    start: float


def store_path(statedir: str) -> str:
    """The store directory for ``--statedir=DIR`` (ENOENT when there is none)."""
    if os.path.exists(os.path.join(statedir, "data.mdb")):
        return statedir
    path = os.path.join(statedir, STORE_DIRNAME)
    if os.path.exists(os.path.join(path, "data.mdb")):
        return path
    if not os.path.isdir(statedir):
        raise FluxError(errno.ENOENT, f"{statedir}: no such directory")
    raise FluxError(errno.ENOENT, f"{statedir}: no content store here "
                                  f"(no {STORE_DIRNAME}/data.mdb)")


def _proc_start(pid: int) -> float | None:
    """When process PID started (epoch seconds), from /proc; None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat(5), counted after the comm field
        with open("/proc/stat", "rb") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith(b"btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _alive(pid: int, since: float) -> bool:
    """Whether PID is alive and is the process that wrote a start record at SINCE."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = _proc_start(pid)
    # a pid reused after a crash belongs to a process started after the record
    return started is None or started <= since + 2.0


def store_user(path: str) -> StoreUser | None:
    """The live process holding the store at PATH open, if any (read-only look)."""
    from eventstore.store import Store

    store = Store(path, readonly=True)
    try:
        records = store.startlog()
    finally:
        store.close()
    if not records:
        return None
    last = records[-1]
    if last.finish is None and last.pid != os.getpid() and _alive(last.pid, last.start):
        return StoreUser(last.pid, last.start)
    return None


def open_store(path: str, *, write: bool = False, durability: str = "batch"):
    """Open the store at PATH; for writing only when no live broker has it open."""
    from eventstore.store import Store

    if not os.path.exists(os.path.join(path, "data.mdb")):
        raise FluxError(errno.ENOENT, f"{path}: no content store here")
    if not write:
        return Store(path, readonly=True)
    if store_locked(path):
        raise FluxError(errno.EBUSY, f"store {path} is in use by a running broker; "
                                     "shut the instance down first")
    user = store_user(path)
    if user is not None:
        raise FluxError(errno.EBUSY, f"store {path} is in use by a running broker "
                                     f"(pid {user.pid}); shut the instance down first")
    return Store(path, durability=durability)
