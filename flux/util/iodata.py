"""RFC 24 io objects: ``{stream, rank, data?, encoding?, eof?}`` as job output and
input events, the rexec service and ``flux exec`` carry them.

Data that is valid UTF-8 travels as text; anything else as base64 with
``"encoding": "base64"``.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

__all__ = ["encode_io", "decode_io"]


def encode_io(stream: str, rank: int | str, data: bytes, eof: bool = False) -> dict[str, Any]:
    """The io object for DATA of STREAM from RANK (an int or an idset string)."""
    io: dict[str, Any] = {"stream": stream, "rank": str(rank)}
    if data:
        try:
            io["data"] = data.decode()
        except UnicodeDecodeError:
            io["data"] = base64.b64encode(data).decode()
            io["encoding"] = "base64"
    if eof:
        io["eof"] = True
    return io


def decode_io(io: Any) -> tuple[str, bytes, bool]:
    """(stream, data, eof) of an io object; ValueError names what is malformed."""
    if not isinstance(io, dict):
        raise ValueError("'io' must be a JSON object")
    stream = io.get("stream")
    if not isinstance(stream, str) or not stream:
        raise ValueError("io.stream must be a non-empty string")
    data = io.get("data", "")
    if data is None:
        data = ""
    if not isinstance(data, str):
        raise ValueError("io.data must be a string")
    encoding = io.get("encoding")
    if encoding is None or str(encoding).upper() in ("UTF-8", "UTF8"):
        raw = data.encode()
    elif encoding == "base64":
        try:
            raw = base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"io.data is not valid base64: {exc}") from None
    else:
        raise ValueError(f"io.encoding '{encoding}' is not UTF-8 or base64")
    eof = io.get("eof", False)
    if not isinstance(eof, bool):
        raise ValueError("io.eof must be a boolean")
    return stream, raw, eof
