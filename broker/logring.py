"""The broker log ring behind ``flux dmesg``, and the structlog plumbing that feeds it.

Entries are syslog-style records (severity 0-7, appname, rank, UTC time).
The broker and its modules log through structlog loggers whose last
processor appends to the ring (and copies to stderr at or below
``log-stderr-level``); ``flux logger`` appends through the ``log.append``
service.  Followers (``flux dmesg -f``) are called for each new entry.
"""
from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, TextIO

from flux.constants import LOG_CRIT, LOG_DEBUG, LOG_ERR, LOG_INFO, LOG_WARNING, SEVERITY_NAMES


@dataclass(slots=True)
class LogEntry:
    seq: int
    timestamp: float
    level: int
    rank: int
    appname: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "timestamp": self.timestamp, "level": self.level,
                "rank": self.rank, "appname": self.appname, "message": self.message}


def severity_name(level: int) -> str:
    return SEVERITY_NAMES[level] if 0 <= level < len(SEVERITY_NAMES) else str(level)


def parse_severity(text: str) -> int:
    """A severity name ("err") or number ("3") -> 0..7; ValueError names bad input."""
    text = text.strip().lower()
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    aliases = {"error": 3, "warn": 4, "crit": 2, "emerg": 0, "panic": 0}
    if text in SEVERITY_NAMES:
        return SEVERITY_NAMES.index(text)
    if text in aliases:
        return aliases[text]
    raise ValueError(f"unknown log severity '{text}' (use {', '.join(SEVERITY_NAMES)} or 0-7)")


def iso_time(timestamp: float) -> str:
    """UTC ISO 8601 with microseconds, as ``flux dmesg`` prints it."""
    secs = int(timestamp)
    usec = int(round((timestamp - secs) * 1e6))
    if usec >= 1000000:
        secs += 1
        usec -= 1000000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{usec:06d}Z"


def format_entry(entry: dict[str, Any] | LogEntry) -> str:
    """One ``flux dmesg`` line: ``<ISO time> <app>.<severity>[<rank>]: <message>``."""
    if isinstance(entry, LogEntry):
        entry = entry.to_dict()
    return (f"{iso_time(entry['timestamp'])} {entry['appname']}."
            f"{severity_name(entry['level'])}[{entry['rank']}]: {entry['message']}")


class HumanFormatter:
    """``flux dmesg -H``: an absolute ``[MonDD HH:MM]`` stamp, then offsets from it.

    As in flux-core, a new absolute stamp starts whenever the local calendar
    minute differs from the last stamp's (not after 60 s).  With DELTA,
    offsets are from the previous entry instead.
    """

    def __init__(self, delta: bool = False) -> None:
        self._base: float | None = None
        self._base_minute: tuple[int, ...] | None = None
        self._prev: float | None = None
        self._delta = delta

    def format(self, entry: dict[str, Any]) -> str:
        stamp, _absolute = self.stamp(entry["timestamp"])
        return (f"{stamp} {entry['appname']}.{severity_name(entry['level'])}"
                f"[{entry['rank']}]: {entry['message']}")

    def stamp(self, ts: float) -> tuple[str, bool]:
        """The bracketed stamp of an entry logged at TS, and whether it is an
        absolute one (``[MonDD HH:MM]``) rather than an offset."""
        prev = self._prev
        self._prev = ts
        tm = time.localtime(ts)
        minute = tuple(tm[:5])      # year, month, day, hour, minute
        if self._base is None or minute != self._base_minute:
            self._base = ts
            self._base_minute = minute
            return "[" + time.strftime("%b%d %H:%M", tm) + "]", True
        offset = ts - (prev if self._delta and prev is not None else self._base)
        return f"[{offset:+11.6f}]", False


