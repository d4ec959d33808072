"""flux.abc.journal: abstract bases for consumers of journal-style streaming RPCs.

A journal service answers one streaming request with its history (past
events), then an empty "sentinel" response, then each new event as it
happens; a cancel request (``{"matchtag": N}`` to ``cancel_topic``) ends
the stream with ENODATA.  ``JournalConsumerBase`` does the generic part:
it sends the request (``start()``), gathers the history and hands it out
sorted by time, drops events not newer than ``since``, optionally hands
out ``SENTINEL_EVENT`` between history and live events, and delivers
events to ``poll(timeout)`` or to a ``set_callback()`` callback, then
None once the stream has ended after ``stop()``.

A subclass names the service and says how a response becomes events::

    class MyConsumer(JournalConsumerBase):
        def __init__(self, h, **kw):
            super().__init__(h, "resource.journal", **kw)

        def process_response(self, resp):
            return {"R": resp.get("R")}     # passed to create_event()

        def create_event(self, entry, R=None):
            return JournalEventBase(entry)

Each response must be an object with an ``events`` array of RFC 18
entries; ``is_empty_response()`` (default: the array is empty) spots the
sentinel and ``request_payload`` (default ``{}``) is the request body.
"""
from __future__ import annotations

import errno
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable

from flux.constants import FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux.eventlog import EventLogEvent

if TYPE_CHECKING:
    from flux.core.handle import Flux
    from flux.rpc import RPC

__all__ = ["JournalConsumerBase", "JournalEventBase"]


