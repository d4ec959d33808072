"""The terminal side of ``flux top``: a stack of instances shown with blessed.

The bottom of the stack is the instance ``flux top`` was started on;
Enter on a job that is a Flux instance pushes that instance (reached
through the ``uri`` its broker recorded in the job), ``q`` pops one (and
leaves at the bottom).  Each instance is fetched again every ``period``
seconds and after every key that changes what is shown.  Drawing goes
through ``cli.top.view``: the screen is a Canvas, and only rows that
changed since the last frame are written.

Keys: ``j``/down and ``k``/up move the cursor (wrapping), ``h``/left and
``l``/right rotate through the instance's queues, Enter opens the
selected instance, ``q`` goes up or quits, ``d`` toggles the split of
inactive jobs into complete/failed, control-L redraws.  A heart shows for
half a second each time the instance shown publishes its heartbeat event.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from cli.top.source import Instance, Snapshot
from cli.top.view import (
    SUMMARY_HEIGHT,
    SUMMARY_WIDTH,
    Canvas,
    Selection,
    summary_canvas,
    table_canvas,
)

__all__ = ["Level", "LostConnection", "TopApp"]

#: seconds between two fetches of the instance shown
DEFAULT_PERIOD = 1.0
#: seconds the heart stays after a heartbeat event (flux-top's blink)
HEART_BLINK = 0.5


class LostConnection(Exception):
    """The instance ``flux top`` started on went away."""


class Level:
    """One instance on the stack: its connection, what was last fetched, the cursor."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.snapshot: Snapshot | None = None
        self.selection = Selection()
        self.details: bool | None = None  # None: as the owner check says, until 'd'
        self.heart_until = 0.0  # time.monotonic() at which the heart goes out

    def show_details(self) -> bool:
        if self.details is not None:
            return self.details
        return self.snapshot.owner if self.snapshot else True


