"""RFC 18 eventlog codec: one compact JSON object per line, pure functions.

An eventlog is JSON Lines: each event is ``{"timestamp":T,"name":N}`` or
``{"timestamp":T,"name":N,"context":{...}}`` followed by exactly one
``"\\n"``.  Events come back from the decoder as plain dicts (the form
orjson builds, so decoding adds no per-event objects).  Bytes after the
last newline are a *torn tail*: a write that did not complete.  It is
never mixed into the events; :func:`decode` reports it and ``strict=True``
turns it into an error.  See ``specs/eventlog.md``.
"""
from __future__ import annotations

import errno
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "EventlogError",
    "DecodeResult",
    "EventlogDecoder",
    "encode_event",
    "encode_entry",
    "encode_entries",
    "validate_event",
    "decode_line",
    "decode",
    "decode_events",
    "split_complete",
    "json_type",
]

_loads = orjson.loads
_dumps = orjson.dumps
_NL = orjson.OPT_APPEND_NEWLINE
_KEYS_2 = frozenset(("timestamp", "name"))
_KEYS_3 = frozenset(("timestamp", "name", "context"))


class EventlogError(ValueError):
    """A malformed event or eventlog.

    ``line`` is the 1-based line number and ``offset`` the byte offset of
    that line in the log (both None when the error is about a single event
    with no position), ``reason`` the bare problem.  ``events`` holds the
    events decoded before the bad line, so a caller loses nothing valid.
    ``errno`` is EINVAL, the errno Flux uses for a bad eventlog.
    """

    errno = errno.EINVAL

    def __init__(self, reason: str, line: int | None = None, offset: int | None = None,
                 events: list[dict] | None = None) -> None:
        self.reason = reason
        self.line = line
        self.offset = offset
        self.events = events if events is not None else []
        if line is None:
            message = f"eventlog: {reason}"
        else:
            message = f"eventlog line {line} (byte {offset}): {reason}"
        super().__init__(message)


def _event_problem(event: Any) -> str | None:
    """Return what is wrong with one decoded event, or None if it is valid."""
    if type(event) is not dict:
        return f"event must be a JSON object, not {json_type(event)}"
    keys = event.keys()
    if keys != _KEYS_2 and keys != _KEYS_3:
        missing = [k for k in ("timestamp", "name") if k not in event]
        if missing:
            return f"missing required key '{missing[0]}'"
        extra = sorted(k for k in keys if k not in _KEYS_3)
        return f"unknown key '{extra[0]}'"
    ts = event["timestamp"]
    if type(ts) is not float and type(ts) is not int:
        return f"timestamp must be a number, not {json_type(ts)}"
    if not ts > 0:
        return f"timestamp must be > 0 (got {ts!r})"
    name = event["name"]
    if type(name) is not str:
        return f"name must be a string, not {json_type(name)}"
    if not name:
        return "name must not be empty"
    if "context" in event and type(event["context"]) is not dict:
        return f"context must be a JSON object, not {json_type(event['context'])}"
    return None


