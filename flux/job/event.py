"""flux.job.event: job eventlog entries and job exceptions.

``EventLogEvent`` is defined in :mod:`flux.eventlog` (as in Flux's
bindings) and re-exported here, so both import paths give the same class.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flux.eventlog import EventLogEvent

__all__ = ["EventLogEvent", "JobException"]


class JobException(Exception):
    """An ``exception`` event of a job (RFC 21), raised as a Python exception.

    Attributes: ``timestamp``, ``type`` (e.g. "cancel", "timeout"),
    ``note`` (human-readable reason) and ``severity`` (0 is fatal to the
    job, 1-7 are not).  Built from an EventLogEvent, a dict or a JSON line;
    ValueError names a missing ``type`` or ``severity``.
    """

    def __init__(self, event: EventLogEvent | Mapping[str, Any] | str | bytes) -> None:
        if not isinstance(event, EventLogEvent):
            event = EventLogEvent(event)
        context = event.context
        for key in ("type", "severity"):
            if key not in context:
                raise ValueError(f"exception event context has no '{key}' key")
        self.timestamp = event.timestamp
        self.type = context["type"]
        self.note = context.get("note", "no explanation given")
        self.severity = context["severity"]
        super().__init__(self.type, self.severity, self.note)

    def __str__(self) -> str:
        return f"job.exception: type={self.type}: {self.note}"
