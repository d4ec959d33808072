"""JSON text for the message path, without importing :mod:`json`.

``import json`` imports :mod:`re` (and with it :mod:`enum`), which is a
large part of the start-up of a short command such as ``flux kvs get``.
The work itself is done by the same C accelerator :mod:`json` uses
(``_json``), so documents decode and encode exactly as ``json.loads`` and
``json.dumps(..., separators=(",", ":"))`` would.  Anything unusual (bad
input, a type the C encoder does not take, no accelerator) is handed to
:mod:`json` itself, so errors carry json's exception types and messages.
"""
from __future__ import annotations

if False:  # for type checkers only: importing typing costs a short command ~3 ms
    from typing import Any

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None  # type: ignore[assignment]

_WHITESPACE = " \t\n\r"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity)")


class _DecodeContext:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    __slots__ = ("parse_constant",)
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def __init__(self, parse_constant: Any) -> None:
        self.parse_constant = parse_constant


_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}
if _json is not None:
    _scan = _json.make_scanner(_DecodeContext(_CONSTANTS.__getitem__))
    _scan_strict = _json.make_scanner(_DecodeContext(_refuse_constant))


def loads(text: str | bytes | bytearray, allow_nan: bool = True) -> Any:
    """``json.loads(text)`` (UTF-8 when given bytes).

    ``allow_nan=False`` refuses NaN and Infinity with ValueError, as orjson
    and RFC 8259 do.
    """
    if _json is not None:
        try:
            s = text if isinstance(text, str) else text.decode()
        except UnicodeDecodeError:
            s = None
        if s is not None and not s.startswith("\ufeff"):
            n = len(s)
            i = 0
            while i < n and s[i] in _WHITESPACE:
                i += 1
            try:
                obj, end = (_scan if allow_nan else _scan_strict)(s, i)
            except StopIteration:
                pass  # no value here: json reports it
            else:
                while end < n and s[end] in _WHITESPACE:
                    end += 1
                if end == n:
                    return obj
    import json

    if allow_nan:
        return json.loads(text)
    return json.loads(text, parse_constant=_refuse_constant)


def _unencodable(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(obj: Any, ensure_ascii: bool = False, allow_nan: bool = False) -> str:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=..., allow_nan=...)``."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(obj, separators=(",", ":"), ensure_ascii=ensure_ascii,
                          allow_nan=allow_nan)
    encode_str = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    if isinstance(obj, str):
        return encode_str(obj)
    # a new encoder each call, as json makes one: its circular-reference
    # markers must not be shared between threads or outlive a failed call
    encode = _json.make_encoder({}, _unencodable, encode_str, None, ":", ",", False, False,
                                allow_nan)
    return "".join(encode(obj, 0))