def json_type(value: Any) -> str:
    """The JSON name of VALUE's type (null, boolean, number, string, array, object)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def validate_event(event: Any) -> None:
    """Raise EventlogError naming the problem if ``event`` is not an RFC 18 event."""
    problem = _event_problem(event)
    if problem is not None:
        raise EventlogError(problem)


# --------------------------------------------------------------------------
# encoding

def encode_event(name: str, context: Mapping[str, Any] | None = None,
                 timestamp: float | None = None) -> bytes:
    """Encode one event as a compact JSON line ending in ``"\\n"``.

    ``timestamp`` defaults to the wall clock.  ``context=None`` leaves the
    key out; an empty mapping is kept.  Raises EventlogError for a bad
    name, timestamp or context (the message names which).
    """
    if timestamp is None:
        timestamp = time.time()
    elif type(timestamp) is not float and type(timestamp) is not int:
        raise EventlogError(f"event '{name}': timestamp must be a number, "
                            f"not {json_type(timestamp)}")
    elif not (timestamp > 0 and math.isfinite(timestamp)):
        raise EventlogError(f"event '{name}': timestamp must be a finite number > 0 "
                            f"(got {timestamp!r})")
    if type(name) is not str or not name:
        raise EventlogError(f"name must be a non-empty string (got {name!r})")
    if context is None:
        return _dumps({"timestamp": timestamp, "name": name}, option=_NL)
    if not isinstance(context, Mapping):
        raise EventlogError(f"event '{name}': context must be an object, "
                            f"not {json_type(context)}")
    try:
        return _dumps({"timestamp": timestamp, "name": name, "context": context},
                      option=_NL)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise EventlogError(f"event '{name}': context is not JSON-encodable: {exc}") from None


def encode_entry(event: Mapping[str, Any]) -> bytes:
    """Encode an event given as a mapping (``timestamp``, ``name``, ``context``?)."""
    if not isinstance(event, Mapping):
        raise EventlogError(f"event must be an object, not {json_type(event)}")
    extra = sorted(k for k in event if k not in _KEYS_3)
    if extra:
        raise EventlogError(f"unknown key '{extra[0]}'")
    if "timestamp" not in event:
        raise EventlogError("missing required key 'timestamp'")
    if "name" not in event:
        raise EventlogError("missing required key 'name'")
    return encode_event(event["name"], event.get("context"), event["timestamp"])


def encode_entries(events: Iterable[Mapping[str, Any]]) -> bytes:
    """Encode several events into one appendable block of lines."""
    return b"".join([encode_entry(event) for event in events])


# --------------------------------------------------------------------------
# decoding

@dataclass(slots=True)
class DecodeResult:
    """The complete events of a log, plus any torn tail after the last newline.

    ``torn_offset`` is the byte offset where the tail starts (None when the
    log ends in a newline); ``torn_tail`` holds those bytes.
    """

    events: list[dict] = field(default_factory=list)
    torn_offset: int | None = None
    torn_tail: bytes = b""

    @property
    def torn(self) -> bool:
        return self.torn_offset is not None


def _as_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"eventlog data must be bytes or str, not {type(data).__name__}")


def split_complete(data: bytes | str) -> tuple[bytes, bytes]:
    """Split a log into (complete lines including the last newline, torn tail)."""
    raw = _as_bytes(data)
    end = raw.rfind(b"\n") + 1
    return raw[:end], raw[end:]


def _line_error(line: bytes, lineno: int, offset: int, events: list[dict]) -> EventlogError:
    if not line:
        return EventlogError("empty line", lineno, offset, events)
    try:
        event = _loads(line)
    except orjson.JSONDecodeError as exc:
        return EventlogError(f"invalid JSON: {exc}", lineno, offset, events)
    problem = _event_problem(event)
    return EventlogError(problem or "invalid event", lineno, offset, events)


def _decode_body(body: bytes, first_line: int, base_offset: int) -> list[dict]:
    """Decode complete lines (``body`` ends with a newline or is empty)."""
    if not body:
        return []
    lines = body[:-1].split(b"\n")
    try:
        events = [_loads(line) for line in lines]
    except orjson.JSONDecodeError:
        events = None
    if events is not None:
        for bad, event in enumerate(events):
            if _event_problem(event) is not None:
                break
        else:
            return events
        good = events[:bad]
    else:
        good = []
        for line in lines:
            try:
                event = _loads(line)
            except orjson.JSONDecodeError:
                break
            if _event_problem(event) is not None:
                break
            good.append(event)
        bad = len(good)
    offset = base_offset + sum(len(line) + 1 for line in lines[:bad])
    raise _line_error(lines[bad], first_line + bad, offset, good)


def decode_line(line: bytes | str, lineno: int | None = None) -> dict:
    """Decode one event line (with or without its trailing newline)."""
    raw = _as_bytes(line)
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if b"\n" in raw:
        raise EventlogError("event contains an embedded newline", lineno, 0 if lineno else None)
    try:
        event = _loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "empty line" if not raw else f"invalid JSON: {exc}"
        raise EventlogError(reason, lineno, 0 if lineno else None) from None
    problem = _event_problem(event)
    if problem is not None:
        raise EventlogError(problem, lineno, 0 if lineno else None)
    return event


def decode(data: bytes | str, *, strict: bool = False) -> DecodeResult:
    """Decode a whole eventlog.

    Every complete line must be a valid event (EventlogError names the first
    bad line).  Text after the final newline is returned as the torn tail,
    or raises EventlogError when ``strict`` is true.  Offsets are byte
    offsets into the UTF-8 form.
    """
    body, tail = split_complete(data)
    events = _decode_body(body, 1, 0)
    if not tail:
        return DecodeResult(events)
    if strict:
        raise EventlogError(f"torn last line ({len(tail)} bytes after the final newline)",
                            body.count(b"\n") + 1, len(body), events)
    return DecodeResult(events, len(body), tail)


def decode_events(data: bytes | str) -> list[dict]:
    """Decode a whole eventlog strictly and return its events."""
    return decode(data, strict=True).events


class EventlogDecoder:
    """Incremental decoder for a stream of appended eventlog bytes.

    ``feed()`` returns the events completed by the new bytes and keeps a
    partial last line until its newline arrives, so any split of the log
    into chunks yields the same events as :func:`decode`.  A bad line
    raises EventlogError (carrying the good events before it) and the
    stream stays failed: later feeds raise the same error.
    """

    __slots__ = ("_pending", "_line", "_offset", "_error")

    def __init__(self) -> None:
        self._pending = b""
        self._line = 1        # number of the next line to complete
        self._offset = 0      # byte offset of the start of the pending bytes
        self._error: EventlogError | None = None

    @property
    def pending(self) -> bytes:
        """Bytes of an incomplete last line not yet decoded."""
        return self._pending

    @property
    def lines(self) -> int:
        """Complete lines decoded so far."""
        return self._line - 1

    @property
    def offset(self) -> int:
        """Bytes consumed as complete lines so far."""
        return self._offset

    def feed(self, data: bytes | str) -> list[dict]:
        if self._error is not None:
            raise self._error
        chunk = _as_bytes(data)
        end = chunk.rfind(b"\n") + 1
        if end == 0:
            self._pending += chunk
            return []
        body = self._pending + chunk[:end] if self._pending else chunk[:end]
        self._pending = chunk[end:]
        try:
            events = _decode_body(body, self._line, self._offset)
        except EventlogError as exc:
            self._error = exc
            raise
        self._line += body.count(b"\n")
        self._offset += len(body)
        return events

    def close(self) -> None:
        """End of stream: raise EventlogError if a partial line is left over."""
        if self._error is not None:
            raise self._error
        if self._pending:
            raise EventlogError(
                f"torn last line ({len(self._pending)} bytes after the final newline)",
                self._line, self._offset)
