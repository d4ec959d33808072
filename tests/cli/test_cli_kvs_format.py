"""Pure output helpers of flux kvs and flux startlog (no instance needed)."""
from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from cli.cmd_kvs import _columns, _kv_line
from cli.cmd_startlog import _duration, startlog_lines


def test_kv_line_vectors():
    assert _kv_line("a", "1", 0) == "a = 1"
    assert _kv_line("a", "x" * 20, 10) == "a = x" + "x" * 2 + "..."
    assert _kv_line("k", "one\ntwo", 80) == "k = one..."
    assert _kv_line("k", "one\n", 80) == "k = one"
    assert _kv_line("k", "bad\x01rest", 80) == "k = bad..."
    assert _kv_line("k", "x" * 50, 3) == "k = " + "x" * 50  # <= 3 columns means no limit


@given(st.text(max_size=40), st.text(max_size=200), st.integers(min_value=4, max_value=120))
def test_kv_line_fits_width(key, value, width):
    line = _kv_line(key, value, width)
    assert len(line) <= width
    assert "\n" not in line and (line.endswith("...") or line.isprintable())
    if len(f"{key} = {value}") <= width - 3 and value.isprintable() and key.isprintable():
        assert line == f"{key} = {value}"


def test_columns_vectors():
    assert _columns(["a", "bb", "c"], 80, 6) == ["a     bb    c"]
    assert _columns(["a", "bb", "c"], 12, 6) == ["a     bb", "c"]
    assert _columns(["a", "bb"], 1, 6) == ["a", "bb"]
    assert _columns(["a", "bb"], 0, 6) == ["a     bb"]
    assert _columns([], 80, 4) == []


@given(st.lists(st.text(alphabet="abcxyz.", min_size=1, max_size=12), max_size=30),
       st.integers(min_value=0, max_value=100))
def test_columns_keep_names_in_order_within_width(names, width):
    colwidth = max((len(n) for n in names), default=0) + 4
    lines = _columns(names, width, colwidth)
    assert [w for line in lines for w in line.split()] == names
    for line in lines:
        if width and len(line.split()) > 1:
            assert len(line) <= width


def test_duration():
    assert _duration(5.25) == "5.2s"
    assert _duration(53) == "53s"
    assert _duration(90) == "1.5m"
    assert _duration(7200) == "2h"
    assert _duration(3 * 86400) == "3d"


def test_startlog_lines_marks_crash_and_running():
    t = time.mktime((2024, 3, 10, 8, 45, 0, 0, 0, -1))
    recs = [{"start": t, "finish": t + 71, "pid": 1},
            {"start": t + 100, "finish": None, "pid": 2},
            {"start": t + 200, "finish": None, "pid": 3}]
    lines, crashed = startlog_lines(recs, t + 230)
    assert lines == ["2024-03-10 08:45 - 2024-03-10 08:46 (1.2m)",
                     "2024-03-10 08:46 - crashed",
                     "2024-03-10 08:48 - running (30s)"]
    assert crashed
    lines, crashed = startlog_lines(recs[:1] + recs[2:], t + 230)
    assert not crashed and lines[1].endswith("running (30s)")
    assert startlog_lines([], t) == ([], False)
