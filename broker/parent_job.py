"""An instance that runs as a job of another tells its parent where it listens.

Rank 0 posts a volatile ``uri`` memo (``ssh://HOST/PATH/local``) to its job in
the parent instance, so ``flux jobs -o '{uri}'``, ``flux proxy JOBID``,
``flux uri JOBID``, ``flux jobs -R``, ``flux pstree`` and ``flux top`` can
find it.  A parent that cannot be reached costs a log line, not the start.
"""
from __future__ import annotations

import asyncio
import socket
from typing import Any

from flux.errors import FluxError

__all__ = ["remote_uri", "record_uri"]

_TIMEOUT = 5.0


def remote_uri(local_uri: str, hostname: str | None = None) -> str:
    """``local:///run/x/local`` -> ``ssh://HOST/run/x/local``."""
    path = local_uri[len("local://"):] if local_uri.startswith("local://") else local_uri
    return f"ssh://{hostname or socket.gethostname()}{path}"


async def record_uri(attrs: Any, log: Any) -> None:
    parent = attrs.get_default("parent-uri")
    jobid = attrs.get_default("jobid")
    if not parent or not jobid:
        return
    from flux.core.aio import AsyncFlux
    from flux.job.JobID import JobID

    uri = remote_uri(attrs.get("local-uri"))
    try:
        h = await asyncio.wait_for(AsyncFlux.connect(parent), _TIMEOUT)
        try:
            await asyncio.wait_for(h.rpc("job-manager.memo", {
                "id": int(JobID(jobid)), "memo": {"uri": uri}, "volatile": True}), _TIMEOUT)
        finally:
            h.close()
    except (FluxError, OSError, ValueError, asyncio.TimeoutError) as exc:
        log.warning(f"cannot record this instance's URI in job {jobid} of {parent}: {exc}")
