"""RFC 43 job-list constraints (RFC 31 syntax), compiled to predicates.

``compile_constraint(obj)`` checks a constraint object once and returns a
``Constraint`` whose ``match(get, budget)`` tests one job.  ``get(attr)``
returns the job's value for an RFC 43 attribute (or None when unset), so
the same constraint works on active records and on packed inactive ones.
Every leaf test costs one comparison from ``budget``; running out raises
FluxError(E2BIG) so a costly query is refused instead of stalling the
service.

Operators: ``userid``, ``name``, ``queue``, ``states``, ``results``,
``hostlist``, ``ranks``, ``t_submit``/``t_depend``/``t_run``/``t_cleanup``/
``t_inactive`` (``[">=1234.5"]``), and ``and``, ``or``, ``not``.
"""
from __future__ import annotations

import errno
import operator
from collections.abc import Callable, Mapping
from typing import Any

from flux.errors import FluxError
from jobmgr.states import RESULT_NAMES, STATE_NAMES

__all__ = ["Constraint", "Budget", "compile_constraint", "hoist_filters", "parse_states",
           "parse_results"]

Getter = Callable[[str], Any]

_TIME_ATTRS = ("t_submit", "t_depend", "t_run", "t_cleanup", "t_inactive")
_COMPARATORS = ((">=", operator.ge), ("<=", operator.le), (">", operator.gt), ("<", operator.lt))


