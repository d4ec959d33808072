"""flux.util: small shared helpers of Flux's Python bindings.

RFC 23 durations live here (``parse_fsd``, ``fsd``); the ``flux jobs``
formatting engine (``OutputFormat``) is in ``flux.util.outputformat`` and
re-exported lazily.
"""
from __future__ import annotations

import importlib
from typing import Any

from flux.util.fsd import fsd, parse_fsd

__all__ = ["fsd", "parse_fsd", "OutputFormat", "UtilConfig"]

_LAZY = {"OutputFormat": "outputformat"}


def __getattr__(name: str) -> Any:
    modname = _LAZY.get(name)
    if modname is None:
        raise AttributeError(f"module 'flux.util' has no attribute {name!r}")
    return getattr(importlib.import_module(f"flux.util.{modname}"), name)
