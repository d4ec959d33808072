"""Processes in tests: is a pid alive (not a zombie), wait for pids to be gone."""
from __future__ import annotations

import os
import time
from collections.abc import Iterable


def alive(pid: int) -> bool:
    """True if PID runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_dead(pids: Iterable[int], timeout: float = 5.0) -> bool:
    """Wait until none of PIDS is alive; False if some still are after TIMEOUT."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        if not any(alive(p) for p in pids):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
