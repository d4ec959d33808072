"""Errors that carry a Flux errno.

Every refusal in this project is an ``OSError`` (or subclass) whose errno
is the one Flux would give and whose strerror names what is wrong, e.g.
``FluxError(errno.ENOENT, "job.0000.0001.eventlog: no such key")``.
"""
from __future__ import annotations

import os


class FluxError(OSError):
    """An OSError with a Flux errno and a message naming the problem."""

    def __init__(self, errnum: int, message: str | None = None) -> None:
        super().__init__(errnum, message if message is not None else os.strerror(errnum))

    def __str__(self) -> str:
        return self.strerror or super().__str__()


__all__ = ["FluxError"]
