"""flux.resource.ResourceCount: a jobspec resource count, parsed and enumerable.

A jobspec vertex's ``count`` (RFC 14) is an integer, a range object
``{"min", "max"?, "operand"?, "operator"?}``, or a string (RFC 45: an
idset ``1,7-9``, a range ``2-8``, ``2+``, ``2-8:2:*``; optionally in
brackets).  ``ResourceCount.from_count_spec()`` reads any of them (as
Flux's libjob ``count_create()``); ``valid_counts(available)`` gives the
allowed values, largest first, for a scheduler to try.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from flux.idset import IDset

__all__ = ["ResourceCount"]

# RFC 45 range: MIN-MAX or MIN+, then optionally :OPERAND and :OPERATOR
_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+)|(\+))(?::([0-9]+)(?::(.))?)?")
# an RFC 22 idset of plain decimal ids and ranges
_IDSET = re.compile(r"[0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*")
_MAX_VALUES = 1 << 16       # a stepped range longer than this is refused


def _sequence(low: int, high: int, operator: str, operand: int) -> IDset:
    """The values of the stepped range LOW..HIGH (RFC 14 ``operator``/``operand``)."""
    if operator not in ("+", "*", "^"):
        raise ValueError(f"count: unknown operator '{operator}' (expected +, * or ^)")
    if operator == "+" and operand < 1:
        raise ValueError(f"count: operator '+' needs an operand >= 1, got {operand}")
    if operator in ("*", "^") and operand < 2:
        raise ValueError(f"count: operator '{operator}' needs an operand >= 2, got {operand}")
    if operator == "^" and low < 2:
        raise ValueError(f"count: operator '^' needs min >= 2, got {low}")
    values: list[int] = []
    value = low
    while value <= high:
        if len(values) >= _MAX_VALUES:
            raise ValueError(f"count: more than {_MAX_VALUES} values in {low}-{high}")
        values.append(value)
        value = value + operand if operator == "+" else \
            value * operand if operator == "*" else value ** operand
    return IDset(values)


class ResourceCount:
    """A count: ``min``, ``max`` (None: unbounded) and, for stepped or
    non-contiguous counts, ``_values`` (an IDset of the allowed values;
    None when every value from min to max is allowed)."""

    __slots__ = ("min", "max", "_values")

    def __init__(self, mn: int, mx: int | None, values: IDset | None = None) -> None:
        self.min = mn
        self.max = mx
        self._values = values

    @classmethod
    def _range(cls, low: int, high: int | None, operand: int = 1,
               operator: str = "+") -> "ResourceCount":
        if low < 1:
            raise ValueError(f"count: min must be >= 1, got {low}")
        if high is None:
            if operator != "+" or operand != 1:
                raise ValueError(f"count: an unbounded count cannot step by "
                                 f"'{operator}' {operand}")
            return cls(low, None)
        if high < low:
            raise ValueError(f"count: max must be >= min, got min={low} max={high}")
        if operator == "+" and operand == 1:
            return cls(low, high)
        return cls(low, high, _sequence(low, high, operator, operand))

    @classmethod
    def from_count_spec(cls, v: Any, default: int = 1) -> "ResourceCount":
        """The count of a JSON-decoded jobspec ``count`` (int, dict or str).

        ValueError for a malformed count; any other type stands for the
        fixed count DEFAULT.
        """
        if isinstance(v, bool):
            raise ValueError(f"count: expected an integer, object or string, got {v!r}")
        if isinstance(v, int):
            if v < 1:
                raise ValueError(f"count: must be >= 1, got {v}")
            return cls(v, v)
        if isinstance(v, Mapping):
            fields = {}
            for key, fallback in (("min", default), ("max", None), ("operand", 1)):
                value = v.get(key, fallback)
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ValueError(f"count: '{key}' must be an integer, got {value!r}")
                fields[key] = value
            operator = v.get("operator", "+")
            if not isinstance(operator, str):
                raise ValueError(f"count: 'operator' must be a string, got {operator!r}")
            return cls._range(fields["min"], fields["max"], fields["operand"], operator)
        if isinstance(v, str):
            return cls._from_string(v)
        return cls(default, default)

    @classmethod
    def _from_string(cls, text: str) -> "ResourceCount":
        body = text.strip()
        if body.startswith("[") or body.endswith("]"):
            if not (body.startswith("[") and body.endswith("]")):
                raise ValueError(f"count: unbalanced brackets in '{text}'")
            body = body[1:-1]
        match = _RANGE.fullmatch(body)
        if match is not None:
            low, high, plus, operand, operator = match.groups()
            return cls._range(int(low), None if plus else int(high),
                              1 if operand is None else int(operand), operator or "+")
        if _IDSET.fullmatch(body) is None:
            raise ValueError(f"count: '{text}' is neither an idset nor an RFC 45 range")
        ids = IDset(body)
        low, high = ids.first(), ids.last()
        if low < 1:
            raise ValueError(f"count: min must be >= 1, got {low}")
        if len(ids) == high - low + 1:
            return cls(low, high)
        return cls(low, high, ids)

    def scaled(self, factor: int) -> "ResourceCount":
        """This count with every value multiplied by FACTOR (self when FACTOR is 1)."""
        if factor == 1:
            return self
        high = None if self.max is None else self.max * factor
        values = None if self._values is None else IDset([v * factor for v in self._values])
        return ResourceCount(self.min * factor, high, values)

    def valid_counts(self, available: int) -> Iterator[int]:
        """The allowed values not above AVAILABLE, largest first (none below ``min``)."""
        cap = available if self.max is None else min(available, self.max)
        if cap < self.min:
            return
        if self._values is None:
            yield from range(cap, self.min - 1, -1)
            return
        for value in sorted(self._values, reverse=True):
            if self.min <= value <= cap:
                yield value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResourceCount):
            return NotImplemented
        mine = None if self._values is None else self._values.encode()
        theirs = None if other._values is None else other._values.encode()
        return (self.min, self.max, mine) == (other.min, other.max, theirs)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._values is None:
            return f"ResourceCount({self.min}, {self.max})"
        return f"ResourceCount({self.min}, {self.max}, values={self._values!r})"
