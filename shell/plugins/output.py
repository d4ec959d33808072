"""Task output: RFC 24 ``guest.output`` in the job's namespace, files, or the terminal.

Shell options (flux-shell(1)): ``output.{stdout,stderr}.type`` = ``kvs``
(default) | ``file`` | ``term``; ``output.{stdout,stderr}.path`` (a
template: ``{{id}}`` etc.); if only stdout is set it applies to stderr
too; ``output.{stdout,stderr}.label`` prefixes lines with ``RANK: ``;
``output.{stdout,stderr}.buffer.type`` = ``line`` (default) | ``none``;
``output.mode`` = ``truncate`` (default) | ``append`` (how files are opened);
``output.batch-timeout`` (seconds, default 0.1); ``output.limit`` (bytes
or ``10M``-style; default from exec: 1G, 10M for a guest's job).

Why batched: a task writing 100 MB must not make 100 MB of tiny KVS
commits.  Output is gathered per (stream, task rank) and flushed as one
``kvs.commit`` of appends when the batch timer fires, when 1 MiB is
waiting, or at the end; up to two commits are in flight (the KVS applies
them in the order sent), so a fast writer's next batch is on its way
while the previous one is being stored.  Line buffering
holds a partial last line back for one flush so lines stay whole (for
labels) without holding a prompt forever.  Data that is not UTF-8 goes
base64-encoded.  Past the limit a stream's data is dropped and one
``log`` entry says so; the job and the KVS carry on.
"""
from __future__ import annotations

import base64
import errno
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from flux.util.iodata import encode_io
from flux.util.size import parse_size
from shell.plugstack import Plugin
from shell.template import expand

__all__ = ["plugin", "OutputBuffer", "data_context", "parse_size", "KVSOutput",
           "TerminalOutput", "FLUSH_BYTES"]

FLUX_KVS_APPEND = 32
FLUSH_BYTES = 1 << 20
MAX_INFLIGHT = 2
#: a full disk: the first retry of a refused output commit, the longest wait between
#: retries, and how long a batch is tried before it is given up (and said so)
RETRY_FIRST, RETRY_MAX, RETRY_GIVE_UP = 0.5, 5.0, 300.0
TAIL_MAX = 1 << 20                # last output handed to exec with the shell's exit
_EVENT_MAX = 1 << 19            # raw bytes in one data event
DEFAULT_BATCH_TIMEOUT = 0.1
def data_context(stream: str, rank: str, data: bytes, eof: bool = False) -> dict[str, Any]:
    """The context of an RFC 24 ``data`` event (UTF-8 text, else base64)."""
    return encode_io(stream, rank, data, eof)


