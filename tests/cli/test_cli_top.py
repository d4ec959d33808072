"""flux top: the pure parts (formatting the summary and the job table from data, the
cursor), the level stack driven by keys, and the command's refusals.

The command on real instances through a real pseudo-terminal is
tests/integration/test_integration_top.py.
"""
from __future__ import annotations

import errno
import math

import pytest
from click.testing import CliRunner

from cli.main import main
from cli.top.app import Level, LostConnection, TopApp
from cli.top.source import Snapshot
from cli.top.view import (
    SUMMARY_HEIGHT,
    Canvas,
    JobRow,
    ResourceCount,
    Selection,
    Summary,
    fsd2,
    header_text,
    job_row,
    row_text,
    summary_canvas,
    table_canvas,
)

NOW = 1_700_000_000.0


# -- durations -----------------------------------------------------------------------------

@pytest.mark.parametrize("seconds,text", [
    (0.0, "0s"), (0.045, "45ms"), (0.1, "0.1s"), (4.5, "4.5s"), (12.34, "12s"),
    (59.0, "59s"), (60.0, "1m"), (125.0, "2.1m"), (3600 * 3.2, "3.2h"),
    (86400 * 1.5, "1.5d"), (-3.0, "0s"), (math.inf, "infinity"),
])
def test_durations_have_two_significant_digits_in_their_largest_unit(seconds, text):
    assert fsd2(seconds) == text


# -- the canvas ----------------------------------------------------------------------------

def test_canvas_cuts_text_at_its_right_edge():
    c = Canvas(5, 1)
    assert c.put(0, 3, "abcdef") == 5
    assert c.text(0) == "   ab"


def test_a_wide_character_takes_two_cells():
    c = Canvas(6, 1)
    c.put(0, 0, "1m\u231ax")
    assert [ch for ch, _ in c.cells[0]] == ["1", "m", "\u231a", "", "x", " "]
    assert c.find(0, "x") == 4


def test_segments_group_cells_of_one_style():
    c = Canvas(6, 1)
    c.put(0, 1, "ab", "blue bold")
    assert c.segments(0) == [(" ", frozenset()), ("ab", frozenset({"blue", "bold"})),
                             ("   ", frozenset())]


# -- the summary pane ------------------------------------------------------------------------

def summary(**kw) -> Summary:
    base = {"title": "", "expiration": 0.0, "starttime": NOW - 125, "size": 4, "level": 0,
            "version": "0.1.0", "nodes": ResourceCount(4, 1, 1),
            "cores": ResourceCount(8, 3, 0), "gpus": ResourceCount(0, 0, 0), "pending": 2,
            "running": 3, "inactive": 9, "successful": 7, "failed": 2}
    base.update(kw)
    return Summary(**base)


def test_the_summary_shows_resources_used_of_total_and_free():
    c = summary_canvas(summary(), NOW)
    assert c.text(1).startswith("    nodes [")
    assert c.text(1)[4:39].endswith("1/4]")
    assert c.text(2)[4:39].endswith("3/8]")
    assert c.text(3)[4:39] == " gpus [" + " " * 24 + "0/0]"
    # free: up and not allocated
    assert c.text(1)[40:50] == "    2 free"
    assert c.text(2)[40:50] == "    5 free"
    assert c.text(3)[40:50] == "    0 free"


def test_the_bars_grow_used_from_the_left_in_yellow_and_down_from_the_right_in_red():
    c = summary_canvas(summary(nodes=ResourceCount(4, 1, 1)), NOW)
    row = c.text(1)
    start = row.index("[") + 1
    bar = row[start:start + 24]  # 36 - len("nodes [") - len("1/4]") - 1 slots
    assert bar == "|" * 6 + " " * 12 + "|" * 6
    assert c.style_at(1, start) == {"yellow"}
    assert c.style_at(1, start + 23) == {"red"}
    assert c.style_at(1, start + 10) == frozenset()
    # without colour the bars are still drawn, plain
    plain = summary_canvas(summary(nodes=ResourceCount(4, 1, 1)), NOW, color=False)
    assert plain.text(1) == c.text(1)
    assert plain.style_at(1, start) == frozenset()


def test_the_summary_counts_jobs_by_state_and_splits_inactive_on_request():
    c = summary_canvas(summary(), NOW, details=True)
    assert c.text(1)[60:] == "    2 pending"
    assert c.text(2)[60:] == "    3 running"
    assert c.text(3)[60:] == "    7 complete"
    assert c.text(4)[60:] == "    2 failed"
    assert c.style_at(3, 64) == {"green", "bold"}
    assert c.style_at(4, 64) == {"red", "bold"}
    c = summary_canvas(summary(), NOW, details=False)
    assert c.text(3)[60:] == "    9 inactive"
    assert c.text(4).strip() == ""


