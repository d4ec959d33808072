"""flux.job.timeleft: seconds left for the job this process runs in.

A process started by a job has ``FLUX_JOB_ID`` (and ``FLUX_URI``) in its
environment: the job's expiration comes from the job list of that
instance.  A process that is an instance's initial program has no
``FLUX_JOB_ID``, but when that instance is itself a job of another, its
``jobid`` and ``parent-uri`` attributes name that job and instance: the
expiration of the enclosing instance is its job's.  Anything else is not
in a job (OSError).
"""
from __future__ import annotations

import errno
import math
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["timeleft", "job_timeleft"]

_PENDING = 2 | 4 | 8     # DEPEND | PRIORITY | SCHED
_RUN = 16


def job_timeleft(handle: "Flux", jobid_text: str) -> float:
    """Seconds left for job JOBID_TEXT (any encoding), as ``timeleft`` reports them."""
    from flux.job.JobID import JobID
    from flux.job.list import job_list_id

    try:
        jobid = JobID(jobid_text)
    except (ValueError, OSError):
        raise OSError(errno.EINVAL, f"failed to parse jobid {jobid_text}") from None
    try:
        job = job_list_id(handle, jobid, ["expiration", "state"]).get_job()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise OSError(errno.ENOENT, f"{jobid_text}: no such jobid") from None
        raise OSError(exc.errno, f"flux_job_list_id: {jobid_text}: "
                                 f"{exc.strerror or os.strerror(exc.errno or 0)}") from None
    state = int(job.get("state", 0))
    if state & _PENDING:
        raise OSError(errno.EINVAL, f"job {jobid_text} has not started")
    if state != _RUN:
        return 0.0
    expiration = float(job.get("expiration") or 0.0)
    if expiration == 0.0:
        return math.inf
    return max(0.0, expiration - time.time())


def timeleft(flux_handle: "Flux | None" = None) -> float:
    """Seconds left for the job of this process, or of the enclosing instance.

    ``inf`` when the job has no time limit, 0 when it is no longer running
    (or its time is up).  OSError when this process is not part of a job
    ("unable to associate this process with a Flux jobid"), when the job
    has not started, or when the job list cannot be asked.  Without
    ``flux_handle`` a handle to the enclosing instance is opened.
    """
    import flux

    handle = flux_handle if flux_handle is not None else flux.Flux()
    jobid_text = os.environ.get("FLUX_JOB_ID")
    if jobid_text:
        return job_timeleft(handle, jobid_text)
    # an initial program: the enclosing instance may be a job of its parent
    try:
        jobid_text = handle.attr_get("jobid")
    except OSError:
        raise OSError(errno.ENOENT,
                      "unable to associate this process with a Flux jobid") from None
    try:
        uri = handle.attr_get("parent-uri")
    except OSError as exc:
        raise OSError(exc.errno, f"failed to get parent-uri attribute: "
                                 f"{os.strerror(exc.errno or 0)}") from None
    try:
        parent = flux.Flux(uri)
    except OSError as exc:
        raise OSError(exc.errno, f"failed to connect to parent instance: "
                                 f"{os.strerror(exc.errno or 0)}") from None
    try:
        return job_timeleft(parent, jobid_text)
    finally:
        parent.close()
