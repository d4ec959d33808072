"""flux.job.watcher: follow jobs to their end, copying their output (``flux submit --watch``).

``JobWatcher`` follows each job's main eventlog from the reactor; with
``watch`` it also copies the job's output once its shells are up (the
exec eventlog's ``shell.init``).  A fatal exception is printed on the
job's stderr (``job.exception: type=... severity=0 ...``).  The exit
code (``exitcode``) is the largest of the jobs': the task exit code from
``finish`` (128+N for a shell killed by signal N), or 1 for a job that
failed before it started.  ``progress`` draws ``PD:n R:n CD:n F:n |bar|
pct elapsed`` (``jps``: jobs per second) on stderr.

``watch_jobs(h, jobids, ...)`` is the whole of ``flux submit --wait`` /
``--watch``: it follows the jobs until every one has reached ``wait``
and returns the exit code.
"""
from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TextIO

from flux.job.JobID import JobID

if TYPE_CHECKING:
    from flux.core.handle import Flux
    from flux.eventlog import EventLogEvent
    from flux.job.event import JobEventWatchFuture
    from flux.job.info import JobInfo
    from flux.job.output import JobOutputWatch

__all__ = ["JobStatus", "JobProgressBar", "JobWatcher", "watch_jobs"]

_FLUX_JOB_STATE_SCHED = 8


class JobStatus:
    """A job's simplified status while it is followed.

    Attributes: ``id`` (JobID), ``status`` (``pending``, ``running``,
    ``complete`` or ``failed``), ``exitcode`` (0 unless failed).  Built
    from a JobInfo (ValueError for anything else).  ``add_event(name)``
    counts the job's events; ``event_count(name)``, ``has_event(name)``
    read the counts; ``active`` is True while pending or running.
    """

    def __init__(self, job: "JobInfo") -> None:
        from flux.job.info import JobInfo

        if not isinstance(job, JobInfo):
            raise ValueError("JobStatus requires an object of type JobInfo")
        self.id = job.id
        self.status, self.exitcode = self._status_and_exitcode(job)
        self._events: Counter[str] = Counter()

    @staticmethod
    def _status_and_exitcode(job: "JobInfo") -> tuple[str, Any]:
        status = job.status
        if status in ("PENDING", "DEPEND", "PRIORITY", "SCHED", "NEW"):
            return "pending", 0
        if status in ("RUNNING", "RUN", "CLEANUP"):
            return "running", 0
        if status == "COMPLETED":
            return "complete", 0
        if status in ("FAILED", "CANCELED", "TIMEOUT"):
            return "failed", job.returncode
        raise ValueError(f"unknown job status {status}")

    @property
    def active(self) -> bool:
        """True while the job is pending or running."""
        return self.status in ("pending", "running")

    def add_event(self, name: str) -> None:
        """Count one occurrence of event ``name``."""
        self._events[name] += 1

    def event_count(self, name: str) -> int:
        """How many times event ``name`` was seen."""
        return self._events[name]

    def has_event(self, name: str) -> bool:
        """True if event ``name`` was seen."""
        return self._events[name] > 0


