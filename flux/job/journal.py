"""flux.job.journal: every job's events, past and live, from the job manager's journal.

``JournalConsumer`` streams ``job-manager.events-journal`` (owner only).
With ``full=True`` it first gathers the history: the job manager sends
the events of its active jobs, then a sentinel; the consumer adds the
history of the inactive jobs that are not purged (the job list names
them, their eventlogs, jobspecs and R come from the KVS), sorts it all
by time and hands it out, then the live events as they are committed.
Only events after ``since`` are handed out.  ``jobspec`` (redacted: no
environment) rides on ``submit`` events, ``R`` on ``alloc`` events.

Synchronous use::

    consumer = JournalConsumer(h).start()
    while (event := consumer.poll(timeout=5.0)) is not None:
        print(event)

or ``set_callback(cb)`` and ``h.reactor_run()``: ``cb(event, *args,
**kwargs)`` for each event, then ``cb(None, ...)`` once the stream has
ended after ``stop()``.

Protocol (ours, see specs/job-manager.md): each response is ``{"batch":
[{"id", "events": [...], "jobspec"?, "R"?}, ...]}``; the end of the
history is ``{"batch": [], "sentinel": true}``; Flux's one-job responses
``{"id", "events", ...}`` and its ``{"id": -1, "events": []}`` sentinel
are understood too.
"""
from __future__ import annotations

import copy
import errno
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable

from flux.constants import FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING, FLUX_USERID_UNKNOWN
from flux.eventlog import EventLogEvent
from flux.job.event import require_handle
from flux.job.JobID import JobID

if TYPE_CHECKING:
    from flux.core.handle import Flux
    from flux.rpc import RPC

__all__ = ["JournalEvent", "JournalConsumer", "SENTINEL_EVENT"]

_LOOKUP_WINDOW = 256    # job-info lookups in flight while gathering inactive history


