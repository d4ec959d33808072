"""flux.job.executor: Flux jobs as ``concurrent.futures`` futures.

``FluxExecutor`` hands each ``submit(jobspec)`` or ``attach(jobid)`` to
one of its worker threads, round robin.  A worker owns a ``flux.Flux``
handle (handles are not thread-safe) and runs its reactor: it submits
the job, then follows the job's main eventlog, passing each event of
``EVENTS`` to the job's ``FluxExecutorFuture``.  The future's result is
set at ``finish`` (the exit code derived from the wait status), or a
``JobException`` at a fatal exception, whichever comes first; events keep
arriving until the log ends at ``clean``.  New work wakes a worker
through a socket pair, so nothing polls.
"""
from __future__ import annotations

import concurrent.futures
import copy
import errno
import inspect
import logging
import os
import socket
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flux.eventlog import EventLogEvent
from flux.job.event import MAIN_EVENTS, JobEventWatchFuture, JobException, event_watch_async
from flux.job.JobID import JobID
from flux.job.Jobspec import Jobspec
from flux.job.submit import SubmitFuture, submit_async

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["FluxExecutor", "FluxExecutorFuture", "EVENTS"]

#: The job events a future passes to its event callbacks (RFC 21 main eventlog).
EVENTS = MAIN_EVENTS

_log = logging.getLogger(__name__)

# submit()'s arguments are checked against flux.job.submit_async's, in the caller
_SUBMIT_SIGNATURE = inspect.signature(submit_async)


def _exit_code(status: int) -> int:
    """A job's result from its ``finish`` wait status: the exit code, or -signum."""
    if isinstance(status, bool) or not isinstance(status, int):
        raise TypeError(f"wait status must be an integer, not {status!r}")
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    raise ValueError(f"wait status {status:#x} is neither an exit nor a signal")


class _JobidAlreadySet(concurrent.futures.InvalidStateError, RuntimeError):
    """A second ``_set_jobid``: a RuntimeError, as Flux's executor raises."""


