"""RFC 22 idsets: sets of non-negative integer ids and their string form.

``IDset("0-3,7")`` holds {0, 1, 2, 3, 7}; ``str()`` gives ``"0-3,7"``.
Ids are kept as sorted, disjoint, non-adjacent inclusive ranges, so a set
like ranks 0-65535 costs two integers, and membership, insertion and
removal are binary searches.  The API follows Flux's ``flux.idset``.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import chain
from typing import Iterable, Iterator

__all__ = [
    "IDset", "IDsetIterator", "decode",
    "IDSET_FLAG_BRACKETS", "IDSET_FLAG_RANGE", "IDSET_INVALID_ID",
]

IDSET_FLAG_BRACKETS = 2
IDSET_FLAG_RANGE = 4
# Flux returns this (UINT_MAX - 1) from first/last/next when there is no id.
IDSET_INVALID_ID = (1 << 32) - 2
_MAX_ID = IDSET_INVALID_ID - 1
_VALID_FLAGS = IDSET_FLAG_BRACKETS | IDSET_FLAG_RANGE


def _parse_id(text: str, token: str, orig: str) -> int:
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError(f"invalid idset '{orig}': bad id in '{token}'")
    if len(text) > 1 and text[0] == "0":
        raise ValueError(f"invalid idset '{orig}': leading zero in '{token}'")
    value = int(text)
    if value > _MAX_ID:
        raise ValueError(f"invalid idset '{orig}': id {value} is larger than {_MAX_ID}")
    return value


def _normalize(pairs: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sort (lo, hi) pairs and merge overlapping or adjacent ones."""
    pairs.sort()
    los: list[int] = []
    his: list[int] = []
    for lo, hi in pairs:
        if his and lo <= his[-1] + 1:
            if hi > his[-1]:
                his[-1] = hi
        else:
            los.append(lo)
            his.append(hi)
    return los, his


def _decode(s: str) -> tuple[list[int], list[int]]:
    body = s
    if len(body) >= 2 and body[0] == "[" and body[-1] == "]":
        body = body[1:-1]
    if "[" in body or "]" in body:
        raise ValueError(f"invalid idset '{s}': mismatched or nested brackets")
    los: list[int] = []
    his: list[int] = []
    pairs: list[tuple[int, int]] | None = None
    for token in body.split(","):
        if not token:
            continue  # Flux tolerates empty elements such as "1,,2"
        lo_s, dash, hi_s = token.partition("-")
        lo = _parse_id(lo_s, token, s)
        hi = _parse_id(hi_s, token, s) if dash else lo
        if hi < lo:
            raise ValueError(f"invalid idset '{s}': range '{token}' is backwards")
        if pairs is None:
            if not his or lo > his[-1] + 1:
                los.append(lo)
                his.append(hi)
                continue
            # out of order, overlapping or adjacent: fall back to sort+merge
            pairs = list(zip(los, his))
        pairs.append((lo, hi))
    if pairs is not None:
        return _normalize(pairs)
    return los, his


def _check_id(i: object, method: str) -> int:
    if isinstance(i, bool) or not isinstance(i, int):
        raise TypeError(f"IDset.{method} supports integers, not {type(i).__name__}")
    if i < 0:
        raise ValueError(f"negative id {i} passed to IDset.{method}")
    if i > _MAX_ID:
        raise ValueError(f"id {i} passed to IDset.{method} is larger than {_MAX_ID}")
    return i


def _from_ints(items: Iterable[object]) -> tuple[list[int], list[int]]:
    values = set(items)
    if not all(type(i) is int for i in values):  # noqa: E721 - excludes bool
        for i in values:
            _check_id(i, "__init__")
    if values and (min(values) < 0 or max(values) > _MAX_ID):
        _check_id(min(values), "__init__")
        _check_id(max(values), "__init__")
    return _runs(sorted(values))  # type: ignore[arg-type]


def _runs(values: list[int]) -> tuple[list[int], list[int]]:
    """Range lists for ascending, duplicate-free ``values``."""
    if not values:
        return [], []
    # Each run starts where the step from the previous value is not 1.
    starts = [0] + [k for k in range(1, len(values)) if values[k] != values[k - 1] + 1]
    los = [values[k] for k in starts]
    his = [values[k - 1] for k in starts[1:]]
    his.append(values[-1])
    return los, his


class IDsetIterator:
    """Iterator over the ids of an IDset, in ascending order."""

    __slots__ = ("_it",)

    def __init__(self, idset: IDset) -> None:
        self._it = chain.from_iterable(
            map(range, idset._lo, [h + 1 for h in idset._hi]))

    def __iter__(self) -> IDsetIterator:
        return self

    def __next__(self) -> int:
        return next(self._it)


