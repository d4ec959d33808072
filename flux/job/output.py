"""flux.job.output: read a job's standard output, error and shell log (RFC 24).

A job's output is the RFC 24 eventlog ``guest.output`` in its KVS
directory: a ``header`` (default encoding and number of streams), ``data``
events ``{stream, rank, data?, encoding?, repeat?, eof?}``, ``redirect``
events (output sent to a file instead) and the shell's ``log`` events.
It is read through ``job-info.eventlog-watch`` as ``event_watch`` reads
any job eventlog; that service waits for ``guest.*`` logs to appear and
ends the watch with the job, so every read here ends.

- ``job_output`` collects everything into ``JobOutput(stdout, stderr, log)``;
- ``output_event_watch[_async]`` yields the decoded events,
  ``output_watch[_async]`` ``(stream, text)`` chunks and
  ``output_watch_lines[_async]`` ``(stream, line)`` lines, where stream
  is ``stdout``, ``stderr`` or ``log``.

Unless ``nowait``, the watchers follow the main eventlog as well: the
output log is opened at the job's ``start`` event, the job's exceptions
are reported (on stderr) until its ``finish``, and a job that ends without
starting fails the watch with EIO ("never started").  Shell log messages
at or below ``log_stderr_level`` go to stderr, the others to ``log``.
"""
from __future__ import annotations

import base64
import binascii
import errno
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from flux.eventlog import EventLogEvent
from flux.future import Future
from flux.idset import IDset
from flux.job.event import JobEventWatchFuture, event_wait, event_watch
from flux.job.JobID import JobID

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["LOG_QUIET", "LOG_FATAL", "LOG_ERROR", "LOG_WARN", "LOG_NOTICE", "LOG_DEBUG",
           "LOG_TRACE", "Taskset", "OutputEvent", "LogEvent", "OutputHeaderEvent",
           "RedirectEvent", "JobExceptionEvent", "JobOutput", "JobOutputEventWatch",
           "JobOutputWatch", "JobOutputWatchLines", "job_output", "output_event_watch",
           "output_event_watch_async", "output_watch", "output_watch_async",
           "output_watch_lines", "output_watch_lines_async", "parse_output_event"]

# Log levels of the job shell (syslog numbering), for log_stderr_level.
LOG_QUIET = -1
LOG_FATAL = 0
LOG_ERROR = 3
LOG_WARN = 4
LOG_NOTICE = 5
LOG_DEBUG = 6
LOG_TRACE = 7

# levels 0-2 are all fatal to the shell; NOTICE has no label
_LEVEL_LABELS = ("FATAL", "FATAL", "FATAL", "ERROR", " WARN", "", "DEBUG", "TRACE")


class Taskset:
    """A set of task ranks, or all of them (``"all"`` or ``"*"``).

    Built from an idset string, an int, an IDset, an iterable of ints or
    another Taskset; ValueError for anything else that does not parse.
    """

    __slots__ = ("all", "ids")

    def __init__(self, tasks: "str | int | IDset | Taskset | Iterable[int]") -> None:
        self.all = False
        self.ids: IDset | None = None
        if isinstance(tasks, Taskset):
            self.all = tasks.all
            self.ids = None if tasks.ids is None else tasks.ids.copy()
        elif isinstance(tasks, str) and tasks.strip() in ("all", "*"):
            self.all = True
        else:
            try:
                self.ids = IDset(tasks)
            except TypeError as exc:
                raise ValueError(f"invalid task set {tasks!r}: {exc}") from None

    def intersect(self, tasks: "str | int | IDset | Taskset | Iterable[int]") -> "Taskset":
        """The tasks in both sets."""
        other = tasks if isinstance(tasks, Taskset) else Taskset(tasks)
        if self.all:
            return Taskset(other)
        if other.all:
            return Taskset(self)
        assert self.ids is not None and other.ids is not None
        return Taskset(self.ids.intersect(other.ids))

    def __bool__(self) -> bool:
        return self.all or bool(self.ids is not None and len(self.ids))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Taskset):
            return NotImplemented
        return self.all == other.all and (self.all or self.ids == other.ids)

    def __hash__(self) -> int:
        return hash(str(self))

    def __str__(self) -> str:
        return "all" if self.all else str(self.ids)

    def __repr__(self) -> str:
        return f"Taskset({str(self)!r})"


