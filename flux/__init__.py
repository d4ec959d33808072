"""Flux: the public Python API (``flux.Flux``, ``flux.job``, ``flux.kvs``, ...).

Heavy submodules load on first use so that ``import flux`` stays cheap for
the command line.
"""
from __future__ import annotations

if False:  # for type checkers only: importing typing costs a short command ~3 ms
    from typing import Any

__version__ = "0.1.0"

__all__ = ["Flux", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Flux":
        from flux.core.handle import Flux

        return Flux
    import importlib

    if name in {"job", "kvs", "idset", "hostlist", "resource", "util", "eventlog",
                "constants", "future", "rpc", "message", "errors", "uri", "constraint",
                "queue", "subprocess"}:
        return importlib.import_module(f"flux.{name}")
    raise AttributeError(f"module 'flux' has no attribute {name!r}")
