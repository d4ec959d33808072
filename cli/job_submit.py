"""Sending jobs to job-ingest: the submission pipeline of ``flux submit`` and ``flux run``.

``Submitter`` keeps up to WINDOW ``flux.job.submit_async`` requests in flight
and hands back results in submission order, so a ``--cc`` burst is one
stream of requests that ingest can batch into few KVS commits.  The
jobspec of a ``--cc`` copy differs from the others only in
``FLUX_JOB_CC``, so copies share one jobspec dict that is changed in place
between sends (each request is encoded when it is sent).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["Submitter", "copies"]

WINDOW = 1024


def _flag_options(flags: int) -> dict[str, bool]:
    from flux.constants import FLUX_JOB_DEBUG, FLUX_JOB_NOVALIDATE, FLUX_JOB_WAITABLE

    return {"waitable": bool(flags & FLUX_JOB_WAITABLE), "debug": bool(flags & FLUX_JOB_DEBUG),
            "novalidate": bool(flags & FLUX_JOB_NOVALIDATE)}


class Submitter:
    """Pipelined job submission on handle H."""

    def __init__(self, h: Any, urgency: int, flags: int, window: int = WINDOW) -> None:
        self.h = h
        self.urgency = urgency
        self.options = _flag_options(flags)
        self.window = max(1, window)

    def submit(self, jobspec: dict[str, Any], urgency: int | None = None,
               flags: int | None = None) -> Any:
        """Submit one job now (with its own URGENCY and FLAGS if given); the SubmitFuture."""
        from flux.job.submit import submit_async

        options = self.options if flags is None else _flag_options(flags)
        return submit_async(self.h, jobspec, urgency=self.urgency if urgency is None else urgency,
                            **options)

    def submit_all(self, jobspecs: Iterable[dict[str, Any] | tuple[dict[str, Any], int, int]],
                   on_result: Callable[[Any, OSError | None], bool]) -> None:
        """Submit each jobspec dict (or ``(jobspec, urgency, flags)``: ``flux
        bulksubmit``'s jobs each have their own); ``on_result(jobid or None, error)``
        in order.

        ``on_result`` returns False to stop sending further jobs (requests
        already in flight are still collected).
        """
        inflight: deque[Any] = deque()
        source = iter(jobspecs)
        sending = True
        while True:
            while sending and len(inflight) < self.window:
                try:
                    jobspec = next(source)
                except StopIteration:
                    sending = False
                    break
                if isinstance(jobspec, tuple):
                    inflight.append(self.submit(*jobspec))
                else:
                    inflight.append(self.submit(jobspec))
            if not inflight:
                return
            future = inflight.popleft()
            try:
                jobid = future.get_id()
            except OSError as exc:
                if not on_result(None, exc):
                    sending = False
                continue
            if not on_result(jobid, None):
                sending = False


def copies(jobspec: dict[str, Any], ids: Iterable[int] | None,
           set_cc: bool) -> Iterator[dict[str, Any]]:
    """JOBSPEC once per id (or once if IDS is None), with FLUX_JOB_CC=id if SET_CC.

    The same dict is yielded each time; it must be consumed (encoded)
    before the next one is asked for.
    """
    if ids is None:
        yield jobspec
        return
    env = None
    if set_cc:
        system = jobspec.setdefault("attributes", {}).setdefault("system", {})
        env = system.get("environment")
        if env is None:
            env = system["environment"] = {}
    for cc in ids:
        if env is not None:
            env["FLUX_JOB_CC"] = str(cc)
        yield jobspec
