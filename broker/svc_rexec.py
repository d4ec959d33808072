"""The ``rexec`` service: run commands as children of the broker (RFC 42).

Every broker rank serves ``rexec`` to the instance owner (guests get
EPERM).  ``flux exec`` uses it, and so can modules: :func:`run_command`
runs one command on any rank from inside the broker, and
:class:`ProcessServer` is the engine itself for code that wants to own its
processes.  The protocol is in ``specs/rexec.md``; in short:

- ``rexec.exec`` (streaming) ``{"cmd": {cmdline, cwd, env?, opts?, label?},
  "flags": N}`` answers ``started {pid}``, then ``output {pid, io}``
  (RFC 24 data: stream, rank, data, encoding?, eof?), ``add-credit`` with
  the write-credit flag, ``finished {pid, status}``, then ENODATA.
  Without the streaming flag the process runs in the background: one
  ``started`` response, stdio on /dev/null.
- ``rexec.write`` ``{"matchtag"|"pid", "io"}`` feeds stdin; eof closes it.
- ``rexec.kill`` ``{"pid"|"label", "signum"}``, ``rexec.wait``
  ``{"pid"|"label"}`` (waitable background processes), ``rexec.list``.

Process hygiene, which is the point of having one place that runs
processes:

- each command leads its own process group, so a signal reaches what it
  forked too;
- it gets SIGKILL as its parent-death signal, and a small guard process
  (started with the first command) SIGKILLs every live group if the
  broker dies without cleaning up, which catches grandchildren that
  the parent-death signal does not reach;
- a cancelled stream or a client that goes away gets its group SIGTERM,
  then SIGKILL after a grace period; unloading the service (broker exit)
  does the same to every process and waits for them;
- the group leader is reaped only when the stream is complete, so its pid
  (the group id) cannot be reused by an unrelated process while we may
  still signal the group.

Processes are watched with pidfds and non-blocking pipes on the broker's
asyncio loop: no threads.
"""
from __future__ import annotations

import asyncio
import errno
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from broker.module import Module, request_handler
from flux.constants import FLUX_MSGFLAG_STREAMING, FLUX_NODEID_ANY
from flux.errors import FluxError
from flux.util.iodata import decode_io, encode_io
from flux.util.waitstatus import exit_code
from flux.message import Message

if TYPE_CHECKING:
    import subprocess

    from broker.module import ModuleContext, Stream

# exec request flags (RFC 42)
FLAG_STDOUT = 1
FLAG_STDERR = 2
FLAG_CHANNEL = 4
FLAG_WRITE_CREDIT = 8
FLAG_WAITABLE = 16
_KNOWN_FLAGS = FLAG_STDOUT | FLAG_STDERR | FLAG_CHANNEL | FLAG_WRITE_CREDIT | FLAG_WAITABLE

#: stdin buffer a client may fill before the first add-credit (RFC 42 asks >= 4096)
STDIN_BUFSIZE = 65536
#: largest output chunk read and sent at once
OUTPUT_CHUNK = 65536
#: output is held this long so a chatty process yields few large responses
BATCH_DELAY = 0.005
#: seconds between SIGTERM and SIGKILL when a process is killed
KILL_GRACE = 2.0
#: how long unload waits for killed processes before giving up on them
_SHUTDOWN_WAIT = 5.0

_STREAMS = ("stdout", "stderr")


# -- the protocol, as pure functions ------------------------------------------------