class Budget:
    """Counts comparisons; ``limit`` 0 means unlimited."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit
        self.used = 0

    def spend(self) -> None:
        self.used += 1
        if self.limit and self.used > self.limit:
            raise FluxError(errno.E2BIG, "Excessive comparisons made, limit search via "
                            "states, since, userid, etc.")


def _mask(values: Any, names: Mapping[str, int], what: str) -> int:
    if not isinstance(values, list):
        raise ValueError(f"{what}: must be an array of names or bitmasks")
    mask = 0
    allowed = 0
    for bit in names.values():
        allowed |= bit
    for value in values:
        if isinstance(value, bool):
            raise ValueError(f"{what}: invalid value {value!r}")
        if isinstance(value, int):
            if value <= 0 or value & ~allowed:
                raise ValueError(f"{what}: invalid bitmask {value}")
            mask |= value
        elif isinstance(value, str):
            key = value.strip().lower()
            if key not in names:
                raise ValueError(f"{what}: unknown name {value!r}")
            mask |= names[key]
        else:
            raise ValueError(f"{what}: invalid value {value!r}")
    return mask


def parse_states(values: Any) -> int:
    """``["pending", "run", 64]`` -> state bitmask; unknown names raise ValueError."""
    return _mask(values, STATE_NAMES, "states")


def parse_results(values: Any) -> int:
    """``["failed", "canceled"]`` -> result bitmask."""
    return _mask(values, RESULT_NAMES, "results")


class Constraint:
    """A compiled constraint: ``match(get, budget) -> bool``.

    ``userids``/``states`` are set when the whole constraint is a plain
    test of that one attribute, so callers can use their indexes.
    """

    __slots__ = ("match", "userids", "states", "results")

    def __init__(self, match: Callable[[Getter, Budget], bool]) -> None:
        self.match = match
        self.userids: frozenset[int] | None = None
        self.states: int | None = None
        self.results: int | None = None


def _leaf_in(attr: str, values: frozenset[Any]) -> Callable[[Getter, Budget], bool]:
    def match(get: Getter, budget: Budget) -> bool:
        budget.spend()
        return get(attr) in values
    return match


def _expand_hosts(text: str) -> set[str]:
    from flux.hostlist import Hostlist

    return set(Hostlist(text).expand())


def _expand_ranks(text: str) -> set[int]:
    from flux.idset import IDset

    return set(IDset(text).expand())


def _compile(obj: Any, path: str) -> Constraint:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: constraint must be an object")
    if not obj:
        return Constraint(lambda get, budget: True)
    if len(obj) != 1:
        # RFC 31: several operators in one object are an implicit "and"
        return _compile({"and": [{k: v} for k, v in obj.items()]}, path)
    (op, args), = obj.items()
    where = f"{path}.{op}" if path else op
    if op in ("and", "or", "not"):
        if not isinstance(args, list):
            raise ValueError(f"{where}: must be an array of constraints")
        parts = [_compile(arg, f"{where}[{i}]").match for i, arg in enumerate(args)]
        if op == "and" or op == "not":
            def all_match(get: Getter, budget: Budget) -> bool:
                return all(part(get, budget) for part in parts)
            if op == "and":
                return Constraint(all_match)
            return Constraint(lambda get, budget: not all_match(get, budget))
        if not parts:      # RFC 31: an empty "or" matches everything
            return Constraint(lambda get, budget: True)
        return Constraint(lambda get, budget: any(part(get, budget) for part in parts))
    if not isinstance(args, list):
        raise ValueError(f"{where}: must be an array")
    if op == "userid":
        if not all(type(v) is int and v >= 0 for v in args):
            raise ValueError(f"{where}: userids must be non-negative integers")
        cons = Constraint(_leaf_in("userid", frozenset(args)))
        cons.userids = frozenset(args)
        return cons
    if op in ("name", "queue"):
        if not all(isinstance(v, str) for v in args):
            raise ValueError(f"{where}: values must be strings")
        return Constraint(_leaf_in(op, frozenset(args)))
    if op == "states":
        mask = parse_states(args)

        def match_states(get: Getter, budget: Budget) -> bool:
            budget.spend()
            return bool(get("state") & mask)
        cons = Constraint(match_states)
        cons.states = mask
        return cons
    if op == "results":
        rmask = parse_results(args)

        def match_results(get: Getter, budget: Budget) -> bool:
            budget.spend()
            result = get("result")
            return result is not None and bool(result & rmask)
        cons = Constraint(match_results)
        cons.results = rmask
        return cons
    if op == "hostlist":
        if not all(isinstance(v, str) for v in args):
            raise ValueError(f"{where}: values must be hostlist strings")
        try:
            hosts: set[str] = set().union(*(_expand_hosts(v) for v in args))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None

        def match_hosts(get: Getter, budget: Budget) -> bool:
            budget.spend()
            nodelist = get("nodelist")
            return bool(nodelist) and not hosts.isdisjoint(_expand_hosts(nodelist))
        return Constraint(match_hosts)
    if op == "ranks":
        if not all(isinstance(v, str) for v in args):
            raise ValueError(f"{where}: values must be idset strings")
        try:
            ranks: set[int] = set().union(*(_expand_ranks(v) for v in args))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None

        def match_ranks(get: Getter, budget: Budget) -> bool:
            budget.spend()
            value = get("ranks")
            return bool(value) and not ranks.isdisjoint(_expand_ranks(value))
        return Constraint(match_ranks)
    if op in _TIME_ATTRS:
        if len(args) != 1 or not isinstance(args[0], str):
            raise ValueError(f"{where}: must be one string like \">=1700000000.0\"")
        text = args[0].strip()
        for prefix, compare in _COMPARATORS:
            if text.startswith(prefix):
                try:
                    when = float(text[len(prefix):])
                except ValueError:
                    raise ValueError(f"{where}: invalid timestamp in {text!r}") from None
                break
        else:
            raise ValueError(f"{where}: {text!r} must start with >, <, >= or <=")

        def match_time(get: Getter, budget: Budget, attr: str = op,
                       compare: Callable[[Any, Any], bool] = compare,
                       when: float = when) -> bool:
            budget.spend()
            value = get(attr)
            return bool(value) and compare(value, when)
        return Constraint(match_time)
    raise ValueError(f"{where}: unknown constraint operator {op!r}")


def compile_constraint(obj: Any) -> Constraint:
    """Check and compile an RFC 43 constraint; ValueError names the bad part."""
    return _compile(obj, "")


_INACTIVE = 64


def _single(args: Any, kind: type) -> Any:
    if isinstance(args, list) and len(args) == 1 and type(args[0]) is kind:
        return args[0]
    return None


def hoist_filters(constraint: Any) -> tuple[dict[str, Any], Any]:
    """Split the plain top-level tests out of an ``and`` constraint, for the indexes.

    Flux's bindings send every filter inside one constraint
    (``{"and": [{"userid": [U]}, {"states": [M]}, ...]}``); the projection
    answers ``userid``/``states``/``results``/``name``/``queue`` fields
    from its indexes much faster than by testing each job.  Returns
    ``(fields, rest)``: the terms that map to one such field each (a
    single userid, name or queue; a states or results mask; an ``or`` of
    exactly one states and one results test, which is the fields' own
    either-or rule) and the constraint left to test (None if nothing is
    left).  A constraint of any other shape is returned whole.  Invalid
    terms are left in place, so compiling the rest reports them.
    """
    if not isinstance(constraint, Mapping) or list(constraint) != ["and"] \
            or not isinstance(constraint["and"], list):
        return {}, constraint
    fields: dict[str, Any] = {}
    rest: list[Any] = []
    for term in constraint["and"]:
        key = _hoistable(term, fields)
        if key is None:
            rest.append(term)
    return fields, ({"and": rest} if rest else None)


def _hoistable(term: Any, fields: dict[str, Any]) -> str | None:
    if not isinstance(term, Mapping) or len(term) != 1:
        return None
    (op, args), = term.items()
    value: Any = None
    if op == "userid":
        value = _single(args, int)
        if value is not None and value < 0:
            value = None
    elif op in ("name", "queue"):
        value = _single(args, str)
    elif op in ("states", "results"):
        try:
            value = (parse_states if op == "states" else parse_results)(args) or None
        except ValueError:
            value = None
    elif op == "or" and isinstance(args, list) and len(args) == 2:
        masks: dict[str, int] = {}
        for sub in args:
            if isinstance(sub, Mapping) and len(sub) == 1:
                (sop, sargs), = sub.items()
                if sop in ("states", "results") and sop not in masks:
                    try:
                        masks[sop] = (parse_states if sop == "states"
                                      else parse_results)(sargs)
                    except ValueError:
                        return None
        if len(masks) != 2 or not all(masks.values()) \
                or "states" in fields or "results" in fields:
            return None
        if masks["states"] & _INACTIVE:
            # every job with a result is inactive: the states test alone decides
            fields["states"] = masks["states"]
        else:
            # the fields' rule: active jobs by state, inactive ones by result
            fields.update(masks)
        return "or"
    if value is None or op in fields:
        return None
    if op in ("states", "results") and ("states" in fields or "results" in fields):
        # one states and one results field together mean "either", not "both"
        return None
    fields[op] = value
    return op
