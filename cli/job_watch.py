"""Streams of job eventlog entries for the job commands (RFC 41 eventlog-watch).

``EventlogWatch`` wraps one flux.job JobEventWatchFuture (with the
WAITCREATE flag when asked): ``next(timeout)`` returns the next entry as
an EventLogEvent, or None once the stream has ended (the log reached its
terminal event, was canceled, or the job went inactive or was purged).
Other errors raise OSError.  ``cancel()`` asks job-info to end the stream.

``eventlog_path`` maps the short names ``flux job eventlog -p`` accepts
(``exec``, ``output``, ``input``) to their KVS keys.
"""
from __future__ import annotations

import time
from typing import Any

from flux.eventlog import EventLogEvent

__all__ = ["EventlogWatch", "eventlog_path", "WAITCREATE", "parse_eventlog_text"]

WAITCREATE = 1
_SHORT_PATHS = {"exec": "guest.exec.eventlog", "output": "guest.output",
                "input": "guest.input"}


def eventlog_path(name: str) -> str:
    """``exec`` -> ``guest.exec.eventlog``; other names are KVS keys already."""
    return _SHORT_PATHS.get(name, name)


def parse_eventlog_text(text: str) -> list[EventLogEvent]:
    """The entries of an RFC 18 eventlog (text after the last newline is ignored)."""
    lines = text.split("\n")
    return [EventLogEvent(line) for line in lines[:-1] if line]


class EventlogWatch:
    """One job eventlog watch in flight on handle H."""

    def __init__(self, h: Any, jobid: int, path: str = "eventlog", flags: int = 0) -> None:
        from flux.job.event import JobEventWatchFuture

        self.path = path
        self.future = JobEventWatchFuture(h, int(jobid), path, flags)
        self.ended = False

    def next(self, timeout: float | None = None) -> EventLogEvent | None:
        """The next entry; None at the end; OSError(ETIMEDOUT) after TIMEOUT seconds."""
        if self.ended:
            return None
        if timeout is not None and not self.future.is_ready():
            self.future.wait_for(max(timeout, 1e-6))
        try:
            entry = self.future.get_event()
        except OSError:
            self.ended = True
            raise
        if entry is None:
            self.ended = True
        return entry

    def cancel(self) -> None:
        """Ask job-info to end the stream (it then ends with ENODATA)."""
        self.future.cancel()


class Deadline:
    """Seconds left until a point in time (None: no limit)."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None or seconds < 0 else time.monotonic() + seconds

    def remaining(self) -> float | None:
        if self.end is None:
            return None
        return max(0.0, self.end - time.monotonic())
