"""The PMI-1 "simple" wire protocol (RFC 13): a pure codec, no I/O.

A message is one line of space-separated ``key=value`` tokens with the
command first, ``cmd=NAME key=value ...\\n``.  The spawn request uses the
multi-line form: ``mcmd=spawn\\n``, one ``key=value`` per line (a value
runs to the end of its line), then ``endcmd\\n``.

Values travel in their *wire form* and are never interpreted here: a
backslash escapes the character after it (so ``\\ `` is a space inside a
value, as MPICH's parser reads it), and the codec keeps the backslashes.
A server that stores a put value and returns it from a get therefore
hands the client back exactly the bytes it sent.  ``escape`` and
``unescape`` convert between text and wire form for the programs that
mean text (our client, error messages).  As RFC 13 allows a put value to
contain spaces, a token without ``=`` continues the previous value (joined
by an escaped space, so the value stays one token in wire form).

``StreamDecoder.feed(bytes)`` accepts any chunking of the byte stream and
returns the messages completed so far; a malformed line yields a
``WireError`` naming what is wrong, after which the decoder stops (the
caller closes that connection).  ``encode`` and ``encode_multi`` format
messages and refuse what the decoder could not read back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

#: longest line (or multi-line request) accepted, in bytes
MAX_LINE = 65536

_SEPARATORS = " \t"


class WireError(ValueError):
    """A line that is not valid PMI-1 wire protocol (the text says why)."""


@dataclass(slots=True)
class Message:
    """One decoded request or response: the command and its arguments (wire form)."""

    cmd: str
    args: dict[str, str] = field(default_factory=dict)
    multi: bool = False  # came in the mcmd= multi-line form


def escape(text: str) -> str:
    """TEXT in wire form: backslash, space and tab escaped with a backslash."""
    if "\n" in text:
        raise ValueError("a PMI value cannot hold a newline")
    if not any(c in text for c in "\\ \t"):
        return text
    return "".join("\\" + c if c in "\\ \t" else c for c in text)


def unescape(raw: str) -> str:
    """The text of wire-form value RAW (a backslash quotes the next character)."""
    if "\\" not in raw:
        return raw
    out = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n:
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _tokens(line: str) -> list[str]:
    """Split LINE at unescaped spaces/tabs, keeping escapes in the tokens."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] in _SEPARATORS:
            i += 1
            continue
        j = i
        while j < n and line[j] not in _SEPARATORS:
            j += 2 if line[j] == "\\" and j + 1 < n else 1
        out.append(line[i:j])
        i = j
    return out


def _check_name(what: str, name: str) -> None:
    if not name:
        raise ValueError(f"empty {what}")
    for c in name:
        if c in "= \t\n\\":
            raise ValueError(f"{what} {name!r} holds {c!r}")


def is_wire_value(value: str) -> bool:
    """Whether VALUE reads back as itself when followed by a separator."""
    if "\n" in value:
        return False
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c == "\\":
            if i + 1 >= n:
                return False  # would escape the separator after it
            i += 2
        elif c in _SEPARATORS:
            return False
        else:
            i += 1
    return True


def parse_line(line: str) -> Message:
    """Decode one ``cmd=`` line (without its newline)."""
    args: dict[str, str] = {}
    cmd: str | None = None
    last: str | None = None
    for tok in _tokens(line):
        key, sep, value = tok.partition("=")
        if not sep:
            if last is None:
                raise WireError(f"expected key=value, got {tok!r} in {line!r}")
            # RFC 13: a put value may hold spaces; keep them
            if last == "cmd":
                raise WireError(f"command name cannot hold a space in {line!r}")
            args[last] += "\\ " + tok
            continue
        if not key:
            raise WireError(f"token {tok!r} has no key in {line!r}")
        if key == "cmd":
            if cmd is not None:
                raise WireError(f"cmd given twice in {line!r}")
            if not value:
                raise WireError(f"empty command name in {line!r}")
            cmd = value
        elif key in args:
            raise WireError(f"key {key!r} given twice in {line!r}")
        else:
            args[key] = value
        last = key
    if cmd is None:
        raise WireError(f"no cmd= in {line!r}")
    return Message(cmd, args)


