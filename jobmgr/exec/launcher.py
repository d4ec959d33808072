"""This rank's job shells: the exec module's side of the shell servers.

A shell server (shell/server.py) runs the shells of one user's jobs on
this rank.  ``Launcher`` starts the instance owner's server in the
background at module load (``python -m shell.server FD URI``) and asks it
to fork one for each other user (only a root broker runs other users'
jobs).  A user may have up to ``max_servers`` servers (a pool): a job goes
to the one with the fewest jobs, and when every one has a job another is
forked from the owner's first server, so that shells of jobs started
together run on as many cores as the rank has instead of queueing behind
one another in one process (specs/exec.md).  Every server but the owner's
first stops after ``idle_timeout`` seconds without jobs.
Callers get ``on_started(pid)``, then ``on_exit(status)`` with the shell's
wait status, or ``on_error(errnum, text)``.  If a server dies, each of its
jobs is reported killed (SIGKILL's status), the processes of those jobs
(found by FLUX_JOB_ID in their environment) get SIGKILL, and the next job
starts a new server.
"""
from __future__ import annotations

import asyncio
import base64
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

__all__ = ["Launcher", "ShellHandle", "kill_job_processes"]

_HDR = struct.Struct(">I")
_KILLED = int(signal.SIGKILL)


def kill_job_processes(jobs: set[str]) -> int:
    """SIGKILL every process whose FLUX_JOB_ID is one of JOBS (F58); how many."""
    if not jobs:
        return 0
    wanted = {b"FLUX_JOB_ID=" + j.encode() for j in jobs}
    killed = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if any(item in wanted for item in env.split(b"\0")):
            try:
                os.kill(int(name), signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    return killed


@dataclass(slots=True, eq=False)
class ShellHandle:
    key: str
    f58: str
    on_started: Callable[[int], None]
    on_exit: Callable[[int, bytes], None]       # wait status, last output entries
    on_error: Callable[[int, str], None]
    pid: int = 0
    done: bool = False
    #: messages for the server held until the shell has started
    pending: list[dict[str, Any]] = field(default_factory=list)
    #: the shell's barriers come over the server's socket: ON_BARRIER(name, data, reply),
    #: REPLY({"data": ...} or {"errno": n, "text": ...}); None: it uses job-exec.barrier
    on_barrier: Callable[[Any, Any, Callable[[dict[str, Any]], None]], None] | None = None


class _Server:
    """One shell server process and the framed-JSON socket to it."""

    def __init__(self, launcher: "Launcher", uid: int, sock: socket.socket,
                 proc: subprocess.Popen[bytes] | None) -> None:
        self.launcher = launcher
        self.uid = uid
        self.sock = sock
        self.proc = proc
        self.pid = proc.pid if proc is not None else 0
        self.shells: dict[str, ShellHandle] = {}
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inbuf = b""
        self.fds: list[int] = []
        self.outbuf = bytearray()
        self.writing = False
        self._flush_soon = False
        self.closed = False
        self.idle: asyncio.TimerHandle | None = None
        self.forks: dict[int, asyncio.Future[_Server]] = {}
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    # -- socket ---------------------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        if self.closed:
            raise OSError(errno.ECONNRESET, "the shell server is gone")
        data = orjson.dumps(msg)
        self.outbuf += _HDR.pack(len(data)) + data
        # sent at the end of this loop turn: the messages of every job started (or
        # answered) in it go in one write, and the server is woken once, not per job
        if not self._flush_soon and not self.writing:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush_turn)

    def _flush_turn(self) -> None:
        self._flush_soon = False
        if not self.closed and not self.writing:
            self._flush()

    def _flush(self) -> None:
        while self.outbuf:
            try:
                n = self.sock.send(self.outbuf)
            except BlockingIOError:
                if not self.writing:
                    self.writing = True
                    asyncio.get_running_loop().add_writer(self.sock.fileno(), self._flush)
                return
            except OSError:
                self._lost()
                return
            del self.outbuf[:n]
        if self.writing:
            self.writing = False
            asyncio.get_running_loop().remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, 1 << 20, 8)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        self.fds.extend(fds)
        if not data:
            self._lost()
            return
        # parse by offset: cutting the buffer after each message copied the rest of a
        # read (hundreds of messages when many jobs end together) once per message
        buf = self.inbuf + data if self.inbuf else data
        pos, end = 0, len(buf)
        while end - pos >= 4:
            (n,) = _HDR.unpack_from(buf, pos)
            if end - pos - 4 < n:
                break
            msg = orjson.loads(buf[pos + 4:pos + 4 + n])
            pos += 4 + n
            self._handle(msg)
        self.inbuf = buf[pos:]

    def _handle(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "ready":
            self.pid = int(msg.get("pid") or self.pid)
            if not self.ready.done():
                self.ready.set_result(None)
            return
        if op == "forked":
            self.launcher._forked(self, msg)
            return
        shell = self.shells.get(str(msg.get("key")))
        if shell is None:
            return
        if op == "started":
            shell.pid = int(msg.get("pid") or 0)
            shell.on_started(shell.pid)
            for msg in shell.pending:
                self.send(msg)
            shell.pending.clear()
        elif op == "exit":
            self._forget(shell)
            tail = msg.get("output")
            shell.on_exit(int(msg.get("status", 1 << 8)),
                          base64.b64decode(tail) if isinstance(tail, str) else b"")
        elif op == "error":
            self._forget(shell)
            shell.on_error(int(msg.get("errno") or errno.EIO), str(msg.get("text", "")))
        elif op == "barrier":
            self._barrier(shell, msg)

    def _barrier(self, shell: ShellHandle, msg: dict[str, Any]) -> None:
        """A shell entered a barrier; the reply goes back with its key and ``seq``."""
        head = {"op": "barrier", "key": shell.key, "seq": msg.get("seq")}

        def reply(out: dict[str, Any]) -> None:
            if not head["seq"]:
                return          # the job's only shell went on without waiting
            try:
                self.send({**head, **out})
            except OSError:
                pass            # the server is gone, and the shell with it

        if shell.on_barrier is None:
            reply({"errno": errno.EPROTO, "text": "barriers of this shell go to job-exec"})
            return
        shell.on_barrier(msg.get("name"), msg.get("data"), reply)

    def _forget(self, shell: ShellHandle) -> None:
        shell.done = True
        self.shells.pop(shell.key, None)
        self.launcher._jobs.pop(shell.key, None)
        self.launcher._maybe_idle(self)

    def _lost(self) -> None:
        """The server is gone: its shells, and their tasks, are gone with it."""
        if self.closed:
            return
        self.closed = True
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.sock.fileno())
        if self.writing:
            loop.remove_writer(self.sock.fileno())
        self.sock.close()
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
        if self.idle is not None:
            self.idle.cancel()
        if not self.ready.done():
            self.ready.set_exception(OSError(errno.ECONNRESET, "the shell server exited"))
            self.ready.exception()
        # servers it was forking never come: whoever waits for one hears so
        for fut in self.forks.values():
            if not fut.done():
                fut.set_exception(OSError(errno.ECONNRESET, "the shell server exited"))
                fut.exception()
        self.forks.clear()
        self.launcher._server_gone(self)
        shells = list(self.shells.values())
        self.shells.clear()
        if shells and not self.launcher.closing:
            self.launcher.log.error("shell server exited; its jobs are lost", uid=self.uid,
                                    jobs=len(shells))
        # the tasks of its jobs outlived it: they are nobody's now
        kill_job_processes({shell.f58 for shell in shells})
        for shell in shells:
            self.launcher._jobs.pop(shell.key, None)
            shell.done = True
            if shell.pid:
                shell.on_exit(_KILLED, b"")
            else:
                shell.on_error(errno.ECONNRESET, "the shell server exited")