class JournalEventBase(EventLogEvent):
    """One event from a journal: an eventlog entry (``name``, ``timestamp``, ``context``).

    Also ``context_string``.  An entry without a timestamp is stamped
    now.  The empty event (built from ``{}``, no name) stands for the
    sentinel between history and live events: ``is_empty()`` is True and
    ``str()`` is ``TIMESTAMP End of historical data stream``.
    """

    def __init__(self, event: Mapping[str, Any]) -> None:
        if not event:
            dict.__init__(self, {"timestamp": time.time(), "context": {}})
            return
        if isinstance(event, Mapping) and "timestamp" not in event:
            event = {**event, "timestamp": time.time()}
        super().__init__(event)

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
        return f"{type(self).__name__}({dict(self)!r})"

    # empty events are all equal (each is "the sentinel"); others compare by content
    def __eq__(self, other: object) -> bool:
        if isinstance(other, JournalEventBase):
            if self.is_empty() or other.is_empty():
                return self.is_empty() and other.is_empty()
            return dict.__eq__(self, other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class JournalConsumerBase(ABC):
    """Consume a journal-style streaming RPC (see the module docstring).

    ``topic``: the journal service's topic; ``cancel_topic``: the topic
    that ends the stream (default ``topic + "-cancel"``).  ``full``: start
    with the history (else only live events).  ``since``: hand out only
    events newer than this timestamp (resume after the newest one handled).
    ``include_sentinel``: hand out ``SENTINEL_EVENT`` once the history is
    out.  Subclasses implement ``process_response()`` and ``create_event()``.
    """

    SENTINEL_EVENT: JournalEventBase = JournalEventBase({})

    def __init__(self, flux_handle: "Flux", topic: str, cancel_topic: str | None = None,
                 full: bool = True, since: float = 0.0, include_sentinel: bool = False) -> None:
        if flux_handle is None:     # as libflux refuses a NULL handle
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        self.handle = flux_handle
        self.topic = topic
        self.cancel_topic = cancel_topic if cancel_topic is not None else f"{topic}-cancel"
        self.full = bool(full)
        self.since = float(since)
        self.include_sentinel = bool(include_sentinel)
        self.rpc: RPC | None = None
        self.cb: Callable[..., Any] | None = None
        self.cb_args: tuple[Any, ...] = ()
        self.cb_kwargs: dict[str, Any] = {}
        self.backlog: deque[JournalEventBase | None] = deque()
        self.processing_inactive = self.full
        self._history: list[JournalEventBase] = []
        self._ended = False

    # -- what a subclass says about its service ------------------------------------------
    @property
    def request_payload(self) -> dict[str, Any]:
        """The body of the journal request (default: empty)."""
        return {}

    @abstractmethod
    def process_response(self, resp: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments for ``create_event()`` of each entry of ``resp`` (one response)."""

    @abstractmethod
    def create_event(self, entry: Mapping[str, Any], **kwargs: Any) -> JournalEventBase:
        """The event object for one entry of a response's ``events`` array."""

    def is_empty_response(self, resp: Mapping[str, Any]) -> bool:
        """True for the sentinel response that ends the history (default: no events)."""
        return len(resp["events"]) == 0

    # -- the generic machinery -----------------------------------------------------------
    def _process(self, resp: Any) -> None:
        """Turn one response into events: into the history, or the backlog once live."""
        if not isinstance(resp, Mapping) or not isinstance(resp.get("events"), list):
            raise OSError(errno.EPROTO, f"{self.topic}: bad response {resp!r}")
        if self.is_empty_response(resp):
            if self.processing_inactive:
                self._end_history()
            return
        kwargs = self.process_response(resp) or {}
        events = []
        for entry in resp["events"]:
            try:
                event = self.create_event(entry, **kwargs)
            except (ValueError, TypeError, AttributeError) as exc:
                raise OSError(errno.EPROTO, f"{self.topic}: bad event {entry!r}: {exc}") from None
            if event.timestamp > self.since:
                events.append(event)
        if self.processing_inactive:
            self._history.extend(events)
        else:
            self.backlog.extend(events)

    def _inactive_history(self) -> list[Any]:
        """Events to add to the history that the stream did not carry (default none)."""
        return []

    def _end_history(self) -> None:
        self._history.extend(self._inactive_history())
        self._history.sort(key=lambda e: e.timestamp)
        self.backlog.extend(self._history)
        self._history = []
        self.processing_inactive = False
        if self.include_sentinel:
            self.backlog.append(self.SENTINEL_EVENT)

    # -- the public API ------------------------------------------------------------------
    def start(self) -> "JournalConsumerBase":
        """Send the journal request (again, if called twice); returns self."""
        self.processing_inactive = self.full
        self._history = []
        self._ended = False
        self.rpc = self.handle.rpc(self.topic, self.request_payload, flags=FLUX_RPC_STREAMING)
        if self.cb is not None:
            self.rpc.then(self._on_response)
        return self

    def stop(self) -> None:
        """Ask the service to end the stream; ``poll()`` / the callback then get None."""
        if self.rpc is None or self._ended:
            return
        self.handle.rpc(self.cancel_topic, {"matchtag": self.rpc.matchtag},
                        flags=FLUX_RPC_NORESPONSE)

    def _read_one(self, timeout: float) -> None:
        """Wait for one response and process it (None queued at the end of the stream)."""
        assert self.rpc is not None
        try:
            self.rpc.wait_for(timeout)
        except OSError as exc:
            if exc.errno == errno.ETIMEDOUT:
                raise TimeoutError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)) from None
            raise
        try:
            resp = self.rpc.get()
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                raise
            self._ended = True
            self.processing_inactive = False
            self.backlog.append(None)
            return
        finally:
            if not self._ended:
                self.rpc.reset()
        self._process(resp)

    def poll(self, timeout: float = -1.0) -> JournalEventBase | None:
        """The next event (waiting up to ``timeout`` seconds; -1: no limit).

        With ``full``, the first call returns only once the whole history
        is in.  None once the stream has ended (after ``stop()``).
        RuntimeError before ``start()``; TimeoutError when the time passes.
        """
        if self.rpc is None:
            raise RuntimeError("poll() called before start()")
        deadline = None if timeout < 0 else time.monotonic() + timeout
        while not self.backlog:
            if self._ended:
                return None
            if deadline is None:
                self._read_one(-1.0)
                continue
            left = deadline - time.monotonic()
            if left <= 0 and not self.rpc.is_ready():
                raise TimeoutError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))
            self._read_one(max(left, 1e-6))
        return self.backlog.popleft()

    def set_callback(self, event_cb: Callable[..., Any], *args: Any,
                     **kwargs: Any) -> "JournalConsumerBase":
        """Call ``event_cb(event, *args, **kwargs)`` for each event from the reactor.

        The history is handed out once it is complete; ``event_cb(None,
        ...)`` marks the end of the stream.  Returns self.
        """
        had_cb = self.cb is not None
        self.cb = event_cb
        self.cb_args = args
        self.cb_kwargs = kwargs
        if self.rpc is not None and not had_cb:
            self.rpc.then(self._on_response)
        return self

    def _on_response(self, rpc: "RPC") -> None:
        try:
            resp = rpc.get()
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                raise
            self._ended = True
            self.processing_inactive = False
            self.backlog.append(None)
        else:
            rpc.reset()
            self._process(resp)
        self._flush()

    def _flush(self) -> None:
        # while the history is gathered events wait, so they can be sorted by time
        if self.processing_inactive or self.cb is None:
            return
        while self.backlog:
            self.cb(self.backlog.popleft(), *self.cb_args, **self.cb_kwargs)

    def __iter__(self) -> Iterator[JournalEventBase]:
        """Events until the stream ends (``start()`` first)."""
        while (event := self.poll()) is not None:
            yield event
