"""flux.job.submit: submit jobs to the ``job-ingest`` service.

``submit_async`` sends the request at once and returns a SubmitFuture, so
a burst of submissions is many requests in flight on one connection (the
ingest service commits all that arrive together in one KVS transaction);
``submit`` waits for the job id.
"""
from __future__ import annotations

import errno
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flux.constants import (
    FLUX_JOB_DEBUG,
    FLUX_JOB_NOVALIDATE,
    FLUX_JOB_PRE_SIGNED,
    FLUX_JOB_URGENCY_DEFAULT,
    FLUX_JOB_URGENCY_MAX,
    FLUX_JOB_URGENCY_MIN,
    FLUX_JOB_WAITABLE,
)
from flux.errors import FluxError
from flux.job.event import require_handle
from flux.job.JobID import JobID
from flux.job.Jobspec import Jobspec
from flux.rpc import RPC

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["SubmitFuture", "submit", "submit_async", "submit_get_id"]


class SubmitFuture(RPC):
    """The response to one job submission."""

    def get_id(self) -> JobID:
        """The new job's id (blocking until ingest answers); OSError if refused."""
        payload = self.get()
        try:
            return JobID(payload["id"])
        except (KeyError, TypeError) as exc:
            raise FluxError(errno.EPROTO, f"job-ingest.submit: bad response {payload!r}: "
                                          f"{exc}") from None


def _jobspec_payload(jobspec: Any) -> Any:
    # A Jobspec goes as its object (no JSON text inside JSON); a string is
    # passed through and parsed (and checked) by ingest.
    if isinstance(jobspec, Jobspec):
        return jobspec.jobspec
    if isinstance(jobspec, str):
        return jobspec
    if isinstance(jobspec, (bytes, bytearray)):
        try:
            return bytes(jobspec).decode()
        except UnicodeDecodeError as exc:
            raise FluxError(errno.EINVAL, f"jobspec is not valid UTF-8: {exc}") from None
    if isinstance(jobspec, Mapping):
        return dict(jobspec)
    if jobspec is None:
        raise FluxError(errno.EINVAL, "invalid jobspec: None")
    raise TypeError(f"jobspec must be a Jobspec or its JSON string, "
                    f"not {type(jobspec).__name__}")


def submit_async(flux_handle: "Flux", jobspec: Any, urgency: int = FLUX_JOB_URGENCY_DEFAULT,
                 waitable: bool = False, debug: bool = False, pre_signed: bool = False,
                 novalidate: bool = False) -> SubmitFuture:
    """Submit a job without waiting; ``get_id()`` on the result gives its id.

    ``jobspec`` is a Jobspec or its JSON string (with ``pre_signed``, a
    signed J).  ``urgency`` 0 (hold) to 31 (expedite), default 16; guests
    may use 0-16.  ``waitable`` (allow ``flux.job.wait``) and ``novalidate``
    are for the instance owner only; ``debug`` adds debug events to the
    job's eventlog.  A None handle raises OSError(EINVAL).
    """
    if isinstance(urgency, bool) or not isinstance(urgency, int) \
            or not FLUX_JOB_URGENCY_MIN <= urgency <= FLUX_JOB_URGENCY_MAX:
        # the text job-ingest gives (flux-core's)
        raise FluxError(errno.EINVAL, f"urgency range is [{FLUX_JOB_URGENCY_MIN}:"
                                      f"{FLUX_JOB_URGENCY_MAX}]")
    flags = 0
    if waitable:
        flags |= FLUX_JOB_WAITABLE
    if debug:
        flags |= FLUX_JOB_DEBUG
    if pre_signed:
        flags |= FLUX_JOB_PRE_SIGNED
    if novalidate:
        flags |= FLUX_JOB_NOVALIDATE
    body = _jobspec_payload(jobspec)
    require_handle(flux_handle)
    payload = {"J" if pre_signed else "jobspec": body, "urgency": urgency, "flags": flags}
    return SubmitFuture(flux_handle, "job-ingest.submit", payload)


def submit_get_id(future: SubmitFuture) -> JobID:
    """The JobID of a ``submit_async`` future (blocking until ingest answers).

    OSError(EINVAL) for a None future; the submission's error otherwise.
    """
    require_handle(future, "future")
    if isinstance(future, SubmitFuture):
        return future.get_id()
    # any other future of a job-ingest.submit request
    return SubmitFuture.get_id(future)  # type: ignore[arg-type]


def submit(flux_handle: "Flux", jobspec: Any, urgency: int = FLUX_JOB_URGENCY_DEFAULT,
           waitable: bool = False, debug: bool = False, pre_signed: bool = False,
           novalidate: bool = False) -> JobID:
    """Submit a job and return its id once ingest has accepted it (OSError if refused)."""
    return submit_async(flux_handle, jobspec, urgency=urgency, waitable=waitable, debug=debug,
                        pre_signed=pre_signed, novalidate=novalidate).get_id()
