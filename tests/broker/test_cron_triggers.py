"""flux cron's pure parts: crontab fields and their next match, interval and event
triggers, -o options, and the list/dump text."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.cron.triggers import (
    EventCounter,
    interval_next,
    next_match,
    parse_crontab_line,
    parse_field,
    parse_options,
)
from cli.cmd_cron import dump_lines, flatten, list_lines


@pytest.mark.parametrize("text, low, high, want", [
    ("*", 0, 5, {0, 1, 2, 3, 4, 5}),
    ("3", 0, 59, {3}),
    ("1-3,7", 0, 59, {1, 2, 3, 7}),
    ("*/15", 0, 59, {0, 15, 30, 45}),
    ("10-20/5", 0, 59, {10, 15, 20}),
    ("5/20", 0, 59, {5, 25, 45}),
])
def test_fields(text, low, high, want):
    assert parse_field(text, low, high) == want


@pytest.mark.parametrize("text, why", [
    ("60", "outside 0-59"), ("5-2", "outside"), ("a", "not a number"), ("*/0", "step"),
    ("1-", "not a number"), ("", "not a number"),
])
def test_bad_fields(text, why):
    with pytest.raises(ValueError, match=why):
        parse_field(text, 0, 59, "minute")


def test_a_crontab_line_and_its_command():
    fields, cmd = parse_crontab_line("*/5 2 * 0-5 1-5 echo hi there  ")
    assert fields.minute == set(range(0, 60, 5)) and fields.hour == {2}
    assert fields.month == set(range(6)) and fields.wday == {1, 2, 3, 4, 5}
    assert cmd == "echo hi there"
    with pytest.raises(ValueError, match="5 time fields and a command"):
        parse_crontab_line("* * * * *")
    with pytest.raises(ValueError, match="month"):
        parse_crontab_line("* * * 12 * x")           # months are 0-11


def brute(fields, after):
    t = datetime.fromtimestamp(after).replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(60 * 24 * 400):
        if fields.matches(t):
            return t.timestamp()
        t += timedelta(minutes=1)
    return None


def field_text(low, high):
    return st.one_of(
        st.just("*"),
        st.integers(low, high).map(str),
        st.tuples(st.integers(low, high), st.integers(low, high)).map(
            lambda ab: f"{min(ab)}-{max(ab)}"),
        st.integers(1, 7).map(lambda s: f"*/{s}"),
        st.lists(st.integers(low, high), min_size=1, max_size=3).map(
            lambda xs: ",".join(map(str, xs))))


@settings(max_examples=60, deadline=None)
@given(st.tuples(field_text(0, 59), field_text(0, 23), field_text(1, 28), field_text(0, 11),
                 field_text(0, 6)),
       st.integers(1_700_000_000, 1_900_000_000))
def test_next_match_is_the_first_matching_minute(parts, start):
    fields, _ = parse_crontab_line(" ".join(parts) + " cmd")
    assert next_match(fields, start) == brute(fields, start)


def test_both_day_fields_restricted_means_either():
    fields, _ = parse_crontab_line("0 12 13 * 5 x")      # the 13th, or any Friday
    friday = datetime(2026, 12, 4, 12, 0).timestamp()     # a Friday, not the 13th
    assert next_match(fields, friday - 60) == friday
    assert next_match(fields, friday) == datetime(2026, 12, 11, 12, 0).timestamp()
    thirteenth = datetime(2026, 12, 13, 12, 0)            # a Sunday
    assert fields.matches(thirteenth)


def test_a_crontab_that_never_matches():
    fields, _ = parse_crontab_line("0 0 31 1 * x")        # February 31st
    assert next_match(fields, 1_800_000_000) is None


def test_interval_times():
    assert interval_next(10, None, 100.0, None) == 110.0
    assert interval_next(10, 2.5, 100.0, None) == 102.5
    assert interval_next(10, 2.5, 100.0, 102.5) == 112.5
    assert interval_next(10, None, 200.0, 150.0) == 210.0     # restarted since


@pytest.mark.parametrize("nth, after, runs", [
    (1, 0, [1, 2, 3, 4, 5, 6, 7]),
    (3, 0, [3, 6]),
    (1, 4, [4, 5, 6, 7]),
    (2, 3, [3, 5, 7]),
])
def test_event_counts(nth, after, runs):
    c = EventCounter(nth, after)
    assert [i for i in range(1, 8) if c.event(float(i))] == runs


def test_event_min_interval():
    c = EventCounter(min_interval=1.0)
    assert [t for t in (0.0, 0.4, 1.0, 1.5, 2.1) if c.event(t)] == [0.0, 1.0, 2.1]
    c.reset()
    assert c.event(2.2)


def test_extra_options():
    assert parse_options("timeout=1.5,rank=1,task-history-count=3,stop-on-failure=2") == {
        "timeout": 1.5, "rank": 1, "task-history-count": 3, "stop-on-failure": 2}
    assert parse_options(None) == {}
    for bad, why in [("nope=1", "unknown option 'nope'"), ("rank", "needs a value"),
                     ("rank=x", "invalid value"), ("timeout=-1", "negative")]:
        with pytest.raises(ValueError, match=why):
            parse_options(bad)


ENTRY = {"id": 3, "name": "tick", "command": "echo hi", "type": "interval",
         "typedata": {"interval": 60.0, "after": None}, "stopped": False, "next": None,
         "stats": {"count": 2, "failure": 1, "lastrun": None},
         "tasks": [{"rank": 0, "state": "Exited", "code": 1}]}


def test_list_and_dump_text():
    lines = list_lines([ENTRY])
    assert lines[0].split()[:3] == ["ID", "NAME", "TYPE"]
    assert lines[1].split()[:6] == ["3", "tick", "interval", "W", "2", "1"]
    assert "exit 1" in lines[1] and lines[1].endswith("echo hi")
    dump = dump_lines(ENTRY)
    assert dump[0] == "id = 3"
    assert "typedata.interval = 60" in dump and "tasks.0.code = 1" in dump
    assert dump_lines(ENTRY, "stats.count") == ["2"]
    assert dump_lines(ENTRY, "typedata") == ["typedata.interval = 60", "typedata.after = -"]
    with pytest.raises(KeyError):
        dump_lines(ENTRY, "nope")
    assert flatten({"a": [1, {"b": 2}]}) == [("a.0", 1), ("a.1.b", 2)]
