"""KVS keys: ``a.b.c`` paths, ``.`` is the root.

Redundant dots (leading, trailing, repeated) are dropped, so ``.a..b.``
is ``a.b`` and ``...`` is the root.  A key must be a non-empty string; a
component must not hold control characters (they would corrupt the text
output of ``flux kvs``) and may be at most ``MAX_COMPONENT`` characters,
so that a directory of ``maxdirent`` entries always fits in one blob; a key
has at most ``MAX_DEPTH`` components.
"""
from __future__ import annotations

import errno
import re

from eventstore.eventlog import json_type
from flux.errors import FluxError

__all__ = ["ROOT", "MAX_COMPONENT", "MAX_DEPTH", "parse", "normalize", "split", "join",
           "check_component"]

ROOT = "."
MAX_COMPONENT = 1024
#: most components of a key: the tree code recurses once per level, and a
#: directory chain this deep must still encode (JSON nesting) when inlined
MAX_DEPTH = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _bad(key: object, why: str) -> FluxError:
    return FluxError(errno.EINVAL, f"invalid key {key!r}: {why}")


def parse(key: object) -> tuple[tuple[str, ...], str]:
    """(components, normalized key) of ``key``; EINVAL naming it when invalid."""
    if type(key) is not str:
        raise FluxError(errno.EINVAL, f"key must be a string, not {json_type(key)}")
    if not key:
        raise _bad(key, "empty key")
    # printable ASCII (the usual case) cannot hold a control character
    if not (key.isascii() and key.isprintable()):
        m = _CONTROL.search(key)
        if m is not None:
            raise _bad(key, f"control character {m.group()!r} at offset {m.start()}")
    parts = key.split(".")
    if "" in parts:
        parts = [p for p in parts if p]
        key = ".".join(parts) if parts else ROOT
    if len(parts) > MAX_DEPTH:
        raise _bad(key[:80] + "...", f"more than {MAX_DEPTH} path components ({len(parts)})")
    if len(key) > MAX_COMPONENT:
        for p in parts:
            if len(p) > MAX_COMPONENT:
                raise _bad(key[:80] + "...", f"component longer than {MAX_COMPONENT} characters")
    return tuple(parts), key


def split(key: object) -> tuple[str, ...]:
    """Components of ``key`` after normalizing; ``()`` for the root."""
    return parse(key)[0]


def normalize(key: object) -> str:
    """Canonical form of ``key`` (``.`` for the root)."""
    return parse(key)[1]


def join(parts: tuple[str, ...] | list[str]) -> str:
    return ".".join(parts) if parts else ROOT


def check_component(name: object) -> str:
    """Validate one directory entry name; EINVAL naming it."""
    if type(name) is not str or not name:
        raise FluxError(errno.EINVAL, f"invalid directory entry name {name!r}")
    if "." in name:
        raise FluxError(errno.EINVAL, f"invalid directory entry name {name!r}: contains '.'")
    if _CONTROL.search(name) or len(name) > MAX_COMPONENT:
        raise FluxError(errno.EINVAL, f"invalid directory entry name {name[:80]!r}")
    return name