class IDset:
    """A set of non-negative integer ids with an RFC 22 string form.

    Built from an idset string (``"0-3"``, ``"[1,5-7]"``), an int, another
    IDset, or any iterable of non-negative ints.  ``flags`` sets the default
    encoding (IDSET_FLAG_RANGE compresses runs, IDSET_FLAG_BRACKETS adds
    brackets around more than one id).
    """

    __slots__ = ("_lo", "_hi", "_count", "default_flags")

    def __init__(self, arg: str | int | IDset | Iterable[int] = "",
                 flags: int = IDSET_FLAG_RANGE) -> None:
        self.default_flags = _check_flags(flags)
        if isinstance(arg, IDset):
            self._lo, self._hi = list(arg._lo), list(arg._hi)
            self._count = arg._count
            return
        if isinstance(arg, str):
            self._lo, self._hi = _decode(arg)
        elif isinstance(arg, bool):
            raise TypeError("IDset() expected an idset string or iterable, got bool")
        elif isinstance(arg, int):
            i = _check_id(arg, "__init__")
            self._lo, self._hi = [i], [i]
        elif isinstance(arg, range) and arg.step == 1:
            if len(arg) == 0:
                self._lo, self._hi = [], []
            else:
                _check_id(arg.start, "__init__")
                _check_id(arg.stop - 1, "__init__")
                self._lo, self._hi = [arg.start], [arg.stop - 1]
        elif isinstance(arg, Iterable):
            self._lo, self._hi = _from_ints(arg)
        else:
            raise TypeError(
                f"IDset() expected an idset string or iterable, got {type(arg).__name__}")
        self._count = sum(self._hi) - sum(self._lo) + len(self._lo)

    @classmethod
    def from_sorted(cls, values: list[int], flags: int = IDSET_FLAG_RANGE) -> IDset:
        """Build from ascending, duplicate-free, valid ids without checking them.

        A fast path for callers that already hold sorted ids (e.g. the ranks
        of a resource set); anything else must use ``IDset(values)``.
        """
        los, his = _runs(values)
        return cls._from_ranges(los, his, flags)

    @classmethod
    def _from_ranges(cls, los: list[int], his: list[int],
                     flags: int = IDSET_FLAG_RANGE) -> IDset:
        """Wrap already-normalized range lists without copying them."""
        new = cls.__new__(cls)
        new.default_flags = flags
        new._lo, new._hi = los, his
        new._count = sum(his) - sum(los) + len(los)
        return new

    # --- encoding ------------------------------------------------------------

    def encode(self, flags: int | None = None) -> str:
        """Return the RFC 22 string, using ``flags`` or the default flags."""
        flags = self.default_flags if flags is None else _check_flags(flags)
        if flags & IDSET_FLAG_RANGE:
            text = ",".join(str(lo) if lo == hi else f"{lo}-{hi}"
                            for lo, hi in zip(self._lo, self._hi))
        else:
            text = ",".join(map(str, self))
        if flags & IDSET_FLAG_BRACKETS and self._count > 1:
            return f"[{text}]"
        return text

    def set_flags(self, flags: int) -> None:
        """Set the default encoding flags."""
        self.default_flags = _check_flags(flags)

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"IDset('{self.encode(IDSET_FLAG_RANGE)}')"

    # --- queries -------------------------------------------------------------

    def test(self, i: int) -> bool:
        """True if id ``i`` is in the set (an id past the largest valid one
        is simply absent); TypeError for a non-int, ValueError if negative."""
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"IDset.test supports integers, not {type(i).__name__}")
        if i < 0:
            raise ValueError(f"negative id {i} passed to IDset.test")
        k = bisect_right(self._lo, i) - 1
        return k >= 0 and self._hi[k] >= i

    def count(self) -> int:
        """Number of ids in the set."""
        return self._count

    def first(self) -> int:
        """Smallest id, or IDSET_INVALID_ID if the set is empty."""
        return self._lo[0] if self._lo else IDSET_INVALID_ID

    def last(self) -> int:
        """Largest id, or IDSET_INVALID_ID if the set is empty."""
        return self._hi[-1] if self._hi else IDSET_INVALID_ID

    def next(self, i: int) -> int:
        """Smallest id greater than ``i``, or IDSET_INVALID_ID."""
        _check_id(i, "next")
        k = bisect_right(self._lo, i) - 1
        if k >= 0 and self._hi[k] > i:
            return i + 1
        if k + 1 < len(self._lo):
            return self._lo[k + 1]
        return IDSET_INVALID_ID

    def expand(self) -> list[int]:
        """All ids as a list."""
        return list(self)

    def ranges(self) -> Iterator[tuple[int, int]]:
        """The maximal runs of consecutive ids as inclusive (lo, hi) pairs."""
        return zip(self._lo, self._hi)

    def copy(self) -> IDset:
        """An independent copy."""
        return IDset._from_ranges(list(self._lo), list(self._hi), self.default_flags)

    def equal(self, idset: IDset) -> bool:
        """True if ``idset`` holds the same ids (TypeError if not an IDset)."""
        if not isinstance(idset, IDset):
            raise TypeError(f"IDset.equal() expected an IDset, got {type(idset).__name__}")
        return self._lo == idset._lo and self._hi == idset._hi

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> IDsetIterator:
        return IDsetIterator(self)

    def __contains__(self, i: object) -> bool:
        """``i in ids`` is ``ids.test(i)``: TypeError for a non-int, ValueError if negative."""
        return self.test(i)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> bool:
        return self.test(i)

    def __setitem__(self, i: int, value: bool | int) -> None:
        if value in (0, 1) and not isinstance(value, float):
            value = bool(value)
        if not isinstance(value, bool):
            raise TypeError(f"IDset item must be bool or 0/1, not {type(value).__name__}")
        if value:
            self.set(i)
        else:
            self.clear(i)

    def __eq__(self, other: object) -> bool:
        """Same ids; TypeError when ``other`` is not an IDset (as Flux's ``equal``)."""
        if not isinstance(other, IDset):
            raise TypeError(f"IDset can only be compared with an IDset, "
                            f"not {type(other).__name__}")
        return self._lo == other._lo and self._hi == other._hi

    __hash__ = None  # type: ignore[assignment]  # mutable

    # --- mutation ------------------------------------------------------------

    def set(self, start: int, end: int | None = None) -> IDset:
        """Add id ``start`` (or the range start..end); returns self for chaining."""
        lo = _check_id(start, "set")
        hi = lo if end is None else _check_id(end, "set")
        if hi < lo:
            raise ValueError(f"can't set range with {start} > {end}")
        self._insert(lo, hi)
        return self

    def clear(self, start: int, end: int | None = None) -> IDset:
        """Remove id ``start`` (or the range start..end); returns self."""
        lo = _check_id(start, "clear")
        hi = lo if end is None else _check_id(end, "clear")
        if hi < lo:
            raise ValueError(f"can't clear range with {start} > {end}")
        self._remove(lo, hi)
        return self

    def _insert(self, lo: int, hi: int) -> None:
        los, his = self._lo, self._hi
        i = bisect_left(his, lo - 1)       # first range that could touch lo
        j = bisect_right(los, hi + 1)      # past the last range that could touch hi
        if i < j:
            removed = sum(his[i:j]) - sum(los[i:j]) + (j - i)
            lo = min(lo, los[i])
            hi = max(hi, his[j - 1])
        else:
            removed = 0
        los[i:j] = [lo]
        his[i:j] = [hi]
        self._count += hi - lo + 1 - removed

    def _remove(self, lo: int, hi: int) -> None:
        los, his = self._lo, self._hi
        i = bisect_left(his, lo)           # first range ending at or after lo
        j = bisect_right(los, hi)          # past the last range starting at or before hi
        if i >= j:
            return
        removed = sum(his[i:j]) - sum(los[i:j]) + (j - i)
        new_lo: list[int] = []
        new_hi: list[int] = []
        if los[i] < lo:
            new_lo.append(los[i])
            new_hi.append(lo - 1)
        if his[j - 1] > hi:
            new_lo.append(hi + 1)
            new_hi.append(his[j - 1])
        kept = sum(new_hi) - sum(new_lo) + len(new_lo)
        los[i:j] = new_lo
        his[i:j] = new_hi
        self._count -= removed - kept

    def add(self, arg: str | int | IDset | Iterable[int]) -> IDset:
        """Add every id in ``arg`` (IDset, string or iterable); returns self."""
        other = arg if isinstance(arg, IDset) else IDset(arg)
        self._lo, self._hi = _union(self._lo, self._hi, other._lo, other._hi)
        self._count = sum(self._hi) - sum(self._lo) + len(self._lo)
        return self

    def subtract(self, arg: str | int | IDset | Iterable[int]) -> IDset:
        """Remove every id in ``arg``; returns self."""
        other = arg if isinstance(arg, IDset) else IDset(arg)
        self._lo, self._hi = _difference(self._lo, self._hi, other._lo, other._hi)
        self._count = sum(self._hi) - sum(self._lo) + len(self._lo)
        return self

    @staticmethod
    def arg_to_set(arg: str | int | IDset | Iterable[int], method: str) -> IDset:
        """ARG (an IDset, an idset string, an id or ids) as an IDset; TypeError naming
        METHOD, the operation it was given to, for anything else."""
        if isinstance(arg, IDset):
            return arg
        if isinstance(arg, int) and not isinstance(arg, bool):
            return IDset([_check_id(arg, method)])
        try:
            return IDset(arg)
        except TypeError:
            raise TypeError(f"IDset.{method}: expected an IDset, idset string, integer or "
                            f"iterable of integers, got {type(arg).__name__}") from None

    # --- set algebra returning new sets --------------------------------------

    def union(self, *args: str | int | IDset | Iterable[int]) -> IDset:
        """A new IDset holding the ids of self and of every argument."""
        result = self.copy()
        for arg in args:
            result.add(arg)
        return result

    def difference(self, *args: str | int | IDset | Iterable[int]) -> IDset:
        """A new IDset holding the ids of self that are in no argument."""
        result = self.copy()
        for arg in args:
            result.subtract(arg)
        return result

    def intersect(self, *args: str | int | IDset | Iterable[int]) -> IDset:
        """A new IDset holding the ids common to self and every argument."""
        los, his = self._lo, self._hi
        for arg in args:
            other = arg if isinstance(arg, IDset) else IDset(arg)
            los, his = _intersection(los, his, other._lo, other._hi)
        if not args:
            los, his = list(los), list(his)
        return IDset._from_ranges(los, his, self.default_flags)

    def __or__(self, other: IDset) -> IDset:
        return self.union(other)

    __add__ = __or__

    def __sub__(self, other: IDset) -> IDset:
        return self.difference(other)

    def __and__(self, other: IDset) -> IDset:
        return self.intersect(other)

    def __iadd__(self, other: IDset) -> IDset:
        return self.add(other)

    __ior__ = __iadd__

    def __isub__(self, other: IDset) -> IDset:
        return self.subtract(other)


