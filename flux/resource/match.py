"""RFC 31 constraint objects matched against the ranks of a resource set.

``compile_constraint(constraint)`` checks an RFC 31 object (a dict, or
its JSON text) once and returns a predicate ``match(rank, hostname,
properties) -> bool`` for one rank; ``ResourceSet.copy_constraint`` keeps
the ranks it accepts.  The operators, as Flux's librlist matches them:

- ``properties``: a list of names the rank must all have; ``^name``
  negates one; a name equal to the rank's hostname matches too;
- ``hostlist``: RFC 29 hostlists, the rank's host must be in one;
- ``ranks``: RFC 22 idsets, the rank must be in one;
- ``and`` (all; an empty list matches), ``or`` (any; an empty list
  matches), ``not`` (none of the list matching together, i.e. not
  ``and``; an empty list is an error).

``{}`` matches every rank; an object with several operators needs all of
them.  Errors are ValueError with Flux's texts ("unknown constraint
operator: foo", "properties value must be an array", "non-string property
specified", ...); see specs/R.md.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from flux.hostlist import Hostlist
from flux.idset import IDset

__all__ = ["compile_constraint", "Matcher"]

#: match(rank, hostname or None, property names of the rank) -> bool
Matcher = Callable[[int, "str | None", "frozenset[str] | set[str]"], bool]

# RFC 20's illegal property characters, less "^" (negation in a query)
_BAD_PROPERTY_CHARS = "!&'\"`|()"


def _always(rank: int, host: str | None, props: Any) -> bool:
    return True


def _show(entry: Any) -> str:
    return f"'{entry}'" if isinstance(entry, str) else json.dumps(entry)


def _properties(values: Any) -> Matcher:
    if not isinstance(values, list):
        raise ValueError("properties value must be an array")
    wanted: list[tuple[str, bool]] = []
    for value in values:
        if not isinstance(value, str):
            raise ValueError("non-string property specified")
        for ch in value:
            if ch in _BAD_PROPERTY_CHARS:
                raise ValueError(f"invalid character '{ch}' in property \"{value}\"")
        negate = value.startswith("^")
        wanted.append((value[1:] if negate else value, negate))

    def match(rank: int, host: str | None, props: Any) -> bool:
        for name, negate in wanted:
            has = name in props or name == host
            if has == negate:
                return False
        return True

    return match


def _hostlist(values: Any) -> Matcher:
    if not isinstance(values, list):
        raise ValueError("hostlist operator value must be an array")
    hosts: set[str] = set()
    for entry in values:
        try:
            if not isinstance(entry, str):
                raise TypeError("not a string")
            hosts.update(Hostlist(entry))
        except (TypeError, ValueError):
            raise ValueError(f"invalid hostlist {_show(entry)} in {json.dumps(values)}") from None

    def match(rank: int, host: str | None, props: Any) -> bool:
        return host is not None and host in hosts

    return match


def _ranks(values: Any) -> Matcher:
    if not isinstance(values, list):
        raise ValueError("ranks operator value must be an array")
    ranks = IDset()
    for entry in values:
        try:
            if not isinstance(entry, str):
                raise TypeError("not a string")
            ranks.add(IDset(entry))
        except (TypeError, ValueError):
            raise ValueError(f"invalid idset {_show(entry)} in {json.dumps(values)}") from None

    def match(rank: int, host: str | None, props: Any) -> bool:
        return rank in ranks

    return match


def _conditional(op: str, values: Any) -> Matcher:
    if not isinstance(values, list):
        raise ValueError(f"{op} operator value must be an array")
    if op == "not" and not values:
        raise ValueError("not operator requires at least one constraint")
    subs = [_compile(value) for value in values]
    if op == "or":
        if not subs:
            return _always

        def match_or(rank: int, host: str | None, props: Any) -> bool:
            return any(m(rank, host, props) for m in subs)

        return match_or

    def match_and(rank: int, host: str | None, props: Any) -> bool:
        return all(m(rank, host, props) for m in subs)

    if op == "and":
        return match_and

    def match_not(rank: int, host: str | None, props: Any) -> bool:
        return not match_and(rank, host, props)

    return match_not


_OPERATORS: dict[str, Callable[[Any], Matcher]] = {
    "properties": _properties,
    "hostlist": _hostlist,
    "ranks": _ranks,
    "and": lambda values: _conditional("and", values),
    "or": lambda values: _conditional("or", values),
    "not": lambda values: _conditional("not", values),
}


def _compile(constraint: Any) -> Matcher:
    if not isinstance(constraint, Mapping):
        raise ValueError("constraint must be JSON object")
    parts: list[Matcher] = []
    for op, values in constraint.items():
        make = _OPERATORS.get(op)
        if make is None:
            raise ValueError(f"unknown constraint operator: {op}")
        parts.append(make(values))
    if not parts:
        return _always
    if len(parts) == 1:
        return parts[0]

    def match_all(rank: int, host: str | None, props: Any) -> bool:
        return all(m(rank, host, props) for m in parts)

    return match_all


def compile_constraint(constraint: Mapping[str, Any] | str | bytes) -> Matcher:
    """A predicate for the RFC 31 ``constraint`` (dict or JSON text); ValueError if invalid."""
    if isinstance(constraint, (str, bytes, bytearray)):
        try:
            constraint = json.loads(constraint)
        except ValueError as exc:
            raise ValueError(f"constraint is not valid JSON: {exc}") from None
    return _compile(constraint)
