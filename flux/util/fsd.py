"""RFC 23 Flux Standard Duration: parse ``N[ms|s|m|h|d]`` and format seconds back."""
from __future__ import annotations

import math
import re

__all__ = ["parse_fsd", "fsd"]

_FSD = re.compile(r"\+?((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(ms|s|m|h|d)?", re.ASCII)
_UNIT = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0, "d": 86400.0}
# RFC 23 names "infinity"; Flux also takes "inf", "INF" and "INFINITY".
_INFINITE = {"inf", "INF", "infinity", "INFINITY", "Infinity", "Inf"}


def parse_fsd(fsd_string: str | int | float) -> float:
    """Return the seconds in an RFC 23 duration (``"1.5h"`` -> 5400.0).

    A bare number is seconds; ``inf``/``infinity`` take no suffix.  An int
    or float is taken as seconds.  Raises ValueError naming the input for
    anything else, including negative, NaN or overflowing values.
    """
    if isinstance(fsd_string, bool):
        raise ValueError(f"invalid Flux standard duration: {fsd_string!r}")
    if isinstance(fsd_string, (int, float)):
        if fsd_string < 0 or math.isnan(fsd_string):
            raise ValueError(f"invalid Flux standard duration: {fsd_string!r}")
        return float(fsd_string)
    if not isinstance(fsd_string, str):
        raise ValueError(f"invalid Flux standard duration: {fsd_string!r}")
    text = fsd_string.strip()
    if text in _INFINITE:
        return math.inf
    match = _FSD.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid Flux standard duration '{fsd_string}'")
    value = float(match.group(1)) * _UNIT[match.group(2)]
    if math.isinf(value):
        raise ValueError(f"invalid Flux standard duration '{fsd_string}': too large")
    return value


def fsd(secs: float) -> str:
    """Format seconds as ``flux jobs`` ``!F`` shows them.

    Under 1ms is ``0s``; under 10s has three decimals (``1.500s``); then
    four significant digits in the largest unit that keeps the number
    at least 1: ``30s``, ``1.5m``, ``2h``, ``7d``.  Infinity is ``inf``.
    """
    if math.isnan(secs):
        raise ValueError("cannot format NaN as a Flux standard duration")
    if math.isinf(secs):
        return "inf"
    if secs < 1.0e-3:
        return "0s"
    if secs < 10.0:
        return f"{secs:.3f}s"
    if secs < 60.0:
        return f"{secs:.4g}s"
    if secs < 3600.0:
        return f"{secs / 60.0:.4g}m"
    if secs < 86400.0:
        return f"{secs / 3600.0:.4g}h"
    return f"{secs / 86400.0:.4g}d"
