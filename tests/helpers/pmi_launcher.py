"""Test support: run N local processes of a command as one PMI-1 job.

Each task gets one end of a socketpair as ``PMI_FD`` with ``PMI_RANK`` and
``PMI_SIZE``, as a job shell would give it.  The tasks are split over
``shells`` simulated shells (block distribution, so the process mapping
names that many nodes), each with its own ``shell.pmi.server.PmiServer``;
the barrier exchange between them is done in-process.  One select loop
serves every PMI socket and collects each task's stdout and stderr::

    result = launch([sys.executable, "-c", "..."], size=4, shells=2)
    assert result.codes == [0, 0, 0, 0]

An ``abort`` from a task kills the whole job, as a job exception would.
As a script: ``python tests/helpers/pmi_launcher.py -n 4 [-s 2] [--trace]
-- CMD ARGS...`` prints each task's output and exits with the highest code.
"""
from __future__ import annotations

import argparse
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

if __package__ in (None, ""):  # run as a script: find the project's packages
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))

from shell.pmi.mapping import process_mapping  # noqa: E402
from shell.pmi.server import VALLEN_MAX, PmiConnection, PmiServer  # noqa: E402


@dataclass(slots=True)
class TaskResult:
    rank: int
    shell: int
    returncode: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    pmi_error: str | None = None  # why the server closed this task's PMI connection


@dataclass(slots=True)
class LaunchResult:
    tasks: list[TaskResult]
    aborts: list[tuple[int, int, str]] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    timed_out: bool = False
    barriers: int = 0

    @property
    def codes(self) -> list[int | None]:
        return [t.returncode for t in self.tasks]

    def stdout(self, rank: int) -> str:
        return self.tasks[rank].stdout.decode("utf-8", "replace")

    def stderr(self, rank: int) -> str:
        return self.tasks[rank].stderr.decode("utf-8", "replace")

    def describe(self) -> str:
        """Everything the tasks printed, for assertion messages."""
        parts = []
        for t in self.tasks:
            parts.append(f"--- rank {t.rank} (shell {t.shell}) rc={t.returncode} "
                         f"pmi_error={t.pmi_error}\n{t.stdout.decode(errors='replace')}"
                         f"{t.stderr.decode(errors='replace')}")
        if self.aborts:
            parts.append(f"aborts: {self.aborts}")
        if self.timed_out:
            parts.append("TIMED OUT")
        return "\n".join(parts)


def split_ranks(size: int, shells: int) -> list[list[int]]:
    """Block distribution of SIZE ranks over SHELLS shells."""
    if not 1 <= shells <= size:
        raise ValueError(f"need 1 <= shells <= size, got shells={shells} size={size}")
    out, start = [], 0
    for s in range(shells):
        n = size // shells + (1 if s < size % shells else 0)
        out.append(list(range(start, start + n)))
        start += n
    return out


class _Hub:
    """The exchange between simulated shells: done() once every shell has called in."""

    def __init__(self, shells: int) -> None:
        self.shells = shells
        self.waiting: list[tuple[dict[str, str], Callable[[dict[str, str] | Exception], None]]] = []

    def exchange_fn(self) -> Callable[[dict[str, str], Callable[[dict[str, str] | Exception],
                                                                None]], None]:
        def exchange(puts: dict[str, str],
                     done: Callable[[dict[str, str] | Exception], None]) -> None:
            self.waiting.append((puts, done))
            if len(self.waiting) == self.shells:
                merged: dict[str, str] = {}
                for p, _d in self.waiting:
                    merged.update(p)
                waiting, self.waiting = self.waiting, []
                for _p, d in waiting:
                    d(dict(merged))
        return exchange