def _require(event: EventLogEvent, key: str) -> Any:
    try:
        return event.context[key]
    except KeyError:
        raise ValueError(f"output event '{event.name}' has no '{key}' key") from None


def _ranks(event: EventLogEvent, value: Any) -> Taskset:
    try:
        return Taskset(value)
    except ValueError as exc:
        raise ValueError(f"output event '{event.name}': bad rank {value!r}: {exc}") from None


def _label(text: str, rank: Taskset) -> str:
    # keep line ends, so a partial line stays partial once labelled
    return "".join(f"{rank}: {line}" for line in text.splitlines(keepends=True))


def _decode_data(event: EventLogEvent, encodings: Mapping[str, Any]) -> str | None:
    ctx = event.context
    if "data" not in ctx:
        return None
    data = ctx["data"]
    if not isinstance(data, str):
        raise ValueError(f"output event 'data': data must be a string, not {data!r}")
    # the event's own encoding wins; the header names each stream's default
    encoding = ctx.get("encoding") or encodings.get(str(ctx.get("stream")))
    if isinstance(encoding, str) and encoding.lower() == "base64":
        try:
            raw = base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"output event 'data': bad base64 data: {exc}") from None
        # surrogateescape keeps bytes that are not UTF-8 (os.fsencode gets them back)
        data = raw.decode("utf-8", errors="surrogateescape")
    repeat = ctx.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
        raise ValueError(f"output event 'data': bad repeat {repeat!r}")
    return data * repeat


class OutputEvent(EventLogEvent):
    """An RFC 24 ``data`` event, decoded.

    ``stream`` ("stdout", "stderr"), ``rank`` (Taskset of the tasks that
    wrote it), ``eof`` (the stream ends here for those tasks), ``data``
    (the text after base64 decoding and ``repeat``, each line prefixed
    ``RANK: `` with ``labelio``; None if the event carries no data),
    ``text`` (the same, never labelled).
    ``encodings`` are the header's per-stream defaults.
    """

    def __init__(self, entry: Any, labelio: bool = False,
                 encodings: Mapping[str, Any] | None = None) -> None:
        super().__init__(entry)
        if self.name != "data":
            raise ValueError(f"event {self.name} is not a data event")
        self.stream: str = str(_require(self, "stream"))
        self.rank = _ranks(self, _require(self, "rank"))
        self.eof = self.context.get("eof") is True
        self.text = _decode_data(self, encodings or {})
        self.data = self.text if self.text is None or not labelio \
            else _label(self.text, self.rank)

    def render(self) -> str | None:
        """The (possibly labelled) data."""
        return self.data


class LogEvent(EventLogEvent):
    """An RFC 24 ``log`` event of the job shell.

    ``level`` (0-7), ``levelstr``, ``rank`` (Taskset or None when the
    event has no rank), ``message``, ``component``, ``file``, ``line``.
    """

    def __init__(self, entry: Any) -> None:
        super().__init__(entry)
        if self.name != "log":
            raise ValueError(f"event {self.name} is not a log event")
        level = _require(self, "level")
        if isinstance(level, bool) or not isinstance(level, int):
            raise ValueError(f"output event 'log': bad level {level!r}")
        self.level: int = level
        self.message = str(_require(self, "message"))
        rank = self.context.get("rank")
        self.rank = None if rank is None else _ranks(self, rank)
        self.component = self.context.get("component")
        self.file = self.context.get("file")
        self.line = self.context.get("line", -1)

    @property
    def levelstr(self) -> str:
        return _LEVEL_LABELS[self.level] if 0 <= self.level < len(_LEVEL_LABELS) else ""

    def render(self, include_file_and_line: bool = False) -> str:
        """``flux-shell[RANK]: LEVEL: COMPONENT: MESSAGE``, empty parts left out."""
        parts = ["flux-shell" if self.rank is None else f"flux-shell[{self.rank}]"]
        if self.levelstr:
            parts.append(self.levelstr)
        if self.component:
            parts.append(str(self.component))
        if include_file_and_line and self.file:
            parts.append(f"{self.file}:{self.line}")
        return ": ".join(parts + [self.message])


