"""Byte sizes written for people: ``1024``, ``"512k"``, ``"10M"``, ``"1.5G"``."""
from __future__ import annotations

import math
from typing import Any

__all__ = ["parse_size"]

# powers of 1024, as Flux's tools read them
_UNITS = {"": 1, "b": 1, "B": 1, "k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20,
          "g": 1 << 30, "G": 1 << 30}


def parse_size(value: Any, maximum: int | None = None) -> int:
    """VALUE (a number, or a number with a suffix b, k, M or G) in bytes.

    ValueError names VALUE when it is not one, is negative, or exceeds MAXIMUM.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")  # noqa: TRY004 - callers catch ValueError
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        text = str(value).strip()
        unit = text[-1:] if text[-1:] in _UNITS and not text[-1:].isdigit() else ""
        try:
            number = float(text[:len(text) - len(unit)])
        except ValueError:
            raise ValueError(f"invalid size {value!r} (a number with an optional suffix "
                             "k, M or G)") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"invalid size {value!r}: must be a non-negative number")
    n = int(number * _UNITS[unit])
    if maximum is not None and n > maximum:
        raise ValueError(f"invalid size {value!r}: larger than {maximum} bytes")
    return n