def test_the_summary_shows_the_title_centred_and_the_time_left():
    c = summary_canvas(summary(title="\u0192A/\u0192B", expiration=NOW + 600), NOW)
    row = c.text(0)
    assert row[0] == "\u0192" and c.style_at(0, 0) == {"yellow"}
    col = c.find(0, "\u0192A/\u0192B")
    assert col == 6 + (73 - 5) // 2
    assert c.style_at(0, col) == {"blue", "bold"}
    assert row.endswith("10m\u231a")
    # no expiration (or a passed one): infinity
    assert summary_canvas(summary(), NOW).text(0).endswith("\u221e")
    assert summary_canvas(summary(expiration=NOW - 5), NOW).text(0).endswith("\u221e")


def test_a_long_title_keeps_its_end():
    title = "/".join([f"\u0192abcdefg{i}" for i in range(12)])
    row = summary_canvas(summary(title=title), NOW).text(0)
    assert row[6] == "\u2026"
    assert row[6:69].endswith("/\u0192abcdefg10/\u0192abcdefg11")
    assert row.endswith("\u221e")
    # a title of middling length is moved left to stay clear of the time left
    title = "\u0192" + "x" * 59
    row = summary_canvas(summary(title=title, expiration=NOW + 600), NOW).text(0)
    assert row.index(title) + len(title) == 69 and row.endswith("10m\u231a")


def test_the_info_line_has_size_depth_uptime_and_version():
    c = summary_canvas(summary(level=2), NOW)
    # the version ends on column 78, as flux-top's does
    assert c.text(5) == " size: 4   depth: 2            uptime: 2.1m".ljust(74) + "0.1.0"
    assert c.style_at(5, 1) == {"dim"}
    # a root instance has no depth shown
    assert "depth" not in summary_canvas(summary(level=0), NOW).text(5)


# -- the job table ---------------------------------------------------------------------------

def rows() -> list[JobRow]:
    return [JobRow(1, "\u0192S", "alice", "R", 1, 1, "4.5s", "sleep"),
            JobRow(2, "\u0192A", "bob", "R", 2, 1, "12m", "flux", "ssh://h/tmp/x/local"),
            JobRow(3, "\u0192Z", "alice", "C", 4, 2, "1h", "a-rather-long-name" * 5)]


def test_the_table_has_flux_tops_columns():
    assert header_text(80) == ("       JOBID     USER ST NTASKS NNODES RUNTIME NAME"
                               + " " * 29)
    assert row_text(rows()[1], 80).rstrip() == (
        "          \u0192A      bob  R      2      1     12m flux")
    # the name fills what is left of the width, cut to it
    assert len(row_text(rows()[2], 80)) == 80
    assert len(row_text(rows()[2], 120)) == 120


def test_instances_are_blue_and_bold_and_the_selected_row_reversed():
    c = table_canvas(rows(), selected=1, width=80, height=5)
    assert c.text(0).startswith("       JOBID")
    assert all(c.style_at(0, x) == {"reverse"} for x in (0, 40, 79))
    assert c.style_at(1, 5) == {"reverse"}                 # selected, not an instance
    assert c.style_at(2, 5) == {"blue", "bold"}            # an instance
    assert c.style_at(3, 5) == frozenset()
    c = table_canvas(rows(), selected=2, width=80, height=5)
    assert c.style_at(2, 5) == {"blue", "bold", "reverse"}
    c = table_canvas(rows(), selected=2, width=80, height=5, color=False)
    assert c.style_at(2, 5) == {"bold", "reverse"}


def test_the_table_shows_as_many_rows_as_fit():
    c = table_canvas(rows(), selected=None, width=80, height=3)
    assert [line.split()[0] for line in c.lines()[1:]] == ["\u0192S", "\u0192A"]


def test_a_row_from_a_job_list_record():
    job = {"id": 42, "userid": 0, "state": 16, "name": "flux", "ntasks": 2, "nnodes": 1,
           "t_run": NOW - 90, "annotations": {"user": {"uri": "ssh://h/tmp/x/local"}}}
    row = job_row(job, NOW, "\u0192xyz", "root", "R")
    assert (row.id, row.jobid, row.user, row.state, row.ntasks, row.nnodes, row.runtime,
            row.name) == (42, "\u0192xyz", "root", "R", 2, 1, "1.5m", "flux")
    assert row.is_instance and row.uri == "ssh://h/tmp/x/local"
    plain = job_row({"id": 1, "name": "sleep", "annotations": {}}, NOW, "\u0192a", "u", "R")
    assert not plain.is_instance and plain.runtime == "" and plain.ntasks == 0


# -- the cursor ------------------------------------------------------------------------------