class OutputHeaderEvent(EventLogEvent):
    """The RFC 24 ``header``: ``version``, ``encoding`` and ``count`` per stream, ``options``."""

    def __init__(self, entry: Any) -> None:
        super().__init__(entry)
        if self.name != "header":
            raise ValueError(f"event {self.name} is not a header event")
        ctx = self.context
        self.version = ctx.get("version")
        self.encoding: dict[str, Any] = dict(ctx.get("encoding") or {})
        self.count: dict[str, Any] = dict(ctx.get("count") or {})
        self.options: dict[str, Any] = dict(ctx.get("options") or {})
        self.stdout_count = self.count.get("stdout")
        self.stderr_count = self.count.get("stderr")
        self.stdout_encoding = self.encoding.get("stdout")
        self.stderr_encoding = self.encoding.get("stderr")


class RedirectEvent(EventLogEvent):
    """An RFC 24 ``redirect`` event: ``stream`` of ``rank`` goes to ``path`` instead."""

    def __init__(self, entry: Any) -> None:
        super().__init__(entry)
        if self.name != "redirect":
            raise ValueError(f"event {self.name} is not a redirect event")
        self.stream = str(_require(self, "stream"))
        self.rank = _ranks(self, _require(self, "rank"))
        self.path = self.context.get("path")

    def render(self) -> str:
        """``RANK: STREAM redirected to PATH``."""
        where = f" to {self.path}" if self.path else ""
        return f"{self.rank}: {self.stream} redirected{where}"


class JobExceptionEvent(EventLogEvent):
    """An ``exception`` event of the job's main eventlog: ``severity``, ``exc_type``, ``note``."""

    def __init__(self, entry: Any) -> None:
        super().__init__(entry)
        if self.name != "exception":
            raise ValueError(f"event {self.name} is not an exception event")
        self.severity = _require(self, "severity")
        self.exc_type = _require(self, "type")
        self.note = self.context.get("note", "")

    def render(self) -> str:
        """``job.exception: type=TYPE severity=N NOTE``."""
        text = f"job.exception: type={self.exc_type} severity={self.severity}"
        return f"{text} {self.note}" if self.note else text


class JobOutput(NamedTuple):
    """A job's output: ``stdout`` and ``stderr`` of its tasks, and shell ``log`` messages."""

    stdout: str
    stderr: str
    log: str


def parse_output_event(entry: Any, labelio: bool = False,
                       encodings: Mapping[str, Any] | None = None) -> EventLogEvent:
    """The typed event for one output eventlog entry (dict, JSON line or EventLogEvent).

    ``data`` -> OutputEvent, ``log`` -> LogEvent, ``header`` ->
    OutputHeaderEvent, ``redirect`` -> RedirectEvent, ``exception`` ->
    JobExceptionEvent; any other name stays a plain EventLogEvent, so a
    newer writer's events do not break readers.  ValueError names what is
    wrong with a malformed entry.
    """
    event = entry if isinstance(entry, EventLogEvent) else EventLogEvent(entry)
    name = event.name
    if name == "data":
        return OutputEvent(event, labelio, encodings)
    if name == "log":
        return LogEvent(event)
    if name == "header":
        return OutputHeaderEvent(event)
    if name == "redirect":
        return RedirectEvent(event)
    if name == "exception":
        return JobExceptionEvent(event)
    return event


class _Decoder:
    """Decodes one output log in order: data events need the header's encodings."""

    __slots__ = ("labelio", "encodings")

    def __init__(self, labelio: bool) -> None:
        self.labelio = labelio
        self.encodings: dict[str, Any] = {}

    def decode(self, entry: Any) -> EventLogEvent:
        """The typed event; OSError(EPROTO) names what is wrong with a malformed one."""
        try:
            event = parse_output_event(entry, self.labelio, self.encodings)
        except (ValueError, TypeError) as exc:
            raise OSError(errno.EPROTO, f"bad output event: {exc}") from None
        if isinstance(event, OutputHeaderEvent):
            self.encodings = event.encoding
        return event