class OutputBuffer:
    """Pending output of one shell, gathered per (stream, task rank), in arrival order."""

    def __init__(self, line_buffered: dict[str, bool] | None = None,
                 limit: int | None = None) -> None:
        self.line = line_buffered or {"stdout": True, "stderr": True}
        self.limit = limit
        self.pending: dict[tuple[str, int], bytearray] = {}
        self.eofs: set[tuple[str, int]] = set()
        self.held: set[tuple[str, int]] = set()     # partial lines held back once already
        self.logs: list[tuple[float, str, dict[str, Any]]] = []
        self.size = 0
        self.total: dict[str, int] = {}
        self.truncated: set[str] = set()

    def add(self, stream: str, rank: int, data: bytes) -> None:
        if self.limit is not None:
            used = self.total.get(stream, 0)
            if used + len(data) > self.limit:
                keep = max(self.limit - used, 0)
                if stream not in self.truncated:
                    self.truncated.add(stream)
                    # flux-core's words ("stdout will be truncated, 10M limit exceeded")
                    self.log(4, f"{stream} will be truncated, limit of {self.limit} bytes "
                                "exceeded", "output")
                data = data[:keep]
                if not data:
                    return
            self.total[stream] = used + len(data)
        buf = self.pending.get((stream, rank))
        if buf is None:
            buf = self.pending[(stream, rank)] = bytearray()
        buf += data
        self.size += len(data)

    def eof(self, stream: str, rank: int) -> None:
        self.pending.setdefault((stream, rank), bytearray())
        self.eofs.add((stream, rank))

    def log(self, level: int, message: str, component: str | None = None,
            rank: int | None = None) -> None:
        ctx: dict[str, Any] = {"level": level, "message": message}
        if component:
            ctx["component"] = component
        if rank is not None:
            ctx["rank"] = rank
        self.logs.append((time.time(), "log", ctx))

    def __bool__(self) -> bool:
        return bool(self.pending or self.logs)

    def take(self, final: bool = False) -> list[tuple[float, str, dict[str, Any]]]:
        """Events to write now; a partial line may stay for the next flush."""
        now = time.time()
        out = list(self.logs)
        self.logs.clear()
        keep: dict[tuple[str, int], bytearray] = {}
        for key, buf in self.pending.items():
            stream, rank = key
            eof = key in self.eofs
            data = bytes(buf)
            if not (final or eof) and self.line.get(stream, True) and data \
                    and not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                if key not in self.held:
                    if cut:
                        keep[key] = bytearray(data[cut:])
                        data = data[:cut]
                    else:
                        keep[key] = bytearray(data)
                        data = b""
                    self.held.add(key)
                else:
                    self.held.discard(key)
            else:
                self.held.discard(key)
            last_eof = eof and key not in keep
            for at in range(0, max(len(data), 1), _EVENT_MAX):
                chunk = data[at:at + _EVENT_MAX]
                end = last_eof and at + _EVENT_MAX >= len(data)
                if chunk or end:
                    out.append((now, "data", data_context(stream, str(rank), chunk, end)))
            if last_eof:
                self.eofs.discard(key)
        self.pending = keep
        self.size = sum(len(b) for b in keep.values())
        return out


def _lines(events: list[tuple[float, str, dict[str, Any]]]) -> bytes:
    dumps = orjson.dumps
    return b"".join(dumps({"timestamp": ts, "name": name, "context": ctx}) + b"\n"
                    for ts, name, ctx in events)


def _label(data: bytes, rank: int, partial: dict[int, bool]) -> bytes:
    """Prefix each line of DATA with ``RANK: `` (tracking lines cut across writes)."""
    prefix = f"{rank}: ".encode()
    out = bytearray()
    for line in data.splitlines(keepends=True):
        if not partial.get(rank):
            out += prefix
        out += line
        partial[rank] = not line.endswith(b"\n")
    return bytes(out)


class _Streams:
    """Per-stream settings from the shell options."""

    def __init__(self, shell: Any) -> None:
        opts = shell.getopt("output") or {}
        if not isinstance(opts, dict):
            raise ValueError("output: shell option must be an object")
        out = opts.get("stdout") or {}
        err = opts.get("stderr") if "stderr" in opts else out
        err = err or {}
        self.conf = {"stdout": out, "stderr": err}
        for stream, conf in self.conf.items():
            if not isinstance(conf, dict):
                raise ValueError(f"output.{stream}: must be an object")
            kind = conf.get("type", "file" if conf.get("path") else "kvs")
            if kind not in ("kvs", "file", "term"):
                raise ValueError(f"output.{stream}.type: must be kvs, file or term, "
                                 f"not {kind!r}")
            if kind == "file" and not conf.get("path"):
                raise ValueError(f"output.{stream}.path: required with type file")
        #: how output files are opened (flux-shell-options(7) output.mode): emptied
        #: first, or added to
        self.mode = opts.get("mode", "truncate")
        if self.mode not in ("truncate", "append"):
            raise ValueError(f"output.mode: must be truncate or append, not {self.mode!r}")
        self.batch_timeout = float(opts.get("batch-timeout", DEFAULT_BATCH_TIMEOUT))
        limit = opts.get("limit", shell.args.get("output_limit"))
        self.limit = parse_size(limit) if limit not in (None, "") else None

    def kind(self, stream: str) -> str:
        conf = self.conf[stream]
        return conf.get("type", "file" if conf.get("path") else "kvs")

    def label(self, stream: str) -> bool:
        return bool(self.conf[stream].get("label"))

    def line_buffered(self) -> dict[str, bool]:
        out = {}
        for stream, conf in self.conf.items():
            buffer = conf.get("buffer") or {}
            out[stream] = not (isinstance(buffer, dict) and buffer.get("type") == "none")
        return out


