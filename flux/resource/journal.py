"""flux.resource.journal: the resource eventlog, past and live, from ``resource.journal``.

``ResourceJournalConsumer(h, since=0.0, include_sentinel=False)`` has the
API of ``flux.job.journal.JournalConsumer`` (``start()``, ``poll(timeout)``,
``set_callback(cb, *args, **kwargs)``, ``stop()``, iteration), over rank
0's ``resource.journal`` stream: first the history of
``resource.eventlog`` (time-ordered, only events after ``since``), then,
after an optional empty sentinel event, each event as it is committed.
``resource-define`` events carry the instance R in ``event.R``::

    consumer = ResourceJournalConsumer(h).start()
    while (event := consumer.poll(timeout=5.0)) is not None:
        print(event)

Protocol (Flux's, see specs/resource-service.md): each response is
``{"events": [entry], "R"?: R}``; ``{"events": []}`` ends the history;
``resource.journal-cancel {"matchtag"}`` ends the stream with ENODATA.
"""
from __future__ import annotations

import errno
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flux.constants import FLUX_RPC_NORESPONSE
from flux.eventlog import EventLogEvent
from flux.job.journal import JournalConsumer

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["ResourceJournalEvent", "ResourceJournalConsumer"]


class ResourceJournalEvent(EventLogEvent):
    """One ``resource.eventlog`` entry from the journal.

    Attributes: ``name``, ``timestamp``, ``context``, ``context_string``,
    and ``R`` (the instance R, a dict, on ``resource-define`` events; else
    None).  The empty event (no name) marks the end of the history.
    """

    def __init__(self, event: Mapping[str, Any], R: Any = None) -> None:
        if event:
            super().__init__(event)
        else:
            dict.__init__(self, {"timestamp": time.time(), "context": {}})
        self.R = R

    @property
    def name(self) -> str:
        return self.get("name", "")

    def is_empty(self) -> bool:
        """True for the empty event that separates history from live events."""
        return "name" not in self

    def __str__(self) -> str:
        if self.is_empty():
            return f"{self.timestamp:<0.5f} End of historical data stream"
        context = self.context_string
        text = f"{self.timestamp:<0.5f} {self.name}"
        return f"{text} {context}" if context else text

    def __repr__(self) -> str:
        return f"ResourceJournalEvent({dict(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResourceJournalEvent):
            if self.is_empty() or other.is_empty():
                return self.is_empty() and other.is_empty()
            return dict.__eq__(self, other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class ResourceJournalConsumer(JournalConsumer):
    """Consume the resource journal (see the module docstring).

    ``since``: hand out only events newer than this timestamp.
    ``include_sentinel``: return ``SENTINEL_EVENT`` (empty, ``is_empty()``)
    between the history and the live events.  ``stop()`` ends the stream;
    ``poll()`` (or the callback) then gets None.
    """

    SENTINEL_EVENT = ResourceJournalEvent({})
    topic = "resource.journal"
    cancel_topic = "resource.journal-cancel"

    def __init__(self, flux_handle: "Flux", since: float = 0.0,
                 include_sentinel: bool = False) -> None:
        super().__init__(flux_handle, full=True, since=since, include_sentinel=include_sentinel)

    @property
    def request_payload(self) -> dict[str, Any]:
        return {}

    def create_event(self, entry: Mapping[str, Any], R: Any = None,  # type: ignore[override]
                     **_: Any) -> ResourceJournalEvent:
        """One ResourceJournalEvent; ``R`` is kept only on ``resource-define``."""
        return ResourceJournalEvent(entry, R if entry.get("name") == "resource-define" else None)

    def _process(self, resp: Any) -> None:
        if not isinstance(resp, Mapping) or not isinstance(resp.get("events"), list):
            raise OSError(errno.EPROTO, f"{self.topic}: bad response {resp!r}")
        entries = resp["events"]
        if not entries:
            if self.processing_inactive:    # the end of the history
                self._end_history()
            return
        events = []
        for entry in entries:
            try:
                event = self.create_event(entry, R=resp.get("R"))
            except (ValueError, TypeError, AttributeError) as exc:
                raise OSError(errno.EPROTO, f"{self.topic}: bad event {entry!r}: {exc}") from None
            if event.timestamp > self.since:
                events.append(event)
        if self.processing_inactive:
            self._history.extend(events)
        else:
            self.backlog.extend(events)

    def _inactive_history(self) -> list[Any]:
        return []       # the resource journal's history is all in the stream

    def stop(self) -> None:
        """Ask rank 0 to end the stream; ``poll()`` / the callback then get None."""
        if self.rpc is None or self._ended:
            return
        self.handle.rpc(self.cancel_topic, {"matchtag": self.rpc.matchtag},
                        flags=FLUX_RPC_NORESPONSE)
