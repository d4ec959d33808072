"""A status line, or progress bar, kept on a terminal's last line (flux.progress).

``Bottombar`` confines scrolling to the lines above the last one (vt100
scroll region) and redraws its text there; other output scrolls above it.
``stop()`` gives the terminal back and leaves the final text on its own
line.  Off a terminal nothing is drawn until ``stop()``, which writes the
final line once.  ``ProgressBar`` is a Bottombar whose text is
``before``, a bar in one of ``bar_style``'s styles, and ``after``.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import time
from datetime import timedelta
from typing import Any, Callable, TextIO

__all__ = ["Bottombar", "ProgressBar", "ElapsedTime"]

_SAVE, _RESTORE = "\0337", "\0338"


class ElapsedTime(float):
    """Seconds, with ``dt``: the same as a ``datetime.timedelta``."""

    @property
    def dt(self) -> timedelta:
        return timedelta(seconds=float(self))


def _default_formatter(bbar: "Bottombar", width: int) -> str:
    return " ".join(f"{k}={v}" for k, v in bbar.kwargs.items())[:width]


class Bottombar:
    """A status line at the bottom of a vt100 terminal, text from FORMATTER(bbar, width)."""

    def __init__(self, formatter: Callable[["Bottombar", int], str] | None = None,
                 **kwargs: Any) -> None:
        self.formatter = formatter or _default_formatter
        self.kwargs: dict[str, Any] = {}
        self.file: TextIO = sys.stdout
        self._t0: float | None = None
        self._t1: float | None = None
        self.running = False
        self._rows = 0
        self._set(kwargs)

    def _set(self, kwargs: dict[str, Any]) -> None:
        self.kwargs.update(kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)

    @property
    def elapsed(self) -> ElapsedTime:
        if self._t0 is None:
            return ElapsedTime(0.0)
        end = self._t1 if self._t1 is not None else time.monotonic()
        return ElapsedTime(end - self._t0)

    def _tty(self) -> bool:
        try:
            return self.file.isatty()
        except (AttributeError, ValueError):
            return False

    def _size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.file.fileno())
        except (AttributeError, OSError, ValueError):
            size = shutil.get_terminal_size()
        return size.columns, size.lines

    def _text(self) -> str:
        width, _rows = self._size()
        return self.formatter(self, width)[:width]

    def start(self) -> "Bottombar":
        """Reserve the last line and draw; returns self."""
        self._t0 = time.monotonic()
        self._t1 = None
        self.running = True
        if self._tty():
            _cols, self._rows = self._size()
            # a new line first, so that the reserved one does not hide the cursor's
            self.file.write(f"\n\033[1A{_SAVE}\033[1;{self._rows - 1}r{_RESTORE}")
            self.redraw()
        return self

    def redraw(self) -> None:
        """Draw the current text again."""
        if not self.running or not self._tty():
            return
        self.file.write(f"{_SAVE}\033[{self._rows};1H\033[2K{self._text()}{_RESTORE}")
        self.file.flush()

    def update(self, **kwargs: Any) -> None:
        """Set KWARGS as attributes and redraw."""
        self._set(kwargs)
        self.redraw()

    def stop(self) -> None:
        """Give the terminal back and write the final text on its own line."""
        if not self.running:
            return
        self.running = False
        self._t1 = time.monotonic()
        text = self._text()
        if self._tty():
            self.file.write(f"{_SAVE}\033[r{_RESTORE}\033[{self._rows};1H\033[2K{text}\n")
        else:
            self.file.write(text + "\n")
        self.file.flush()


class ProgressBar(Bottombar):
    """A progress bar on the last line: BEFORE, the bar, AFTER (format strings given
    ``total``, ``count``, ``percent``, ``elapsed`` and the extra keyword arguments)."""

    bar_style = {"bar": "\u2500\u2588", "dots": "\u28c0\u28c4\u28e4\u28e6\u28f6\u28f7\u28ff",
                 "line": "\u2500\u2501", "steps": " \u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588",
                 "vertbars": " \u258f\u258e\u258d\u258c\u258b\u258a\u2589\u2588"}

    def __init__(self, total: int = 100, style: str = "vertbars", before: str = "",
                 after: str = " {percent:5.1f}%", autostop: bool = False,
                 **kwargs: Any) -> None:
        if style not in self.bar_style:
            raise ValueError(f"invalid style {style!r}: use one of "
                             f"{', '.join(self.bar_style)}")
        super().__init__(self._format, **kwargs)
        self.total = total
        self.count = 0
        self.style = style
        self.before = before
        self.after = after
        self.autostop = autostop
        self._atexit = False

    @property
    def percent(self) -> float:
        return 100.0 * self.count / self.total if self.total else 100.0

    def _fields(self) -> dict[str, Any]:
        return {**self.kwargs, "total": self.total, "count": self.count,
                "percent": self.percent, "elapsed": self.elapsed}

    def bar(self, width: int) -> str:
        """The bar alone, WIDTH cells."""
        chars = self.bar_style[self.style]
        frac = min(1.0, max(0.0, self.count / self.total if self.total else 1.0))
        cells = frac * width
        full = int(cells)
        out = chars[-1] * full
        if full < width:
            out += chars[int((cells - full) * (len(chars) - 1))]
            out += chars[0] * (width - full - 1)
        return out

    @staticmethod
    def _format(pbar: "Bottombar", width: int) -> str:
        assert isinstance(pbar, ProgressBar)
        fields = pbar._fields()
        before = pbar.before.format(**fields)
        after = pbar.after.format(**fields)
        return before + pbar.bar(max(0, width - len(before) - len(after))) + after

    def start(self) -> "ProgressBar":
        if not self._atexit and not self.autostop:
            atexit.register(self.stop)
            self._atexit = True
        super().start()
        return self

    def update(self, advance: int = 1, **kwargs: Any) -> None:  # type: ignore[override]
        """Count ADVANCE more done, set KWARGS; stop at the total with ``autostop``."""
        self.count += advance
        self._set(kwargs)
        self.redraw()
        if self.autostop and self.count >= self.total:
            self.stop()