class KVSOutput:
    """The output sink of a shell under an instance: guest.output, or files."""

    def __init__(self, shell: Any, streams: _Streams) -> None:
        self.shell = shell
        self.streams = streams
        self.buf = OutputBuffer(streams.line_buffered(), streams.limit)
        self.files: dict[str, int] = {}              # stream -> fd of its file
        self.partial: dict[str, dict[int, bool]] = {"stdout": {}, "stderr": {}}
        self.timer: Any = None
        self.inflight = 0
        self.waiters: list[Callable[[], None]] = []
        self.committed_errors = 0
        #: a commit refused for want of space, tried again until it goes in (or the
        #: retry time runs out): later output waits behind it, in order
        self.retrying: dict[str, Any] | None = None
        self.retry_delay = RETRY_FIRST
        self.retry_since = 0.0

    # -- sink interface ------------------------------------------------------------------
    def task_output(self, task: Any, stream: str, data: bytes) -> None:
        fd = self.files.get(stream)
        if fd is not None:
            if self.streams.label(stream):
                data = _label(data, task.rank, self.partial[stream])
            _write_all(fd, data)
            return
        self.buf.add(stream, task.rank, data)
        self._schedule()

    def task_eof(self, task: Any, stream: str) -> None:
        if stream in self.files:
            return
        self.buf.eof(stream, task.rank)
        self._schedule()

    def log(self, level: int, message: str, component: str | None) -> None:
        fd = self.files.get("stderr")
        if fd is not None:
            # stderr goes to a file: so do the shell's messages, and not to the job's
            # output log (flux-core's shell, output/log.c), in its format
            from shell.shell import level_name

            name = level_name(level)
            _write_all(fd, f"flux-shell[{self.shell.rank}]: {name + ': ' if name else ''}"
                           f"{component + ': ' if component else ''}{message}\n".encode())
            return
        self.buf.log(level, message, component, self.shell.rank)
        self._schedule()

    def redirect(self, stream: str, ranks: str, path: str) -> None:
        self.buf.logs.append((time.time(), "redirect",
                              {"stream": stream, "rank": ranks, "path": path}))
        self._schedule()

    def flush(self, callback: Callable[[], None]) -> None:
        self.waiters.append(callback)
        if self.timer is not None:
            self.shell.reactor.cancel_timer(self.timer)
            self.timer = None
        self._commit(final=True)

    def finish(self, callback: Callable[[bytes], None]) -> None:
        """The shell is done: CALLBACK(the last entries, as RFC 18 lines, or b"").

        Up to ``TAIL_MAX`` bytes of last entries are handed back rather than
        committed: they travel to exec with the shell's exit and go into the
        log in exec's last commit of the job, one commit round less for
        every job.  More than that is committed here first.
        """
        if self.timer is not None:
            self.shell.reactor.cancel_timer(self.timer)
            self.timer = None
        if self.inflight or self.retrying is not None:
            # the last entries go after every earlier one (a commit retried for want
            # of space, too), or they would overtake it
            self.waiters.append(lambda: self.finish(callback))
            return
        events = self.buf.take(final=True)
        data = _lines(events)
        if len(data) <= TAIL_MAX:
            callback(data)
            return
        self.buf.logs[:0] = events          # too much to carry: commit it first
        self.flush(lambda: callback(b""))

    # -- committing --------------------------------------------------------------------------
    def _schedule(self) -> None:
        if self.inflight >= MAX_INFLIGHT:
            return
        if self.buf.size >= FLUSH_BYTES:
            if self.timer is not None:
                self.shell.reactor.cancel_timer(self.timer)
                self.timer = None
            self._commit()
        elif self.timer is None:
            self.timer = self.shell.reactor.add_timer(
                time.monotonic() + self.streams.batch_timeout, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        self._commit()

    def _commit(self, final: bool = False) -> None:
        if self.inflight >= MAX_INFLIGHT or self.retrying is not None:
            return
        events = self.buf.take(final=final or bool(self.waiters))
        if not events:
            if self.buf.pending:
                self._schedule()     # a partial line held back goes with the next flush
            self._done_waiters()
            return
        data = _lines(events)
        op = {"key": "output", "flags": FLUX_KVS_APPEND,
              "dirent": {"ver": 1, "type": "val", "data": base64.b64encode(data).decode()}}
        self._send(op)

    def _send(self, op: dict[str, Any]) -> None:
        self.inflight += 1
        fut = self.shell.h.rpc("kvs.commit", {"namespace": self.shell.namespace, "flags": 0,
                                              "ops": [op]}, nodeid=0)
        fut.then(self._committed, op)

    def _committed(self, future: Any, op: dict[str, Any]) -> None:
        self.inflight -= 1
        try:
            future.get()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT) and self._retry(op):
                return
            self.committed_errors += 1
            sys.stderr.write(f"flux-shell: output commit failed: {exc.strerror or exc}\n")
        else:
            if op is self.retrying:
                self.retrying = None
                self.retry_delay = RETRY_FIRST
        if self.buf or self.waiters:
            if self.waiters or self.buf.size >= FLUSH_BYTES:
                self._commit(final=bool(self.waiters))
            else:
                self._schedule()
        else:
            self._done_waiters()

    def _retry(self, op: dict[str, Any]) -> bool:
        """OP was refused for want of space: try it again later, holding back what comes
        after it, so that output is kept (and in order) once space returns. False once
        it has been tried for RETRY_GIVE_UP seconds."""
        now = time.monotonic()
        if self.retrying is not op:
            self.retrying, self.retry_since = op, now
            sys.stderr.write("flux-shell: output commit refused (disk full): trying again\n")
        elif now - self.retry_since > RETRY_GIVE_UP:
            self.retrying = None
            return False
        delay, self.retry_delay = self.retry_delay, min(self.retry_delay * 2, RETRY_MAX)
        self.shell.reactor.add_timer(now + delay, lambda: self._send(op))
        return True

    def _done_waiters(self) -> None:
        if self.inflight or self.retrying is not None or self.buf.pending and self.waiters:
            return
        waiters, self.waiters = self.waiters, []
        for fn in waiters:
            fn()