def _log_stream(event: LogEvent, log_stderr_level: int) -> str:
    return "stderr" if event.level <= log_stderr_level else "log"


class _Collector:
    """Gathers ``job_output``'s three strings from decoded output events."""

    def __init__(self, tasks: Taskset, log_stderr_level: int) -> None:
        self.tasks = tasks
        self.log_stderr_level = log_stderr_level
        self.parts: dict[str, list[str]] = {"stdout": [], "stderr": [], "log": []}

    def add(self, event: EventLogEvent) -> None:
        if isinstance(event, OutputEvent):
            if event.data and event.stream in ("stdout", "stderr") \
                    and event.rank.intersect(self.tasks):
                self.parts[event.stream].append(event.data)
        elif isinstance(event, LogEvent):
            self.parts[_log_stream(event, self.log_stderr_level)].append(event.render() + "\n")
        # a redirect means that output is in a file, not in the log: nothing to add

    def result(self) -> JobOutput:
        return JobOutput(*("".join(self.parts[k]) for k in ("stdout", "stderr", "log")))


def _parse_output_log(text: str, tasks: Taskset, labelio: bool,
                      log_stderr_level: int) -> JobOutput:
    decoder = _Decoder(labelio)
    collector = _Collector(tasks, log_stderr_level)
    for line in text.splitlines():
        if line.strip():
            collector.add(decoder.decode(line))
    return collector.result()


def job_output(flux_handle: "Flux", jobid: Any, tasks: Any = "*", labelio: bool = False,
               nowait: bool = False, log_stderr_level: int = LOG_TRACE) -> JobOutput:
    """A job's output as ``JobOutput(stdout, stderr, log)``.

    Waits until the job has started and its output has ended (eof on
    every stream, or the job is inactive).  ``tasks`` (idset or "*")
    keeps only those tasks' output; ``labelio`` prefixes each line with
    its task rank.  With ``nowait``, returns what is there now and raises
    FileNotFoundError if there is no output yet.  FileNotFoundError for an
    unknown job; JobException if the job had a fatal exception before it
    started; OSError(EPROTO) for a malformed output log.
    """
    jobid = JobID(jobid)
    taskset = Taskset(tasks)
    if nowait:
        payload = flux_handle.rpc("job-info.lookup", {"id": int(jobid), "keys": ["guest.output"],
                                                      "flags": 0}).get()
        return _parse_output_log(payload["guest.output"], taskset, labelio, log_stderr_level)
    # the output log exists only once the job has started
    event_wait(flux_handle, jobid, "start")
    decoder = _Decoder(labelio)
    collector = _Collector(taskset, log_stderr_level)
    for event in event_watch(flux_handle, jobid, "guest.output"):
        collector.add(decoder.decode(event))
    return collector.result()


# -- watchers ---------------------------------------------------------------------------------

