"""The shell fork server: one per broker rank, it forks a job shell per job.

Why a fork server (specs/exec.md): a job shell is Python, and starting
Python and importing the shell costs ~100 ms, far more than a short job.
This process imports everything a shell needs once, freezes the garbage
collector's view of those objects (so forked children share their pages),
then forks one child per job.  Each child becomes that job's shell: its
own process, so one shell crashing fails only its job, and it can take the
job user's identity before any of the job runs.

The exec module talks to it over a stream socket given as fd ``argv[1]``,
each message a 4-byte big-endian length and a JSON object:

- ``{"op": "spawn", "key", "args", "uid", "gid", "tmpdir"?}`` ->
  ``{"op": "spawned", "key", "pid"}`` or ``{"op": "error", "key",
  "errno", "text"}``; later ``{"op": "exit", "key", "pid", "status"}``
  with the shell's wait status.
- ``{"op": "kill", "key", "signum"}``: signal that shell (only while it
  has not been reaped, so a recycled pid is never hit).
- ``{"op": "shutdown", "grace"}``: SIGTERM every shell, SIGKILL what is
  left after ``grace`` seconds, reap everything, exit.

Nothing is left behind: this process is a child subreaper, so when a
shell dies without cleaning up (SIGKILL), its tasks become our children
and are killed at once; we get SIGTERM if the broker dies
(PR_SET_PDEATHSIG), and then end every shell; each shell gets SIGTERM if
we die.  A shell's tmpdir (created here, owned by the job user) is
removed here after the shell exits.
"""
from __future__ import annotations

import ctypes
import errno
import gc
import os
import pwd
import select
import shutil
import signal
import socket
import struct
import sys
import time
from typing import Any

import orjson

__all__ = ["main", "prctl", "children_of", "PR_SET_PDEATHSIG", "PR_SET_CHILD_SUBREAPER"]

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_HDR = struct.Struct(">I")
_libc = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def children_of(pid: int) -> list[int]:
    """Processes whose parent is PID (read from /proc; only used after a shell died)."""
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