def test_the_cursor_moves_down_and_up_and_wraps():
    sel, table = Selection(), rows()
    assert sel.move(table, +1) == 1       # none selected: the first
    assert sel.move(table, +1) == 2
    assert sel.move(table, +1) == 3
    assert sel.move(table, +1) == 1       # from the last: the first
    assert sel.move(table, -1) == 3       # from the first: the last
    assert Selection().move(table, -1) == 3
    assert Selection().move([], +1) is None


def test_the_cursor_follows_its_job_across_refreshes():
    sel, table = Selection(), rows()
    sel.move(table, +1)
    sel.move(table, +1)                   # job 2
    newer = [JobRow(9, "\u0192N", "u", "R", 1, 1, "0s", "new")] + table
    assert sel.row(newer).id == 2
    assert sel.move(newer, +1) == 3
    # its job gone: remembered, but a move starts again from an end
    assert sel.row([table[0]]) is None
    assert sel.move([table[0]], +1) == 1


# -- the level stack ----------------------------------------------------------------------------

class FakeTerm:
    width, height = 80, 24


class FakeInstance:
    def __init__(self, title: str, rows: list[JobRow], fail: bool = False) -> None:
        self.title = title
        self.rows = rows
        self.fail = fail
        self.closed = False

    def fetch(self, max_jobs: int) -> Snapshot:
        if self.fail:
            raise OSError(errno.ECONNRESET, "Connection reset by peer")
        return Snapshot(summary=Summary(title=self.title), rows=list(self.rows), owner=True)

    def close(self) -> None:
        self.closed = True


class Key(str):
    name = None


def app_with_child(monkeypatch):
    parent = FakeInstance("", rows())
    child = FakeInstance("\u0192A", [])
    opened = []

    def fake_open(uri, title=None):
        opened.append((uri, title))
        return child

    monkeypatch.setattr("cli.top.app.Instance.open", fake_open)
    app = TopApp(FakeTerm(), parent)
    app.fetch()
    return app, parent, child, opened


def test_enter_opens_the_selected_instance_through_its_local_uri(monkeypatch):
    app, parent, child, opened = app_with_child(monkeypatch)
    app.key(Key("j"))                 # the sleep job: not an instance
    app.key(Key("\n"))
    assert len(app.stack) == 1 and opened == []
    app.key(Key("j"))                 # the instance
    app.key(Key("\n"))
    assert opened == [("local:///tmp/x/local", "\u0192A")]
    assert app.level.instance is child and app.level.snapshot.summary.title == "\u0192A"
    assert app.frame().text(0).strip().startswith("\u0192") and "\u0192A" in app.frame().text(0)
    # q goes back up, then leaves
    assert app.key(Key("q")) is True and app.level.instance is parent and child.closed
    assert app.key(Key("q")) is False and parent.closed


def test_a_child_that_goes_away_is_left_for_its_parent(monkeypatch):
    app, parent, child, _ = app_with_child(monkeypatch)
    app.key(Key("k"))                 # from none, the last row... then up to the instance
    app.key(Key("k"))
    app.key(Key("\r"))
    assert app.level.instance is child
    child.fail = True
    app.fetch()
    assert app.stack == [app.stack[0]] and app.level.instance is parent and child.closed


def test_losing_the_first_instance_ends_flux_top():
    app = TopApp(FakeTerm(), FakeInstance("", [], fail=True))
    with pytest.raises(LostConnection, match="lost connection to Flux: Connection reset"):
        app.fetch()


def test_d_toggles_the_split_of_inactive_jobs(monkeypatch):
    app, *_ = app_with_child(monkeypatch)
    assert "complete" in app.frame().text(3)
    app.key(Key("d"))
    assert "inactive" in app.frame().text(3) and "failed" not in app.frame().text(4)
    app.key(Key("d"))
    assert "complete" in app.frame().text(3)


def test_a_guest_sees_inactive_jobs_unsplit_until_d():
    level = Level(FakeInstance("", []))
    level.snapshot = Snapshot(summary=Summary(), owner=False)
    assert level.show_details() is False
    level.details = True
    assert level.show_details() is True


def test_the_frame_puts_the_table_under_the_summary(monkeypatch):
    app, *_ = app_with_child(monkeypatch)
    frame = app.frame()
    assert frame.text(SUMMARY_HEIGHT).startswith("       JOBID")
    assert frame.text(SUMMARY_HEIGHT + 2).split()[0] == "\u0192A"


# -- the command's refusals ------------------------------------------------------------------------

def test_flux_top_needs_a_terminal():
    r = CliRunner().invoke(main, ["top"])
    assert r.exit_code == 1
    assert "flux-top: stdin is not a terminal" in r.output


@pytest.mark.parametrize("args", [["top", "a", "b"], ["top", "--color=sometimes"],
                                  ["top", "--bogus"]])
def test_bad_usage_exits_2(args):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
