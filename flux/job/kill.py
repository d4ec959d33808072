"""flux.job.kill: cancel, signal, or raise an exception on a job (job-manager RPCs).

Each ``*_async`` function returns the RPC future at once; the plain form
waits for it.  A guest may act only on its own jobs (EPERM otherwise); an
inactive job cannot be changed (the job manager's error).
"""
from __future__ import annotations

import errno
import signal
from typing import TYPE_CHECKING

from flux.errors import FluxError
from flux.future import Future
from flux.job.event import require_handle
from flux.rpc import RPC

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["kill", "kill_async", "cancel", "cancel_async", "raise_exception", "raise_async",
           "job_raise", "job_raise_async"]


def kill_async(flux_handle: "Flux", jobid: int, signum: int | None = None) -> Future:
    """Send signal ``signum`` (default SIGTERM) to a running job's tasks."""
    if not signum:
        signum = signal.SIGTERM
    if isinstance(signum, bool) or not isinstance(signum, int) or not 0 < signum < 65:
        raise FluxError(errno.EINVAL, f"invalid signal number {signum!r}")
    require_handle(flux_handle)
    return RPC(flux_handle, "job-manager.kill", {"id": int(jobid), "signum": int(signum)})


def kill(flux_handle: "Flux", jobid: int, signum: int | None = None) -> None:
    """Send a signal to a running job and wait for the job manager to accept it."""
    kill_async(flux_handle, jobid, signum).get()


def raise_async(flux_handle: "Flux", jobid: int, type: str, severity: int = 0,
                note: str | None = None) -> Future:
    """Raise an exception of ``type`` on a job (severity 0 is fatal: the job ends)."""
    if not isinstance(type, str) or not type or any(c.isspace() for c in type):
        raise FluxError(errno.EINVAL, f"invalid exception type {type!r}: "
                                      "must be a non-empty word")
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 7:
        raise FluxError(errno.EINVAL, f"invalid exception severity {severity!r}: must be 0-7")
    require_handle(flux_handle)
    return RPC(flux_handle, "job-manager.raise",
               {"id": int(jobid), "severity": severity, "type": type, "note": note or ""})


def raise_exception(flux_handle: "Flux", jobid: int, type: str, severity: int = 0,
                    note: str | None = None) -> None:
    """Raise an exception on a job and wait for the job manager to post it."""
    raise_async(flux_handle, jobid, type, severity, note).get()


def cancel_async(flux_handle: "Flux", jobid: int, reason: str | None = None) -> Future:
    """Cancel a pending or running job: a fatal ``cancel`` exception with ``reason``."""
    return raise_async(flux_handle, jobid, "cancel", 0, reason)


def cancel(flux_handle: "Flux", jobid: int, reason: str | None = None) -> None:
    """Cancel a pending or running job and wait until the job manager accepted it."""
    cancel_async(flux_handle, jobid, reason).get()


def job_raise_async(flux_handle: "Flux", jobid: int, type: str | None = None,
                    severity: int = 0, note: str | None = None, *,
                    exc_type: str | None = None) -> Future:
    """Raise a job exception of ``type`` (Flux's newer name: ``exc_type``); a Future.

    Severity 0 is fatal: the job is canceled (if pending) or killed.
    OSError(EINVAL) for a None handle, a missing or blank type or a
    severity outside 0-7; the job manager's error for an unknown or
    inactive job (ENOENT) or another user's job (EPERM).
    """
    if type is None:
        type = exc_type
    elif exc_type is not None:
        raise TypeError("job_raise: give the exception type once (type or exc_type)")
    return raise_async(flux_handle, jobid, type, severity, note)  # type: ignore[arg-type]


def job_raise(flux_handle: "Flux", jobid: int, type: str | None = None, severity: int = 0,
              note: str | None = None, *, exc_type: str | None = None) -> None:
    """Raise a job exception and wait until the job manager has posted it."""
    job_raise_async(flux_handle, jobid, type, severity, note, exc_type=exc_type).get()
