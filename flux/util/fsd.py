"""RFC 23 Flux Standard Duration: parse ``N[ms|s|m|h|d]`` and format seconds back."""
from __future__ import annotations

import math
import re

_FSD = re.compile(r"^\s*((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(ms|s|m|h|d)?\s*$")
_UNIT = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0, "d": 86400.0}
_INFINITE = {"inf", "INF", "infinity", "INFINITY", "Infinity", "Inf"}


def parse_fsd(fsd_string: str | int | float) -> float:
    """Return the seconds in an RFC 23 duration (``"1.5h"`` -> 5400.0).

    A number is taken as seconds.  ``inf``/``infinity`` take no suffix.
    Raises ValueError naming the string for anything else, including
    negative values.
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
    match = _FSD.match(text)
    if match is None:
        raise ValueError(f"invalid Flux standard duration '{fsd_string}'")
    value = float(match.group(1)) * _UNIT[match.group(2)]
    if math.isinf(value) or math.isnan(value):
        raise ValueError(f"invalid Flux standard duration '{fsd_string}'")
    return value


def fsd(secs: float) -> str:
    """Format seconds as a short FSD string, as ``flux jobs`` ``!F`` shows it.

    Picks the largest unit that keeps the number readable: ``0.002`` ->
    ``"2ms"``, ``90`` -> ``"1.5m"``, ``7200`` -> ``"2h"``, ``0`` -> ``"0s"``.
    """
    if math.isinf(secs):
        return "infinity"
    if secs == 0:
        return "0s"
    if secs < 0.1:
        return f"{secs * 1000.0:.3g}ms"
    if secs < 60.0:
        return f"{secs:.4g}s"
    if secs < 3600.0:
        return f"{secs / 60.0:.4g}m"
    if secs < 86400.0:
        return f"{secs / 3600.0:.4g}h"
    return f"{secs / 86400.0:.4g}d"