class TopApp:
    """Run ``flux top`` on TERM (a blessed Terminal) from FIRST until the user quits."""

    def __init__(self, term: Any, first: Instance, color: bool = True,
                 period: float = DEFAULT_PERIOD) -> None:
        self.term = term
        self.stack: list[Level] = [Level(first)]
        self.color = color
        self.period = period
        self._shown: list[list[tuple[str, frozenset[str]]]] = []
        self._size = (0, 0)
        self._styles: dict[frozenset[str], str] = {}

    # -- data -------------------------------------------------------------------------------

    @property
    def level(self) -> Level:
        return self.stack[-1]

    def _table_height(self) -> int:
        return max(1, self.term.height - SUMMARY_HEIGHT)

    def fetch(self) -> None:
        """Fetch the instance on top; a child that went away is popped (the one
        ``flux top`` started on raises LostConnection)."""
        while True:
            level = self.level
            try:
                level.snapshot = level.instance.fetch(self._table_height() - 1)
                return
            except OSError as exc:
                if len(self.stack) == 1:
                    text = exc.strerror or str(exc)
                    raise LostConnection(f"lost connection to Flux: {text}") from None
                self.stack.pop().instance.close()
                self._shown = []  # the parent's screen is drawn anew

    # -- keys -------------------------------------------------------------------------------

    def key(self, ks: Any) -> bool:
        """Act on one keystroke; False once the last level is left."""
        name = getattr(ks, "name", None) or ""
        text = str(ks)
        level = self.level
        rows = level.snapshot.rows if level.snapshot else []
        if text == "q":
            self.stack.pop().instance.close()
            if not self.stack:
                return False
            self._shown = []
            self.fetch()
        elif text == "j" or name == "KEY_DOWN":
            level.selection.move(rows, +1)
        elif text == "k" or name == "KEY_UP":
            level.selection.move(rows, -1)
        elif name == "KEY_ENTER" or text in ("\r", "\n"):
            self.enter()
        elif text in ("h", "l") or name in ("KEY_LEFT", "KEY_RIGHT"):
            # rotate through the instance's queues (and all of them)
            level.instance.rotate_queue(-1 if text == "h" or name == "KEY_LEFT" else 1)
            self.fetch()
        elif text == "d":
            level.details = not level.show_details()
        elif text == "\x0c":  # control-L
            self._shown = []
        return True

    def enter(self) -> None:
        """Open the selected job if it is a Flux instance (nothing happens otherwise,
        or if it cannot be reached)."""
        from flux.uri import JobURI

        level = self.level
        row = level.selection.row(level.snapshot.rows if level.snapshot else [])
        if row is None or not row.is_instance:
            return
        parent = level.instance.title
        title = f"{parent}/{row.jobid}" if parent else row.jobid
        try:
            child = Instance.open(JobURI(row.uri or "").local, title)
        except (OSError, ValueError):
            return
        self.stack.append(Level(child))
        self._shown = []
        self.fetch()  # (a child gone already is popped again)

    # -- drawing ----------------------------------------------------------------------------

    def frame(self) -> Canvas:
        """The whole screen for the level on top."""
        width, height = self.term.width, self.term.height
        screen = Canvas(width, height)
        level = self.level
        snap = level.snapshot
        now = time.time()
        if snap is not None:
            screen.blit(summary_canvas(snap.summary, now, details=level.show_details(),
                                       color=self.color, width=min(width, SUMMARY_WIDTH),
                                       heart=time.monotonic() < level.heart_until), 0)
            rows = snap.rows
        else:
            rows = []
        screen.blit(table_canvas(rows, level.selection.current, width,
                                 max(0, height - SUMMARY_HEIGHT), color=self.color),
                    SUMMARY_HEIGHT)
        return screen

    def _style(self, style: frozenset[str]) -> str:
        seq = self._styles.get(style)
        if seq is None:
            t = self.term
            seq = t.normal
            for attr in ("bold", "dim", "reverse"):
                if attr in style:
                    seq += getattr(t, attr)
            for color in ("yellow", "red", "blue", "green"):
                if color in style:
                    seq += getattr(t, color)
            self._styles[style] = seq
        return seq

    def draw(self) -> None:
        """Write the rows that changed since the last frame."""
        t = self.term
        size = (t.width, t.height)
        out = []
        if size != self._size or not self._shown:
            self._size = size
            self._shown = []
            out.append(t.normal + t.clear)
        screen = self.frame()
        for r in range(screen.height):
            cells = screen.cells[r]
            if r < len(self._shown) and self._shown[r] == cells:
                continue
            out.append(t.move_yx(r, 0))
            for text, style in screen.segments(r):
                out.append(self._style(style) + text)
            out.append(t.normal)
        self._shown = [list(row) for row in screen.cells]
        if out:
            sys.stdout.write("".join(out))
            sys.stdout.flush()

    # -- the loop ---------------------------------------------------------------------------

    def _suspend(self, _signum: int, _frame: Any) -> None:
        """ctrl-Z: give the terminal back as it was, stop; on ``fg`` take it again
        and draw the whole screen (what a full-screen program does)."""
        import os
        import signal
        import termios

        t = self.term
        fd = sys.stdin.fileno()
        try:
            ours = termios.tcgetattr(fd)
            if self._tty_mode is not None:
                termios.tcsetattr(fd, termios.TCSADRAIN, self._tty_mode)
        except termios.error:
            ours = None
        sys.stdout.write(t.normal + t.normal_cursor + t.exit_fullscreen)
        sys.stdout.flush()
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)
        # continued (fg)
        signal.signal(signal.SIGTSTP, self._suspend)
        if ours is not None:
            try:
                termios.tcsetattr(fd, termios.TCSADRAIN, ours)
            except termios.error:
                pass
        sys.stdout.write(t.enter_fullscreen + t.hide_cursor)
        sys.stdout.flush()
        self._shown = []        # the next draw clears and paints everything

    def run(self) -> None:
        """Until the last level is left.  LostConnection if the first instance goes."""
        import signal
        import termios

        try:
            self._tty_mode: Any = termios.tcgetattr(sys.stdin.fileno())
        except (termios.error, ValueError, OSError):
            self._tty_mode = None
        previous = signal.signal(signal.SIGTSTP, self._suspend)
        try:
            self._loop()
        finally:
            signal.signal(signal.SIGTSTP, previous)

    def heartbeat(self) -> bool:
        """Light the heart for HEART_BLINK seconds if the instance shown published a
        heartbeat since the last look, and put it out when its time is up; True if
        the screen must be drawn again."""
        level = self.level
        now = time.monotonic()
        if level.instance.pulses():
            lit = now < level.heart_until
            level.heart_until = now + HEART_BLINK
            return not lit
        if level.heart_until and now >= level.heart_until:
            level.heart_until = 0.0
            return True
        return False

    def _loop(self) -> None:
        t = self.term
        with t.fullscreen(), t.cbreak(), t.hidden_cursor():
            self.fetch()
            self.draw()
            due = time.monotonic() + self.period
            while True:
                if not self._shown or self.heartbeat():
                    self.draw()         # back from a suspend, or the heart changed
                wake = due
                if self.level.heart_until:
                    wake = min(wake, self.level.heart_until)
                ks = t.inkey(timeout=max(0.0, min(0.25, wake - time.monotonic())))
                if ks:
                    if not self.key(ks):
                        return
                    self.draw()
                if time.monotonic() >= due:
                    self.fetch()
                    due = time.monotonic() + self.period
                    self.draw()
                elif (t.width, t.height) != self._size:
                    self.draw()