class JournalEvent(EventLogEvent):
    """One event of the journal: an eventlog entry plus the job it belongs to.

    Attributes: ``jobid`` (JobID), ``name``, ``timestamp``, ``context``,
    ``context_string``, ``jobspec`` (dict, on ``submit`` events, else
    None), ``R`` (dict, on ``alloc`` events, else None).  ``str()`` gives
    ``F58: TIMESTAMP NAME [CONTEXT] [jobspec=JSON] [R=JSON]``.  An empty event
    (jobid -1, no name) marks the end of the history (see
    ``include_sentinel``).
    """

    def __init__(self, jobid: int, event: Mapping[str, Any], jobspec: Any = None,
                 R: Any = None) -> None:
        if event:
            super().__init__(event)
        else:
            dict.__init__(self, {"timestamp": time.time(), "context": {}})
        self.jobid = JobID(jobid) if jobid != -1 else -1
        self.jobspec = jobspec
        self.R = R

    @property
    def name(self) -> str:
        return self.get("name", "")

    def is_empty(self) -> bool:
        """True for the empty event that separates history from live events."""
        return self.jobid == -1

    def __str__(self) -> str:
        if self.is_empty():
            return "-1: End of historical data stream"
        import orjson

        parts = [f"{JobID(self.jobid).f58}: {self.timestamp:<0.5f} {self.name}"]
        if self.context_string:
            parts.append(self.context_string)
        # what the event carries besides its context is shown too (as Flux does):
        # the redacted jobspec on submit, R on alloc
        if self.jobspec is not None:
            parts.append("jobspec=" + orjson.dumps(self.jobspec).decode())
        if self.R is not None:
            parts.append("R=" + orjson.dumps(self.R).decode())
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"JournalEvent({self.jobid!r}, {dict(self)!r})"

    # JournalEvent equality is by identity for the sentinel, else by content
    def __eq__(self, other: object) -> bool:
        if isinstance(other, JournalEvent):
            if self.is_empty() or other.is_empty():
                return self.is_empty() and other.is_empty()
            return self.jobid == other.jobid and dict.__eq__(self, other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


#: The empty event a consumer with ``include_sentinel=True`` returns between
#: the history and the live events.
SENTINEL_EVENT = JournalEvent(-1, {})


def _redact(jobspec: Any) -> Any:
    """The jobspec without its environment (as the journal gives it)."""
    if not isinstance(jobspec, dict):
        return jobspec
    system = (jobspec.get("attributes") or {}).get("system")
    if not isinstance(system, dict) or "environment" not in system:
        return jobspec
    out = copy.copy(jobspec)
    out["attributes"] = dict(jobspec["attributes"])
    out["attributes"]["system"] = {k: v for k, v in system.items() if k != "environment"}
    return out


class JournalConsumer:
    """Consume the job manager's journal of job events (see the module docstring).

    ``full``: start with the history of every job still known (else only
    live events).  ``since``: hand out only events newer than this
    timestamp (a consumer that saved the newest timestamp it handled can
    resume there).  ``include_sentinel``: return ``SENTINEL_EVENT`` (empty,
    ``is_empty()``) once the history has been handed out.
    """

    SENTINEL_EVENT = SENTINEL_EVENT
    topic = "job-manager.events-journal"

    def __init__(self, flux_handle: "Flux", full: bool = True, since: float = 0.0,
                 include_sentinel: bool = False) -> None:
        require_handle(flux_handle)
        self.handle = flux_handle
        self.full = bool(full)
        self.since = float(since)
        self.include_sentinel = bool(include_sentinel)
        self.rpc: RPC | None = None
        self.cb: Callable[..., Any] | None = None
        self.cb_args: tuple[Any, ...] = ()
        self.cb_kwargs: dict[str, Any] = {}
        self.backlog: deque[JournalEvent | None] = deque()
        self.processing_inactive = self.full
        self._history: list[JournalEvent] = []
        self._history_ids: set[int] = set()
        self._filled: dict[int, set[tuple[float, str]]] = {}
        self._ended = False

    @property
    def request_payload(self) -> dict[str, Any]:
        return {"full": self.full}

    # -- building events -----------------------------------------------------------------
    def create_event(self, entry: Mapping[str, Any], jobid: int = -1, jobspec: Any = None,
                     R: Any = None) -> JournalEvent:
        """One JournalEvent; ``jobspec`` kept only on submit, ``R`` only on alloc."""
        name = entry.get("name")
        return JournalEvent(jobid, entry, jobspec=_redact(jobspec) if name == "submit" else None,
                            R=R if name == "alloc" else None)

    def _items(self, resp: Any) -> tuple[list[Mapping[str, Any]], bool]:
        """The job items of one response and whether it is the sentinel."""
        if not isinstance(resp, Mapping):
            raise OSError(errno.EPROTO, f"{self.topic}: bad response {resp!r}")
        if "batch" in resp:
            items = resp["batch"]
            if not isinstance(items, list):
                raise OSError(errno.EPROTO, f"{self.topic}: bad response {resp!r}")
            return items, bool(resp.get("sentinel"))
        # Flux's form: one job per response, id -1 for the sentinel
        if resp.get("id") == -1:
            return [], True
        return [resp], False

    def _events_of(self, item: Mapping[str, Any]) -> list[JournalEvent]:
        try:
            jobid = int(item["id"])
            entries = item["events"]
        except (KeyError, TypeError, ValueError):
            raise OSError(errno.EPROTO, f"{self.topic}: bad journal item {item!r}") from None
        jobspec, R = item.get("jobspec"), item.get("R")
        out = []
        for entry in entries:
            try:
                event = self.create_event(entry, jobid=jobid, jobspec=jobspec, R=R)
            except (ValueError, TypeError) as exc:
                raise OSError(errno.EPROTO, f"{self.topic}: bad event of job "
                                            f"{JobID(jobid).f58}: {exc}") from None
            if event.timestamp > self.since:
                out.append(event)
        return out

    def _process(self, resp: Any) -> None:
        items, sentinel = self._items(resp)
        if self.processing_inactive:
            for item in items:
                self._history_ids.add(int(item.get("id", -1)))
                self._history.extend(self._events_of(item))
            if sentinel:
                self._end_history()
            return
        if sentinel:
            return
        for item in items:
            events = self._events_of(item)
            seen = self._filled.get(int(item["id"])) if self._filled else None
            if seen:
                events = [e for e in events if (e.timestamp, e.name) not in seen]
            self.backlog.extend(events)

    def _end_history(self) -> None:
        self._history.extend(self._inactive_history())
        self._history.sort(key=lambda e: e.timestamp)
        self.backlog.extend(self._history)
        self._history = []
        self._history_ids = set()
        self.processing_inactive = False
        if self.include_sentinel:
            self.backlog.append(self.SENTINEL_EVENT)

    def _inactive_history(self) -> list[JournalEvent]:
        """Events of the jobs the job manager no longer holds (inactive, not purged).

        The job list names every job it knows; those the journal's history
        did not carry get their eventlog, jobspec and R from the KVS.  A
        job submitted just as the journal started may be read here and
        then come live too: its events read here are remembered so the
        live copies are dropped.
        """
        from flux.job.list import job_list

        try:
            jobs = job_list(self.handle, max_entries=0, attrs=[], userid=FLUX_USERID_UNKNOWN,
                            since=self.since).get_jobs()
        except OSError as exc:
            raise OSError(exc.errno, f"{self.topic}: listing inactive jobs: "
                                     f"{exc.strerror or os.strerror(exc.errno or 0)}") from None
        ids = [int(job["id"]) for job in jobs if int(job["id"]) not in self._history_ids]
        out: list[JournalEvent] = []
        for start in range(0, len(ids), _LOOKUP_WINDOW):
            window = ids[start:start + _LOOKUP_WINDOW]
            requests = [(jobid,
                         self.handle.rpc("job-info.lookup", {"id": jobid, "flags": 0,
                                                             "keys": ["eventlog", "jobspec"]}),
                         self.handle.rpc("job-info.lookup", {"id": jobid, "flags": 0,
                                                             "keys": ["R"]}))
                        for jobid in window]
            for jobid, main, alloc in requests:
                events = self._job_history(jobid, main, alloc)
                if events:
                    self._filled[jobid] = {(e.timestamp, e.name) for e in events}
                    out.extend(events)
        return out

    def _job_history(self, jobid: int, main: "RPC", alloc: "RPC") -> list[JournalEvent]:
        import orjson

        try:
            data = main.get()
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EPERM):
                return []       # purged meanwhile
            raise
        try:
            R = orjson.loads(alloc.get()["R"])
        except OSError:
            R = None
        except (KeyError, TypeError, orjson.JSONDecodeError):
            R = None
        try:
            jobspec = orjson.loads(data["jobspec"])
        except (KeyError, TypeError, orjson.JSONDecodeError):
            jobspec = None
        lines = str(data.get("eventlog", "")).splitlines()
        entries = []
        for line in lines:
            if line:
                try:
                    entries.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    raise OSError(errno.EPROTO, f"job {JobID(jobid).f58}: bad eventlog "
                                                f"entry {line!r}") from None
        return self._events_of({"id": jobid, "events": entries, "jobspec": jobspec, "R": R})

    # -- the public API ------------------------------------------------------------------
    def start(self) -> "JournalConsumer":
        """Send the journal request (again, if called twice); returns self."""
        self.processing_inactive = self.full
        self._history, self._history_ids = [], set()
        self._ended = False
        self.rpc = self.handle.rpc(self.topic, self.request_payload, flags=FLUX_RPC_STREAMING)
        if self.cb is not None:
            self.rpc.then(self._on_response)
        return self

    def stop(self) -> None:
        """Ask the job manager to end the stream; ``poll()`` / the callback then get None."""
        if self.rpc is None or self._ended:
            return
        service = self.topic.split(".", 1)[0]
        self.handle.rpc(f"{service}.cancel", {"matchtag": self.rpc.matchtag},
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

    def poll(self, timeout: float = -1.0) -> JournalEvent | None:
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
                     **kwargs: Any) -> "JournalConsumer":
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
        if self.processing_inactive or self.cb is None:
            return
        while self.backlog:
            self.cb(self.backlog.popleft(), *self.cb_args, **self.cb_kwargs)

    def __iter__(self) -> Iterator[JournalEvent]:
        """Events until the stream ends (``start()`` first)."""
        while (event := self.poll()) is not None:
            yield event
