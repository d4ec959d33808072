"""Waiting in tests for a condition another process brings about."""
from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(pred: Callable[[], object], timeout: float = 10.0,
               what: str = "condition") -> None:
    """Poll PRED until it is true; AssertionError naming WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met after {timeout}s")
        time.sleep(0.01)
