"""flux.resource.journal: the resource eventlog, past and live, from ``resource.journal``.

``ResourceJournalConsumer(h, since=0.0, include_sentinel=False)`` has the
API of ``flux.abc.JournalConsumerBase`` (``start()``, ``poll(timeout)``,
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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flux.abc import JournalConsumerBase, JournalEventBase
from flux.job.event import require_handle

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["ResourceJournalEvent", "ResourceJournalConsumer"]


class ResourceJournalEvent(JournalEventBase):
    """One ``resource.eventlog`` entry from the journal.

    Attributes: ``name``, ``timestamp``, ``context``, ``context_string``,
    and ``R`` (the instance R, a dict, on ``resource-define`` events; else
    None).  The empty event (no name) marks the end of the history.
    """

    def __init__(self, event: Mapping[str, Any], R: Any = None) -> None:
        super().__init__(event)
        self.R = R


class ResourceJournalConsumer(JournalConsumerBase):
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
        require_handle(flux_handle)
        super().__init__(flux_handle, self.topic, cancel_topic=self.cancel_topic, full=True,
                         since=since, include_sentinel=include_sentinel)

    def process_response(self, resp: Mapping[str, Any]) -> dict[str, Any]:
        """The instance R that rides along with a ``resource-define`` event."""
        return {"R": resp.get("R")}

    def create_event(self, entry: Mapping[str, Any], R: Any = None,  # type: ignore[override]
                     **_: Any) -> ResourceJournalEvent:
        """One ResourceJournalEvent; ``R`` is kept only on ``resource-define``."""
        return ResourceJournalEvent(entry, R if entry.get("name") == "resource-define" else None)
