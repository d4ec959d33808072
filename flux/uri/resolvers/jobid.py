"""``jobid:ID[/ID...]``: the URI of a running job that is a Flux instance.

The first ID is a job of the enclosing instance (``$FLUX_URI``); each
further ID is a job of the instance before it (``ƒA/ƒB`` is job B inside
job A).  A job's URI is the ``uri`` its instance recorded in the job's
``user`` annotations (a memo).  Errors (ValueError): ``X is not a valid
jobid``, ``jobid X not found``, ``jobid X is not running``, ``URI not
found for job X`` (the job is not a Flux instance).
"""
from __future__ import annotations

import os
from typing import Any

from flux.uri import JobURI, URIResolverPlugin, URIResolverURI


def _job_uri(handle: Any, arg: str) -> str:
    from flux.job import JobID, job_list_id

    try:
        jobid = JobID(arg)
    except (OSError, ValueError, TypeError):
        raise ValueError(f"{arg} is not a valid jobid") from None
    try:
        job = job_list_id(handle, jobid, attrs=["state", "annotations"]).get_jobinfo()
    except FileNotFoundError:
        raise ValueError(f"jobid {arg} not found") from None
    if job.state != "RUN":
        raise ValueError(f"jobid {arg} is not running")
    uri = job.user.uri
    if not isinstance(uri, str) or not uri:
        raise ValueError(f"URI not found for job {arg}")
    return uri


class URIResolver(URIResolverPlugin):
    """Fetch the URI of a Flux instance running as a job."""

    def describe(self) -> str:
        return "Get URI for a given Flux JOBID"

    def resolve(self, uri: URIResolverURI) -> str:
        import flux

        ids = [part for part in uri.path.split("/") if part]
        if not ids:
            raise ValueError(f"no jobid in '{uri.uri}'")
        force_local = "local" in uri.query_dict or bool(os.environ.get("FLUX_URI_RESOLVE_LOCAL"))
        handle = flux.Flux()
        result = ""
        try:
            for depth, arg in enumerate(ids):
                result = _job_uri(handle, arg)
                if depth + 1 < len(ids):
                    handle.close()
                    # this client reaches instances through their local socket
                    handle = flux.Flux(JobURI(result).local)
        finally:
            handle.close()
        if force_local:
            return JobURI(result).local
        return result
