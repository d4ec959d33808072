"""flux.job.event: job eventlog entries, job exceptions, and watching eventlogs.

``EventLogEvent`` is defined in :mod:`flux.eventlog` (as in Flux's
bindings) and re-exported here, so both import paths give the same class.
``event_watch_async`` streams the entries of one of a job's eventlogs from
the ``job-info.eventlog-watch`` service (RFC 41); the stream ends at the
log's terminal event (``clean``, ``done``, all-eof) or when the job goes
inactive, so every watch ends.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from flux.constants import FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux.eventlog import EventLogEvent
from flux.message import Message
from flux.rpc import RPC

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["EventLogEvent", "JobException", "JobEventWatchFuture", "MAIN_EVENTS",
           "event_watch", "event_watch_async", "event_wait"]

#: The events of a job's main eventlog (RFC 21), as Flux's bindings name them.
MAIN_EVENTS = frozenset({"submit", "depend", "priority", "flux-restart", "urgency", "alloc",
                         "free", "start", "release", "finish", "clean", "debug", "exception"})


def require_handle(obj: Any, what: str = "flux_handle") -> None:
    """OSError(EINVAL) for a missing handle or future, as libflux refuses a NULL one."""
    if obj is None:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))


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


class JobEventWatchFuture(RPC):
    """The stream of one job eventlog; ``get_event()`` returns its entries in order.

    ``get_event()`` returns None once the stream has ended (the log reached
    its terminal event, the job went inactive, or the watch was canceled);
    any other error raises OSError (ENOENT for an unknown job or log, EPERM
    for another user's job).
    """

    def __init__(self, flux_handle: "Flux", jobid: int, path: str = "eventlog",
                 flags: int = 0) -> None:
        # set before sending: the handle may deliver responses during send
        self.needs_cancel = True
        self.jobid = jobid
        self.path = path
        super().__init__(flux_handle, "job-info.eventlog-watch",
                         {"id": int(jobid), "path": path, "flags": flags},
                         flags=FLUX_RPC_STREAMING)

    def _deliver(self, msg: Message) -> None:
        # the handle frees the matchtag with the final response: a cancel
        # sent after it could end some later stream that reuses the tag
        if msg.errnum:
            self.needs_cancel = False
        super()._deliver(msg)

    def get_event(self, autoreset: bool = True) -> EventLogEvent | None:
        """The next event (blocking until it arrives), or None when the stream ended.

        The future is reset afterwards unless ``autoreset`` is False, so the
        next call returns the following event.
        """
        try:
            payload = self.get()
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                self.needs_cancel = False
                return None
            raise
        try:
            event = EventLogEvent(payload["event"])
        except (KeyError, TypeError) as exc:
            raise OSError(errno.EPROTO, f"job-info.eventlog-watch: bad response {payload!r}: "
                                        f"{exc}") from None
        except ValueError as exc:
            # a damaged line in the log: an error of this stream, not of the program
            raise OSError(errno.EPROTO, f"{self.path}: {exc}") from None
        if autoreset:
            self.reset()
        return event

    def cancel(self, stop: bool = False) -> None:
        """Ask the service to end the stream (it then ends with ENODATA).

        With ``stop=True`` the continuation set with ``then()`` is also
        dropped, so no further callbacks run.
        """
        if self.needs_cancel:
            self.needs_cancel = False
            handle = self.get_flux()
            if handle is not None and handle._sock is not None:
                handle.rpc("job-info.eventlog-watch-cancel", {"matchtag": self.matchtag},
                           flags=FLUX_RPC_NORESPONSE)
        if stop:
            self.stop()

    def __del__(self) -> None:
        try:
            if self.needs_cancel:
                self.cancel()
        except Exception:  # noqa: BLE001 - the handle may already be gone
            pass


def event_watch_async(flux_handle: "Flux", jobid: int,
                      eventlog: str = "eventlog") -> JobEventWatchFuture:
    """Watch a job eventlog asynchronously; call ``get_event()`` from a ``then()`` callback.

    ``eventlog`` is the log's path in the job's KVS directory: ``eventlog``
    (RFC 21), ``guest.exec.eventlog``, ``guest.output``, ``guest.input``.
    """
    require_handle(flux_handle)
    return JobEventWatchFuture(flux_handle, jobid, eventlog)


def event_watch(flux_handle: "Flux", jobid: int,
                eventlog: str = "eventlog") -> Iterator[EventLogEvent]:
    """Yield the events of a job eventlog as they are posted, until the log ends.

    >>> for event in flux.job.event_watch(h, jobid):
    ...     print(event.name)
    """
    watcher = event_watch_async(flux_handle, jobid, eventlog)
    try:
        event = watcher.get_event()
        while event is not None:
            yield event
            event = watcher.get_event()
    finally:
        # a caller that stops early (break, return, exception) ends the watch
        watcher.cancel()


def event_wait(flux_handle: "Flux", jobid: int, name: str, eventlog: str = "eventlog",
               raiseJobException: bool = True) -> EventLogEvent:
    """Wait for the event ``name`` in a job eventlog and return it.

    Raises JobException if a fatal (severity 0) ``exception`` event comes
    first (unless ``raiseJobException`` is False), and OSError(ENODATA) if
    the log ends without the event.
    """
    require_handle(flux_handle)
    for event in event_watch(flux_handle, jobid, eventlog):
        if event.name == name:
            return event
        if raiseJobException and event.name == "exception" \
                and event.context.get("severity") == 0:
            raise JobException(event)
    raise OSError(errno.ENODATA, f"eventlog ended before event='{name}'")