class _OutputFollower(Future):
    """Follows a job's output log (and, unless nowait, its main eventlog) into results.

    The two eventlog watches are RPC futures.  ``_pump`` moves whatever
    they hold into this future without blocking; a blocking ``get()``
    reads the handle until one of them has something (``_wait``), and
    with ``then()`` their own continuations pump from the reactor.
    Subclasses turn events into results (``_emit``) and mark the end
    (``_emit_end``, with the value ``_END``).
    """

    _END: Any = None

    def __init__(self, flux_handle: "Flux", jobid: Any, labelio: bool = False,
                 nowait: bool = False) -> None:
        super().__init__(flux_handle)
        self.jobid = JobID(jobid)
        self.labelio = labelio
        self.nowait = nowait
        #: the job's ``start`` event has been seen (the output log was opened)
        self.started = False
        #: the job's ``finish`` event has been seen (no more exceptions are reported)
        self.finished = False
        #: the output log has ended
        self.closed = False
        self._decoder = _Decoder(labelio)
        self._ended = False
        self._async = False
        self._main: JobEventWatchFuture | None = None
        self._output: JobEventWatchFuture | None = None
        if nowait:
            self._output = self._open("guest.output")
        else:
            self._main = self._open("eventlog")

    # -- what subclasses provide ---------------------------------------------------------
    def _emit(self, event: EventLogEvent) -> None:
        raise NotImplementedError

    def _emit_end(self) -> None:
        self.fulfill(self._END)

    # -- plumbing ------------------------------------------------------------------------
    def _open(self, path: str) -> JobEventWatchFuture:
        handle = self.get_flux()
        assert handle is not None
        watch = JobEventWatchFuture(handle, int(self.jobid), path)
        if self._async:
            watch.then(self._on_source)
        return watch

    def _sources(self) -> list[JobEventWatchFuture]:
        return [w for w in (self._main, self._output) if w is not None]

    def _is_final(self, result: tuple[Any, int, str | None]) -> bool:
        return result[1] != 0 or result[0] is self._END

    def _close_sources(self) -> None:
        for watch in self._sources():
            watch.cancel(stop=True)
        self._main = self._output = None

    def _fail(self, errnum: int, errstr: str | None) -> None:
        self._ended = True
        self._close_sources()
        self.fulfill_error(errnum or errno.EIO, errstr)

    def _end(self) -> None:
        self._ended = True
        self._close_sources()
        self._emit_end()

    def _pump(self) -> None:
        """Turn every event the watches hold now into results; never blocks."""
        while not self._ended:
            main, output = self._main, self._output
            if main is not None and main.is_ready():
                self._main_event(main)
            elif output is not None and output.is_ready():
                self._output_event(output)
            else:
                return

    def _main_event(self, watch: JobEventWatchFuture) -> None:
        try:
            event = watch.get_event()
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                self._fail(errno.ENOENT, f"job {self.jobid} not found")
            else:
                self._fail(exc.errno or errno.EIO, exc.strerror)
            return
        if event is None:
            self._main = None
            watch.stop()
            if not self.started:
                # no output log can exist; EIO, since ENODATA would read as a normal end
                self._fail(errno.EIO, f"job {self.jobid} never started")
                return
            self.finished = True
            if self.closed:
                self._end()
            return
        if event.name == "exception":
            self._emit_decoded(event)
        elif event.name == "start" and not self.started:
            self.started = True
            self._output = self._open("guest.output")
        elif event.name == "finish":
            # exceptions after finish are not reported: stop following the job
            self.finished = True
            self._main = None
            watch.cancel(stop=True)
            if self.closed:
                self._end()

    def _output_event(self, watch: JobEventWatchFuture) -> None:
        try:
            event = watch.get_event()
        except OSError as exc:
            self._fail(exc.errno or errno.EIO, exc.strerror)
            return
        if event is None:
            self._output = None
            watch.stop()
            self.closed = True
            # unless nowait, wait for finish, so exceptions before it are reported
            if self.nowait or self.finished:
                self._end()
            return
        self._emit_decoded(event)

    def _emit_decoded(self, entry: EventLogEvent) -> None:
        try:
            event = self._decoder.decode(entry)
        except OSError as exc:
            self._fail(exc.errno or errno.EPROTO, f"job {self.jobid}: {exc.strerror}")
            return
        self._emit(event)

    # -- Future ----------------------------------------------------------------------------
    def is_ready(self) -> bool:
        self._pump()
        return super().is_ready()

    def _wait(self, timeout: float | None) -> None:
        handle = self.get_flux()
        assert handle is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        self._pump()
        while not self._results:
            sources = self._sources()
            if not sources:
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            if not handle._wait_until(lambda: any(w.is_ready() for w in sources), remaining):
                return
            self._pump()

    def then(self, callback: Callable[..., Any], *args: Any, timeout: float = -1.0,
             **kwargs: Any) -> "_OutputFollower":
        super().then(callback, *args, timeout=timeout, **kwargs)
        # from now on the watches are pumped from the reactor
        if not self._async:
            self._async = True
            for watch in self._sources():
                watch.then(self._on_source)
        self._pump()
        return self

    def _on_source(self, _watch: JobEventWatchFuture) -> None:
        self._pump()

    def cancel(self, stop: bool = False) -> None:
        """Stop following the job; with ``stop=True`` no more continuation calls either.

        Results already queued stay readable; no end marker is added.
        """
        self._ended = True
        self._close_sources()
        if stop:
            self.stop()

    def __del__(self) -> None:
        try:
            if not self._ended:
                self._close_sources()
        except Exception:  # noqa: BLE001 - the handle may already be gone
            pass


