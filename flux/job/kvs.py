"""flux.job.kvs: a job's KVS directory (RFC 16) as a ``flux.kvs.KVSDir``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flux.job.JobID import JobID

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["job_kvs", "job_kvs_guest", "job_kvs_key"]


def job_kvs_key(jobid: int, key: str | None = None) -> str:
    """``job.<dothex>`` (or ``job.<dothex>.<key>``) of a job."""
    path = JobID(jobid).kvs
    return f"{path}.{key}" if key else path


def job_kvs(flux_handle: "Flux", jobid: int) -> Any:
    """The job's KVS directory (``job.<dothex>``); ENOENT for an unknown job."""
    import flux.kvs  # imported on use: the KVS client is not needed to submit or list

    return flux.kvs.get_dir(flux_handle, job_kvs_key(jobid))


def job_kvs_guest(flux_handle: "Flux", jobid: int) -> Any:
    """The job's guest directory (``job.<dothex>.guest``)."""
    import flux.kvs

    return flux.kvs.get_dir(flux_handle, job_kvs_key(jobid, "guest"))