class TerminalOutput:
    """Standalone mode: task output to our stdout/stderr (labelled if asked).

    Each task's lines are written whole, as an instance's output log keeps
    them (a line two tasks wrote at once is not interleaved), unless the
    stream's ``buffer.type`` is ``none``; a last line without a newline is
    written at the task's EOF.
    """

    def __init__(self, shell: Any, streams: _Streams) -> None:
        self.shell = shell
        self.streams = streams
        self.files: dict[str, int] = {}
        self.partial: dict[str, dict[int, bool]] = {"stdout": {}, "stderr": {}}
        self.line_buffered = streams.line_buffered()
        #: (stream, task rank) -> the start of a line not yet ended
        self.held: dict[tuple[str, int], bytes] = {}

    def task_output(self, task: Any, stream: str, data: bytes) -> None:
        if self.line_buffered.get(stream, True):
            key = (stream, task.rank)
            data = self.held.pop(key, b"") + data
            end = data.rfind(b"\n") + 1
            if end < len(data):
                self.held[key] = data[end:]
                data = data[:end]
            if not data:
                return
        self._write(task, stream, data)

    def _write(self, task: Any, stream: str, data: bytes) -> None:
        if self.streams.label(stream):
            data = _label(data, task.rank, self.partial[stream])
        fd = self.files.get(stream, 1 if stream == "stdout" else 2)
        _write_all(fd, data)

    def task_eof(self, task: Any, stream: str) -> None:
        rest = self.held.pop((stream, task.rank), b"")
        if rest:
            self._write(task, stream, rest)

    def log(self, level: int, message: str, component: str | None) -> None:
        from shell.shell import level_name

        name = level_name(level)
        text = f"flux-shell[{self.shell.rank}]: {name + ': ' if name else ''}" \
               f"{component + ': ' if component else ''}{message}\n"
        _write_all(2, text.encode())

    def redirect(self, stream: str, ranks: str, path: str) -> None:
        pass

    def flush(self, callback: Callable[[], None]) -> None:
        callback()

    def finish(self, callback: Callable[[bytes], None]) -> None:
        callback(b"")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            import select

            select.select([], [fd], [])
            continue
        except OSError:
            return
        view = view[n:]