class JobOutputEventWatch(_OutputFollower):
    """Decoded output events of a job; see ``output_event_watch_async``."""

    def _emit(self, event: EventLogEvent) -> None:
        self.fulfill(event)

    def get_event(self, autoreset: bool = True) -> EventLogEvent | None:
        """The next event (blocking until there is one), or None once the output has ended.

        OSError if the watch failed (FileNotFoundError for an unknown job,
        EIO if the job never started).
        """
        event = self.get()
        if event is not None and autoreset:
            self.reset()
        return event


# the end marker of the (stream, text) watchers, compared by identity
_NO_OUTPUT: tuple[None, None] = (None, None)


class JobOutputWatch(_OutputFollower):
    """``(stream, text)`` chunks of a job's output; see ``output_watch_async``."""

    _END = _NO_OUTPUT

    def __init__(self, flux_handle: "Flux", jobid: Any, labelio: bool = False,
                 log_stderr_level: int = LOG_TRACE, nowait: bool = False) -> None:
        self.log_stderr_level = log_stderr_level
        super().__init__(flux_handle, jobid, labelio=labelio, nowait=nowait)

    def _emit(self, event: EventLogEvent) -> None:
        if isinstance(event, OutputEvent):
            if event.data:
                self._emit_data(event)
        elif isinstance(event, LogEvent):
            self._emit_text(_log_stream(event, self.log_stderr_level), event.render() + "\n")
        elif isinstance(event, (RedirectEvent, JobExceptionEvent)):
            self._emit_text("stderr", event.render() + "\n")

    def _emit_data(self, event: OutputEvent) -> None:
        assert event.data is not None
        self.fulfill((event.stream, event.data))

    def _emit_text(self, stream: str, text: str) -> None:
        self.fulfill((stream, text))

    def get_output(self) -> tuple[str | None, str | None]:
        """The next ``(stream, text)`` (blocking); ``(None, None)`` once the output has ended.

        ``stream`` is "stdout", "stderr" or "log".
        """
        result = self.get()
        if result is not _NO_OUTPUT:
            self.reset()
        return result


class JobOutputWatchLines(JobOutputWatch):
    """``(stream, line)`` lines of a job's output; see ``output_watch_lines_async``.

    A line is complete at its newline; an unterminated line is held until
    more of the same stream and ranks arrives, that stream's eof, or the
    end of the output.
    """

    def __init__(self, flux_handle: "Flux", jobid: Any, labelio: bool = False,
                 log_stderr_level: int = LOG_TRACE, nowait: bool = False,
                 keepends: bool = False) -> None:
        self.keepends = keepends
        # (stream, ranks) -> the start of a line still waiting for its end
        self._partial: dict[tuple[str, Taskset], str] = {}
        super().__init__(flux_handle, jobid, labelio=labelio,
                         log_stderr_level=log_stderr_level, nowait=nowait)

    def _line(self, stream: str, rank: Taskset | None, line: str, newline: bool) -> None:
        if rank is not None and self.labelio:
            line = f"{rank}: {line}"
        self.fulfill((stream, line + "\n" if newline and self.keepends else line))

    def _emit(self, event: EventLogEvent) -> None:
        if isinstance(event, OutputEvent):
            self._emit_data(event)
        else:
            super()._emit(event)

    def _emit_data(self, event: OutputEvent) -> None:
        # buffer the unlabelled text: a line is labelled once, when complete
        key = (event.stream, event.rank)
        text = self._partial.pop(key, "") + (event.text or "")
        *lines, rest = text.split("\n")
        for line in lines:
            self._line(event.stream, event.rank, line, True)
        if rest:
            self._partial[key] = rest
        if event.eof:
            self._flush(lambda k: k[0] == event.stream and bool(k[1].intersect(event.rank)))

    def _emit_text(self, stream: str, text: str) -> None:
        for line in text.splitlines():
            self._line(stream, None, line, True)

    def _flush(self, which: Callable[[tuple[str, Taskset]], bool]) -> None:
        for key in [k for k in self._partial if which(k)]:
            self._line(key[0], key[1], self._partial.pop(key), False)

    def _emit_end(self) -> None:
        self._flush(lambda _key: True)
        super()._emit_end()

    def getline(self) -> tuple[str | None, str | None]:
        """The next ``(stream, line)`` (blocking); ``(None, None)`` once the output has ended."""
        return self.get_output()


