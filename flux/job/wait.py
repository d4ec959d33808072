"""flux.job.wait: wait for jobs to end.

``wait``/``wait_async`` use the job manager's wait service and work only
for jobs submitted with ``waitable=True`` (each can be waited for once).
``result``/``result_async`` read the job's eventlog to its end instead, so
they work for any job, for jobs that already ended, and any number of
times.  The result dict has flux-core's keys: ``id``, ``t_submit``,
``t_run`` (the ``alloc`` event), ``t_cleanup`` and ``waitstatus`` (the
``finish`` event), ``exception_occurred`` and, for the most severe
exception (the first of equals), ``exception_type/severity/note``, and
``result``.  The result rule is the job list's: COMPLETED if the job
finished with status 0 and had no fatal exception, otherwise the first
fatal exception's type decides (``cancel`` CANCELED, ``timeout``
TIMEOUT), else FAILED.
"""
from __future__ import annotations

import errno
import time
from collections import namedtuple
from typing import TYPE_CHECKING, Any, Callable

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
    FLUX_JOB_STATE_INACTIVE,
    FLUX_JOBID_ANY,
)
from flux.errors import FluxError
from flux.future import Future
from flux.job.event import JobEventWatchFuture, require_handle
from flux.job.JobID import JobID
from flux.rpc import RPC

if TYPE_CHECKING:
    from flux.core.handle import Flux
    from flux.job.info import JobInfo

__all__ = ["JobWaitResult", "JobWaitFuture", "JobResultFuture", "wait", "wait_async",
           "wait_get_status", "result", "result_async", "ResultFold"]

JobWaitResult = namedtuple("JobWaitResult", ["jobid", "success", "errstr"])
JobWaitResult.__doc__ = "What ``flux.job.wait`` returns: (jobid, success, errstr)."


class JobWaitFuture(RPC):
    """The response of ``job-manager.wait``."""

    def get_id(self) -> JobID:
        """The id of the job that ended."""
        return JobID(self.get()["id"])

    def get_status(self) -> JobWaitResult:
        """``JobWaitResult(jobid, success, errstr)``; errstr is "" on success."""
        payload = self.get()
        try:
            return JobWaitResult(JobID(payload["id"]), bool(payload["success"]),
                                 payload.get("errstr") or "")
        except (KeyError, TypeError) as exc:
            raise FluxError(errno.EPROTO, f"job-manager.wait: bad response {payload!r}: "
                                          f"{exc}") from None


def wait_async(flux_handle: "Flux", jobid: int = FLUX_JOBID_ANY) -> JobWaitFuture:
    """Wait for a waitable job (default: any waitable job of this user) to end."""
    require_handle(flux_handle)
    return JobWaitFuture(flux_handle, "job-manager.wait", {"id": int(jobid)})


def wait_get_status(future: JobWaitFuture) -> JobWaitResult:
    """``JobWaitResult(jobid, success, errstr)`` of a ``wait_async`` future (blocking).

    OSError(EINVAL) for a None future; the wait's error (e.g. ECHILD) otherwise.
    """
    require_handle(future, "future")
    # any future of a job-manager.wait request will do
    return JobWaitFuture.get_status(future)  # type: ignore[arg-type]


def wait(flux_handle: "Flux", jobid: int = FLUX_JOBID_ANY) -> JobWaitResult:
    """Block until a waitable job ends; returns ``JobWaitResult(jobid, success, errstr)``.

    ECHILD if there is no waitable job to wait for; EINVAL if the job is
    not waitable.
    """
    return wait_async(flux_handle, jobid).get_status()


