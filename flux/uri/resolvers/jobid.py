"""``jobid:ID[/ID...]``: the URI of a running job that is a Flux instance.

The first ID is a job of the enclosing instance (``$FLUX_URI``); each
further ID is a job of the instance before it (``ƒA/ƒB`` is job B inside
job A).  A job's URI is the ``uri`` its instance recorded in the job's
``user`` annotations (a volatile memo).  Path elements other than job ids:
``..`` is the parent of the instance reached so far (``parent-uri``, or
the instance itself at level 0), ``.`` that instance; a path of only
``/`` is the root instance, and an empty path the enclosing instance
itself.  Leading and repeated slashes before job ids are ignored
(``//ƒA//ƒB`` is ``ƒA/ƒB``).

``?wait`` waits for each job to start and record its URI (and fails if it
ends first).  ``?local`` (or ``FLUX_URI_RESOLVE_LOCAL``) gives the local
form.  Errors (URIResolveError, a ValueError): ``X is not a valid jobid``
(EINVAL), ``jobid X not found``, ``jobid X is not running``, ``URI not
found for job X`` (the job is not a Flux instance, or has not recorded its
URI yet) (ENOENT).
"""
from __future__ import annotations

import errno
import os
import time
from typing import Any

from flux.uri import JobURI, URIResolveError, URIResolverPlugin, URIResolverURI

#: how often ``?wait`` looks at the job again (its URI is a volatile memo,
#: which is not in the eventlog, so there is no event to wait for)
WAIT_POLL_S = 0.05


def _lookup(handle: Any, jobid: int) -> Any:
    from flux.job import job_list_id

    return job_list_id(handle, jobid, attrs=["state", "annotations"]).get_jobinfo()


def job_uri(handle: Any, arg: str, wait: bool = False) -> str:
    """The URI recorded by job ARG of the instance behind HANDLE."""
    from flux.job import JobID

    try:
        jobid = JobID(arg)
    except (OSError, ValueError, TypeError):
        raise URIResolveError(f"{arg} is not a valid jobid", errno.EINVAL) from None
    while True:
        try:
            job = _lookup(handle, jobid)
        except FileNotFoundError:
            raise URIResolveError(f"jobid {arg} not found", errno.ENOENT) from None
        uri = job.user.uri
        if job.state == "RUN" and isinstance(uri, str) and uri:
            return uri
        if not wait:
            if job.state != "RUN":
                raise URIResolveError(f"jobid {arg} is not running", errno.ENOENT)
            raise URIResolveError(f"URI not found for job {arg}", errno.ENOENT)
        if job.state in ("CLEANUP", "INACTIVE"):
            raise URIResolveError(f"URI not found for job {arg}", errno.ENOENT)
        time.sleep(WAIT_POLL_S)


def _level(handle: Any) -> int:
    try:
        return int(handle.attr_get("instance-level"))
    except (OSError, ValueError):
        return 0


def _own_uri(handle: Any) -> str:
    try:
        return handle.attr_get("local-uri")
    except OSError:
        return handle.url


def _parent_uri(handle: Any) -> str:
    """The parent's URI, or this instance's own at level 0 (as Flux's ``..``)."""
    if _level(handle) > 0:
        return handle.attr_get("parent-uri")
    return _own_uri(handle)


def _root_uri(handle: Any) -> str:
    """The URI of the root (level 0) instance above the one behind HANDLE."""
    import flux

    h = handle
    try:
        while _level(h) > 0:
            parent = JobURI(h.attr_get("parent-uri")).local
            if h is not handle:
                h.close()
            h = flux.Flux(parent)
        return _own_uri(h)
    finally:
        if h is not handle:
            h.close()


class URIResolver(URIResolverPlugin):
    """Fetch the URI of a Flux instance running as a job."""

    def describe(self) -> str:
        return "Get URI for a given Flux JOBID"

    def resolve(self, uri: URIResolverURI) -> str:
        import flux

        force_local = "local" in uri.query_dict or bool(os.environ.get("FLUX_URI_RESOLVE_LOCAL"))
        wait = "wait" in uri.query_dict
        parts = [part for part in uri.path.split("/") if part]
        handle = flux.Flux()
        try:
            result: str | None
            if uri.path.startswith("/") and not parts:
                result = _root_uri(handle)
                handle.close()
                handle = None
            else:
                result = None
            for arg in parts:
                if arg == ".":
                    continue
                if handle is None:
                    # this client reaches instances through their local socket
                    handle = flux.Flux(JobURI(result).local)
                result = _parent_uri(handle) if arg == ".." else job_uri(handle, arg, wait)
                handle.close()
                handle = None
            if result is None:  # no job id: the enclosing instance itself
                result = _own_uri(handle)
        finally:
            if handle is not None:
                handle.close()
        if force_local:
            return JobURI(result).local
        return result
