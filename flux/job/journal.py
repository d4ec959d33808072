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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flux.abc import JournalConsumerBase, JournalEventBase
from flux.constants import FLUX_USERID_UNKNOWN
from flux.job.event import require_handle
from flux.job.JobID import JobID

if TYPE_CHECKING:
    from flux.core.handle import Flux
    from flux.rpc import RPC

__all__ = ["JournalEvent", "JournalConsumer", "SENTINEL_EVENT"]

_LOOKUP_WINDOW = 256    # job-info lookups in flight while gathering inactive history


class JournalEvent(JournalEventBase):
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
        super().__init__(event)
        self.jobid = JobID(jobid) if jobid != -1 else -1
        self.jobspec = jobspec
        self.R = R

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


class JournalConsumer(JournalConsumerBase):
    """Consume the job manager's journal of job events (see the module docstring).

    ``full``: start with the history of every job still known (else only
    live events).  ``since``: hand out only events newer than this
    timestamp (a consumer that saved the newest timestamp it handled can
    resume there).  ``include_sentinel``: return ``SENTINEL_EVENT`` (empty,
    ``is_empty()``) once the history has been handed out.
    """

    SENTINEL_EVENT = SENTINEL_EVENT
    topic = "job-manager.events-journal"
    cancel_topic = "job-manager.cancel"

    def __init__(self, flux_handle: "Flux", full: bool = True, since: float = 0.0,
                 include_sentinel: bool = False) -> None:
        require_handle(flux_handle)
        super().__init__(flux_handle, self.topic, cancel_topic=self.cancel_topic, full=full,
                         since=since, include_sentinel=include_sentinel)
        self._history_ids: set[int] = set()
        self._filled: dict[int, set[tuple[float, str]]] = {}

    @property
    def request_payload(self) -> dict[str, Any]:
        return {"full": self.full}

    # -- building events -----------------------------------------------------------------
    def process_response(self, resp: Mapping[str, Any]) -> dict[str, Any]:
        """``create_event()`` arguments for the events of one job item: its id, jobspec, R."""
        return {"jobid": int(resp["id"]), "jobspec": resp.get("jobspec"), "R": resp.get("R")}

    def is_empty_response(self, resp: Mapping[str, Any]) -> bool:
        """True for the end of the history: our batch sentinel or Flux's id -1 response."""
        return bool(resp.get("sentinel")) or resp.get("id") == -1

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
            kwargs = self.process_response(item)
            entries = item["events"]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise OSError(errno.EPROTO, f"{self.topic}: bad journal item {item!r}") from None
        jobid = kwargs["jobid"]
        out = []
        for entry in entries:
            try:
                event = self.create_event(entry, **kwargs)
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
        super()._end_history()
        self._history_ids = set()

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

    def start(self) -> "JournalConsumer":
        """Send the journal request (again, if called twice); returns self."""
        self._history_ids = set()
        super().start()
        return self
