"""The job follower of ``flux job attach``, ``flux run`` and ``flux submit --wait``.

``JobFollower`` watches one job's main eventlog (and, once the job starts,
its exec eventlog and RFC 24 output log) from the handle's reactor:

- exceptions print ``T.TTTs: job.exception ID type=T severity=N NOTE`` on
  stderr, where T.TTT is seconds since the job's first event;
- ``finish`` gives the exit code (the wait status's exit code, or
  128+signal) and prints why when it is not 0;
- a fatal exception without a nonzero exit code makes the exit code 1;
- output data is written to our stdout/stderr (``rank: `` prefixed with
  ``label_io``); ``show_events``/``show_exec`` print every event.

The follower is done once the main log has ended (``clean``, or the
``wait_event`` it stops at: ``flux job attach -w``) and the exec and
output logs it started to follow have ended too (job-info ends them at
their last entry, or when the job is inactive).  With ``show_status``
(or, unless told otherwise, when all our stdio is a terminal and the job
is still pending after 2 s) a status line on stderr says where a pending
job stands, as flux-job(1)'s attach does.
"""
from __future__ import annotations

import base64
import errno
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from cli.common import die, warn
from cli.job_common import rpc_error_text
from cli.job_watch import WAITCREATE
from flux.util.waitstatus import exit_code_of

#: the longest a job event waits for the exec log's earlier events (``-vvv``)
_HOLD_SECONDS = 0.5
#: the status line's text after each job event (flux-job(1) ATTACH)
_STATUS_TEXT = {"validate": "resolving dependencies", "depend": "waiting for priority assignment",
                "priority": "waiting for resources", "alloc": "starting",
                "prolog-start": "waiting for job prolog", "prolog-finish": "starting",
                "start": "started", "exception": "canceling due to exception"}
#: seconds a job may stay pending before the status line appears (interactive use)
_STATUS_DELAY = 2.0

__all__ = ["JobFollower", "exit_code_of", "follow_jobs", "attach", "decode_output", "label_lines",
           "StdinForwarder"]


class _Stream:
    """One eventlog watch driven by reactor callbacks."""

    def __init__(self, h: Any, jobid: int, path: str, flags: int,
                 on_entry: Callable[[Any], None], on_end: Callable[["_Stream", Any], None]) -> None:
        from flux.job.event import JobEventWatchFuture

        self.path = path
        self.on_entry = on_entry
        self.on_end = on_end
        self.produced = False
        self.ended = False
        self.future = JobEventWatchFuture(h, jobid, path, flags)
        self.future.then(self._callback)

    def _callback(self, future: Any) -> None:
        try:
            entry = future.get_event()
        except OSError as exc:
            self.ended = True
            self.on_end(self, exc)
            return
        if entry is None:
            self.ended = True
            self.on_end(self, None)
            return
        self.produced = True
        self.on_entry(entry)

    def cancel(self) -> None:
        if not self.ended:
            self.future.cancel()


