"""Task stdin: the job's ``guest.input`` eventlog (RFC 24), or a file.

``input.stdin.type`` = ``service`` (default) | ``file``; with ``file``,
``input.stdin.path`` (a template) is opened for every task; a path that
cannot be read is a fatal error naming it.  With ``service`` every task's
stdin is a pipe fed from the ``input`` eventlog of the job's namespace
(``flux run`` and ``flux job attach`` append to it): each ``data`` event
goes to the tasks its ``rank`` names (``all`` or an idset) and ``eof``
closes their stdin (a task on a terminal is sent its EOF character instead:
closing our end of a terminal ends nothing for it); a ``resize`` event ``{rank, rows, cols}`` (not RFC 24:
``flux alloc`` sends it) sets the window size of those tasks' terminals.  The log is watched only once exec says someone
writes to it (``shell.input_ready()``, from ``job-exec.input``): most jobs
never get input, and a watch per job would cost every one of them; the
watch starts from the top of the log, so nothing written before is
missed.  Writes never block the shell: what a task does not read yet
waits in memory.  Standalone, tasks share the shell's stdin.
"""
from __future__ import annotations

import base64
import errno
import os
from typing import Any

import orjson

from flux.constants import FLUX_POLLOUT, FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux.idset import IDset
from shell.plugstack import Plugin
from shell.template import expand

__all__ = ["plugin", "InputRouter"]

_KVS_WATCH_FLAGS = 4 | 8 | 256       # WATCH | WAITCREATE | WATCH_APPEND


class _Pipe:
    __slots__ = ("fd", "pending", "eof", "writer", "bol")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = bytearray()
        self.eof = False
        self.writer: Any = None
        self.bol = True             # what was sent so far ends a line (or is nothing)


def _terminal_eof(fd: int, bol: bool) -> bytes:
    """What a terminal (master FD) is sent for the end of its input: its EOF
    character, as a user types it (ctrl-D): closing our end is no EOF for the
    task.  Typed after a partial line, the first one only hands that line on."""
    import termios

    try:
        veof = termios.tcgetattr(fd)[6][termios.VEOF]
    except (OSError, termios.error):
        veof = b"\x04"
    if isinstance(veof, int):
        veof = bytes([veof])
    return veof if bol else veof * 2


