"""flux.eventlog: RFC 18 eventlog entries and the ``flux job eventlog`` formatter.

``EventLogEvent`` wraps one entry; ``EventLogFormatter`` turns entries
into the text or JSON lines that ``flux job eventlog`` and ``flux job
wait-event`` print.  Both follow Flux's Python bindings; the output rules
and test vectors are in ``specs/eventlog.md``.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import flux.jsonc as jsonc

if TYPE_CHECKING:
    from datetime import datetime

# orjson and datetime are imported where needed: following a job (flux run)
# parses entries but formats none, and their imports cost it milliseconds.


def _loads(line: str | bytes | bytearray) -> Any:
    """orjson's parse when the process has loaded it, else the C json codec's, as strict."""
    orjson = sys.modules.get("orjson")
    if orjson is not None:
        return orjson.loads(line)
    return jsonc.loads(line, allow_nan=False)

__all__ = ["EventLogEvent", "EventLogFormatter"]


class EventLogEvent(dict):
    """One eventlog entry: a dict with ``name``, ``timestamp`` and ``context``.

    Built from a dict or from one RFC 18 JSON line (str or bytes).
    ``context`` is always present (``{}`` when the entry has none).
    Raises ValueError naming a missing key or unparsable line and
    TypeError for a key of the wrong type.
    """

    def __init__(self, event: Mapping[str, Any] | str | bytes) -> None:
        if isinstance(event, (str, bytes, bytearray)):
            try:
                event = _loads(event)
            except ValueError as exc:  # (orjson.JSONDecodeError is one)
                raise ValueError(f"eventlog entry is not valid JSON: {exc}") from None
        if not isinstance(event, Mapping):
            raise TypeError(f"eventlog entry must be an object, not {type(event).__name__}")
        super().__init__(event)
        for key in ("timestamp", "name"):
            if key not in self:
                raise ValueError(f"eventlog entry has no '{key}' key")
        ts = self["timestamp"]
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            raise TypeError(f"eventlog entry timestamp must be a number, not {ts!r}")
        if not isinstance(self["name"], str):
            raise TypeError(f"eventlog entry name must be a string, not {self['name']!r}")
        if "context" not in self:
            self["context"] = {}
        elif not isinstance(self["context"], Mapping):
            raise TypeError(f"eventlog entry context must be an object, "
                            f"not {self['context']!r}")

    def __str__(self) -> str:
        return f"{self.timestamp:<0.5f}: {self.name} {self.context}"

    @property
    def name(self) -> str:
        return self["name"]

    @property
    def timestamp(self) -> float:
        return self["timestamp"]

    @property
    def context(self) -> dict:
        return self["context"]

    @property
    def context_string(self) -> str:
        """Context as compact JSON with sorted keys, or "" when empty."""
        if not self.context:
            return ""
        import orjson

        return orjson.dumps(self.context, option=orjson.OPT_SORT_KEYS).decode()


class EventLogFormatter:
    """Format eventlog entries as ``flux job eventlog`` prints them.

    ``format``: "text" (``TIMESTAMP NAME key=value ...``, values JSON
    encoded) or "json" (the compact entry, without an empty context).
    ``timestamp_format``: "raw" (seconds, 6 decimals), "iso" (local time,
    ISO 8601 with microseconds and UTC offset, ``Z`` for UTC), "offset"
    (seconds since the first entry formatted) or "human" (alias
    "reltime": ``[Feb05 16:49]`` at each new minute, ``[  +0.016305]``
    offsets within it).  ``color``: "always", "never" or "auto" (color
    when stdout is a terminal).  The formatter keeps state, so format a
    log's entries in order with one instance.
    """

    BOLD = "\033[1m"
    YELLOW = "\033[33m"
    GREEN = "\033[32m"
    BLUE = "\033[34m"
    MAGENTA = "\033[35m"
    GRAY = "\033[37m"
    RED = "\033[31m"
    RESET = "\033[0m"

    eventlog_colors = {
        "name": YELLOW,
        "time": GREEN,
        "timebreak": BOLD + GREEN,
        "key": BLUE,
        "value": MAGENTA,
        "number": GRAY,
        "exception": BOLD + RED,
    }

    def __init__(self, format: str = "text", timestamp_format: str = "raw",
                 color: str = "auto") -> None:
        if format not in ("text", "json"):
            raise ValueError(f"Invalid entry_fmt: {format}")
        if timestamp_format not in ("raw", "human", "reltime", "iso", "offset"):
            raise ValueError(f"Invalid timestamp_fmt: {timestamp_format}")
        if color not in ("always", "never", "auto"):
            raise ValueError(f"Invalid color: {color}")
        self.entry_format = format
        self.timestamp_format = "human" if timestamp_format == "reltime" else timestamp_format
        if color == "auto":
            self.color = sys.stdout.isatty()
        else:
            self.color = color == "always"
        self.t0: float | None = None
        self.last_dt: datetime | None = None
        self.last_ts: float | None = None

    def _paint(self, kind: str, text: str) -> str:
        if self.color:
            return f"{self.eventlog_colors[kind]}{text}{self.RESET}"
        return text

    def _timestamp_human(self, ts: float) -> str:
        from datetime import datetime, timedelta

        dt = datetime.fromtimestamp(ts)
        if self.last_dt is not None:
            delta = dt - self.last_dt
            if delta < timedelta(minutes=1):
                return self._paint("time", f"[{delta.total_seconds():>+11.6f}]")
        # a new minute: print the wall-clock time and measure offsets from it
        self.last_ts = ts
        self.last_dt = dt
        return self._paint("timebreak", f"[{dt.astimezone().strftime('%b%d %H:%M')}]")

    def _timestamp(self, ts: float) -> str:
        if self.t0 is None:
            self.t0 = ts
        if self.timestamp_format == "human":
            return self._timestamp_human(ts)
        if self.timestamp_format == "raw":
            text = f"{ts:11.6f}"
        elif self.timestamp_format == "iso":
            from datetime import datetime

            dt = datetime.fromtimestamp(ts).astimezone()
            zone = dt.strftime("%z").replace("+0000", "Z")
            # microseconds are truncated, not rounded, as Flux prints them
            usec = int((ts - int(ts)) * 1e6)
            text = f"{dt.strftime('%Y-%m-%dT%H:%M:%S')}.{usec:06d}{zone}"
        else:
            text = f"{ts - self.t0:15.6f}"
        return self._paint("time", text)

    def _format_text(self, entry: EventLogEvent) -> str:
        import orjson

        parts = [self._timestamp(entry.timestamp),
                 self._paint("exception" if entry.name == "exception" else "name", entry.name)]
        for key, val in entry.context.items():
            kind = "number" if type(val) in (int, float) else "value"
            parts.append(f"{self._paint('key', key)}="
                         f"{self._paint(kind, orjson.dumps(val).decode())}")
        return " ".join(parts)

    @staticmethod
    def _format_json(entry: Mapping[str, Any]) -> str:
        if "context" in entry and not entry["context"]:
            entry = {k: v for k, v in entry.items() if k != "context"}
        import orjson

        return orjson.dumps(entry).decode()

    def format(self, entry: Mapping[str, Any] | str | bytes) -> str:
        """Format one entry (a dict, EventLogEvent or RFC 18 JSON line)."""
        if not isinstance(entry, EventLogEvent):
            entry = EventLogEvent(entry)
        if self.entry_format == "json":
            return self._format_json(entry)
        return self._format_text(entry)