class FluxExecutorFuture(concurrent.futures.Future):
    """A ``concurrent.futures.Future`` for one Flux job.

    Besides the Future API: ``jobid()`` and ``add_jobid_callback()`` for
    the job's id, and ``add_event_callback()`` for its events.  The result
    is the job's exit code from its ``finish`` wait status: the highest
    task exit status, or ``-signum`` when the status is a signal (a job
    shell reports a task killed by signal N as exit status 128+N, as
    Flux's does).  A fatal job exception sets a JobException, a refused
    submission an OSError.  ``owning_thread_id`` is the executor
    thread that completes the future: waiting for the result from a
    callback in that thread raises RuntimeError instead of deadlocking
    (``timeout=0`` only polls, so it raises TimeoutError as anywhere).
    """

    #: The names accepted by add_event_callback.
    EVENTS = EVENTS

    def __init__(self, owning_thread_id: int | None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owning_thread_id
        self._jobid_cond = threading.Condition()
        self._jobid_set = False
        self._jobid: JobID | None = None
        self._jobid_exc: BaseException | None = None
        self._jobid_callbacks: list[Callable[[FluxExecutorFuture], Any]] = []
        # Event callbacks go through one queue, drained by one thread at a
        # time and never under the lock: each callback sees each occurrence
        # once and in order, and a callback may wait for the result.
        self._event_lock = threading.Lock()
        self._events: dict[str, list[EventLogEvent]] = {}
        self._event_callbacks: dict[str, list[Callable[..., Any]]] = {}
        self._pending: deque[tuple[Callable[..., Any], EventLogEvent]] = deque()
        self._delivering = False

    # -- callbacks ---------------------------------------------------------------------
    def _invoke(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            callback(self, *args)
        except Exception:  # noqa: BLE001 - documented: logged and ignored
            _log.exception("exception calling callback for %r", self)

    def _check_owner(self, what: str, timeout: float | None) -> None:
        # a zero timeout only polls: it cannot deadlock (it raises TimeoutError)
        if threading.get_ident() == self._owner and (timeout is None or timeout > 0):
            raise RuntimeError(f"cannot wait for the {what} of a FluxExecutorFuture from a "
                               "callback in the executor thread that completes it")

    # -- jobid -----------------------------------------------------------------------------
    def _set_jobid(self, jobid: int | None, exc: BaseException | None = None) -> None:
        """Set the job id (or, with ``exc``, why there is none); for executors and tests."""
        if not self._try_set_jobid(jobid, exc):
            raise _JobidAlreadySet("jobid already set")

    def _try_set_jobid(self, jobid: int | None, exc: BaseException | None = None) -> bool:
        with self._jobid_cond:
            if self._jobid_set:
                return False
            self._jobid = _as_jobid(jobid)
            self._jobid_exc = exc
            self._jobid_set = True
            callbacks, self._jobid_callbacks = self._jobid_callbacks, []
            self._jobid_cond.notify_all()
        for callback in callbacks:
            self._invoke(callback)
        return True

    def jobid(self, timeout: float | None = None) -> JobID:
        """The job's id, waiting up to ``timeout`` seconds (None: no limit).

        Raises concurrent.futures.TimeoutError when the time passes,
        CancelledError if the future was canceled, RuntimeError if the job
        could not be submitted.
        """
        with self._jobid_cond:
            if not self._jobid_set:
                self._check_owner("jobid", timeout)
                if not self._jobid_cond.wait_for(lambda: self._jobid_set, timeout):
                    raise concurrent.futures.TimeoutError()
        if self._jobid_exc is not None:
            raise self._jobid_exc
        # None (or what was given) for an attach() to a bad id, as Flux's executor
        return self._jobid  # type: ignore[return-value]

    def add_jobid_callback(self, callback: Callable[["FluxExecutorFuture"], Any]
                           ) -> "FluxExecutorFuture":
        """Call ``callback(future)`` once the job id is known (or known to be missing).

        Called at once if it is already; otherwise later, in an executor
        thread.  An exception from the callback is logged and ignored.
        """
        with self._jobid_cond:
            if not self._jobid_set:
                self._jobid_callbacks.append(callback)
                return self
        self._invoke(callback)
        return self

    # -- events ----------------------------------------------------------------------------
    def add_event_callback(self, event: str, callback: Callable[..., Any]
                           ) -> "FluxExecutorFuture":
        """Call ``callback(future, EventLogEvent)`` for each occurrence of job event ``event``.

        Occurrences that already happened are replayed at once, in order.
        ValueError if ``event`` is not in EVENTS.  An exception from the
        callback is logged and ignored.
        """
        if event not in self.EVENTS:
            raise ValueError(f"unknown job event {event!r}: not one of {sorted(self.EVENTS)}")
        with self._event_lock:
            self._event_callbacks.setdefault(event, []).append(callback)
            self._pending.extend((callback, e) for e in self._events.get(event, ()))
        self._deliver()
        return self

    def _set_event(self, log_entry: EventLogEvent) -> None:
        """Record an event of the job and call its callbacks; for executors and tests."""
        name = log_entry.name
        if name not in self.EVENTS:
            raise ValueError(f"unknown job event {name!r}")
        with self._event_lock:
            self._events.setdefault(name, []).append(log_entry)
            self._pending.extend((cb, log_entry) for cb in self._event_callbacks.get(name, ()))
        self._deliver()

    def _deliver(self) -> None:
        with self._event_lock:
            if self._delivering:
                return      # the thread delivering now will deliver what was queued
            self._delivering = True
        while True:
            with self._event_lock:
                if not self._pending:
                    self._delivering = False
                    return
                callback, entry = self._pending.popleft()
            try:
                self._invoke(callback, entry)
            except BaseException:
                with self._event_lock:
                    self._delivering = False
                raise

    def _job_event(self, event: EventLogEvent) -> None:
        """Apply one main-eventlog event: callbacks, then the result if it ends the job."""
        if event.name in self.EVENTS:
            self._set_event(event)
        if self.done():
            return
        try:
            if event.name == "finish":
                try:
                    code = _exit_code(event.context["status"])
                except (KeyError, TypeError, ValueError) as exc:
                    self.set_exception(OSError(errno.EPROTO, f"bad finish event: {exc}"))
                else:
                    self.set_result(code)
            elif event.name == "exception" and event.context.get("severity") == 0:
                self.set_exception(JobException(event))
        except concurrent.futures.InvalidStateError:
            pass  # completed meanwhile by another thread (set_* used by a test)

    # -- concurrent.futures.Future -----------------------------------------------------------
    def add_done_callback(self, fn: Callable[..., Any]) -> "FluxExecutorFuture":  # type: ignore[override]
        """Call ``fn(future)`` when the future completes or is canceled (at once if it has)."""
        super().add_done_callback(fn)
        return self

    def result(self, timeout: float | None = None) -> int:
        """The job's exit code, waiting up to ``timeout`` seconds (None: no limit).

        Raises the job's exception (JobException, OSError, ...),
        CancelledError, or concurrent.futures.TimeoutError.
        """
        if not self.done():
            self._check_owner("result", timeout)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The exception the job ended with, or None; waits like ``result()``."""
        if not self.done():
            self._check_owner("exception", timeout)
        return super().exception(timeout)

    def set_exception(self, exception: BaseException | None) -> None:
        """Complete the future with ``exception``; for executors and tests.

        If the job id was never set, ``jobid()`` then raises RuntimeError.
        """
        self._try_set_jobid(None, RuntimeError(f"job could not be submitted: {exception}"))
        super().set_exception(exception)

    def cancel(self) -> bool:
        """Cancel the future if the executor has not started it; True if it is canceled."""
        canceled = super().cancel()
        if canceled:
            # wake any thread waiting in jobid()
            self._try_set_jobid(None, concurrent.futures.CancelledError())
        return canceled


def _as_jobid(jobid: Any) -> Any:
    """An int JOBID as a JobID; anything else (None, -1 of a bad attach(), a
    string) as given, as Flux's executor keeps it."""
    if isinstance(jobid, int) and not isinstance(jobid, (bool, JobID)):
        try:
            return JobID(jobid)
        except ValueError:
            return jobid
    return jobid


class _Work:
    """One submit or attach, queued for a worker."""

    __slots__ = ("future", "jobspec", "submit_kwargs", "jobid", "error")

    def __init__(self, jobspec: Any = None, submit_kwargs: dict[str, Any] | None = None,
                 jobid: JobID | None = None, error: BaseException | None = None) -> None:
        self.future: FluxExecutorFuture | None = None
        self.jobspec = jobspec
        self.submit_kwargs = submit_kwargs or {}
        self.jobid = jobid
        # an attach() whose id is not a job id: the future fails with it at once
        self.error = error


class _Worker(threading.Thread):
    """An executor thread: one handle, one reactor loop, the jobs handed to it.

    Other threads only ``post``, ``close`` and ``take_queued``, all under
    ``_lock``; everything else runs in this thread.  The loop ends once
    closed with nothing queued and no job being followed.
    """

    def __init__(self, handle: "Flux", name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._handle = handle
        self._lock = threading.Lock()
        self._queue: deque[_Work] = deque()
        self._closing = False
        self._exited = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # futures whose job is being submitted or followed (this thread only)
        self._following: set[FluxExecutorFuture] = set()
        self._watcher: Any = None

    # -- from other threads ------------------------------------------------------------------
    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the thread is already due to wake

    def post(self, work: _Work) -> bool:
        """Queue WORK; False if the thread has exited."""
        with self._lock:
            if self._exited:
                return False
            self._queue.append(work)
            self._wake()
        return True

    def close(self) -> None:
        """Finish the queued and followed jobs, then exit."""
        with self._lock:
            if not self._exited:
                self._closing = True
                self._wake()

    def take_queued(self) -> list[_Work]:
        """Remove and return the work not yet started."""
        with self._lock:
            work = list(self._queue)
            self._queue.clear()
        return work

    @property
    def broken(self) -> bool:
        """True if no new job can be started here (thread exited, connection lost)."""
        return self._exited or self._handle._sock is None

    # -- the thread ----------------------------------------------------------------------------
    def run(self) -> None:
        handle = self._handle
        failure: BaseException | None = None
        try:
            self._watcher = handle.fd_watcher_create(self._wake_r.fileno(), self._on_wake)
            self._watcher.start()
            handle.reactor_run()
        except BaseException as exc:  # noqa: BLE001 - every future must learn of it
            failure = exc
            _log.error("executor thread %s failed", self.name, exc_info=exc)
        finally:
            with self._lock:
                self._exited = True
                leftovers = [w.future for w in self._queue if w.future is not None]
                self._queue.clear()
            error = failure if failure is not None \
                else RuntimeError("executor thread exited before the job ended")
            for future in self._following:
                if not future.done():
                    future.set_exception(error)
            self._following.clear()
            for future in leftovers:
                if future.set_running_or_notify_cancel():
                    future.set_exception(error)
            if self._watcher is not None:
                self._watcher.stop()
            handle.close()
            self._wake_r.close()
            self._wake_w.close()

    def _on_wake(self, _handle: Any, _watcher: Any, _fd: int, _revents: int, _args: Any) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            work = list(self._queue)
            self._queue.clear()
        for item in work:
            assert item.future is not None
            # False: canceled while queued (the cancellation is now announced)
            if item.future.set_running_or_notify_cancel():
                self._start(item)
        self._maybe_exit()

    def _maybe_exit(self) -> None:
        with self._lock:
            done = self._closing and not self._queue and not self._following
        if done:
            self._watcher.stop()
            self._handle.reactor_stop()

    def _start(self, work: _Work) -> None:
        future = work.future
        assert future is not None
        if work.jobid is not None:
            self._follow(future, work.jobid)
            return
        try:
            rpc = submit_async(self._handle, work.jobspec, **work.submit_kwargs)
        except Exception as exc:  # noqa: BLE001 - a bad submission fails its future
            future.set_exception(exc)
            return
        self._following.add(future)
        rpc.then(self._on_submitted, future)

    def _on_submitted(self, rpc: SubmitFuture, future: FluxExecutorFuture) -> None:
        try:
            jobid = rpc.get_id()
        except Exception as exc:  # noqa: BLE001 - refused by ingest: OSError
            self._following.discard(future)
            future.set_exception(exc)
            self._maybe_exit()
            return
        future._set_jobid(jobid)
        self._following.discard(future)
        self._follow(future, jobid)
        self._maybe_exit()

    def _follow(self, future: FluxExecutorFuture, jobid: JobID) -> None:
        try:
            watch = event_watch_async(self._handle, jobid)
        except Exception as exc:  # noqa: BLE001 - e.g. the connection is gone
            future.set_exception(exc)
            return
        self._following.add(future)
        watch.then(self._on_event, future)

    def _on_event(self, watch: JobEventWatchFuture, future: FluxExecutorFuture) -> None:
        # one event per call: the watch's continuation holds the reactor
        # until its final (ENODATA) response has been handed to us
        try:
            event = watch.get_event()
        except FileNotFoundError as exc:
            self._stop_following(future, ValueError(f"job ID {watch.jobid} does not match "
                                                    f"any job: {exc.strerror}"))
            return
        except Exception as exc:  # noqa: BLE001 - e.g. connection lost: the job's error
            self._stop_following(future, exc)
            return
        if event is None:
            self._stop_following(future, OSError(errno.ENODATA, f"job {watch.jobid}: eventlog "
                                                                "ended before the job did"))
            return
        future._job_event(event)

    def _stop_following(self, future: FluxExecutorFuture, error: BaseException) -> None:
        self._following.discard(future)
        if not future.done():
            future.set_exception(error)
        self._maybe_exit()


def _close_workers(workers: list[_Worker]) -> None:
    """Finalizer of an executor dropped without shutdown: let its threads finish and exit."""
    for worker in workers:
        worker.close()


class FluxExecutor(concurrent.futures.Executor):
    """Submit and follow Flux jobs from background threads, as ``concurrent.futures`` does.

    ``submit(jobspec, ...)`` and ``attach(jobid)`` return
    FluxExecutorFutures; ``map`` is not supported.  ``threads`` worker
    threads (ValueError below 1), named ``thread_name_prefix-N``, each
    connect with ``flux.Flux(*handle_args, **handle_kwargs)`` (connection
    errors raise here).  ``poll_interval`` is accepted for compatibility
    with Flux's executor: new work wakes a thread at once, so none polls.
    Use as a context manager, or call ``shutdown()``.
    """

    #: The names accepted by FluxExecutorFuture.add_event_callback.
    EVENTS = EVENTS

    def __init__(self, threads: int = 1, thread_name_prefix: str = "",
                 poll_interval: float = 0.1, handle_args: Sequence[Any] = (),
                 handle_kwargs: Mapping[str, Any] = {}) -> None:  # noqa: B006 - Flux's signature
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise TypeError(f"threads must be an integer, not {threads!r}")
        if threads < 1:
            raise ValueError(f"the number of threads must be at least 1, not {threads}")
        import flux

        self._lock = threading.Lock()
        self._shutdown = False
        self._next = 0
        self.poll_interval = poll_interval
        prefix = thread_name_prefix or f"{type(self).__name__}-{id(self):x}"
        handles: list[Flux] = []
        try:
            for _ in range(threads):
                handles.append(flux.Flux(*handle_args, **dict(handle_kwargs)))
        except BaseException:
            for handle in handles:
                handle.close()
            raise
        self._workers = [_Worker(handle, f"{prefix}-{i}") for i, handle in enumerate(handles)]
        for worker in self._workers:
            worker.start()
        weakref.finalize(self, _close_workers, self._workers)

    def _post(self, work: _Work) -> FluxExecutorFuture:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            worker = self._workers[self._next]
            self._next = (self._next + 1) % len(self._workers)
            if worker.broken:
                raise RuntimeError(f"executor thread {worker.name} has lost its Flux "
                                   "connection: new jobs cannot be submitted")
            future = FluxExecutorFuture(worker.ident)
            if work.jobid is not None or work.error is not None:
                future._set_jobid(work.jobid)
            work.future = future
            if work.error is not None:
                future.set_running_or_notify_cancel()
                future.set_exception(work.error)
                return future
            if not worker.post(work):
                raise RuntimeError(f"executor thread {worker.name} has exited")
        return future

    def submit(self, jobspec: Any, *submit_args: Any,  # type: ignore[override]
               **submit_kwargs: Any) -> FluxExecutorFuture:
        """Submit ``jobspec`` (Jobspec or its JSON) and return the job's future.

        Takes ``flux.job.submit``'s arguments after the handle: ``urgency``,
        ``waitable``, ``debug``, ``pre_signed`` (TypeError for others).
        A refused submission sets an OSError on the future.  RuntimeError
        after ``shutdown()`` or once the executor has lost its connection.
        """
        bound = _SUBMIT_SIGNATURE.bind(None, jobspec, *submit_args, **submit_kwargs)
        options = {k: v for k, v in bound.arguments.items()
                   if k not in ("flux_handle", "jobspec")}
        # a snapshot: the caller may change a Jobspec before a worker submits it
        if isinstance(jobspec, Jobspec):
            jobspec = copy.deepcopy(jobspec.jobspec)
        elif isinstance(jobspec, Mapping):
            jobspec = copy.deepcopy(dict(jobspec))
        return self._post(_Work(jobspec=jobspec, submit_kwargs=options))

    def attach(self, jobid: Any) -> FluxExecutorFuture:
        """A future following the existing job ``jobid`` (as ``submit``'s do).

        Its ``jobid()`` answers at once; an unknown job sets ValueError on
        the future.  As in Flux's executor, an id that is not one fails the
        future, not the call: ``jobid()`` gives it back and the result
        raises TypeError (e.g. None), OverflowError (an int outside
        0..2**64-1) or ValueError (a string no encoding decodes).
        RuntimeError after ``shutdown()``.
        """
        error: BaseException | None = None
        try:
            jobid = JobID(jobid)
        except TypeError as exc:
            error = exc
        except ValueError as exc:
            error = exc
            if isinstance(jobid, int):
                error = OverflowError(f"job ID {jobid} is out of range 0..2**64-1")
        return self._post(_Work(jobid=jobid, error=error))

    def map(self, fn: Callable[..., Any], *iterables: Any, timeout: float | None = None,
            chunksize: int = 1) -> Iterator[Any]:
        """Not supported: the executor runs jobspecs, not callables."""
        raise NotImplementedError("FluxExecutor.map is not supported: submit jobspecs instead")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; the threads exit once their jobs have ended.

        ``wait``: return only after that.  ``cancel_futures``: cancel the
        futures no thread has started yet.  Safe to call more than once.
        """
        with self._lock:
            self._shutdown = True
        if cancel_futures:
            for worker in self._workers:
                for work in worker.take_queued():
                    assert work.future is not None
                    work.future.cancel()
                    # announce it to concurrent.futures.wait() / as_completed()
                    work.future.set_running_or_notify_cancel()
        for worker in self._workers:
            worker.close()
        if wait:
            for worker in self._workers:
                if worker is not threading.current_thread():
                    worker.join()
