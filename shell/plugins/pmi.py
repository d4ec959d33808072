"""PMI-1 for the job's tasks: one PMI_FD socket per task, served by shell/pmi/.

Shell option ``pmi`` = ``simple`` (default) or ``off``.  Each task gets the
child end of a socketpair as PMI_FD, with PMI_RANK, PMI_SIZE and
PMI_SPAWNED=0; the shell feeds what it reads to its ``PmiServer`` and
writes back what the server answers (queued, never blocking).  A PMI
barrier is an exec barrier named ``pmi.N`` (the Nth): its data are this
shell's puts, its result the union of every shell's, so MPI programs and
``flux start`` wire up across all ranks of the job.  Preset keys:
``PMI_process_mapping`` (tasks per shell) and ``flux.instance-level``.
The kvsname is the job id and a token of the instance's exec (the same on
every rank of the job): MPICH names its shared memory after it, so it must
differ between concurrent jobs on a node, and job ids of two instances can
be equal.  Standalone: the job id and the shell's pid.  A task calling
PMI_Abort raises a fatal ``exec`` exception.  The server is made when a
task first speaks PMI: most jobs' tasks never do, and a shell server runs
hundreds of jobs a second.
"""
from __future__ import annotations

import errno
import os
import socket
from typing import Any

from flux.constants import FLUX_POLLIN, FLUX_POLLOUT
from shell.plugstack import Plugin

__all__ = ["plugin"]


class _Channel:
    """The shell's end of one task's PMI socket."""

    def __init__(self, sh: Any, sock: socket.socket, rank: int) -> None:
        self.sh = sh
        self.sock = sock
        self.fd = sock.fileno()
        self.rank = rank
        self.out = bytearray()
        self.writing = False
        self.closed = False
        self.conn: Any = None
        self.make: Any = None           # () -> the shell's PmiServer, made on first use
        self.reader = lambda _ev: self._readable()
        self.writer = lambda _ev: self._flush()

    def start(self) -> None:
        self.sh.reactor.add_fd(self.fd, FLUX_POLLIN, self.reader)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            if self.conn is None:
                try:
                    self.conn = self.make().connect(self.rank, self.send, self.close)
                except ValueError as exc:
                    self.close(str(exc))
                    self.sh.raise_exception(f"pmi: {exc}")
                    return
            self.conn.feed(data)
        else:
            if self.conn is not None:
                self.conn.hangup()
            self.close("")

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        self.out += data
        self._flush()

    def _flush(self) -> None:
        while self.out and not self.closed:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                if not self.writing:
                    self.writing = True
                    self.sh.reactor.add_fd(self.fd, FLUX_POLLOUT, self.writer)
                return
            except OSError:
                self.close("")
                return
            del self.out[:n]
        if self.writing:
            self.writing = False
            self.sh.reactor.remove_fd(self.fd, self.writer)

    def close(self, reason: str) -> None:
        if self.closed:
            return
        if reason:
            self.sh.log(f"pmi: task {self.rank}: {reason}", 3, "pmi")
        self.closed = True
        self.sh.reactor.remove_fd(self.fd, self.reader)
        if self.writing:
            self.sh.reactor.remove_fd(self.fd, self.writer)
        self.sock.close()


def check_pmi_tuning(opts: dict[str, Any]) -> None:
    """The ``pmi`` option as an object (``-o pmi.kvs=...``); ValueError names a bad key."""
    for key, value in opts.items():
        if key == "kvs":
            if value not in ("native", "exchange"):
                raise ValueError(f"pmi.kvs: invalid value {value!r} (native or exchange)")
        elif key == "exchange":
            k = value.get("k", 2) if isinstance(value, dict) else None
            if type(k) is not int or k < 1 or set(value) - {"k"}:
                raise ValueError(f"pmi.exchange: invalid value {value!r} (k=N, N >= 1)")
        else:
            raise ValueError(f"pmi: unknown option 'pmi.{key}' (kvs, exchange.k)")


def plugin() -> Plugin:
    p = Plugin("pmi")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        state: dict[str, Any] = {"channels": [], "seq": 0}
        sh.aux["pmi"] = state
        mode = sh.getopt("pmi", "simple")
        if isinstance(mode, dict):
            # flux-shell(1)'s pmi.kvs=native|exchange and pmi.exchange.k=N: tuning of how
            # the keys travel; here they always go through exec's barrier (one gather
            # and broadcast at rank 0), so both only need to be well formed
            check_pmi_tuning(mode)
            mode = "simple"
        if mode in ("off", "none", False):
            return
        if mode not in ("simple", "pmi1", True, 1):
            raise ValueError(f"pmi: unsupported PMI {mode!r} (simple or off)")
        def exchange(puts: dict[str, str], done: Any) -> None:
            state["seq"] += 1

            def finished(data: Any, error: str | None) -> None:
                if error is not None:
                    done(OSError(errno.ECONNRESET, error))
                else:
                    done({str(k): str(v) for k, v in (data or {}).items()})

            sh.barrier(f"pmi.{state['seq']}", puts, finished)

        def abort(rank: int, code: int, message: str) -> None:
            note = f"task {rank}: PMI abort (exit code {code})" + (f": {message}" if message
                                                                   else "")
            sh.log(note, 3, "pmi")
            sh.raise_exception(note)

        kvsname = sh.args.get("kvsname")
        if not isinstance(kvsname, str) or not kvsname:
            # standalone: this process is unique on the machine while the job runs
            kvsname = f"{sh.jobid}-{os.getpid()}"

        def make() -> Any:
            server = state.get("server")
            if server is None:
                from shell.pmi import PmiServer, process_mapping
                from shell.pmi.mapping import encode_process_mapping
                from shell.pmi.server import VALLEN_MAX

                nodeids = sh.info.nodeids
                keys = {"PMI_process_mapping":
                        process_mapping(sh.info.tasks_per_shell, limit=VALLEN_MAX - 1)
                        if nodeids is None else
                        encode_process_mapping(nodeids, limit=VALLEN_MAX - 1)}
                level = sh.args.get("instance_level")
                if level is not None:
                    keys["flux.instance-level"] = str(level)
                server = state["server"] = PmiServer(
                    sh.info.ntasks, list(sh.info.me.task_ranks), kvsname, exchange=exchange,
                    abort=abort, keys=keys)
            return server

        state["make"] = make

    def task_init(_topic: str, sh: Any, task: Any) -> None:
        make = sh.aux["pmi"].get("make")
        if make is None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)
        task.pass_fds.append(theirs.detach())
        child_fd = task.pass_fds[-1]
        task.env["PMI_FD"] = str(child_fd)
        task.env["PMI_RANK"] = str(task.rank)
        task.env["PMI_SIZE"] = str(sh.info.ntasks)
        task.env["PMI_SPAWNED"] = "0"
        channel = _Channel(sh, ours, task.rank)
        channel.make = make
        task.aux["pmi"] = channel

    def task_fork(_topic: str, sh: Any, task: Any) -> None:
        channel = task.aux.get("pmi")
        if channel is not None:
            channel.start()
            sh.aux["pmi"]["channels"].append(channel)

    def exit_(_topic: str, sh: Any, _task: Any) -> None:
        for channel in (sh.aux.get("pmi") or {}).get("channels", ()):
            channel.close("")

    p.add_handler("shell.init", init)
    p.add_handler("task.init", task_init)
    p.add_handler("task.fork", task_fork)
    p.add_handler("shell.exit", exit_)
    return p
