"""RFC 23 durations: parse_fsd vectors and bad input, and the ``!F`` formatter (specs/fsd.md)."""
from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.util import fsd, parse_fsd


@pytest.mark.parametrize("text,seconds", [
    ("2ms", 0.002), ("0.1s", 0.1), ("30", 30.0), ("1.2h", 4320.0), ("5m", 300.0),
    ("0s", 0.0), ("5d", 432000.0),
    ("1.5h", 5400.0), ("60", 60.0), ("1m", 60.0), ("7d", 604800.0), ("30m", 1800.0),
    (".5s", 0.5), ("1e3", 1000.0), ("1.5e1m", 900.0), ("+10m", 600.0), (" 20s ", 20.0),
])
def test_rfc23_vectors(text: str, seconds: float) -> None:
    assert parse_fsd(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["inf", "INF", "infinity", "INFINITY"])
def test_infinity(text: str) -> None:
    assert parse_fsd(text) == math.inf


def test_numbers_are_seconds() -> None:
    assert parse_fsd(90) == 90.0 and isinstance(parse_fsd(90), float)
    assert parse_fsd(0.25) == 0.25


@pytest.mark.parametrize("bad", [
    "", "s", "ms", "h", "-1", "-1s", "1x", "1.5 h", "1S", "1hs", "infs", "nan", "1e400",
    "1_000", "0x10", "1,5s", "١s",
])
def test_bad_strings_are_rejected_naming_the_string(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid Flux standard duration '{bad}'")):
        parse_fsd(bad)


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, True, None, [1]])
def test_bad_values_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid Flux standard duration"):
        parse_fsd(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds,text", [
    (0, "0s"), (0.0005, "0s"), (0.002, "0.002s"), (1.5, "1.500s"), (9.25, "9.250s"),
    (10, "10s"), (30, "30s"), (59.5, "59.5s"), (60, "1m"), (90, "1.5m"), (3599, "59.98m"),
    (3600, "1h"), (5400, "1.5h"), (86399, "24h"), (86400, "1d"), (432000, "5d"),
    (math.inf, "inf"), (-5, "0s"),
])
def test_fsd_formats_like_flux_jobs(seconds: float, text: str) -> None:
    assert fsd(seconds) == text


def test_fsd_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        fsd(math.nan)


@given(st.floats(min_value=1e-3, max_value=1e9, allow_nan=False))
def test_format_then_parse_is_close(seconds: float) -> None:
    # three decimals below 10s, four significant digits above
    assert parse_fsd(fsd(seconds)) == pytest.approx(seconds, rel=1e-3, abs=1e-3)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False),
       st.sampled_from(["", "s", "ms", "m", "h", "d"]))
def test_parse_scales_by_unit(value: float, unit: str) -> None:
    scale = {"": 1, "s": 1, "ms": 0.001, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_fsd(f"{value!r}{unit}") == pytest.approx(value * scale)