@dataclass(slots=True)
class Command:
    """What to run: argv, working directory, environment (None: the broker's)."""

    cmdline: list[str]
    cwd: str
    env: dict[str, str] | None = None
    opts: dict[str, str] = field(default_factory=dict)
    label: str | None = None

    @classmethod
    def from_json(cls, obj: Any) -> "Command":
        """Validate an RFC 42 command object; ValueError names what is wrong."""
        if not isinstance(obj, dict):
            raise ValueError("'cmd' must be a JSON object")
        cmdline = obj.get("cmdline")
        if not isinstance(cmdline, list) or not cmdline:
            raise ValueError("cmd.cmdline must be a non-empty list of strings")
        for arg in cmdline:
            if not isinstance(arg, str):
                raise ValueError(f"cmd.cmdline must be a list of strings, found {arg!r}")
        if not cmdline[0]:
            raise ValueError("cmd.cmdline[0] (the command) must not be empty")
        cwd = obj.get("cwd")
        if cwd is None:
            raise ValueError("cmd.cwd is required (the working directory of the command)")
        if not isinstance(cwd, str) or not cwd.startswith("/"):
            raise ValueError(f"cmd.cwd must be an absolute path, got {cwd!r}")
        env = obj.get("env")
        if env is not None:
            if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in env.items()):
                raise ValueError("cmd.env must be an object of string values")
        opts = obj.get("opts")
        if opts is None:
            opts = {}
        if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
            raise ValueError("cmd.opts must be an object of string values")
        channels = obj.get("channels")
        if channels is None:
            channels = []
        if not isinstance(channels, list):
            raise ValueError("cmd.channels must be a list")
        if channels:
            raise ValueError("cmd.channels: extra I/O channels are not supported")
        if obj.get("msgchans"):
            raise ValueError("cmd.msgchans: message channels are not supported")
        label = obj.get("label")
        if label is not None and (not isinstance(label, str) or not label):
            raise ValueError("cmd.label must be a non-empty string")
        return cls(list(cmdline), cwd, None if env is None else dict(env), dict(opts), label)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cmdline": list(self.cmdline), "cwd": self.cwd,
                               "opts": dict(self.opts), "channels": []}
        if self.env is not None:
            out["env"] = dict(self.env)
        if self.label is not None:
            out["label"] = self.label
        return out


def parse_exec(payload: Any) -> tuple[Command, int]:
    """(command, flags) of an ``rexec.exec`` request body; ValueError if malformed."""
    if not isinstance(payload, dict):
        raise ValueError("payload must be a JSON object")
    if "cmd" not in payload:
        raise ValueError("'cmd' is required")
    cmd = Command.from_json(payload["cmd"])
    flags = payload.get("flags", FLAG_STDOUT | FLAG_STDERR)
    if not isinstance(flags, int) or isinstance(flags, bool) or flags & ~_KNOWN_FLAGS:
        raise ValueError(f"'flags' must be an integer made of {_KNOWN_FLAGS:#x}, got {flags!r}")
    if flags & FLAG_CHANNEL:
        raise ValueError("flag channel (4): extra I/O channels are not supported")
    return cmd, flags




def wait_status(si_code: int, si_status: int) -> int:
    """A waitpid(2)-style status from waitid's code and status."""
    if si_code == os.CLD_EXITED:
        return (si_status & 0xFF) << 8
    if si_code == os.CLD_DUMPED:
        return (si_status & 0x7F) | 0x80
    return si_status & 0x7F