def output_event_watch_async(flux_handle: "Flux", jobid: Any, labelio: bool = False,
                             nowait: bool = False) -> JobOutputEventWatch:
    """Watch a job's output events; call ``get_event()`` (from a ``then()`` callback).

    Events are OutputEvent, LogEvent, OutputHeaderEvent, RedirectEvent and
    (from the main eventlog, until ``finish``) JobExceptionEvent.
    ``nowait`` skips the main eventlog and opens the output log at once.
    """
    return JobOutputEventWatch(flux_handle, jobid, labelio=labelio, nowait=nowait)


def output_watch_async(flux_handle: "Flux", jobid: Any, labelio: bool = False,
                       log_stderr_level: int = LOG_TRACE, nowait: bool = False) -> JobOutputWatch:
    """Watch a job's output; ``get_output()`` gives ``(stream, text)``.

    Redirects and job exceptions are reported as messages on stderr.
    """
    return JobOutputWatch(flux_handle, jobid, labelio=labelio,
                          log_stderr_level=log_stderr_level, nowait=nowait)


def output_watch_lines_async(flux_handle: "Flux", jobid: Any, labelio: bool = False,
                             log_stderr_level: int = LOG_TRACE, nowait: bool = False,
                             keepends: bool = False) -> JobOutputWatchLines:
    """Watch a job's output line by line; ``getline()`` gives ``(stream, line)``."""
    return JobOutputWatchLines(flux_handle, jobid, labelio=labelio,
                               log_stderr_level=log_stderr_level, nowait=nowait,
                               keepends=keepends)


def output_event_watch(flux_handle: "Flux", jobid: Any, labelio: bool = False,
                       nowait: bool = False) -> Iterator[EventLogEvent]:
    """Yield a job's output events as they come (see ``output_event_watch_async``)."""
    watcher = output_event_watch_async(flux_handle, jobid, labelio=labelio, nowait=nowait)
    try:
        event = watcher.get_event()
        while event is not None:
            yield event
            event = watcher.get_event()
    finally:
        # a caller that stops early ends the watches
        watcher.cancel()


def output_watch(flux_handle: "Flux", jobid: Any, labelio: bool = False,
                 log_stderr_level: int = LOG_TRACE,
                 nowait: bool = False) -> Iterator[tuple[str, str]]:
    """Yield ``(stream, text)`` of a job's output as it comes.

    >>> for stream, text in flux.job.output_watch(h, jobid):
    ...     print(stream, text, end="")
    """
    watcher = output_watch_async(flux_handle, jobid, labelio=labelio,
                                 log_stderr_level=log_stderr_level, nowait=nowait)
    try:
        while True:
            stream, text = watcher.get_output()
            if stream is None or text is None:
                return
            yield stream, text
    finally:
        watcher.cancel()


def output_watch_lines(flux_handle: "Flux", jobid: Any, labelio: bool = False,
                       log_stderr_level: int = LOG_TRACE, nowait: bool = False,
                       keepends: bool = False) -> Iterator[tuple[str, str]]:
    """Yield ``(stream, line)`` of a job's output as lines complete."""
    watcher = output_watch_lines_async(flux_handle, jobid, labelio=labelio,
                                       log_stderr_level=log_stderr_level, nowait=nowait,
                                       keepends=keepends)
    try:
        while True:
            stream, line = watcher.getline()
            if stream is None or line is None:
                return
            yield stream, line
    finally:
        watcher.cancel()