class LogRing:
    """A bounded ring of LogEntry with followers."""

    def __init__(self, size: int = 1024, rank: int = 0) -> None:
        if size < 1:
            raise ValueError(f"log-ring-size must be >= 1, got {size}")
        self.rank = rank
        self._ring: deque[LogEntry] = deque(maxlen=size)
        self.count = 0
        self.level = LOG_DEBUG
        self.stderr_level = LOG_ERR
        #: this rank's own entries at or below it go to its stderr whatever
        #: stderr_level says (log-critical-level: for the enclosing instance to see)
        self.critical_level = LOG_CRIT
        self.stderr: TextIO = sys.stderr
        self._followers: list[Callable[[LogEntry], None]] = []

    @property
    def size(self) -> int:
        return self._ring.maxlen or 0

    def resize(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"log-ring-size must be >= 1, got {size}")
        self._ring = deque(self._ring, maxlen=size)

    @property
    def used(self) -> int:
        return len(self._ring)

    def append(self, level: int, appname: str, message: str, *, rank: int | None = None,
               timestamp: float | None = None) -> LogEntry | None:
        """Record a message; returns the entry (None if LEVEL is filtered out)."""
        entry = LogEntry(self.count + 1, time.time() if timestamp is None else timestamp,
                         level, self.rank if rank is None else rank, appname, message)
        if level <= self.stderr_level or (level <= self.critical_level
                                          and entry.rank == self.rank):
            try:
                print(format_entry(entry), file=self.stderr, flush=True)
            except (OSError, ValueError):
                pass
        if level > self.level:
            return None
        self.count += 1
        self._ring.append(entry)
        for follower in list(self._followers):
            follower(entry)
        return entry

    def entries(self) -> list[LogEntry]:
        return list(self._ring)

    def clear(self) -> None:
        self._ring.clear()

    def follow(self, callback: Callable[[LogEntry], None]) -> None:
        self._followers.append(callback)

    def unfollow(self, callback: Callable[[LogEntry], None]) -> None:
        if callback in self._followers:
            self._followers.remove(callback)


_STRUCTLOG_LEVELS = {"debug": LOG_DEBUG, "info": LOG_INFO, "notice": 5, "warning": LOG_WARNING,
                     "warn": LOG_WARNING, "error": LOG_ERR, "exception": LOG_ERR,
                     "critical": LOG_CRIT, "fatal": LOG_CRIT, "msg": LOG_INFO}


def ring_processor(ring: LogRing) -> Callable[[Any, str, dict[str, Any]], Any]:
    """A structlog processor that turns an event into a ring entry and drops it."""
    import structlog

    def process(_logger: Any, method: str, event: dict[str, Any]) -> Any:
        appname = str(event.pop("component", "broker"))
        text = str(event.pop("event", ""))
        exc = event.pop("exc_info", None)
        extras = " ".join(f"{k}={v}" for k, v in event.items() if not k.startswith("_"))
        if extras:
            text = f"{text} {extras}" if text else extras
        if exc:
            import traceback

            if exc is True:
                exc = sys.exc_info()
            if isinstance(exc, BaseException):
                exc = (type(exc), exc, exc.__traceback__)
            if exc and exc[0] is not None:
                text += "\n" + "".join(traceback.format_exception(*exc)).rstrip()
        ring.append(_STRUCTLOG_LEVELS.get(method, LOG_INFO), appname, text)
        raise structlog.DropEvent

    return process


class _Sink:
    def msg(self, *_args: Any, **_kwargs: Any) -> None:
        """Never reached: the ring processor drops every event."""

    debug = info = warning = error = critical = exception = log = msg


def make_logger(ring: LogRing, component: str = "broker") -> Any:
    """A structlog logger writing to RING, bound to COMPONENT (the appname)."""
    import structlog

    logger = structlog.wrap_logger(_Sink(), processors=[ring_processor(ring)],
                                   wrapper_class=structlog.BoundLogger, cache_logger_on_first_use=True)
    return logger.bind(component=component)


__all__ = ["LogEntry", "LogRing", "HumanFormatter", "format_entry", "iso_time", "severity_name",
           "parse_severity", "ring_processor", "make_logger"]