def _signum(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < signal.NSIG:
        raise FluxError(errno.EINVAL, f"'signum' must be a signal number from 1 to "
                                      f"{signal.NSIG - 1}, got {value!r}")
    return value


# -- the engine -----------------------------------------------------------------------


class Sink(Protocol):
    """Where a process's news goes (a response stream, or an in-process caller)."""

    def output(self, proc: "Proc", stream: str, data: bytes, eof: bool) -> None: ...

    def credit(self, proc: "Proc", nbytes: int) -> None: ...

    def finished(self, proc: "Proc", status: int) -> None: ...


class Proc:
    """One process started by a ProcessServer (the leader of its own process group)."""

    __slots__ = ("pid", "cmd", "label", "sink", "waitable", "status", "popen", "pidfd",
                 "outputs", "pending", "stdin_fd", "stdin_buf", "stdin_eof", "killing",
                 "hard_killed", "kill_timer", "flush_timer", "done", "reaped", "owner")

    def __init__(self, popen: "subprocess.Popen[bytes]", cmd: Command, sink: Sink | None,
                 waitable: bool, done: "asyncio.Future[int]") -> None:
        self.pid: int = popen.pid
        self.cmd = cmd
        self.label = cmd.label
        self.sink = sink
        self.waitable = waitable
        #: wait status once the leader has exited
        self.status: int | None = None
        self.popen = popen
        self.pidfd: int | None = None
        #: open output pipes (our read ends) by stream name
        self.outputs: dict[str, int] = {}
        #: output read but not yet sent, by stream name
        self.pending: dict[str, bytearray] = {}
        self.stdin_fd: int | None = None
        self.stdin_buf = bytearray()
        self.stdin_eof = False
        self.killing = False
        self.hard_killed = False
        self.kill_timer: asyncio.TimerHandle | None = None
        self.flush_timer: asyncio.TimerHandle | None = None
        self.done = done
        self.reaped = False
        #: who started it (route identity of the request), for bookkeeping
        self.owner: Any = None

    @property
    def state(self) -> str:
        if self.reaped:
            return "exited"
        return "running" if self.status is None else "exiting"


# The guard: a tiny process that outlives a SIGKILLed broker just long enough
# to SIGKILL the process groups the broker still owned.  It reads "+PGID" and
# "-PGID" lines; end of file (the broker closed or lost the pipe) is the cue.
_GUARD_CODE = r"""# flux rexec guard
import os, signal
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, signal.SIG_IGN)
live = set()
tail = b""
while True:
    try:
        data = os.read(0, 65536)
    except InterruptedError:
        continue
    except OSError:
        break
    if not data:
        break
    *lines, tail = (tail + data).split(b"\n")
    for line in lines:
        if line[:1] == b"+":
            live.add(int(line[1:]))
        elif line[:1] == b"-":
            live.discard(int(line[1:]))
for pgid in live:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class _Guard:
    """The broker's side of the guard process (started on first use)."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.live: set[int] = set()
        self._popen: "subprocess.Popen[bytes] | None" = None
        self._fd: int | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    def add(self, pgid: int) -> None:
        self.live.add(pgid)
        self._send(f"+{pgid}\n")

    def remove(self, pgid: int) -> None:
        if pgid in self.live:
            self.live.discard(pgid)
            self._send(f"-{pgid}\n")

    def _start(self) -> None:
        import subprocess

        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            # own process group: a ctrl-C at the terminal must not take it down
            self._popen = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _GUARD_CODE], stdin=r,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                process_group=0)
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self._fd = w

    def _send(self, text: str) -> None:
        if self._closed:
            return
        for _attempt in range(2):
            if self._fd is None:
                try:
                    self._start()
                except OSError as exc:
                    self.log.error(f"rexec: cannot start the guard process: {exc}")
                    return
                text = "".join(f"+{p}\n" for p in self.live)
                if not text:
                    return
            try:
                os.write(self._fd, text.encode())  # type: ignore[arg-type]
                return
            except OSError as exc:
                # it died: start another and tell it everything again
                self.log.warning(f"rexec: guard process lost ({exc}); restarting it")
                self._close_fd()
                if self._popen is not None:
                    self._popen.poll()
                    self._popen = None

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def close(self) -> None:
        """Let the guard exit (it kills whatever is still registered)."""
        self._closed = True
        self._close_fd()
        if self._popen is not None:
            try:
                self._popen.wait(2.0)
            except Exception:  # noqa: BLE001 - never block broker exit on it
                pass
            self._popen = None


def _child_hook(parent: int) -> Callable[[], None] | None:
    """A pre-exec hook: SIGKILL as parent-death signal, and no orphan start-up.

    libc is looked up here, in the parent, so the child does no imports
    between fork and exec.
    """
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigkill = int(signal.SIGKILL)

    def hook() -> None:
        prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)
        if os.getppid() != parent:
            # the broker died between fork and prctl: the signal will never come
            os._exit(127)

    return hook