def _check_flags(flags: int) -> int:
    if isinstance(flags, bool) or not isinstance(flags, int) or flags & ~_VALID_FLAGS:
        raise ValueError(f"invalid IDset encode flags {flags!r}; "
                         "use IDSET_FLAG_RANGE and/or IDSET_FLAG_BRACKETS")
    return flags


def _union(alo: list[int], ahi: list[int],
           blo: list[int], bhi: list[int]) -> tuple[list[int], list[int]]:
    if not blo:
        return list(alo), list(ahi)
    if not alo:
        return list(blo), list(bhi)
    los: list[int] = []
    his: list[int] = []
    i = j = 0
    na, nb = len(alo), len(blo)
    while i < na or j < nb:
        if j >= nb or (i < na and alo[i] <= blo[j]):
            lo, hi = alo[i], ahi[i]
            i += 1
        else:
            lo, hi = blo[j], bhi[j]
            j += 1
        if his and lo <= his[-1] + 1:
            if hi > his[-1]:
                his[-1] = hi
        else:
            los.append(lo)
            his.append(hi)
    return los, his


def _intersection(alo: list[int], ahi: list[int],
                  blo: list[int], bhi: list[int]) -> tuple[list[int], list[int]]:
    los: list[int] = []
    his: list[int] = []
    i = j = 0
    na, nb = len(alo), len(blo)
    while i < na and j < nb:
        lo = max(alo[i], blo[j])
        hi = min(ahi[i], bhi[j])
        if lo <= hi:
            los.append(lo)
            his.append(hi)
        if ahi[i] < bhi[j]:
            i += 1
        else:
            j += 1
    return los, his


def _difference(alo: list[int], ahi: list[int],
                blo: list[int], bhi: list[int]) -> tuple[list[int], list[int]]:
    los: list[int] = []
    his: list[int] = []
    j = 0
    nb = len(blo)
    for lo, hi in zip(alo, ahi):
        while j < nb and bhi[j] < lo:
            j += 1
        k = j
        while k < nb and blo[k] <= hi:
            if blo[k] > lo:
                los.append(lo)
                his.append(blo[k] - 1)
            lo = max(lo, bhi[k] + 1)
            if bhi[k] > hi:
                break
            k += 1
        if lo <= hi:
            los.append(lo)
            his.append(hi)
    return los, his


def decode(string: str) -> IDset:
    """Decode an RFC 22 idset string."""
    return IDset(string)