def launch(argv: Sequence[str], size: int, shells: int = 1, *,
           env: Mapping[str, str] | None = None, timeout: float = 60.0,
           keys: Mapping[str, str] | None = None, kvsname: str | None = None,
           trace: bool = False, cwd: str | None = None,
           stdin: Callable[[int], bytes | None] | None = None) -> LaunchResult:
    """Run SIZE tasks of ARGV over SHELLS simulated shells; wait for all of them.

    ENV (default os.environ) is each task's environment plus the PMI
    variables; KEYS are extra pre-set PMI keys; STDIN(rank) gives a task's
    input (None: /dev/null).  Tasks still running after TIMEOUT seconds
    are killed (``timed_out``).  KVSNAME defaults to a fresh name per call:
    MPICH names its shared memory after it, and a segment left by a killed
    job would break the next job of the same name.
    """
    if kvsname is None:
        kvsname = f"pmi-{os.getpid()}-{secrets.token_hex(4)}"
    layout = split_ranks(size, shells)
    preset = {"PMI_process_mapping": process_mapping([len(r) for r in layout],
                                                     limit=VALLEN_MAX - 1)}
    preset.update(keys or {})
    result = LaunchResult([TaskResult(r, s) for s, ranks in enumerate(layout) for r in ranks])
    hub = _Hub(shells)
    sel = selectors.DefaultSelector()
    procs: dict[int, subprocess.Popen[bytes]] = {}
    killed = False

    def on_abort(rank: int, code: int, message: str) -> None:
        result.aborts.append((rank, code, message))
        kill_all()

    def kill_all() -> None:
        nonlocal killed
        killed = True
        for proc in procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass

    def tracer(rank: int, direction: str, data: bytes) -> None:
        result.trace.append(f"{rank} {direction} {data.decode(errors='replace').rstrip()}")

    servers = [PmiServer(size, ranks, kvsname, exchange=hub.exchange_fn(), abort=on_abort,
                         keys=preset, trace=tracer if trace else None) for ranks in layout]
    base_env = dict(os.environ if env is None else env)
    for s, ranks in enumerate(layout):
        for rank in ranks:
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            task_env = dict(base_env, PMI_FD=str(child.fileno()), PMI_RANK=str(rank),
                            PMI_SIZE=str(size))
            data = stdin(rank) if stdin is not None else None
            proc = subprocess.Popen(list(argv), env=task_env, pass_fds=(child.fileno(),),
                                    stdin=subprocess.PIPE if data is not None
                                    else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                                    start_new_session=True)
            child.close()
            procs[rank] = proc
            if data is not None:
                assert proc.stdin is not None
                proc.stdin.write(data)
                proc.stdin.close()
            _watch_task(sel, servers[s], rank, parent, result.tasks[rank])
            for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
                assert stream is not None
                os.set_blocking(stream.fileno(), False)
                sel.register(stream, selectors.EVENT_READ, ("out", rank, name))
    deadline = time.monotonic() + timeout
    try:
        while True:
            for rank, proc in procs.items():
                code = proc.poll()
                if code is not None and result.tasks[rank].returncode is None:
                    result.tasks[rank].returncode = code
            outputs = [k for k in sel.get_map().values() if k.data[0] == "out"]
            if not outputs and all(t.returncode is not None for t in result.tasks):
                break
            if time.monotonic() > deadline and not result.timed_out:
                result.timed_out = True
                kill_all()
                deadline = time.monotonic() + 10  # let pipes drain
            elif result.timed_out and time.monotonic() > deadline:
                break
            for key, _ev in sel.select(timeout=0.05):
                kind = key.data[0]
                if kind == "out":
                    _read_output(sel, key, result)
                else:
                    _read_pmi(sel, key)
    finally:
        for key in list(sel.get_map().values()):
            sel.unregister(key.fileobj)
            if key.data[0] == "pmi":
                key.fileobj.close()  # type: ignore[union-attr]
        sel.close()
        if killed or result.timed_out:
            kill_all()
        for rank, proc in procs.items():
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            if result.tasks[rank].returncode is None:
                result.tasks[rank].returncode = proc.returncode
    result.barriers = max(s.barriers for s in servers)
    return result


def _watch_task(sel: selectors.BaseSelector, server: PmiServer, rank: int,
                sock: socket.socket, task: TaskResult) -> None:
    def send(data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the task is gone; its exit status tells the story

    def close(reason: str) -> None:
        task.pmi_error = reason
        try:
            sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    conn = server.connect(rank, send, close)
    sel.register(sock, selectors.EVENT_READ, ("pmi", conn, sock))


def _read_pmi(sel: selectors.BaseSelector, key: selectors.SelectorKey) -> None:
    _kind, conn, sock = key.data
    assert isinstance(conn, PmiConnection)
    try:
        data = sock.recv(65536)
    except OSError:
        data = b""
    if data:
        conn.feed(data)
        return
    conn.hangup()
    if not conn.error:  # not already closed by the server
        sel.unregister(sock)
        sock.close()


def _read_output(sel: selectors.BaseSelector, key: selectors.SelectorKey,
                 result: LaunchResult) -> None:
    _kind, rank, name = key.data
    try:
        data = os.read(key.fd, 65536)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:
        sel.unregister(key.fileobj)
        return
    task = result.tasks[rank]
    if name == "stdout":
        task.stdout += data
    else:
        task.stderr += data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run a command as an N-task PMI-1 job")
    p.add_argument("-n", "--ntasks", type=int, required=True)
    p.add_argument("-s", "--shells", type=int, default=1)
    p.add_argument("-t", "--timeout", type=float, default=60.0)
    p.add_argument("--trace", action="store_true", help="print every PMI line")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given")
    result = launch(command, args.ntasks, args.shells, timeout=args.timeout, trace=args.trace)
    for line in result.trace:
        print("pmi:", line, file=sys.stderr)
    for task in result.tasks:
        sys.stdout.write(task.stdout.decode(errors="replace"))
        sys.stderr.write(task.stderr.decode(errors="replace"))
        if task.pmi_error:
            print(f"pmi: {task.pmi_error}", file=sys.stderr)
    for rank, code, message in result.aborts:
        print(f"pmi: rank {rank} aborted the job (exit code {code}): {message}",
              file=sys.stderr)
    if result.timed_out:
        print("pmi: timed out", file=sys.stderr)
    codes = [c if c is not None and c >= 0 else 128 - (c or 0) for c in result.codes]
    return max(codes) if codes else 0


if __name__ == "__main__":
    sys.exit(main())