class JobFollower:
    """Follow one job to its end (see the module docstring)."""

    def __init__(self, h: Any, jobid: Any, prog: str = "job", *, output: bool = True,
                 show_events: bool = False, show_exec: bool = False, label_io: bool = False,
                 quiet: bool = False, tag: bool = False, label: str | None = None,
                 on_done: Callable[["JobFollower"], None] | None = None,
                 on_event: Callable[["JobFollower", Any], None] | None = None,
                 wait_event: str | None = None, show_status: bool | None = False) -> None:
        self.h = h
        self.jobid = jobid
        self.label = label if label is not None else jobid.f58
        self.prog = prog
        self.output = output
        self.show_events = show_events
        self.show_exec = show_exec
        self.label_io = label_io
        self.quiet = quiet
        self.tag = tag
        self.on_done = on_done
        self.on_event = on_event
        #: stop following the main eventlog at this event (flux job attach -w)
        self.wait_event = wait_event
        self.exit_code = 1
        self.finished = False
        self.fatal_exception = False
        self.exception: Any = None
        self.done = False
        self.detached = False
        self.t0 = 0.0
        self._main_done = False
        self._exec: _Stream | None = None
        self._out: _Stream | None = None
        self._header: dict[str, Any] = {}
        self._reason = ""
        self.stdin: StdinForwarder | None = None
        #: with show_exec, job events (timestamp, line) held until the exec log has shown
        #: what came before them: the two logs are watched apart, and are printed merged
        self._held: list[tuple[float, str]] = []
        self._hold_timer: Any = None
        #: the status line: shown now (True), only after a pending job's first 2 s
        #: (None: when all our stdio is a terminal, as flux-job(1) has it), or never
        self._statusline = False
        self._status_timer: Any = None
        self._last_event: str | None = None
        self._prologs = 0
        if show_status is not False and not os.environ.get("FLUX_ATTACH_NONINTERACTIVE"):
            if show_status or (not show_events and all(os.isatty(fd) for fd in (0, 1, 2))):
                self._statusline = bool(show_status)
                self._status_timer = h.get_reactor().add_timer(
                    time.monotonic() + (0.0 if show_status else _STATUS_DELAY),
                    self._status_tick)
        self._main = _Stream(h, int(jobid), "eventlog", 0, self._on_main, self._on_main_end)

    # -- helpers -------------------------------------------------------------
    def _warn(self, text: str) -> None:
        tag = f"{self.jobid.f58}: " if self.tag else ""
        warn(self.prog, f"{tag}{text}")

    def _stamp(self, timestamp: float) -> str:
        return f"{timestamp - self.t0:.3f}s"

    def _print_event(self, prefix: str, entry: Any) -> None:
        context = f" {entry.context_string}" if entry.context else ""
        self._say(entry.timestamp,
                  f"{self._stamp(entry.timestamp)}: {prefix}.{entry.name}{context}\n",
                  main=prefix == "job")

    def _say(self, timestamp: float, line: str, main: bool) -> None:
        """Print LINE (stderr) in timestamp order across the job and exec logs."""
        if main:
            if self._exec is not None and self.show_exec and not self._exec.ended:
                self._held.append((timestamp, line))
                if self._hold_timer is None:
                    # the exec log may say nothing more for a while: do not hold forever
                    self._hold_timer = self.h.get_reactor().add_timer(
                        time.monotonic() + _HOLD_SECONDS, self._release_all)
                return
        else:
            self._release(timestamp)
        sys.stderr.write(line)

    def _release(self, upto: float | None = None) -> None:
        held = self._held
        n = 0
        while n < len(held) and (upto is None or held[n][0] <= upto):
            sys.stderr.write(held[n][1])
            n += 1
        del held[:n]
        if not held and self._hold_timer is not None:
            self.h.get_reactor().cancel_timer(self._hold_timer)
            self._hold_timer = None

    def _release_all(self) -> None:
        self._hold_timer = None
        self._release()

    # -- the status line -----------------------------------------------------
    def _status_tick(self) -> None:
        """The status line's timer: show it, then update its clock every second."""
        self._statusline = True
        self._status_timer = self.h.get_reactor().add_timer(time.monotonic() + 1.0,
                                                            self._status_tick)
        if self._last_event is not None:
            self._notify(self._last_event, time.time(), recount=False)

    def _stop_status(self) -> None:
        if self._status_timer is not None:
            self.h.get_reactor().cancel_timer(self._status_timer)
            self._status_timer = None

    def _notify(self, name: str, timestamp: float, recount: bool = True) -> None:
        """Update the status line for job event NAME (flux-core's wording and layout)."""
        text = _STATUS_TEXT.get(name)
        if name == "prolog-start" and recount:
            self._prologs += 1
        elif name == "prolog-finish":
            if recount:
                self._prologs -= 1
            if self._prologs > 0:
                text = _STATUS_TEXT["prolog-start"]      # other prologs still running
        if text is not None and self._statusline and not self.fatal_exception:
            dt = max(int(timestamp - self.t0), 0)
            try:
                width = os.get_terminal_size(0).columns
            except OSError:
                width = 80
            width = max(width - 10 - len(self.label) - 10, 0)
            sys.stderr.write(f"\rflux-job: {self.label} {text:<{width}} "
                             f"{dt // 3600:02d}:{dt // 60 % 60:02d}:{dt % 60:02d}\r")
            sys.stderr.flush()
        if name in ("start", "clean"):
            if self._statusline:
                sys.stderr.write("\n")
                self._statusline = False
            self._stop_status()
        self._last_event = name

    def _check_done(self) -> None:
        if self._exec is None or self._exec.ended:
            self._release()
        if self.done or not self._main_done:
            return
        # job-info ends every guest log watch once the job is inactive, so waiting
        # for them cannot hang, and output still on its way is not lost
        for stream in (self._exec, self._out):
            if stream is not None and not stream.ended:
                return
        self.done = True
        self._stop_status()
        if self.stdin is not None:
            self.stdin.stop()
        if self.fatal_exception and self.exit_code == 0:
            self.exit_code = 1
        sys.stdout.flush()
        # after the output, so the reason is the last thing said (as Flux does)
        if self._reason and not self.quiet:
            self._warn(self._reason)
        if self.on_done is not None:
            self.on_done(self)

    # -- the main eventlog -----------------------------------------------------
    def _on_main(self, entry: Any) -> None:
        if self._main_done:
            return              # sent before our cancel of the watch at the wait event
        if not self.t0:
            self.t0 = entry.timestamp
        name = entry.name
        if name == "exception":
            ctx = entry.context
            severity = ctx.get("severity", 0)
            self._say(entry.timestamp,
                      f"{self._stamp(entry.timestamp)}: job.exception {self.jobid.f58} "
                      f"type={ctx.get('type')} severity={severity}"
                      f"{' ' + str(ctx['note']) if ctx.get('note') else ''}\n",
                      main=True)
            if severity == 0 and not self.fatal_exception:
                self.fatal_exception = True
                self.exception = ctx
        elif (name == "start" or name == "alloc" and self.show_exec) and self.output \
                and self._exec is None:
            # -vvv: from alloc, so exec's first events are not shown after the job's start
            self._exec = _Stream(self.h, int(self.jobid), "guest.exec.eventlog", WAITCREATE,
                                 self._on_exec, self._on_aux_end)
        elif name == "finish":
            self.finished = True
            self.exit_code, self._reason = exit_code_of(int(entry.context.get("status", 0)))
        if self.show_events and name != "exception":
            self._print_event("job", entry)
        if self.on_event is not None:
            self.on_event(self, entry)
        if self._status_timer is not None or self._statusline:
            self._notify(name, entry.timestamp)
        if name == self.wait_event and not self._main_done:
            # flux-job(1) -w: detach from the eventlog here (the output already
            # being followed is followed to its end); the exit code is the job's
            # only if finish came by then, else 1, as flux-core's attach has it
            self._main_done = True
            self._main.cancel()
            self._check_done()

    def _on_main_end(self, stream: _Stream, exc: OSError | None) -> None:
        if self._main_done:
            return              # we stopped following it at the wait event
        if exc is not None:
            if exc.errno == errno.ENOENT:
                die(self.prog, f"Failed to attach to {self.label}: No such job")
            if exc.errno == errno.EPERM:
                die(self.prog, f"Failed to attach to {self.label}: that is not your job")
            die(self.prog, f"{self.label}: {rpc_error_text(exc)}")
        self._main_done = True
        self._check_done()

    # -- exec eventlog and output ---------------------------------------------
    def _close_other_stdin(self, context: dict[str, Any]) -> None:
        """Stdin for some task ranks only (``flux job attach -i``, ``flux run
        --input=RANKS``): "the standard input for tasks not in RANKS will be closed"
        (flux-job(1)) once the job's tasks are known; ranks outside it are dropped."""
        from flux.idset import IDset

        stdin = self.stdin
        ntasks = context.get("task-count")
        if not isinstance(ntasks, int):
            ntasks = _taskmap_size(context.get("taskmap"))
        if ntasks is None or stdin is None:
            return
        everyone = set(range(ntasks))
        wanted = set(IDset(stdin.ranks).expand())
        if not wanted <= everyone:
            adjusted = IDset(sorted(wanted & everyone)).encode() if wanted & everyone else ""
            warn(self.prog, f"warning: adjusting --stdin-ranks from {stdin.ranks} to "
                            f"{adjusted}")
            stdin.ranks = adjusted
        others = everyone - wanted
        if others:
            stdin._queue({"stream": "stdin", "rank": IDset(sorted(others)).encode(),
                          "eof": True})

    def _start_output(self) -> None:
        if self._out is None:
            self._out = _Stream(self.h, int(self.jobid), "guest.output", WAITCREATE,
                                self._on_output, self._on_aux_end)

    def _on_exec(self, entry: Any) -> None:
        if entry.name == "init" and self.stdin is not None:
            self.stdin.start()          # the job's guest namespace exists from here
        if entry.name == "shell.start" and self.stdin is not None \
                and self.stdin.ranks != "all":
            self._close_other_stdin(entry.context or {})
        if entry.name in ("shell.init", "complete"):
            self._start_output()
        if entry.name == "log" and not self.quiet:
            ctx = entry.context
            self._say(entry.timestamp,
                      f"{self._stamp(entry.timestamp)}: {ctx.get('component', '')}"
                      f"[{ctx.get('rank', '')}]: {ctx.get('stream', '')}: "
                      f"{ctx.get('data', '')}", main=False)
        elif self.show_exec:
            self._print_event("exec", entry)

    def _on_aux_end(self, stream: _Stream, exc: OSError | None) -> None:
        if exc is not None and exc.errno not in (errno.ENOENT, errno.ENODATA) and not self.quiet:
            self._warn(f"{stream.path}: {rpc_error_text(exc)}")
        self._check_done()

    def _on_output(self, entry: Any) -> None:
        ctx = entry.context
        if entry.name == "header":
            self._header = dict(ctx.get("encoding") or {})
        elif entry.name == "data":
            self._write_data(ctx)
        elif entry.name == "redirect" and not self.quiet:
            where = f" to {ctx['path']}" if ctx.get("path") else ""
            sys.stderr.write(f"{ctx.get('rank', '')}: {ctx.get('stream', '')} redirected{where}\n")
        elif entry.name == "log" and not self.quiet:
            labels = ["FATAL", "FATAL", "FATAL", "ERROR", " WARN", "", "DEBUG", "TRACE"]
            level = ctx.get("level", 6)
            label = labels[level] if isinstance(level, int) and 0 <= level < 8 else ""
            rank = f"[{ctx['rank']}]" if "rank" in ctx else ""
            parts = [f"{self._stamp(entry.timestamp)}: flux-shell{rank}"]
            if label:
                parts.append(label)
            if ctx.get("component"):
                parts.append(str(ctx["component"]))
            parts.append(str(ctx.get("message", "")))
            sys.stderr.write(": ".join(parts) + "\n")

    def _write_data(self, ctx: dict[str, Any]) -> None:
        stream, raw = decode_output(ctx, self._header)
        if not raw:
            return
        if self.label_io:
            raw = label_lines(raw, str(ctx.get("rank", "")))
        out = sys.stdout if stream == "stdout" else sys.stderr
        out.flush()
        out.buffer.write(raw)
        out.buffer.flush()


