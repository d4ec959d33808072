"""MPIR debugger support: whether a tool has this process under a debugger.

A parallel debugger that launches ``flux run`` sets ``MPIR_being_debugged``;
here it is a module-level flag a launcher may set and read.
"""
from __future__ import annotations

__all__ = ["get_mpir_being_debugged", "set_mpir_being_debugged"]

MPIR_being_debugged = 0


def get_mpir_being_debugged() -> int:
    return MPIR_being_debugged


def set_mpir_being_debugged(value: int) -> None:
    global MPIR_being_debugged
    MPIR_being_debugged = int(value)
