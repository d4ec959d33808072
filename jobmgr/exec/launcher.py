"""This rank's job shells: the exec module's side of the shell fork server.

``Launcher`` starts ``python -m shell.forkserver`` once (at module load,
in the background) and asks it for one shell per job
(shell/forkserver.py has the protocol).  Callers get ``on_started(pid)``,
then ``on_exit(status)`` with the shell's wait status, or
``on_error(errnum, text)`` if the shell could not be forked.  A shell that
needs signalling is signalled through the fork server, which alone knows
whether the pid is still that shell.  If the fork server dies, every shell
it had is reported as killed (SIGKILL) and a new fork server is started
for the next job.
"""
from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["Launcher", "ShellHandle"]

_HDR = struct.Struct(">I")


@dataclass(slots=True, eq=False)
class ShellHandle:
    key: str
    on_started: Callable[[int], None]
    on_exit: Callable[[int], None]
    on_error: Callable[[int, str], None]
    pid: int = 0
    done: bool = False
    pending_signals: list[int] = field(default_factory=list)


class Launcher:
    def __init__(self, log: Any) -> None:
        self.log = log
        self.shells: dict[str, ShellHandle] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ready: asyncio.Future[None] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._closing = False

    # -- the fork server process ----------------------------------------------------
    def start(self) -> None:
        """Start the fork server (returns at once; spawns wait until it is ready)."""
        if self._ready is not None:
            return
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env.pop("FLUX_URI", None)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "shell.forkserver", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True, env=env)
        except OSError as exc:
            ours.close()
            theirs.close()
            self._ready.set_exception(OSError(exc.errno, f"cannot start the shell fork "
                                                         f"server: {exc.strerror}"))
            self._ready.exception()          # retrieved: reported per spawn
            return
        theirs.close()
        self._reader_task = asyncio.ensure_future(self._run(ours))

    async def _run(self, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        self._writer = writer
        try:
            while True:
                header = await reader.readexactly(4)
                (n,) = _HDR.unpack(header)
                msg = orjson.loads(await reader.readexactly(n))
                self._handle(msg)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._lost()

    def _handle(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            return
        shell = self.shells.get(msg.get("key"))  # type: ignore[arg-type]
        if shell is None:
            return
        if op == "spawned":
            shell.pid = int(msg["pid"])
            shell.on_started(shell.pid)
            for signum in shell.pending_signals:
                self._send({"op": "kill", "key": shell.key, "signum": signum})
            shell.pending_signals.clear()
        elif op == "error":
            self._forget(shell)
            shell.on_error(int(msg.get("errno") or errno.EIO), str(msg.get("text", "")))
        elif op == "exit":
            self._forget(shell)
            shell.on_exit(int(msg["status"]))

    def _forget(self, shell: ShellHandle) -> None:
        shell.done = True
        self.shells.pop(shell.key, None)

    def _lost(self) -> None:
        """The fork server is gone: its shells (and their tasks) are gone with it."""
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(OSError(errno.ECONNRESET, "the shell fork server exited"))
            self._ready.exception()
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None and self._closing:
            pass
        self._writer = None
        self._ready = None
        shells = list(self.shells.values())
        self.shells.clear()
        if shells and not self._closing:
            self.log.error("shell fork server exited; its jobs are lost", shells=len(shells))
        for shell in shells:
            shell.done = True
            if shell.pid:
                shell.on_exit(int(signal.SIGKILL))
            else:
                shell.on_error(errno.ECONNRESET, "the shell fork server exited")

    def _send(self, msg: dict[str, Any]) -> None:
        if self._writer is None:
            raise OSError(errno.ECONNRESET, "the shell fork server is not running")
        data = orjson.dumps(msg)
        self._writer.write(_HDR.pack(len(data)) + data)

    # -- shells ---------------------------------------------------------------------
    async def spawn(self, shell: ShellHandle, args: dict[str, Any], uid: int,
                    gid: int | None, tmpdir: str | None) -> None:
        """Ask for a shell; its callbacks report the outcome."""
        if shell.key in self.shells:
            shell.on_error(errno.EEXIST, f"a shell for {shell.key} is already running")
            return
        self.start()
        assert self._ready is not None
        self.shells[shell.key] = shell
        try:
            await self._ready
            msg: dict[str, Any] = {"op": "spawn", "key": shell.key, "args": args, "uid": uid}
            if gid is not None:
                msg["gid"] = gid
            if tmpdir:
                msg["tmpdir"] = tmpdir
            self._send(msg)
        except OSError as exc:
            if self.shells.pop(shell.key, None) is not None:
                shell.done = True
                shell.on_error(exc.errno or errno.EIO, exc.strerror or str(exc))

    def kill(self, key: str, signum: int) -> bool:
        """Signal the shell of KEY; False if there is none running."""
        shell = self.shells.get(key)
        if shell is None:
            return False
        if not shell.pid or self._writer is None:
            shell.pending_signals.append(int(signum))   # sent once it is forked
            return True
        self._send({"op": "kill", "key": key, "signum": int(signum)})
        return True

    async def close(self, grace: float) -> None:
        """End every shell (SIGTERM, SIGKILL after GRACE) and the fork server."""
        self._closing = True
        proc = self._proc
        if self._writer is not None:
            try:
                self._send({"op": "shutdown", "grace": grace})
            except OSError:
                pass
        if proc is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace + 6.0
            while proc.poll() is None and loop.time() < deadline:
                await asyncio.sleep(0.02)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self._reader_task is not None:
            self._reader_task.cancel()
            try:
                await self._reader_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
