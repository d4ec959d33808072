"""The journal: a stream of committed job events for job-list and other listeners.

``job-manager.events-journal`` (streaming, owner only).  With ``full`` the
backlog of every active job's committed events comes first (in chunks),
then ``{"batch": [], "sentinel": true}``, then live batches.  A batch is
``{"batch": [{"id", "events": [...], "jobspec"?, "R"?}, ...]}``; events
appear only after their commit is durable, in commit order.  Journal-only
entries: ``annotations`` (volatile scheduler annotations of pending jobs,
sent once per loop turn) and ``purge``.  One payload object is shared by
every listener (in-process messages are not copied).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from broker.module import Stream
from jobmgr.manager.active import ActiveJob

__all__ = ["Journal", "BACKLOG_CHUNK"]

BACKLOG_CHUNK = 1024


def backlog_item(job: ActiveJob) -> dict[str, Any]:
    events = list(job.events)
    if job.annotations is not None:
        events.append({"timestamp": time.time(), "name": "annotations",
                       "context": {"annotations": job.annotations}})
    item: dict[str, Any] = {"id": job.rec.id, "events": events, "jobspec": job.jobspec}
    if job.R is not None:
        item["R"] = job.R
    return item


class Journal:
    def __init__(self) -> None:
        self._streams: list[Stream] = []
        self._annotations: dict[int, dict[str, Any]] = {}
        self._flush_scheduled = False

    @property
    def listeners(self) -> int:
        return len(self._streams)

    def subscribe(self, stream: Stream, full: bool, jobs: Iterable[ActiveJob]) -> None:
        """Add a listener; with FULL send the active jobs' backlog and the sentinel first."""
        if full:
            chunk: list[dict[str, Any]] = []
            for job in jobs:
                if not job.events:
                    continue  # its submit is not committed yet: it comes live
                chunk.append(backlog_item(job))
                if len(chunk) >= BACKLOG_CHUNK:
                    stream.send({"batch": chunk})
                    chunk = []
            if chunk:
                stream.send({"batch": chunk})
            stream.send({"batch": [], "sentinel": True})
        self._streams.append(stream)

        def gone() -> None:
            if stream in self._streams:
                self._streams.remove(stream)

        stream.on_cancel = gone

    def publish(self, items: list[dict[str, Any]]) -> None:
        """Send one batch of committed events to every listener."""
        if not items or not self._streams:
            return
        payload = {"batch": items}
        for stream in list(self._streams):
            if not stream.send(payload):
                self._streams.remove(stream)

    def annotate(self, jobid: int, annotations: dict[str, Any] | None) -> None:
        """Queue an ``annotations`` entry for JOBID (sent at the end of the loop turn)."""
        if not self._streams:
            return
        self._annotations[jobid] = {"timestamp": time.time(), "name": "annotations",
                                    "context": {"annotations": annotations}}
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_annotations)

    def _flush_annotations(self) -> None:
        self._flush_scheduled = False
        pending, self._annotations = self._annotations, {}
        self.publish([{"id": jobid, "events": [entry]} for jobid, entry in pending.items()])

    def purged(self, jobids: Iterable[int]) -> None:
        now = time.time()
        self.publish([{"id": jobid, "events": [{"timestamp": now, "name": "purge"}]}
                      for jobid in jobids])

    def close(self) -> None:
        for stream in list(self._streams):
            stream.end()
        self._streams.clear()