def _elapsed(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class JobProgressBar:
    """``PD:n R:n CD:n F:n |####   | pct elapsed`` for a group of jobs, on ``stream``.

    On a terminal the line is redrawn in place (at most every
    ``update_interval`` seconds, and by a timer so the elapsed time moves);
    elsewhere only the final line is written, so logs see one line.
    ``jps`` shows jobs per second after the time.
    """

    def __init__(self, flux_handle: "Flux", starttime: float | None = None, jps: bool = False,
                 update_interval: float = 0.25, stream: TextIO | None = None,
                 width: int = 30) -> None:
        self.handle = flux_handle
        self.jps = jps
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.interactive = self.stream.isatty()
        except (AttributeError, ValueError):
            self.interactive = False
        encoding = (getattr(self.stream, "encoding", "") or "").lower().replace("-", "")
        self.fill = "\u2588" if self.interactive and encoding == "utf8" else "#"
        self.width = width
        self.update_interval = update_interval
        self.starttime = starttime
        self.jobs: dict[JobID, JobStatus] = {}
        self.total = 0
        self.pending = self.running = self.complete = self.failed = 0
        self._finished: set[int] = set()
        self._started = False
        self._timer: Any = None
        self._last_draw = 0.0

    @property
    def count(self) -> int:
        """Jobs done (no more events expected)."""
        return len(self._finished)

    def add_job(self, job: "JobInfo") -> None:
        """Begin counting JOB (a JobInfo); ValueError if it is counted already."""
        from flux.job.info import JobInfo

        if not isinstance(job, JobInfo):
            raise ValueError("add_job takes an argument of type JobInfo")
        if job.id in self.jobs:
            raise ValueError(f"job {job.id} is already being monitored")
        t_submit = job.t_submit if isinstance(job.t_submit, (int, float)) else time.time()
        if self.starttime is None or t_submit < self.starttime:
            self.starttime = t_submit
        status = JobStatus(job)
        self.jobs[job.id] = status
        self.total += 1
        setattr(self, status.status, getattr(self, status.status) + 1)
        self.redraw()

    def add_jobs(self, *jobs: "JobInfo") -> None:
        for job in jobs:
            self.add_job(job)

    def _move(self, status: JobStatus, to: str) -> None:
        if status.status == to:
            return
        if status.status in ("pending", "running", "complete", "failed"):
            setattr(self, status.status, getattr(self, status.status) - 1)
        setattr(self, to, getattr(self, to) + 1)
        status.status = to

    def process_event(self, jobid: int, event: "EventLogEvent | None" = None) -> None:
        """Count one event of a job; ``event=None`` marks the job done (the bar advances)."""
        status = self.jobs[JobID(jobid)]
        if event is None:
            self._finished.add(int(jobid))
        elif event.name == "alloc" and status.status == "pending":
            self._move(status, "running")
        elif event.name == "exception" and event.context.get("severity") == 0:
            if status.status == "pending":
                self._move(status, "failed")
        elif event.name == "finish" and status.active:
            status.exitcode = event.context.get("status", 0)
            self._move(status, "complete" if status.exitcode == 0 else "failed")
        self.redraw()

    def line(self) -> str:
        """The progress line as it would be drawn now."""
        total, done = self.total, self.count
        # no job yet: an empty bar, not a full one
        filled = 0 if total <= 0 else min(self.width, done * self.width // total)
        bar = self.fill * filled + " " * (self.width - filled)
        pct = 0.0 if total <= 0 else 100.0 * done / total
        elapsed = time.time() - self.starttime if self.starttime is not None else 0.0
        text = (f"PD:{self.pending} R:{self.running} CD:{self.complete} F:{self.failed} "
                f"|{bar}| {pct:5.1f}% {_elapsed(elapsed)}")
        if self.jps:
            rate = done / elapsed if elapsed > 0 else 0.0
            text += f" {rate:8.1f} job/s"
        return text

    def redraw(self, force: bool = False) -> None:
        """Redraw the line on a terminal (rate-limited unless ``force``)."""
        if not self._started or not self.interactive:
            return
        now = time.monotonic()
        if force or now - self._last_draw >= self.update_interval:
            self._last_draw = now
            self.stream.write("\r" + self.line() + "\033[K")
            self.stream.flush()

    def above(self, write: Callable[[], None]) -> None:
        """Run WRITE (output, a message) so that what it prints lands above the bar:
        on a terminal the bar's line is cleared first and drawn again after."""
        if not self._started or not self.interactive:
            write()
            return
        self.stream.write("\r\033[K")
        self.stream.flush()
        try:
            write()
        finally:
            self.redraw(force=True)

    def start(self) -> None:
        """Show the bar (on a terminal, a timer keeps the elapsed time moving)."""
        if self._started:
            return
        self._started = True
        if self.interactive:
            self._timer = self.handle.timer_watcher_create(
                self.update_interval, lambda *_: self.redraw(), repeat=self.update_interval)
            self._timer.start()
            # the timer must not keep the reactor running
            self.handle.reactor_decref()
        self.redraw(force=True)

    def stop(self) -> None:
        """Draw the final line and end it with a newline."""
        if not self._started:
            return
        self._started = False
        if self._timer is not None:
            self.handle.reactor_incref()
            self._timer.stop()
            self._timer = None
        prefix, suffix = ("\r", "\033[K") if self.interactive else ("", "")
        self.stream.write(prefix + self.line() + suffix + "\n")
        self.stream.flush()


class _Watched(JobStatus):
    """A JobStatus with where its output goes and the event that ends its watch."""

    def __init__(self, job: "JobInfo", stdout: TextIO, stderr: TextIO, wait: str) -> None:
        super().__init__(job)
        self.stdout = stdout
        self.stderr = stderr
        self.wait = wait
        self.main: JobEventWatchFuture | None = None
        self.exec: JobEventWatchFuture | None = None
        self.output: JobOutputWatch | None = None
        self.done = False


class JobWatcher:
    """Watch the status and output of one or more jobs (``flux submit --watch``).

    ``jobs``: JobInfos to watch at once.  ``progress``/``jps``: a progress
    bar on stderr.  ``wait``: the event that ends a job's watch (default
    ``clean``; ``exec.NAME`` waits for an exec eventlog event).  ``watch``:
    copy the jobs' output.  ``log_events``: print each event on stderr
    (``ID: SECONDS: NAME CONTEXT``); ``log_status``: print each job's
    final status.  ``stdout``/``stderr``: where output goes by default.
    ``labelio``: prefix output lines with the job id (and task ranks).
    ``starttime``: origin of the elapsed times (default: the earliest
    submission).  ``output_callback(jobid, stream, data)``, if given, gets
    the jobs' output instead of ``stdout``/``stderr`` (``stream`` is
    ``"stdout"`` or ``"stderr"``; ``stream`` and ``data`` are None once a
    job's output has ended).  Run the handle's reactor to make progress;
    ``exitcode`` is the largest job exit code so far.
    """

    JobWatchStatus = _Watched

    def __init__(self, flux_handle: "Flux", jobs: Iterable["JobInfo"] | None = None,
                 progress: bool = False, jps: bool = False, wait: str = "clean",
                 watch: bool = True, log_events: bool = False, log_status: bool = False,
                 stdout: TextIO | None = None, stderr: TextIO | None = None,
                 labelio: bool = False, starttime: float | None = None,
                 output_callback: Callable[[JobID, str | None, str | None], Any] | None = None
                 ) -> None:
        from flux.job.event import require_handle

        require_handle(flux_handle)
        self.flux_handle = flux_handle
        self.wait = wait
        self.watch = watch
        self.t0 = starttime
        self.log_events = log_events
        self.log_status = log_status
        # None: the process's streams at the time of the call
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.labelio = labelio
        self.output_callback = output_callback
        self.exitcode = 0
        self.show_progress = progress
        self.progress = JobProgressBar(flux_handle, starttime=starttime, jps=jps)
        self.jobs: dict[JobID, _Watched] = {}
        if jobs:
            self.add_jobs(*jobs)

    @staticmethod
    def _status_to_exitcode(status: int) -> int:
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        if os.WIFEXITED(status):
            return os.WEXITSTATUS(status)
        return 1

    def start(self) -> "JobWatcher":
        """Show the progress bar if asked; returns self."""
        if self.show_progress:
            self.progress.start()
        return self

    def stop(self) -> "JobWatcher":
        """Finish the progress bar if shown; returns self."""
        if self.show_progress:
            self.progress.stop()
        return self

    def add_jobs(self, *jobs: "JobInfo", stdout: TextIO | None = None,
                 stderr: TextIO | None = None, wait: str = "clean") -> "JobWatcher":
        """Begin watching JobInfos ``jobs``; their output goes to ``stdout``/``stderr``
        (default the watcher's) until event ``wait``."""
        from flux.job.event import event_watch_async

        self.progress.add_jobs(*jobs)
        for job in jobs:
            t_submit = job.t_submit if isinstance(job.t_submit, (int, float)) else time.time()
            if not self.t0 or t_submit < self.t0:
                self.t0 = t_submit
            status = _Watched(job, stdout or self.stdout, stderr or self.stderr,
                              wait or self.wait)
            self.jobs[status.id] = status
            status.main = event_watch_async(self.flux_handle, status.id)
            status.main.then(self._event_watch_cb, status)
            if not status.active:
                self._job_done(status)
        return self

    def add_jobid(self, jobid: Any, stdout: TextIO | None = None,
                  stderr: TextIO | None = None, wait: str = "clean") -> "JobWatcher":
        """Begin watching job ``jobid`` (taken as pending, submitted now)."""
        from flux.job.info import JobInfo

        job = JobInfo({"id": JobID(jobid), "state": _FLUX_JOB_STATE_SCHED,
                       "t_submit": time.time()})
        return self.add_jobs(job, stdout=stdout, stderr=stderr, wait=wait)

    # -- callbacks ----------------------------------------------------------------------
    def _log(self, job: _Watched, timestamp: float, msg: str) -> None:
        dt = timestamp - (self.t0 or timestamp)
        print(f"{job.id.f58}: {dt:4.3f}s: {msg}", file=job.stderr)

    def _log_event(self, job: _Watched, event: "EventLogEvent", prefix: str = "") -> None:
        if self.log_events:
            context = event.context_string
            self._log(job, event.timestamp,
                      f"{prefix}{event.name} {context}" if context else f"{prefix}{event.name}")

    def _message(self, job: _Watched, text: str) -> None:
        """TEXT on the job's stderr, above the progress bar if one is drawn."""
        self.progress.above(lambda: print(text, file=job.stderr, flush=True))

    def _job_done(self, job: _Watched) -> None:
        if not job.done:
            job.done = True
            self.progress.process_event(job.id, None)

    def _watch_failed(self, job: _Watched, exc: OSError) -> None:
        text = exc.strerror or os.strerror(exc.errno or 0)
        print(f"{job.id.f58}: {text}", file=job.stderr)
        self.exitcode = max(self.exitcode, 1)
        job.status = "failed"
        self._job_done(job)

    def _event_watch_cb(self, future: "JobEventWatchFuture", job: _Watched) -> None:
        try:
            event = future.get_event()
        except OSError as exc:
            self._watch_failed(job, exc)
            return
        if event is None:
            self._job_done(job)
            return
        self.progress.process_event(job.id, event)
        job.add_event(event.name)
        if self.t0 is None or event.timestamp < self.t0:
            self.t0 = event.timestamp
        self._log_event(job, event)
        name = event.name
        if name == "exception":
            if event.context.get("severity") == 0:
                if not job.has_event("start"):
                    # it failed before it ran
                    self.exitcode = max(self.exitcode, 1)
                    job.status = "failed"
                from flux.job.output import JobExceptionEvent

                self._message(job, JobExceptionEvent(event).render())
        elif name == "alloc":
            job.status = "running"
        elif name == "start":
            if self.watch or job.wait.startswith("exec."):
                from flux.job.event import event_watch_async

                job.exec = event_watch_async(self.flux_handle, job.id, "guest.exec.eventlog")
                job.exec.then(self._exec_event_cb, job)
        elif name == "finish":
            status = int(event.context.get("status", 0))
            self.exitcode = max(self.exitcode, self._status_to_exitcode(status))
            job.status = "complete" if status == 0 else "failed"
            if status != 0:
                from flux.util.waitstatus import exit_code_of

                self._message(job, f"{job.id.f58}: {exit_code_of(status)[1]}")
            if self.log_status:
                self._log(job, event.timestamp, f"{job.status}: status={status}")
        if job.wait == name:
            self._job_done(job)
            future.cancel(stop=True)

    def _exec_event_cb(self, future: "JobEventWatchFuture", job: _Watched) -> None:
        try:
            event = future.get_event()
        except OSError:
            return      # the exec log is gone: the main eventlog tells the rest
        if event is None:
            return
        self._log_event(job, event, "exec.")
        if self.watch and event.name == "shell.init" and job.output is None:
            # the shells are up: their output log exists
            from flux.job.output import output_watch_async

            job.output = output_watch_async(self.flux_handle, job.id, labelio=self.labelio,
                                            nowait=True)
            job.output.then(self._output_watch_cb, job)
            if not job.wait.startswith("exec."):
                future.cancel(stop=True)
        if job.wait == f"exec.{event.name}":
            self._job_done(job)
            future.cancel(stop=True)
            if job.main is not None:
                job.main.cancel(stop=True)

    def _output_watch_cb(self, future: "JobOutputWatch", job: _Watched) -> None:
        try:
            stream, data = future.get_output()
        except OSError as exc:
            print(f"{job.id.f58}: output: {exc.strerror or exc}", file=job.stderr)
            future.stop()
            return
        if stream is None or data is None:
            future.stop()
            if self.output_callback is not None:
                self.output_callback(job.id, None, None)
                return
            for out in (job.stdout, job.stderr):
                out.flush()
            return
        if self.output_callback is not None:
            # the caller takes the output: nothing is written to the streams
            self.output_callback(job.id, stream, data)
            return
        out = job.stderr if stream != "stdout" else job.stdout

        def write() -> None:
            if self.labelio:
                for line in data.splitlines(keepends=True):
                    out.write(f"{job.id}: {line}")
            else:
                out.write(data)
            if self.progress.interactive:
                out.flush()     # before the bar is drawn again below it

        self.progress.above(write)


def watch_jobs(flux_handle: "Flux", jobids: Iterable[Any], *, watch: bool = True,
               progress: bool = False, jps: bool = False, labelio: bool = False,
               wait: str = "clean", log_events: bool = False, log_status: bool = False,
               stdout: TextIO | None = None, stderr: TextIO | None = None,
               starttime: float | None = None) -> int:
    """Follow JOBIDS until each reaches ``wait``; returns the largest job exit code.

    ``flux submit --wait`` is ``watch=False``, ``--watch`` is
    ``watch=True``; ``progress``/``jps`` draw the progress bar on stderr.
    Runs the handle's reactor until every job is done.
    """
    watcher = JobWatcher(flux_handle, progress=progress, jps=jps, wait=wait, watch=watch,
                         log_events=log_events, log_status=log_status, stdout=stdout,
                         stderr=stderr, labelio=labelio, starttime=starttime).start()
    try:
        for jobid in jobids:
            watcher.add_jobid(jobid, wait=wait)
        flux_handle.reactor_run()
    finally:
        watcher.stop()
    return watcher.exitcode