class ResultFold:
    """The job result, folded event by event from a job's main eventlog."""

    __slots__ = ("res", "fatal_type")

    def __init__(self, jobid: int) -> None:
        self.res: dict[str, Any] = {"id": int(jobid), "exception_occurred": False}
        self.fatal_type: str | None = None

    def add(self, name: str, timestamp: float, context: dict[str, Any]) -> None:
        res = self.res
        if name == "submit":
            res["t_submit"] = timestamp
        elif name == "alloc":
            res["t_run"] = timestamp
        elif name == "finish":
            res["t_cleanup"] = timestamp
            if "status" not in context:
                raise FluxError(errno.EPROTO, "finish event has no status")
            res["waitstatus"] = context["status"]
        elif name == "exception":
            try:
                severity = context["severity"]
                etype = context["type"]
            except KeyError as exc:
                raise FluxError(errno.EPROTO, f"exception event has no {exc} key") from None
            if not res["exception_occurred"] or severity < res["exception_severity"]:
                res["exception_occurred"] = True
                res["exception_type"] = etype
                res["exception_note"] = context.get("note", "")
                res["exception_severity"] = severity
            if severity == 0 and self.fatal_type is None:
                self.fatal_type = etype

    def finish(self) -> dict[str, Any]:
        res = self.res
        if self.fatal_type is None:
            ok = res.get("t_run", 0) > 0 and res.get("waitstatus") == 0
            res["result"] = FLUX_JOB_RESULT_COMPLETED if ok else FLUX_JOB_RESULT_FAILED
        elif self.fatal_type == "cancel":
            res["result"] = FLUX_JOB_RESULT_CANCELED
        elif self.fatal_type == "timeout":
            res["result"] = FLUX_JOB_RESULT_TIMEOUT
        else:
            res["result"] = FLUX_JOB_RESULT_FAILED
        return res


class JobResultFuture(Future):
    """Fulfilled with the job's result dict once its eventlog has ended."""

    def __init__(self, flux_handle: "Flux", jobid: int) -> None:
        super().__init__(flux_handle)
        self.jobid = jobid
        self._fold = ResultFold(jobid)
        self._watch = JobEventWatchFuture(flux_handle, jobid, "eventlog")
        self._watching_async = False

    def _drain(self) -> None:
        """Fold every event the watch has received so far (never blocks)."""
        watch = self._watch
        while not self._results and watch.is_ready():
            try:
                payload = watch.get()
            except OSError as exc:
                if exc.errno == errno.ENODATA:
                    self.fulfill(self._fold.finish())
                else:
                    self.fulfill_error(exc.errno or errno.EIO, exc.strerror)
                return
            watch.reset()
            try:
                event = payload["event"]
                from flux.eventlog import EventLogEvent

                entry = EventLogEvent(event)
                self._fold.add(entry.name, entry.timestamp, entry.context)
            except (KeyError, TypeError, ValueError, OSError) as exc:
                watch.cancel()
                self.fulfill_error(errno.EPROTO, f"job {JobID(self.jobid).f58}: "
                                                 f"bad eventlog entry: {exc}")
                return

    def _wait(self, timeout: float | None) -> None:
        handle = self.get_flux()
        assert handle is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        self._drain()
        while not self._results:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            if not handle._wait_until(self._watch.is_ready, remaining):
                return
            self._drain()

    def then(self, callback: Callable[..., Any], *args: Any, timeout: float = -1.0,
             **kwargs: Any) -> "JobResultFuture":
        # events are folded from the reactor only once a continuation is
        # wanted: a synchronous get() folds them itself
        super().then(callback, *args, timeout=timeout, **kwargs)
        if not self._watching_async:
            self._watching_async = True
            self._watch.then(self._on_watch)
        self._drain()
        return self

    def _on_watch(self, _watch: JobEventWatchFuture) -> None:
        self._drain()

    def get_dict(self) -> dict[str, Any]:
        """The result as a dict (flux-core's keys, see the module docstring)."""
        return self.get()

    def get_info(self) -> "JobInfo":
        """The result as a (limited) JobInfo: id, t_submit, t_run, t_cleanup,
        returncode, waitstatus, runtime, result, result_id, exception."""
        from flux.job.info import JobInfo

        return JobInfo({**self.get(), "state": FLUX_JOB_STATE_INACTIVE})


def result_async(flux_handle: "Flux", jobid: int, flags: int = 0) -> JobResultFuture:
    """Watch a job's eventlog to its end; the future holds the job's result."""
    require_handle(flux_handle)
    return JobResultFuture(flux_handle, jobid)


def result(flux_handle: "Flux", jobid: int, flags: int = 0) -> "JobInfo":
    """Block until the job is inactive and return its (limited) JobInfo."""
    return result_async(flux_handle, jobid, flags).get_info()