class _Conn:
    """Framed JSON messages over the socket to the exec module (blocking)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def send(self, msg: dict[str, Any]) -> None:
        data = orjson.dumps(msg)
        try:
            self.sock.sendall(_HDR.pack(len(data)) + data)
        except OSError:
            pass  # exec is gone; we are about to be told (EOF / pdeathsig)

    def read(self) -> list[dict[str, Any]] | None:
        """Messages now readable; None at EOF."""
        try:
            chunk = self.sock.recv(1 << 20)
        except InterruptedError:
            return []
        except OSError:
            return None
        if not chunk:
            return None
        self.buf += chunk
        out = []
        while len(self.buf) >= 4:
            (n,) = _HDR.unpack_from(self.buf)
            if len(self.buf) < 4 + n:
                break
            out.append(orjson.loads(self.buf[4:4 + n]))
            self.buf = self.buf[4 + n:]
        return out


class ForkServer:
    def __init__(self, conn: _Conn) -> None:
        self.conn = conn
        self.shells: dict[int, tuple[Any, str | None]] = {}   # pid -> (key, tmpdir)
        self.by_key: dict[Any, int] = {}
        self.stopping = False

    # -- spawning ---------------------------------------------------------------------
    def spawn(self, msg: dict[str, Any]) -> None:
        key = msg.get("key")
        try:
            uid = int(msg.get("uid", os.getuid()))
            gid = msg.get("gid")
            if uid != os.geteuid() and os.geteuid() != 0:
                raise OSError(errno.EPERM, f"cannot run a shell as uid {uid}: not root")
            tmpdir = msg.get("tmpdir")
            pid = os.fork()
        except Exception as exc:  # noqa: BLE001 - reported to exec, never fatal here
            self.conn.send({"op": "error", "key": key,
                            "errno": getattr(exc, "errno", None) or errno.EIO, "text": str(exc)})
            return
        if pid == 0:
            self._child(msg.get("args") or {}, uid, gid, tmpdir)
        self.shells[pid] = (key, tmpdir)
        self.by_key[key] = pid
        self.conn.send({"op": "spawned", "key": key, "pid": pid})

    def _child(self, args: dict[str, Any], uid: int, gid: Any, tmpdir: str | None) -> None:
        """In the forked child: become the job's shell; never returns."""
        code = 1
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() == 1:
                os._exit(1)
            self.conn.sock.close()
            if tmpdir:
                os.mkdir(tmpdir, 0o700)
                if uid != os.geteuid():
                    os.chown(tmpdir, uid, -1 if gid is None else int(gid))
            if uid != os.geteuid():
                pw = pwd.getpwuid(uid)
                group = pw.pw_gid if gid is None else int(gid)
                os.initgroups(pw.pw_name, group)
                os.setgid(group)
                os.setuid(uid)
            gc.unfreeze()
            from shell.main import run_shell

            code = run_shell(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 - must not return into the server loop
            try:
                sys.stderr.write(f"flux-shell: {type(exc).__name__}: {exc}\n")
                sys.stderr.flush()
            except Exception:  # noqa: BLE001
                pass
        finally:
            os._exit(code)

    def kill(self, msg: dict[str, Any]) -> None:
        pid = self.by_key.get(msg.get("key"))
        if pid is not None:
            try:
                os.kill(pid, int(msg.get("signum", signal.SIGTERM)))
            except (ProcessLookupError, ValueError, OverflowError):
                pass

    # -- reaping ------------------------------------------------------------------------
    def reap(self) -> None:
        orphans_possible = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
            entry = self.shells.pop(pid, None)
            if entry is None:
                # a job's process that outlived its shell: its own children are ours now
                orphans_possible = True
                continue
            key, tmpdir = entry
            self.by_key.pop(key, None)
            if os.WIFSIGNALED(status):
                orphans_possible = True
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)
            self.conn.send({"op": "exit", "key": key, "pid": pid, "status": status})
        if orphans_possible:
            self.kill_orphans()

    def kill_orphans(self) -> None:
        """SIGKILL children that are not shells: leftovers of a shell that died."""
        for pid in children_of(os.getpid()):
            if pid not in self.shells:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def shutdown(self, grace: float) -> None:
        self.stopping = True
        for pid in list(self.shells):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while self.shells and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.01)
        for pid in list(self.shells) + children_of(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # reap everything, including tasks reparented to us as their shells die
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            self.reap()
            left = children_of(os.getpid())
            if not left and not self.shells:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    # -- the loop ------------------------------------------------------------------------
    def run(self, wake_r: int) -> int:
        poller = select.poll()
        poller.register(self.conn.sock.fileno(), select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        while True:
            try:
                ready = poller.poll()
            except InterruptedError:
                continue
            for fd, _ev in ready:
                if fd == wake_r:
                    try:
                        signals = os.read(wake_r, 512)
                    except BlockingIOError:
                        signals = b""
                    self.reap()
                    if signal.SIGTERM in signals:
                        self.shutdown(2.0)
                        return 0
                    continue
                msgs = self.conn.read()
                if msgs is None:          # exec went away: end every job
                    self.shutdown(2.0)
                    return 0
                for msg in msgs:
                    op = msg.get("op")
                    if op == "spawn":
                        self.spawn(msg)
                    elif op == "kill":
                        self.kill(msg)
                    elif op == "shutdown":
                        self.shutdown(float(msg.get("grace", 2.0)))
                        self.conn.send({"op": "bye"})
                        return 0


def _preload() -> None:
    """Import what every shell needs, so no child pays for it.

    It matters twice: a forked shell that imports nothing starts faster, and
    a shell that has taken a guest's identity may not be able to read the
    Python installation at all.  Lazily imported modules are pulled in by
    using them once.
    """
    import glob  # noqa: F401
    import runpy  # noqa: F401
    import tempfile  # noqa: F401

    import shell.initrc  # noqa: F401
    import shell.main  # noqa: F401
    import shell.template  # noqa: F401
    from flux.job.JobID import JobID

    jobid = JobID(1)
    for encoding in ("f58", "hex", "dothex", "kvs", "words", "emoji", "f58plain"):
        try:
            jobid.encode(encoding)
        except (ValueError, TypeError):
            pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    fd = int(argv[1])
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    if os.getppid() == 1:
        return 1
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # ctrl-C at flux start's terminal
    _preload()
    gc.collect()
    gc.freeze()
    server = ForkServer(_Conn(sock))
    server.conn.send({"op": "ready", "pid": os.getpid()})
    return server.run(wake_r)


if __name__ == "__main__":
    sys.exit(main())