class InputRouter:
    """Feeds RFC 24 input events to the stdin pipes of this shell's tasks."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.pipes: dict[int, _Pipe] = {}       # task rank -> pipe
        self.tail = b""
        #: task rank -> a terminal's master fd (shell/plugins/pty.py): ``resize`` events
        self.terminals: dict[int, int] = {}

    def add(self, rank: int, fd: int) -> None:
        os.set_blocking(fd, False)
        self.pipes[rank] = _Pipe(fd)

    def feed_log(self, data: bytes) -> None:
        """Bytes appended to the input eventlog (whole lines or not)."""
        lines = (self.tail + data).split(b"\n")
        self.tail = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("name") == "data":
                self.event(event.get("context") or {})
            elif event.get("name") == "resize":
                self.resize(event.get("context") or {})

    def resize(self, ctx: dict[str, Any]) -> None:
        """A ``resize`` event ``{rank, rows, cols}``: the window size of the terminals
        of those task ranks (their foreground process group gets SIGWINCH)."""
        rows, cols = ctx.get("rows"), ctx.get("cols")
        if type(rows) is not int or type(cols) is not int or not (0 <= rows < 65536
                                                                  and 0 <= cols < 65536):
            return
        for r in self._targets(ctx.get("rank", "all"), self.terminals):
            import fcntl
            import struct
            import termios

            try:
                fcntl.ioctl(self.terminals[r], termios.TIOCSWINSZ,
                            struct.pack("HHHH", rows, cols, 0, 0))
            except OSError:
                pass

    @staticmethod
    def _targets(rank: Any, ranks: Any) -> list[int]:
        if rank == "all":
            return list(ranks)
        try:
            wanted = set(IDset(str(rank)).expand())
        except (ValueError, TypeError):
            return []
        return [r for r in ranks if r in wanted]

    def event(self, ctx: dict[str, Any]) -> None:
        if ctx.get("stream", "stdin") != "stdin":
            return
        targets = self._targets(ctx.get("rank", "all"), self.pipes)
        data = ctx.get("data")
        raw = b""
        if isinstance(data, str) and data:
            raw = base64.b64decode(data) if ctx.get("encoding") == "base64" else data.encode()
        for r in targets:
            pipe = self.pipes[r]
            if pipe.eof:
                continue
            if raw:
                pipe.pending += raw
                pipe.bol = raw.endswith(b"\n")
            if ctx.get("eof"):
                if r in self.terminals:
                    pipe.pending += _terminal_eof(self.terminals[r], pipe.bol)
                pipe.eof = True
            self._write(pipe)

    def _write(self, pipe: _Pipe) -> None:
        while pipe.pending:
            try:
                n = os.write(pipe.fd, pipe.pending)
            except BlockingIOError:
                if pipe.writer is None:
                    pipe.writer = lambda _ev, p=pipe: self._write(p)
                    self.reactor.add_fd(pipe.fd, FLUX_POLLOUT, pipe.writer)
                return
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.EBADF):
                    pipe.pending.clear()    # the task closed its stdin
                    pipe.eof = True
                    break
                raise
            del pipe.pending[:n]
        if pipe.writer is not None:
            self.reactor.remove_fd(pipe.fd, pipe.writer)
            pipe.writer = None
        if pipe.eof and pipe.fd >= 0:
            os.close(pipe.fd)
            pipe.fd = -1

    def close_all(self) -> None:
        for fd in self.terminals.values():
            os.close(fd)
        self.terminals.clear()
        for pipe in self.pipes.values():
            if pipe.writer is not None:
                self.reactor.remove_fd(pipe.fd, pipe.writer)
                pipe.writer = None
            if pipe.fd >= 0:
                os.close(pipe.fd)
                pipe.fd = -1


def plugin() -> Plugin:
    p = Plugin("input")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        state = sh.aux["input"] = {}
        sh.aux["input.ready"] = lambda: ready(sh)
        opts = sh.getopt("input") or {}
        if not isinstance(opts, dict):
            raise ValueError("input: shell option must be an object")
        conf = opts.get("stdin") or {}
        kind = conf.get("type", "file" if conf.get("path") else "service")
        if kind not in ("service", "file"):
            raise ValueError(f"input.stdin.type: must be service or file, not {kind!r}")
        state["kind"] = kind
        if kind == "file":
            path = expand(str(conf.get("path") or ""), sh)
            if not path:
                raise ValueError("input.stdin.path: required with type file")
            try:
                fd = os.open(sh.job_path(path), os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise OSError(exc.errno, f"could not open input file {path}: "
                                         f"{exc.strerror}") from None
            state["file"] = fd
        elif sh.h is not None:
            state["router"] = sh.aux["input.router"] = InputRouter(sh.reactor)

    def task_init(_topic: str, sh: Any, task: Any) -> None:
        if 0 in task.child_fds:
            return
        state = sh.aux["input"]
        if state.get("kind") == "file":
            task.child_fds[0] = os.open(f"/proc/self/fd/{state['file']}", os.O_RDONLY)
        elif "router" in state:
            r, w = os.pipe()
            task.child_fds[0] = r
            state["router"].add(task.rank, w)

    def start(_topic: str, sh: Any, _task: Any) -> None:
        state = sh.aux["input"]
        state["started"] = True
        if sh.args.get("input") or state.get("wanted"):
            watch(sh)

    def ready(sh: Any) -> None:
        """Someone writes to the input log: follow it (once the tasks exist)."""
        state = sh.aux["input"]
        state["wanted"] = True
        if state.get("started"):
            watch(sh)

    def watch(sh: Any) -> None:
        state = sh.aux["input"]
        router: InputRouter | None = state.get("router")
        if router is None or not router.pipes or "watch" in state:
            return

        def on_response(future: Any) -> None:
            try:
                resp = future.get()
            except OSError:
                return                  # namespace gone (job over) or watch cancelled
            finally:
                future.reset()
            val = (resp or {}).get("val") or {}
            data = val.get("data")
            if data:
                router.feed_log(base64.b64decode(data))

        fut = sh.h.rpc("kvs-watch.lookup", {"key": "input", "namespace": sh.namespace,
                                            "flags": _KVS_WATCH_FLAGS},
                       nodeid=0, flags=FLUX_RPC_STREAMING)
        state["watch"] = fut
        fut.then(on_response)

    def exit_(_topic: str, sh: Any, _task: Any) -> None:
        state = sh.aux.get("input") or {}
        fut = state.pop("watch", None)
        if fut is not None:
            sh.h.rpc("kvs-watch.cancel", {"matchtag": fut.matchtag}, nodeid=0,
                     flags=FLUX_RPC_NORESPONSE)
        router = state.get("router")
        if router is not None:
            router.close_all()
        if "file" in state:
            os.close(state.pop("file"))

    p.add_handler("shell.init", init)
    p.add_handler("task.init", task_init)
    p.add_handler("shell.start", start)
    p.add_handler("shell.exit", exit_)
    return p