def decode_output(context: dict[str, Any], encodings: dict[str, Any]) -> tuple[str, bytes]:
    """(stream, bytes) of an RFC 24 ``data`` event.

    The event's ``encoding`` wins over the header's for its stream;
    ``base64`` data is decoded, anything else is UTF-8 text; ``repeat``
    repeats the data that many times.
    """
    stream = str(context.get("stream", "stdout"))
    data = context.get("data")
    if not data:
        return stream, b""
    encoding = context.get("encoding") or encodings.get(stream, "UTF-8")
    raw = base64.b64decode(data) if str(encoding).lower() == "base64" else str(data).encode()
    return stream, raw * int(context.get("repeat", 1) or 1)


def label_lines(raw: bytes, rank: str) -> bytes:
    """Prefix every line of RAW with ``RANK: `` (``--label-io``)."""
    prefix = rank.encode() + b": "
    return b"".join(prefix + line for line in raw.splitlines(keepends=True))


def _taskmap_size(taskmap: Any) -> int | None:
    """The number of tasks in an RFC 34 task map (None if it is not one)."""
    try:
        return sum(int(nnodes) * int(ppn) * int(repeat)
                   for _nodeid, nnodes, ppn, repeat in taskmap["map"])
    except (KeyError, TypeError, ValueError):
        return None