def plugin() -> Plugin:
    p = Plugin("output")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        streams = _Streams(sh)
        sink = TerminalOutput(sh, streams) if sh.h is None else KVSOutput(sh, streams)
        held = getattr(sh.output, "held", None) or ()
        sh.output = sink
        for level, message, component in held:
            sink.log(level, message, component)
        opened: dict[str, int] = {}
        me = sh.info.me
        for stream in ("stdout", "stderr"):
            if streams.kind(stream) != "file":
                continue
            path = expand(str(streams.conf[stream]["path"]), sh)
            fd = opened.get(path)     # stderr to stdout's file: one descriptor
            if fd is None:
                # O_APPEND: the shells of a job on other nodes may write the same file.
                # Emptying it here is safe from them: no task of the job starts before
                # every shell is past shell.init (the init barrier)
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
                if streams.mode == "truncate":
                    flags |= os.O_TRUNC
                try:
                    fd = os.open(sh.job_path(path), flags, 0o666)
                except OSError as exc:
                    raise OSError(exc.errno, f"could not open {stream} file {path}: "
                                             f"{exc.strerror}") from None
                opened[path] = fd
            sink.files[stream] = fd
            if me.ntasks:
                # one for each stream, shared file or not: attach says where each went
                from flux.idset import IDset

                sink.redirect(stream, IDset(me.task_ranks).encode(), path)
        sh.aux["output.streams"] = streams

    def task_init(_topic: str, sh: Any, task: Any) -> None:
        streams: _Streams = sh.aux["output.streams"]
        for stream, child_fd in (("stdout", 1), ("stderr", 2)):
            if child_fd in task.child_fds:
                continue          # another plugin (pty) provides it
            fd = sh.output.files.get(stream)
            if fd is not None and not streams.label(stream):
                task.child_fds[child_fd] = os.dup(fd)   # straight to the file
                continue
            r, w = os.pipe()
            task.child_fds[child_fd] = w
            task.aux.setdefault("pipes", []).append((stream, r))

    def task_fork(_topic: str, sh: Any, task: Any) -> None:
        for stream, r in task.aux.pop("pipes", []):
            sh.watch_output(task, stream, r)

    def exit_(_topic: str, sh: Any, _task: Any) -> None:
        files = getattr(sh.output, "files", {})
        for fd in set(files.values()):
            try:
                os.close(fd)
            except OSError:
                pass
        # nothing later (a last log message) may write to a number another job's
        # file gets next in this process
        files.clear()

    p.add_handler("shell.init", init)
    p.add_handler("task.init", task_init)
    p.add_handler("task.fork", task_fork)
    p.add_handler("shell.exit", exit_)
    return p
