"""The ``--progress`` bar of ``flux submit`` (and its ``--jps`` rate).

``render_submit`` is pure: counts and times in, one line out (with --wait,
flux.job.watcher draws the jobs' bar).  ``ProgressBar``
redraws that line on a terminal stream (carriage return, at most ten times
a second) and ends it with a newline; on a stream that is not a terminal
it prints only the final line, so logs and tests see one stable line.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["render_submit", "ProgressBar"]


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _bar(done: int, total: int, width: int, fill: str) -> str:
    filled = width if total <= 0 else min(width, done * width // total)
    return fill * filled + " " * (width - filled)


def _tail(done: int, total: int, elapsed: float, jps: bool) -> str:
    pct = 100.0 if total <= 0 else 100.0 * done / total
    text = f"{pct:5.1f}% {_elapsed(elapsed)}"
    if jps:
        rate = done / elapsed if elapsed > 0 else 0.0
        text += f" {rate:8.1f} job/s"
    return text


def render_submit(submitted: int, total: int, elapsed: float, jps: bool = False,
                  width: int = 30, fill: str = "#") -> str:
    """``Submitting 5/10 |#####     |  50.0% 0:00:01`` (+ jobs/s with JPS)."""
    return (f"Submitting {submitted}/{total} |{_bar(submitted, total, width, fill)}| "
            f"{_tail(submitted, total, elapsed, jps)}")


class ProgressBar:
    """Draw a progress line on STREAM (default stderr)."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty()
        self.interval = interval
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._line = ""
        encoding = (getattr(self.stream, "encoding", "") or "").lower().replace("-", "")
        self.fill = "\u2588" if self.interactive and encoding == "utf8" else "#"

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def update(self, line: str, force: bool = False) -> None:
        """Remember LINE; redraw if interactive and the interval has passed."""
        self._line = line
        now = time.monotonic()
        if self.interactive and (force or now - self._last_draw >= self.interval):
            self._last_draw = now
            self.stream.write("\r" + line + "\033[K")
            self.stream.flush()

    def clear(self) -> None:
        """Erase the drawn line so other output can be written above it."""
        if self.interactive and self._last_draw:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._last_draw = 0.0

    def finish(self, line: str | None = None) -> None:
        """Draw the final line and end it."""
        if line is not None:
            self._line = line
        prefix = "\r" if self.interactive else ""
        suffix = "\033[K" if self.interactive else ""
        self.stream.write(prefix + self._line + suffix + "\n")
        self.stream.flush()