class StdinForwarder:
    """Copies our stdin into the job's RFC 24 ``guest.input`` log, in order.

    Reading starts once the job's guest namespace exists (its exec log's
    ``init``); what arrives is appended as ``data`` events for the task
    ranks asked for (``all`` by default), and our EOF as ``eof``.  One
    commit is in flight at a time; data read meanwhile goes in the next.
    """

    def __init__(self, h: Any, jobid: int, ranks: str = "all", fd: int = 0) -> None:
        self.h = h
        self.jobid = int(jobid)
        self.announced = False
        self.namespace = f"job-{int(jobid)}"
        self.ranks = ranks
        self.fd = fd
        self.watcher: Any = None
        self.pending: list[dict[str, Any]] = []
        self.inflight = False
        self.started = False
        self.stopped = False
        self.pump = False

    def start(self) -> None:
        if self.started or self.stopped:
            return
        self.started = True
        try:
            os.fstat(self.fd)
        except OSError:
            self._queue({"stream": "stdin", "rank": self.ranks, "eof": True})
            return
        from flux.constants import FLUX_POLLIN

        watcher = self.h.fd_watcher_create(self.fd, self._readable, FLUX_POLLIN)
        try:
            watcher.start()
        except PermissionError:
            # a regular file or /dev/null cannot be polled: read it a chunk per commit
            self.pump = True
            self._readable()
            return
        self.watcher = watcher

    def _readable(self, *_args: Any) -> None:
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        from flux.util.iodata import encode_io

        if not data:
            self._stop_reading()
            self.pump = False
        self._queue(encode_io("stdin", self.ranks, data, eof=not data))

    def _queue(self, ctx: dict[str, Any]) -> None:
        self.pending.append({"timestamp": time.time(), "name": "data", "context": ctx})
        self._commit()

    def _commit(self) -> None:
        if self.inflight or not self.pending or self.stopped:
            return
        import flux.jsonc as jsonc  # (not orjson: its import costs a short flux run ~5 ms)

        data = "".join(jsonc.dumps(e) + "\n" for e in self.pending).encode()
        self.pending = []
        self.inflight = True
        op = {"key": "input", "flags": 32,  # FLUX_KVS_APPEND
              "dirent": {"ver": 1, "type": "val", "data": base64.b64encode(data).decode()}}
        self.h.rpc("kvs.commit", {"namespace": self.namespace, "flags": 0,
                                  "ops": [op]}).then(self._committed)

    def _committed(self, future: Any) -> None:
        self.inflight = False
        try:
            future.get()
        except OSError:
            self.stop()          # the job is over: its namespace is gone
            return
        if not self.announced:
            # the job's shells follow the input log only once told it is written
            self.announced = True
            from flux.constants import FLUX_RPC_NORESPONSE

            self.h.rpc("job-exec.input", {"id": self.jobid}, nodeid=0,
                       flags=FLUX_RPC_NORESPONSE)
        if self.pump and not self.pending and not self.stopped:
            self._readable()
            return
        self._commit()

    def _stop_reading(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def stop(self) -> None:
        self.stopped = True
        self._stop_reading()


class _Interrupts:
    """ctrl-C and ctrl-Z while following a job, as Flux's attach handles them.

    ctrl-C: a warning; a second within 2 s cancels the job.  ctrl-Z within
    2 s of a ctrl-C detaches (we exit, the job runs on); otherwise a
    ctrl-Z warns and a second within 2 s suspends the job (SIGTSTP to its
    tasks; ``flux job kill -s CONT`` resumes it).
    """

    def __init__(self, h: Any, jobid: Any, prog: str, on_detach: Callable[[], None]) -> None:
        self.h = h
        self.jobid = jobid
        self.prog = prog
        self.on_detach = on_detach
        self.last_int = -10.0
        self.last_tstp = -10.0

    def sigint(self, *_args: Any) -> None:
        now = time.monotonic()
        if now - self.last_int > 2.0:
            self.last_int = now
            warn(self.prog, "one more ctrl-C within 2s to cancel or ctrl-Z to detach")
            return
        from flux.job.kill import cancel_async

        cancel_async(self.h, self.jobid, "interrupted by ctrl-C")

    def sigtstp(self, *_args: Any) -> None:
        now = time.monotonic()
        if now - self.last_int <= 2.0:
            warn(self.prog, f"detaching from {self.jobid.f58}...")
            self.on_detach()
            return
        if now - self.last_tstp > 2.0:
            self.last_tstp = now
            warn(self.prog, "one more ctrl-Z within 2s to suspend the job")
            return
        from flux.job.kill import kill_async

        kill_async(self.h, self.jobid, signal.SIGTSTP)
        warn(self.prog, f"job {self.jobid.f58} suspended "
                        f"(resume it with: flux job kill -s CONT {self.jobid.f58})")


def follow_jobs(h: Any, followers_factory: Callable[[Callable[[JobFollower], None]],
                                                    list[JobFollower]],
                forward_signals: Any = None, prog: str = "job") -> list[JobFollower]:
    """Run the reactor until every follower the factory makes is done."""
    pending: set[int] = set()
    followers: list[JobFollower] = []

    def on_done(follower: JobFollower) -> None:
        pending.discard(id(follower))
        if not pending:
            h.reactor_stop()

    followers = followers_factory(on_done)
    pending.update(id(f) for f in followers if not f.done)
    if not pending:
        return followers
    watchers = []
    if forward_signals is not None:
        def detach() -> None:
            for follower in followers:
                follower.detached = True
            h.reactor_stop()

        interrupts = _Interrupts(h, forward_signals, prog, detach)
        watchers.append(h.signal_watcher_create(signal.SIGINT, interrupts.sigint))
        watchers.append(h.signal_watcher_create(signal.SIGTSTP, interrupts.sigtstp))

        def forward(handle: Any, watcher: Any, signum: int, args: Any) -> None:
            from flux.job.kill import kill_async

            kill_async(h, forward_signals, signum).then(refused, signum)

        def refused(future: Any, signum: int) -> None:
            # a job with no tasks yet (pending) cannot get the signal: SIGTERM and
            # SIGHUP, which end the command, then cancel it rather than be lost
            # (timeout(1), a closed terminal, a batch wrapper)
            try:
                future.get()
            except OSError:
                if signum in (signal.SIGTERM, signal.SIGHUP):
                    from flux.job.kill import cancel_async

                    name = signal.Signals(signum).name
                    cancel_async(h, forward_signals, f"interrupted by {name}")

        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            watchers.append(h.signal_watcher_create(signum, forward))
    for watcher in watchers:
        watcher.start()
    try:
        h.reactor_run()
    finally:
        for watcher in watchers:
            watcher.stop()
    return followers


def attach(h: Any, jobid: Any, prog: str = "job", *, show_events: bool = False,
           show_exec: bool = False, label_io: bool = False, quiet: bool = False,
           read_only: bool = False, label: str | None = None, stdin: bool = True,
           stdin_ranks: str = "all", wait_event: str | None = None,
           show_status: bool | None = None) -> int:
    """Follow JOBID to its end (its main eventlog only to WAIT_EVENT, if given); unless
    READ_ONLY, forward signals and (with STDIN) our stdin to the job.  Its exit code
    (0 if we detached; 1 if we stopped at WAIT_EVENT before ``finish``)."""
    def make(on_done: Callable[[JobFollower], None]) -> list[JobFollower]:
        follower = JobFollower(h, jobid, prog, show_events=show_events, show_exec=show_exec,
                               label_io=label_io, quiet=quiet, label=label, on_done=on_done,
                               wait_event=wait_event, show_status=show_status)
        if stdin and not read_only:
            follower.stdin = StdinForwarder(h, int(jobid), stdin_ranks)
        return [follower]

    followers = follow_jobs(h, make, None if read_only else jobid, prog)
    if followers[0].detached:
        return 0
    return followers[0].exit_code