def _parse_multi(lines: list[str]) -> Message:
    """Decode an mcmd= request: its first line, its key=value lines, no endcmd."""
    cmd = lines[0][len("mcmd="):].strip()
    if not cmd:
        raise WireError("empty command name in mcmd= line")
    args: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition("=")
        if not sep or not key:
            raise WireError(f"expected key=value in mcmd {cmd}, got {line!r}")
        if key in args:
            raise WireError(f"key {key!r} given twice in mcmd {cmd}")
        args[key] = value
    return Message(cmd, args, multi=True)


class StreamDecoder:
    """Decode messages from a byte stream read in arbitrary pieces."""

    __slots__ = ("_buf", "_multi", "_multi_size", "_max", "failed")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = b""
        self._multi: list[str] | None = None
        self._multi_size = 0
        self._max = max_line
        self.failed: WireError | None = None

    def feed(self, data: bytes) -> list[Message | WireError]:
        """The messages DATA completes; a WireError ends the list and the stream."""
        if self.failed is not None:
            return []
        out: list[Message | WireError] = []
        buf = self._buf + data if self._buf else data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            raw = buf[start:nl]
            start = nl + 1
            try:
                msg = self._line(raw)
            except WireError as exc:
                self.failed = exc
                self._buf = b""
                out.append(exc)
                return out
            if msg is not None:
                out.append(msg)
        self._buf = buf[start:]
        pending = len(self._buf) + self._multi_size
        if pending > self._max:
            self.failed = WireError(f"line longer than {self._max} bytes")
            self._buf = b""
            out.append(self.failed)
        return out

    def _line(self, raw: bytes) -> Message | None:
        if len(raw) + self._multi_size > self._max:
            raise WireError(f"line longer than {self._max} bytes")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise WireError(f"line is not UTF-8 text: {raw[:80]!r}") from None
        if self._multi is not None:
            if line.strip() == "endcmd":
                lines, self._multi, self._multi_size = self._multi, None, 0
                return _parse_multi(lines)
            if line:
                self._multi.append(line)
                self._multi_size += len(raw) + 1
            return None
        if not line.strip():
            return None  # blank lines carry nothing
        if line.startswith("mcmd="):
            self._multi = [line]
            self._multi_size = len(raw) + 1
            return None
        return parse_line(line)

    @property
    def idle(self) -> bool:
        """No partial line or multi-line request is buffered."""
        return not self._buf and self._multi is None


def encode(cmd: str, args: Mapping[str, object] | None = None) -> bytes:
    """``cmd=CMD key=value ...\\n``; values are str()'d and must be in wire form."""
    _check_name("command name", cmd)
    parts = ["cmd=" + cmd]
    for key, value in (args or {}).items():
        _check_name("key", key)
        if key == "cmd":
            raise ValueError("'cmd' cannot be an argument")
        text = str(value)
        if not is_wire_value(text):
            raise ValueError(f"value of {key!r} is not in wire form: {text!r} (use escape())")
        parts.append(f"{key}={text}")
    return (" ".join(parts) + "\n").encode("utf-8")


def encode_multi(cmd: str, args: Mapping[str, object]) -> bytes:
    """The mcmd= multi-line form: one key=value per line, then ``endcmd``."""
    _check_name("command name", cmd)
    lines = ["mcmd=" + cmd]
    for key, value in args.items():
        _check_name("key", key)
        text = str(value)
        if "\n" in text:
            raise ValueError(f"value of {key!r} holds a newline")
        lines.append(f"{key}={text}")
    lines.append("endcmd")
    return ("\n".join(lines) + "\n").encode("utf-8")


__all__ = ["Message", "WireError", "StreamDecoder", "parse_line", "encode", "encode_multi",
           "escape", "unescape", "is_wire_value", "MAX_LINE"]
