"""flux.progress (Bottombar, ProgressBar, ElapsedTime) drawn into a terminal emulator
(pyte), and flux.memoized_property / flux.debugged."""
from __future__ import annotations

import io
import time
from datetime import timedelta

import pyte
import pytest

from flux import debugged
from flux.memoized_property import memoized_property
from flux.progress import Bottombar, ElapsedTime, ProgressBar


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def term(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("LINES", "6")
    screen = pyte.Screen(40, 6)
    stream = pyte.Stream(screen)
    out = Tty()

    def show() -> list[str]:
        stream.feed(out.getvalue())
        out.seek(0)
        out.truncate()
        return [line.rstrip() for line in screen.display]

    return out, show


def test_the_bar_stays_on_the_last_line_while_output_scrolls_above(term):
    out, show = term
    bb = Bottombar(lambda b, width: f"iteration={b.i}".ljust(width - 3) + "end", i=0)
    bb.file = out
    bb.start()
    for i in range(1, 10):
        out.write(f"line {i}\r\n")
        bb.update(i=i)
    lines = show()
    assert lines[-1] == "iteration=9".ljust(37) + "end"
    assert lines[:5] == ["line 6", "line 7", "line 8", "line 9", ""]   # the cursor's line
    assert bb.i == 9 and bb.kwargs == {"i": 9}
    bb.stop()
    out.write("after\r\n")
    lines = show()
    # the final text stays, and the whole screen scrolls again
    assert "iteration=9".ljust(37) + "end" in lines
    assert lines[-1] == "" and lines[-2] == "after"


def test_a_progress_bar_with_before_after_and_autostop(term):
    out, show = term
    pb = ProgressBar(total=8, style="bar", before="{count}/{total} ", after=" {percent:3.0f}%",
                     autostop=True)
    pb.file = out
    pb.start()
    for _ in range(4):
        pb.update()
    last = show()[-1]
    assert last.startswith("4/8 ") and last.endswith(" 50%")
    bar = last[4:-5]
    assert len(bar) == 31 and bar.count("\u2588") == 15
    pb.update(advance=4)
    assert not pb.running                   # autostop at the total
    assert "8/8 " + "\u2588" * 31 + " 100%" in show()


def test_styles_and_partial_cells():
    pb = ProgressBar(total=4, style="vertbars")
    pb.count = 1
    assert pb.bar(6) == "\u2588" + "\u258c" + " " * 4   # 1.5 cells: one full, one half
    pb.count = 4
    assert pb.bar(3) == "\u2588" * 3
    with pytest.raises(ValueError, match="invalid style"):
        ProgressBar(style="nope")
    assert set(ProgressBar.bar_style) == {"bar", "dots", "line", "steps", "vertbars"}


def test_off_a_terminal_only_the_final_line_is_written():
    out = io.StringIO()
    bb = Bottombar(None, a=1, b="x")
    bb.file = out
    bb.start()
    bb.update(a=2)
    assert out.getvalue() == ""
    bb.stop()
    assert out.getvalue() == "a=2 b=x\n"


def test_elapsed_time():
    bb = Bottombar()
    assert bb.elapsed == 0.0
    bb.file = io.StringIO()
    bb.start()
    time.sleep(0.05)
    bb.stop()
    e = bb.elapsed
    assert isinstance(e, ElapsedTime) and 0.04 < e < 5
    assert bb.elapsed == e                  # frozen at stop
    assert ElapsedTime(90.5).dt == timedelta(seconds=90.5)


def test_memoized_property_runs_its_getter_once():
    class C:
        load_name_count = 0

        @memoized_property
        def name(self):
            "name's docstring"
            self.load_name_count += 1
            return "the name"

    c = C()
    assert c.load_name_count == 0
    assert c.name == "the name" and c.name == "the name"
    assert c.load_name_count == 1
    assert C.name.__doc__ == "name's docstring"
    assert C().name == "the name"           # per instance


def test_mpir_being_debugged():
    assert debugged.get_mpir_being_debugged() == 0
    debugged.set_mpir_being_debugged(1)
    try:
        assert debugged.get_mpir_being_debugged() == 1
    finally:
        debugged.set_mpir_being_debugged(0)
