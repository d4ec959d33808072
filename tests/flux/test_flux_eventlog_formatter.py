"""EventLogFormatter against the vectors in specs/eventlog.md."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from flux.eventlog import EventLogEvent, EventLogFormatter

SPEC = Path(__file__).resolve().parents[2] / "specs" / "eventlog.md"


def spec_vector(tag: str) -> list[str]:
    """Lines of the fenced block tagged ``vector:TAG`` in the spec."""
    text = SPEC.read_text(encoding="utf-8")
    match = re.search(rf"```text vector:{re.escape(tag)}\n(.*?)```", text, re.S)
    assert match, f"vector {tag} missing from {SPEC}"
    return match.group(1).splitlines()


INPUT = spec_vector("input")
ENTRIES = [orjson.loads(line) for line in INPUT]


@pytest.fixture
def tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[callable]:
    def set_tz(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    yield set_tz
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("timestamp_format", ["raw", "human", "offset", "iso"])
def test_text_vectors(tz, timestamp_format: str) -> None:
    tz("UTC")
    evf = EventLogFormatter(timestamp_format=timestamp_format, color="never")
    got = [evf.format(entry).strip() for entry in ENTRIES]
    assert got == spec_vector(timestamp_format)


def test_raw_is_the_default_and_vector_line_is_exact() -> None:
    evf = EventLogFormatter(color="never")
    assert evf.format(ENTRIES[0]) == "1738774194.078433 submit userid=1001 urgency=16 flags=0 version=1"


def test_json_vector_reproduces_input() -> None:
    evf = EventLogFormatter(format="json")
    assert [evf.format(entry) for entry in ENTRIES] == INPUT


def test_json_drops_only_empty_context() -> None:
    evf = EventLogFormatter(format="json")
    assert evf.format({"timestamp": 1.5, "name": "x", "context": {}}) == '{"timestamp":1.5,"name":"x"}'
    assert evf.format({"timestamp": 1.5, "name": "x", "context": {"a": None}}) == \
        '{"timestamp":1.5,"name":"x","context":{"a":null}}'


def test_reltime_is_an_alias_of_human(tz) -> None:
    tz("UTC")
    evf = EventLogFormatter(timestamp_format="reltime", color="never")
    assert [evf.format(e) for e in ENTRIES] == spec_vector("human")


def test_offset_is_padded_to_15_columns() -> None:
    evf = EventLogFormatter(timestamp_format="offset", color="never")
    assert evf.format(ENTRIES[0]).startswith("       0.000000 submit")


def test_iso_uses_local_zone_with_numeric_offset(tz) -> None:
    tz("EST+5")
    evf = EventLogFormatter(timestamp_format="iso", color="never")
    assert evf.format(ENTRIES[0]).startswith("2025-02-05T11:49:54.078433-0500 submit")


def test_human_starts_a_new_break_after_a_minute(tz) -> None:
    tz("UTC")
    evf = EventLogFormatter(timestamp_format="human", color="never")
    t0 = ENTRIES[0]["timestamp"]
    lines = [evf.format({"timestamp": t0 + dt, "name": "e"}) for dt in (0, 59.5, 61, 62.25)]
    assert lines == ["[Feb05 16:49] e", "[ +59.500000] e", "[Feb05 16:50] e", "[  +1.250000] e"]


def test_format_accepts_json_line_and_event_object() -> None:
    evf = EventLogFormatter(color="never")
    assert evf.format(INPUT[1]) == "1738774194.094738 validate"
    assert evf.format(EventLogEvent(INPUT[1])) == "1738774194.094738 validate"


def test_color_always_wraps_each_part(tz) -> None:
    tz("UTC")
    evf = EventLogFormatter(timestamp_format="human", color="always")
    first = evf.format({"timestamp": ENTRIES[0]["timestamp"], "name": "release",
                        "context": {"ranks": "all", "n": 2, "final": True}})
    assert first == ("\033[1m\033[32m[Feb05 16:49]\033[0m \033[33mrelease\033[0m"
                     " \033[34mranks\033[0m=\033[35m\"all\"\033[0m"
                     " \033[34mn\033[0m=\033[37m2\033[0m"
                     " \033[34mfinal\033[0m=\033[35mtrue\033[0m")
    second = evf.format({"timestamp": ENTRIES[1]["timestamp"], "name": "exception"})
    assert second == "\033[32m[  +0.016305]\033[0m \033[1m\033[31mexception\033[0m"


def test_color_never_and_auto_off_without_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "\033" not in EventLogFormatter(color="never").format(ENTRIES[0])
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert EventLogFormatter().color is False
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert EventLogFormatter().color is True


@pytest.mark.parametrize("kwargs, message", [
    ({"format": "foo"}, "Invalid entry_fmt: foo"),
    ({"timestamp_format": "foo"}, "Invalid timestamp_fmt: foo"),
    ({"color": "foo"}, "Invalid color: foo"),
])
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EventLogFormatter(**kwargs)


def test_bad_entry_is_rejected_naming_the_problem() -> None:
    evf = EventLogFormatter()
    with pytest.raises(ValueError, match="no 'timestamp' key"):
        evf.format({"name": "x"})
    with pytest.raises(ValueError, match="not valid JSON"):
        evf.format("{oops")