def default_max_servers() -> int:
    """Servers per user: one per CPU this process may use, at most 8."""
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except OSError:
        return 1


class Launcher:
    def __init__(self, log: Any, uri: str = "", idle_timeout: float = 60.0,
                 max_servers: int | None = None) -> None:
        self.log = log
        self.uri = uri
        self.idle_timeout = idle_timeout
        self.max_servers = default_max_servers() if max_servers is None else max(1, max_servers)
        self.closing = False
        #: uid -> its servers; the first is the one jobs go to when all are equally busy
        self._servers: dict[int, list[_Server]] = {}
        self._starting: dict[int, asyncio.Future[_Server]] = {}
        #: uids with one more server being forked (one at a time per user)
        self._growing: set[int] = set()
        self._gids: dict[int, int | None] = {}
        self._jobs: dict[str, tuple[_Server, ShellHandle]] = {}

    def set_max_servers(self, max_servers: int | None) -> None:
        """A new pool size (config reload); servers beyond it stop once idle."""
        self.max_servers = default_max_servers() if max_servers is None else max(1, max_servers)

    @property
    def shells(self) -> dict[str, ShellHandle]:
        return {key: handle for key, (_srv, handle) in self._jobs.items()}

    # -- servers ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the owner's shell server in the background."""
        uid = os.geteuid()
        if uid not in self._servers and uid not in self._starting:
            self._starting[uid] = asyncio.ensure_future(self._start_owner())

    async def _start_owner(self) -> _Server:
        uid = os.geteuid()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env.pop("FLUX_URI", None)
        try:
            # a process group of its own: a signal for the broker's group (the job
            # shell signalling an instance run as a job) is the broker's to act on;
            # the server still dies with the broker (PDEATHSIG, EOF on its socket)
            proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "shell.server", str(theirs.fileno()), self.uri],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True, env=env,
                process_group=0)
        except OSError as exc:
            ours.close()
            raise OSError(exc.errno, f"cannot start the shell server: {exc.strerror}") from None
        finally:
            theirs.close()
        server = _Server(self, uid, ours, proc)
        await server.ready
        self._servers.setdefault(uid, []).append(server)
        return server

    def _pick(self, uid: int) -> _Server | None:
        """UID's server with the fewest jobs (None if it has none); grow the pool
        when even that one is busy."""
        pool = self._servers.get(uid)
        if not pool:
            return None
        best = pool[0]
        for server in pool:
            if len(server.shells) < len(best.shells):
                best = server
        if best.shells and len(pool) < self.max_servers and uid not in self._growing \
                and not self.closing:
            self._growing.add(uid)
            asyncio.ensure_future(self._grow(uid))
        return best

    async def _grow(self, uid: int) -> None:
        try:
            server = await self._fork_from_owner(uid, self._gids.get(uid))
            if self.closing:
                server.send({"op": "shutdown", "grace": 0.0})
            else:
                self._servers.setdefault(uid, []).append(server)
                self._maybe_idle(server)
        except OSError as exc:
            if not self.closing:
                self.log.warning("cannot add a shell server", uid=uid, error=str(exc))
        finally:
            self._growing.discard(uid)

    async def _server_for(self, uid: int, gid: int | None) -> _Server:
        self._gids.setdefault(uid, gid)
        server = self._pick(uid)
        if server is not None:
            return server
        pending = self._starting.get(uid)
        if pending is None or pending.done() and (pending.cancelled() or pending.exception()):
            if uid == os.geteuid():
                pending = asyncio.ensure_future(self._start_owner())
            else:
                pending = asyncio.ensure_future(self._fork_server(uid, gid))
            self._starting[uid] = pending
        try:
            return await asyncio.shield(pending)
        finally:
            if pending.done():
                self._starting.pop(uid, None)

    async def _fork_server(self, uid: int, gid: int | None) -> _Server:
        server = await self._fork_from_owner(uid, gid)
        self._servers.setdefault(uid, []).append(server)
        return server

    async def _fork_from_owner(self, uid: int, gid: int | None) -> _Server:
        """A new server for UID, forked by the owner's first server (which has
        imported everything a shell needs, so the fork costs no start-up)."""
        euid = os.geteuid()
        pool = self._servers.get(euid)
        owner = pool[0] if pool else await self._server_for(euid, None)
        fut: asyncio.Future[_Server] = asyncio.get_running_loop().create_future()
        owner.forks[uid] = fut
        owner.send({"op": "fork", "uid": uid, "gid": gid})
        server = await fut
        await server.ready
        return server

    def _forked(self, owner: _Server, msg: dict[str, Any]) -> None:
        uid = int(msg.get("uid", -1))
        fut = owner.forks.pop(uid, None)
        if fut is None or fut.done():
            return
        if "errno" in msg or not owner.fds:
            fut.set_exception(OSError(int(msg.get("errno") or errno.EIO),
                                      f"cannot start a shell server for uid {uid}: "
                                      f"{msg.get('text', 'no socket')}"))
            return
        sock = socket.socket(fileno=owner.fds.pop(0))
        server = _Server(self, uid, sock, None)
        server.pid = int(msg.get("pid") or 0)
        fut.set_result(server)

    def _server_gone(self, server: _Server) -> None:
        pool = self._servers.get(server.uid)
        if pool is not None and server in pool:
            pool.remove(server)
            if not pool:
                del self._servers[server.uid]
        pending = self._starting.get(server.uid)
        if pending is not None and pending.done() and not pending.cancelled() \
                and pending.exception() is None and pending.result() is server:
            del self._starting[server.uid]

    def _maybe_idle(self, server: _Server) -> None:
        """Stop a server once it has had no job for a while (not the owner's first:
        it is what the others are forked from)."""
        if server.shells or server.closed or server.proc is not None:
            return
        if server.idle is not None:
            server.idle.cancel()

        def stop() -> None:
            server.idle = None
            if not server.shells and not server.closed:
                # out of the pool first: no job may be sent to a server on its way out
                self._server_gone(server)
                try:
                    server.send({"op": "shutdown", "grace": 1.0})
                except OSError:
                    pass

        server.idle = asyncio.get_running_loop().call_later(self.idle_timeout, stop)

    # -- shells -------------------------------------------------------------------------------
    async def spawn(self, shell: ShellHandle, args: dict[str, Any], uid: int,
                    gid: int | None, tmpdir: str | None = None) -> None:
        """Start a job's shell; its callbacks report the outcome."""
        if shell.key in self._jobs:
            shell.on_error(errno.EEXIST, f"a shell for {shell.key} is already running")
            return
        try:
            server = await self._server_for(uid, gid)
        except OSError as exc:
            shell.done = True
            shell.on_error(exc.errno or errno.EIO, exc.strerror or str(exc))
            return
        self._start(server, shell, args)

    def spawn_now(self, shell: ShellHandle, args: dict[str, Any], uid: int) -> bool:
        """``spawn`` without waiting, when UID's server is up; False (nothing done) if not."""
        server = self._pick(uid)
        if server is None:
            return False
        if shell.key in self._jobs:
            shell.on_error(errno.EEXIST, f"a shell for {shell.key} is already running")
            return True
        self._start(server, shell, args)
        return True

    def _start(self, server: _Server, shell: ShellHandle, args: dict[str, Any]) -> None:
        try:
            if server.idle is not None:
                server.idle.cancel()
                server.idle = None
            server.shells[shell.key] = shell
            self._jobs[shell.key] = (server, shell)
            server.send({"op": "start", "key": shell.key, "args": args})
        except OSError as exc:
            server.shells.pop(shell.key, None)
            self._jobs.pop(shell.key, None)
            shell.done = True
            shell.on_error(exc.errno or errno.EIO, exc.strerror or str(exc))

    def kill(self, key: str, signum: int) -> bool:
        """Signal the tasks of the job KEY; False if it has no shell here."""
        return self._tell(key, {"op": "signal", "key": key, "signum": int(signum)})

    def input_ready(self, key: str) -> bool:
        """Tell the shell of job KEY that its input log is being written."""
        return self._tell(key, {"op": "input", "key": key})

    def _tell(self, key: str, msg: dict[str, Any]) -> bool:
        entry = self._jobs.get(key)
        if entry is None:
            return False
        server, shell = entry
        if not shell.pid:
            shell.pending.append(msg)          # sent once it has started
            return True
        try:
            server.send(msg)
        except OSError:
            return False
        return True

    async def close(self, grace: float) -> None:
        """End every job (SIGTERM, SIGKILL after GRACE) and every server."""
        self.closing = True
        for pending in self._starting.values():
            pending.cancel()
        servers = [server for pool in self._servers.values() for server in pool]
        for server in servers:
            try:
                server.send({"op": "shutdown", "grace": grace})
            except OSError:
                pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace + 5.0
        while any(not s.closed for s in servers) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for server in servers:
            if server.proc is not None:
                if server.proc.poll() is None:
                    server.proc.kill()
                server.proc.wait()
            elif server.pid and not server.closed:
                try:
                    os.kill(server.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            server._lost()