class ProcessServer:
    """Runs processes for the rexec service (usable on its own from a module).

    ``spawn()`` starts a command and reports to its Sink; ``write()`` feeds
    its stdin; ``signal()`` signals its process group; ``terminate()`` is
    SIGTERM then SIGKILL after ``grace`` seconds; ``shutdown()`` terminates
    everything and waits.  All methods run in the event loop thread.
    """

    def __init__(self, rank: int, log: Any, *, local_uri: str | None = None,
                 grace: float = KILL_GRACE, guard: bool = True) -> None:
        self.rank = rank
        self.log = log
        self.local_uri = local_uri
        self.grace = grace
        self.procs: dict[int, Proc] = {}
        self.labels: dict[str, Proc] = {}
        self._guard = _Guard(log)
        if not guard:
            self._guard.close()  # no guard process at all (tests of the rest)
        self._hook: Callable[[], None] | None = None
        self._hook_ready = False
        self._closed = False

    @property
    def guard_pid(self) -> int | None:
        return self._guard.pid

    # -- starting --------------------------------------------------------------
    def spawn(self, cmd: Command, sink: Sink | None = None, *, stdout: bool = True,
              stderr: bool = True, stdin: bool = True, waitable: bool = False) -> Proc:
        """Start CMD; OSError (errno and a message naming the problem) if it cannot run.

        Output of a stream not asked for, and stdin when STDIN is false,
        go to /dev/null.
        """
        import subprocess

        if self._closed:
            raise FluxError(errno.ENOSYS, "rexec: the service is shutting down")
        if cmd.label is not None and cmd.label in self.labels:
            other = self.labels[cmd.label]
            raise FluxError(errno.EEXIST, f"label '{cmd.label}' is in use by pid {other.pid}")
        loop = asyncio.get_running_loop()
        if not self._hook_ready:
            self._hook = _child_hook(os.getpid())
            self._hook_ready = True
        env = dict(os.environ if cmd.env is None else cmd.env)
        if self.local_uri:
            # flux commands run here talk to this rank's broker
            env["FLUX_URI"] = self.local_uri
        ours: dict[str, int] = {}
        theirs: list[int] = []
        child: dict[str, int] = {}
        try:
            for name, wanted in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
                if not wanted:
                    child[name] = subprocess.DEVNULL
                    continue
                r, w = os.pipe2(os.O_CLOEXEC)
                mine, its = (w, r) if name == "stdin" else (r, w)
                ours[name] = mine
                theirs.append(its)
                child[name] = its
                os.set_blocking(mine, False)
            try:
                popen = subprocess.Popen(cmd.cmdline, cwd=cmd.cwd, env=env,
                                         stdin=child["stdin"], stdout=child["stdout"],
                                         stderr=child["stderr"], close_fds=True,
                                         process_group=0, preexec_fn=self._hook,
                                         restore_signals=True)
            except OSError as exc:
                raise _spawn_error(exc, cmd) from None
            except ValueError as exc:  # e.g. a NUL byte in an argument or the environment
                raise FluxError(errno.EPROTO, f"{cmd.cmdline[0]}: {exc}") from None
            except subprocess.SubprocessError as exc:
                raise FluxError(errno.EIO, f"{cmd.cmdline[0]}: {exc}") from None
        except BaseException:
            for fd in ours.values():
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        proc = Proc(popen, cmd, sink, waitable, loop.create_future())
        self.procs[proc.pid] = proc
        if proc.label is not None:
            self.labels[proc.label] = proc
        self._guard.add(proc.pid)
        proc.stdin_fd = ours.get("stdin")
        for name in _STREAMS:
            if name in ours:
                proc.outputs[name] = ours[name]
                proc.pending[name] = bytearray()
                loop.add_reader(ours[name], self._on_output, proc, name)
        try:
            proc.pidfd = os.pidfd_open(proc.pid)
        except OSError:
            proc.pidfd = None  # no pidfds (old kernel): poll
        if proc.pidfd is not None:
            loop.add_reader(proc.pidfd, self._on_exit, proc)
        else:
            loop.call_later(0.05, self._poll_exit, proc)
        return proc

    def find(self, pid: Any = None, label: Any = None) -> Proc:
        """The process with LABEL (if given) or PID; ENOENT if it is not ours."""
        if label is not None:
            if not isinstance(label, str):
                raise FluxError(errno.EPROTO, "'label' must be a string")
            proc = self.labels.get(label)
            if proc is None:
                raise FluxError(errno.ENOENT, f"no process labelled '{label}' on rank {self.rank}")
            return proc
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise FluxError(errno.EPROTO, "'pid' (an integer) or 'label' is required")
        proc = self.procs.get(pid)
        if proc is None:
            raise FluxError(errno.ENOENT,
                            f"pid {pid} is not a process of rexec on rank {self.rank}")
        return proc

    # -- signals ------------------------------------------------------------
    def signal(self, proc: Proc, signum: int) -> None:
        """Send SIGNUM to PROC's process group (nothing once it is reaped)."""
        if proc.reaped:
            return
        # Safe while the leader is unreaped: its pid, our group id, cannot be reused.
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass
        except OSError as exc:
            self.log.warning(f"rexec: signal {signum} to process group {proc.pid}: {exc}")

    def terminate(self, proc: Proc) -> None:
        """SIGTERM PROC's group now and SIGKILL it after the grace period."""
        if proc.reaped or proc.killing:
            return
        proc.killing = True
        self.signal(proc, signal.SIGTERM)
        proc.kill_timer = asyncio.get_running_loop().call_later(self.grace, self._kill_hard, proc)
        self._maybe_complete(proc)

    def _kill_hard(self, proc: Proc) -> None:
        if proc.kill_timer is not None:
            proc.kill_timer.cancel()
            proc.kill_timer = None
        if proc.hard_killed or proc.reaped:
            return
        proc.hard_killed = True
        self.signal(proc, signal.SIGKILL)
        self._maybe_complete(proc)

    # -- stdin ----------------------------------------------------------------
    def write(self, proc: Proc, data: bytes, eof: bool = False) -> None:
        """Queue DATA for PROC's stdin; EOF closes it once the queue is written."""
        if proc.stdin_fd is None:
            # closed, or never open: what cannot be written is credited back
            if data and proc.sink is not None:
                proc.sink.credit(proc, len(data))
            return
        if proc.stdin_eof:
            return
        proc.stdin_buf += data
        proc.stdin_eof = eof
        self._pump_stdin(proc)

    def _pump_stdin(self, proc: Proc) -> None:
        fd = proc.stdin_fd
        if fd is None:
            return
        buf = proc.stdin_buf
        written = 0
        while buf:
            try:
                n = os.write(fd, buf)
            except BlockingIOError:
                break
            except OSError:
                # the reader is gone (EPIPE): drop what is queued
                written += len(buf)
                buf.clear()
                self._close_stdin(proc)
                break
            del buf[:n]
            written += n
        if written and proc.sink is not None:
            proc.sink.credit(proc, written)
        if proc.stdin_fd is None:
            return
        loop = asyncio.get_running_loop()
        if buf:
            loop.add_writer(fd, self._pump_stdin, proc)
        else:
            loop.remove_writer(fd)
            if proc.stdin_eof:
                self._close_stdin(proc)

    def _close_stdin(self, proc: Proc) -> None:
        fd = proc.stdin_fd
        if fd is None:
            return
        proc.stdin_fd = None
        asyncio.get_running_loop().remove_writer(fd)
        os.close(fd)

    # -- output -----------------------------------------------------------------
    def _on_output(self, proc: Proc, name: str) -> None:
        fd = proc.outputs.get(name)
        if fd is None:
            return
        try:
            data = os.read(fd, OUTPUT_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_output(proc, name)
            self._maybe_complete(proc)
            return
        pending = proc.pending[name]
        pending += data
        if len(pending) >= OUTPUT_CHUNK:
            self._send_output(proc, name, False)
        elif proc.flush_timer is None:
            proc.flush_timer = asyncio.get_running_loop().call_later(BATCH_DELAY, self._flush, proc)

    def _flush(self, proc: Proc) -> None:
        proc.flush_timer = None
        for name in list(proc.pending):
            if proc.pending[name]:
                self._send_output(proc, name, False)

    def _send_output(self, proc: Proc, name: str, eof: bool) -> None:
        pending = proc.pending[name]
        data = bytes(pending)
        pending.clear()
        if proc.sink is not None and (data or eof):
            proc.sink.output(proc, name, data, eof)

    def _close_output(self, proc: Proc, name: str) -> None:
        fd = proc.outputs.pop(name, None)
        if fd is None:
            return
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        self._send_output(proc, name, True)

    def _drain_output(self, proc: Proc, name: str) -> None:
        """Read what is already in the pipe (the writers are dead), then close it."""
        fd = proc.outputs.get(name)
        if fd is None:
            return
        pending = proc.pending[name]
        for _ in range(64):
            try:
                data = os.read(fd, OUTPUT_CHUNK)
            except OSError:
                break
            if not data:
                break
            pending += data
        self._close_output(proc, name)

    # -- exit ---------------------------------------------------------------------
    def _on_exit(self, proc: Proc) -> None:
        loop = asyncio.get_running_loop()
        if proc.pidfd is not None:
            loop.remove_reader(proc.pidfd)
        if not self._check_exit(proc):
            if proc.pidfd is not None:
                loop.add_reader(proc.pidfd, self._on_exit, proc)
            return
        self._maybe_complete(proc)

    def _poll_exit(self, proc: Proc) -> None:
        if proc.reaped:
            return
        if self._check_exit(proc):
            self._maybe_complete(proc)
        else:
            asyncio.get_running_loop().call_later(0.05, self._poll_exit, proc)

    def _check_exit(self, proc: Proc) -> bool:
        """Record the exit status without reaping; False if it is still running."""
        if proc.status is not None:
            return True
        try:
            res = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            # reaped behind our back: the status is lost
            self.log.warning(f"rexec: pid {proc.pid} was reaped elsewhere; status unknown")
            proc.status = 0
            proc.reaped = True
            return True
        if res is None or res.si_pid == 0:
            return False
        proc.status = wait_status(res.si_code, res.si_status)
        return True

    def _maybe_complete(self, proc: Proc) -> None:
        """Finish PROC once its leader has exited and its output is all read."""
        if proc.status is None or proc.done.done():
            return
        if proc.killing and not proc.hard_killed:
            if proc.outputs:
                return  # the group still holds the pipes: the grace timer decides
            # the leader is gone and nothing holds its pipes: no need to wait
            self._kill_hard(proc)
            return
        if proc.outputs and not proc.hard_killed:
            return  # flux-core's rule: the stream ends when every output has hit EOF
        for name in list(proc.outputs):
            self._drain_output(proc, name)
        if proc.flush_timer is not None:
            proc.flush_timer.cancel()
            proc.flush_timer = None
        self._close_stdin(proc)
        self._release(proc)
        status = proc.status
        sink, proc.sink = proc.sink, None
        if not proc.waitable:
            self._forget(proc)
        proc.done.set_result(status)
        if sink is not None:
            sink.finished(proc, status)

    def _release(self, proc: Proc) -> None:
        """Reap the leader: from here on its pid is free, so the group is never signalled."""
        if proc.kill_timer is not None:
            proc.kill_timer.cancel()
            proc.kill_timer = None
        if proc.pidfd is not None:
            asyncio.get_running_loop().remove_reader(proc.pidfd)
            os.close(proc.pidfd)
            proc.pidfd = None
        self._guard.remove(proc.pid)
        if not proc.reaped:
            try:
                os.waitpid(proc.pid, 0)
            except ChildProcessError:
                pass
            proc.reaped = True
        # tell Popen it is done, or its finalizer would queue the pid for reaping
        proc.popen.returncode = proc.status

    def _forget(self, proc: Proc) -> None:
        if self.procs.get(proc.pid) is proc:
            del self.procs[proc.pid]
        if proc.label is not None and self.labels.get(proc.label) is proc:
            del self.labels[proc.label]

    async def wait(self, proc: Proc) -> int:
        """PROC's wait status once it is done; a waitable process is then forgotten."""
        status = await asyncio.shield(proc.done)
        self._forget(proc)
        return status

    def detach(self, proc: Proc) -> None:
        """Stop reporting to PROC's sink (its client went away)."""
        proc.sink = None

    # -- the whole table --------------------------------------------------------
    def listing(self) -> list[dict[str, Any]]:
        return [{"pid": p.pid, "label": p.label, "cmdline": list(p.cmd.cmdline),
                 "state": p.state, "bg": p.sink is None, "waitable": p.waitable}
                for p in self.procs.values()]

    async def shutdown(self) -> None:
        """Terminate every process, wait for them (bounded), and let the guard go."""
        self._closed = True
        procs = [p for p in self.procs.values() if not p.done.done()]
        for proc in procs:
            self.terminate(proc)
        if procs:
            waits = [asyncio.shield(p.done) for p in procs]
            done, pending = await asyncio.wait(waits, timeout=self.grace + _SHUTDOWN_WAIT)
            for fut in pending:
                fut.cancel()
            stuck = [p.pid for p in procs if not p.done.done()]
            if stuck:
                self.log.error(f"rexec: processes {stuck} did not exit after SIGKILL")
        self.procs.clear()
        self.labels.clear()
        self._guard.close()


def _spawn_error(exc: OSError, cmd: Command) -> FluxError:
    """The error for a command that could not be started, naming what failed."""
    errnum = exc.errno or errno.EIO
    text = exc.strerror or os.strerror(errnum)
    if exc.filename is not None and exc.filename == cmd.cwd and exc.filename != cmd.cmdline[0]:
        return FluxError(errnum, f"cannot change directory to {cmd.cwd}: {text}")
    return FluxError(errnum, f"{cmd.cmdline[0]}: {text}")


# -- the service --------------------------------------------------------------------


class _StreamSink:
    """Turns a process's news into ``rexec.exec`` responses."""

    __slots__ = ("stream", "rank", "credits", "on_done")

    def __init__(self, stream: "Stream", rank: int, credits: bool,
                 on_done: Callable[[], None]) -> None:
        self.stream = stream
        self.rank = rank
        self.credits = credits
        self.on_done = on_done

    def output(self, proc: Proc, stream: str, data: bytes, eof: bool) -> None:
        self.stream.send({"type": "output", "pid": proc.pid,
                          "io": encode_io(stream, self.rank, data, eof)})

    def credit(self, proc: Proc, nbytes: int) -> None:
        if self.credits:
            self.stream.send({"type": "add-credit", "channels": {"stdin": nbytes}})

    def finished(self, proc: Proc, status: int) -> None:
        self.stream.send({"type": "finished", "pid": proc.pid, "status": status})
        self.stream.end()
        self.on_done()


class RexecService(Module):
    """The built-in ``rexec`` service (owner only)."""

    name = "rexec"

    async def start(self) -> None:
        self.server = ProcessServer(self.ctx.rank, self.ctx.log,
                                    local_uri=self.ctx.attr_get_default("local-uri"))
        #: streaming processes by (sender, matchtag) of their exec request
        self.by_request: dict[tuple[str | None, int], Proc] = {}

    async def stop(self) -> None:
        await self.server.shutdown()

    @request_handler("rexec.exec")
    def exec_(self, msg: Message) -> dict[str, Any] | None:
        cmd, flags = parse_exec(msg.payload)
        if not msg.flags & FLUX_MSGFLAG_STREAMING:
            # background mode: no client to talk to, so no stdio either
            proc = self.server.spawn(cmd, None, stdout=False, stderr=False, stdin=False,
                                     waitable=bool(flags & FLAG_WAITABLE))
            proc.owner = msg.sender
            return {"type": "started", "pid": proc.pid}
        if flags & FLAG_WAITABLE:
            raise ValueError("flag waitable (16) is for background (non-streaming) requests")
        stream = self.ctx.stream(msg)
        key = (msg.sender, msg.matchtag)
        sink = _StreamSink(stream, self.ctx.rank, bool(flags & FLAG_WRITE_CREDIT),
                           lambda: self.by_request.pop(key, None))
        try:
            proc = self.server.spawn(cmd, sink, stdout=bool(flags & FLAG_STDOUT),
                                     stderr=bool(flags & FLAG_STDERR))
        except OSError as exc:
            stream.error(exc.errno or errno.EIO, exc.strerror or str(exc))
            return None
        proc.owner = msg.sender
        self.by_request[key] = proc
        stream.on_cancel = lambda: self._abandoned(key, proc)
        stream.send({"type": "started", "pid": proc.pid})
        if flags & FLAG_WRITE_CREDIT:
            stream.send({"type": "add-credit", "channels": {"stdin": STDIN_BUFSIZE}})
        return None

    def _abandoned(self, key: tuple[str | None, int], proc: Proc) -> None:
        """The client cancelled the stream or went away: the process goes too."""
        self.by_request.pop(key, None)
        self.server.detach(proc)
        self.server.terminate(proc)

    @request_handler("rexec.write")
    def write(self, msg: Message) -> dict[str, Any]:
        body = msg.payload
        if not isinstance(body, dict):
            raise ValueError("payload must be a JSON object")
        if "matchtag" in body:
            if type(body["matchtag"]) is not int:
                raise FluxError(errno.EPROTO, "rexec.write: 'matchtag' must be an integer")
            proc = self.by_request.get((msg.sender, body["matchtag"]))
            if proc is None:
                raise FluxError(errno.ENOENT, f"no process started by exec request with "
                                              f"matchtag {body['matchtag']!r} from this client")
        else:
            proc = self.server.find(body.get("pid"))
        stream, data, eof = decode_io(body.get("io"))
        if stream != "stdin":
            raise FluxError(errno.EINVAL, f"cannot write to stream '{stream}' (only stdin)")
        self.server.write(proc, data, eof)
        return {}

    @request_handler("rexec.kill")
    def kill(self, msg: Message) -> dict[str, Any]:
        body = msg.payload if isinstance(msg.payload, dict) else {}
        signum = _signum(body.get("signum"))
        self.server.signal(self.server.find(body.get("pid"), body.get("label")), signum)
        return {}

    @request_handler("rexec.wait")
    async def wait(self, msg: Message) -> dict[str, Any]:
        body = msg.payload if isinstance(msg.payload, dict) else {}
        proc = self.server.find(body.get("pid"), body.get("label"))
        if not proc.waitable:
            raise FluxError(errno.EINVAL, f"pid {proc.pid} was not started waitable")
        return {"status": await self.server.wait(proc)}

    @request_handler("rexec.list")
    def list(self, msg: Message) -> dict[str, Any]:
        return {"rank": self.ctx.rank, "procs": self.server.listing()}


# -- running a command from a module --------------------------------------------------


@dataclass(slots=True)
class CommandResult:
    """How a command run with :func:`run_command` ended."""

    pid: int
    #: wait status (waitpid(2) form)
    status: int
    #: exit code, or 128 + signal
    exit_code: int
    #: collected output (empty when an on_output callback took it)
    stdout: bytes = b""
    stderr: bytes = b""


async def run_command(ctx: "ModuleContext", cmd: Command, nodeid: int = FLUX_NODEID_ANY, *,
                      input: bytes | None = None,
                      on_output: Callable[[str, bytes], None] | None = None,
                      timeout: float | None = None) -> CommandResult:
    """Run CMD on rank NODEID (default: this one) through rexec and wait for it.

    INPUT is written to its stdin, which is then closed.  Output goes to
    ON_OUTPUT(stream, data) as it arrives, or is collected in the result.
    A command that cannot start raises OSError (ENOENT, EACCES, ...);
    TIMEOUT (seconds) kills it and raises ETIMEDOUT; cancelling the caller
    kills it too.
    """
    queue: asyncio.Queue[Message] = asyncio.Queue()
    tag = ctx.new_matchtag()
    ctx.on_response(tag, queue.put_nowait)
    ctx.send_tagged("rexec.exec", {"cmd": cmd.to_json(), "flags": FLAG_STDOUT | FLAG_STDERR},
                    tag, streaming=True, nodeid=nodeid)
    ctx.send_request("rexec.write", {"matchtag": tag, "io": encode_io("stdin", ctx.rank,
                                                                      input or b"", True)},
                     nodeid)
    out = {"stdout": bytearray(), "stderr": bytearray()}
    pid = 0
    status: int | None = None
    ended = False
    try:
        async with asyncio.timeout(timeout):
            while True:
                resp = await queue.get()
                if resp.errnum:
                    ended = True
                    if resp.errnum == errno.ENODATA:
                        break
                    raise FluxError(resp.errnum, resp.errstr or os.strerror(resp.errnum))
                body = resp.payload
                kind = body.get("type")
                if kind == "started":
                    pid = int(body["pid"])
                elif kind == "output":
                    stream, data, _eof = decode_io(body["io"])
                    if data:
                        if on_output is not None:
                            on_output(stream, data)
                        else:
                            out.setdefault(stream, bytearray()).extend(data)
                elif kind == "finished":
                    status = int(body["status"])
    except TimeoutError:
        raise FluxError(errno.ETIMEDOUT, f"{cmd.cmdline[0]}: timed out after {timeout}s "
                                         "(killed)") from None
    finally:
        ctx.drop_response(tag)
        if not ended:
            ctx.send_request("rexec.cancel", {"matchtag": tag}, nodeid)
    if status is None:
        raise FluxError(errno.EPROTO, f"{cmd.cmdline[0]}: rexec stream ended without "
                                      "a finished response")
    return CommandResult(pid, status, exit_code(status), bytes(out["stdout"]),
                         bytes(out["stderr"]))


__all__ = ["Command", "CommandResult", "ProcessServer", "Proc", "RexecService", "Sink",
           "run_command", "parse_exec", "encode_io", "decode_io", "wait_status", "exit_code",
           "FLAG_STDOUT", "FLAG_STDERR", "FLAG_WRITE_CREDIT", "FLAG_WAITABLE", "STDIN_BUFSIZE",
           "KILL_GRACE"]
