"""flux.constraint: RFC 35 constraint queries (``flux submit --requires``) to RFC 31 objects.

``flux.constraint.parser.ConstraintParser().parse("host:foo or -bar")``;
see that module.  The parser (and ply) load on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["parser"]


def __getattr__(name: str) -> Any:
    if name == "parser":
        return importlib.import_module("flux.constraint.parser")
    raise AttributeError(f"module 'flux.constraint' has no attribute {name!r}")
