"""The scheduler's pending allocation requests, in RFC 27 order.

Jobs leave highest priority first, then earliest ``t_submit``, then
lowest id.  A heap with lazy deletion keeps every operation O(log n):
``push``, ``remove`` (cancel), ``reprioritize`` and ``pop``; ``head``
skips entries made stale by the last two.  The heap is rebuilt when stale
entries outnumber live ones, so memory stays proportional to the queue.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PendingJob", "PendingQueue"]


@dataclass(slots=True)
class PendingJob:
    """One ``sched.alloc`` waiting for resources."""

    id: int
    priority: int
    t_submit: float
    userid: int = 0
    request: Any = None          # schedcore.Request
    msg: Any = None              # the alloc request to answer
    reason: str | None = None    # sched.reason_pending as last annotated
    tried_gen: int = -1          # resource generation of the last failed attempt
    key: tuple[int, float, int] = field(default=(0, 0.0, 0))


class PendingQueue:
    __slots__ = ("_heap", "_jobs", "_stale")

    def __init__(self) -> None:
        self._heap: list[tuple[tuple[int, float, int], int]] = []
        self._jobs: dict[int, PendingJob] = {}
        self._stale = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, jobid: object) -> bool:
        return jobid in self._jobs

    def __iter__(self) -> Iterator[PendingJob]:
        """Jobs in no particular order."""
        return iter(list(self._jobs.values()))

    def get(self, jobid: int) -> PendingJob | None:
        return self._jobs.get(jobid)

    def push(self, job: PendingJob) -> None:
        """Add JOB (ValueError if its id is already queued)."""
        if job.id in self._jobs:
            raise ValueError(f"job {job.id} is already pending")
        job.key = (-job.priority, job.t_submit, job.id)
        self._jobs[job.id] = job
        heapq.heappush(self._heap, (job.key, job.id))

    def remove(self, jobid: int) -> PendingJob | None:
        """Take JOBID out of the queue; None if it is not there."""
        job = self._jobs.pop(jobid, None)
        if job is not None:
            self._stale += 1
            self._maybe_compact()
        return job

    def reprioritize(self, jobid: int, priority: int) -> bool:
        """Give JOBID a new priority; False if it is not queued or unchanged."""
        job = self._jobs.get(jobid)
        if job is None or job.priority == priority:
            return False
        job.priority = priority
        job.key = (-priority, job.t_submit, job.id)
        heapq.heappush(self._heap, (job.key, job.id))
        self._stale += 1
        self._maybe_compact()
        return True

    def head(self) -> PendingJob | None:
        """The job to consider next, or None."""
        heap = self._heap
        jobs = self._jobs
        while heap:
            key, jobid = heap[0]
            job = jobs.get(jobid)
            if job is not None and job.key == key:
                return job
            heapq.heappop(heap)
            self._stale -= 1
        return None

    def pop(self) -> PendingJob | None:
        """Remove and return the head."""
        job = self.head()
        if job is not None:
            heapq.heappop(self._heap)
            del self._jobs[job.id]
        return job

    def _maybe_compact(self) -> None:
        if self._stale > 64 and self._stale > len(self._jobs):
            self._heap = [(job.key, job.id) for job in self._jobs.values()]
            heapq.heapify(self._heap)
            self._stale = 0
