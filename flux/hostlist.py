"""RFC 29 hostlists: ordered lists of host names and their compact form.

``Hostlist("foo[1-3,5]")`` is the list foo1, foo2, foo3, foo5; its
``encode()`` gives the string back.  Order and duplicates are kept; the
leading zeros of a range's first id set the width of every id in it
(``[00-2]`` is 00, 01, 02).  The list is stored as runs
``(prefix, lo, hi, width, suffix)`` so a large range costs one entry.
The API follows Flux's ``flux.hostlist``.
"""
from __future__ import annotations

import errno
import re
from bisect import bisect_right
from numbers import Integral
from typing import Iterable, Iterator, Union, overload

__all__ = ["Hostlist", "HostlistIterator", "decode"]

# A run of hosts prefix + zero-padded id + suffix for ids lo..hi; lo == -1
# marks a single host whose whole name is in the prefix field.
_Run = tuple[str, int, int, int, str]
_SINGLE = -1

# Guard against typos such as "n[0-100000000]": Flux's limit per range.
MAX_RANGE = 1 << 20

# A token is a run of non-separator characters and bracketed idlists.
_TOKEN = re.compile(r"(?:[^,\s\[]|\[[^\]]*\])+")
_SEPARATORS = re.compile(r"[,\s]*")
_PLAIN = re.compile(r"[^,\s\[\]]+")  # one host name, nothing to split
_DIGITS = re.compile(r"\d+", re.ASCII)
_NATURAL = re.compile(r"(\d+)", re.ASCII)
# prefix (ending in a non-digit, or empty), the last digit group, suffix
_LAST_DIGITS = re.compile(r"(.*\D)?(\d+)(\D*)", re.ASCII | re.DOTALL)

HostlistArg = Union[str, "Hostlist", Iterable[str]]


def _num(n: int, width: int) -> str:
    return str(n).zfill(width)


def _host(run: _Run, n: int) -> str:
    prefix, lo, _, width, suffix = run
    if lo == _SINGLE:
        return prefix
    return f"{prefix}{str(n).zfill(width)}{suffix}"


def _count(run: _Run) -> int:
    return 1 if run[1] == _SINGLE else run[2] - run[1] + 1


def _check_name(part: str, orig: str) -> None:
    if "]" in part or "[" in part:
        raise ValueError(f"invalid hostlist '{orig}': unmatched bracket in '{part}'")
    if not part.isprintable():
        raise ValueError(f"invalid hostlist '{orig}': unprintable character in '{part}'")


def _name_run(name: str) -> _Run:
    """The run for one host name: its last group of digits is the id."""
    m = _LAST_DIGITS.fullmatch(name)
    if m is None:
        return (name, _SINGLE, _SINGLE, 0, "")
    digits = m.group(2)
    n = int(digits)
    return (m.group(1) or "", n, n, len(digits), m.group(3))


def _merge(tail: _Run, run: _Run) -> _Run | None:
    """``tail`` extended by ``run`` when run continues it, else None."""
    tp, tlo, thi, tw, ts = tail
    rp, rlo, rhi, rw, rs = run
    if tlo == _SINGLE or rlo == _SINGLE or rlo != thi + 1 or tp != rp or ts != rs:
        return None
    # One width must print every id of both runs exactly as before; ids only
    # grow in length, so checking each run's first id is enough.
    if tw == rw or _num(rlo, tw) == _num(rlo, rw):
        return (tp, tlo, rhi, tw, ts)
    if _num(tlo, rw) == _num(tlo, tw):
        return (tp, tlo, rhi, rw, ts)
    return None


def _resplit(tail: _Run, name: str) -> _Run | None:
    """Join a one-host ``tail`` and ``name`` on another digit group.

    ``foo0-eth2`` then ``foo1-eth2`` differ in their first digit group, not
    their last, so they only compress once split there.
    """
    if tail[1] == _SINGLE or tail[1] != tail[2]:
        return None
    prev = _host(tail, tail[1])
    for m in _DIGITS.finditer(name):
        prefix, suffix = name[:m.start()], name[m.end():]
        end = len(prev) - len(suffix)
        if end <= len(prefix) or not prev.startswith(prefix) or not prev.endswith(suffix):
            continue
        mid = prev[len(prefix):end]
        if not (mid.isascii() and mid.isdigit()):
            continue
        lo, hi = int(mid), int(m.group())
        merged = _merge((prefix, lo, lo, len(mid), suffix), (prefix, hi, hi, len(m.group()), suffix))
        if merged is not None:
            return merged
    return None


def _append_run(runs: list[_Run], run: _Run) -> None:
    if runs:
        merged = _merge(runs[-1], run)
        if merged is not None:
            runs[-1] = merged
            return
    runs.append(run)


def _append_name(runs: list[_Run], name: str) -> None:
    if runs:
        tail = runs[-1]
        # The common case, the next name of a numbered run, needs no parsing.
        if tail[1] != _SINGLE and _host(tail, tail[2] + 1) == name:
            runs[-1] = (tail[0], tail[1], tail[2] + 1, tail[3], tail[4])
            return
        run = _name_run(name)
        merged = _merge(tail, run)
        if merged is None and run[1] != _SINGLE:
            merged = _resplit(tail, name)
        if merged is not None:
            runs[-1] = merged
            return
        runs.append(run)
    else:
        runs.append(_name_run(name))


def _parse(s: str, runs: list[_Run]) -> int:
    """Append the hosts of hostlist string ``s`` to ``runs``; return how many."""
    if _PLAIN.fullmatch(s) and s.isprintable():
        _append_name(runs, s)
        return 1
    added = 0
    pos = 0
    for m in _TOKEN.finditer(s):
        gap = s[pos:m.start()]
        if _SEPARATORS.fullmatch(gap) is None:
            raise ValueError(f"invalid hostlist '{s}': unmatched '[' near '{gap.strip(', ')}'")
        pos = m.end()
        token = m.group()
        i = token.find("[")
        if i < 0:
            _check_name(token, s)
            _append_name(runs, token)
            added += 1
            continue
        j = token.index("]", i)
        prefix, inner, suffix = token[:i], token[i + 1:j], token[j + 1:]
        if "[" in suffix or "]" in suffix:
            raise ValueError(f"invalid hostlist '{s}': more than one bracket group in '{token}'")
        _check_name(prefix, s)
        _check_name(suffix, s)
        if not inner:
            raise ValueError(f"invalid hostlist '{s}': empty brackets in '{token}'")
        for elem in inner.split(","):
            lo_s, dash, hi_s = elem.partition("-")
            if not (lo_s.isascii() and lo_s.isdigit()) or (
                    dash and not (hi_s.isascii() and hi_s.isdigit())):
                raise ValueError(f"invalid hostlist '{s}': bad range '{elem}' in '{token}'")
            lo = int(lo_s)
            hi = int(hi_s) if dash else lo
            if hi < lo:
                raise ValueError(f"invalid hostlist '{s}': range '{elem}' is backwards")
            if hi - lo + 1 > MAX_RANGE:
                raise ValueError(
                    f"invalid hostlist '{s}': range '{elem}' has more than {MAX_RANGE} hosts")
            _append_run(runs, (prefix, lo, hi, len(lo_s), suffix))
            added += hi - lo + 1
    if _SEPARATORS.fullmatch(s, pos) is None:
        raise ValueError(f"invalid hostlist '{s}': unmatched '[' near '{s[pos:]}'")
    return added


def _sort_key(run: _Run, n: int, prefix_key: tuple | None, suffix_key: tuple | None) -> tuple:
    if prefix_key is None or suffix_key is None:
        return _natural_key(_host(run, n))
    return prefix_key + ((max(run[3], len(str(n))), n),) + suffix_key


def _natural_key(name: str) -> tuple:
    """Order names by text, and by numeric value where both have digits."""
    parts = _NATURAL.split(name)
    return tuple(p if k % 2 == 0 else (len(p), int(p)) for k, p in enumerate(parts))


class HostlistIterator:
    """Iterator over the host names of a Hostlist, in order."""

    __slots__ = ("_it",)

    def __init__(self, hostlist: Hostlist) -> None:
        self._it = hostlist._hosts()

    def __iter__(self) -> HostlistIterator:
        return self

    def __next__(self) -> str:
        return next(self._it)


class Hostlist:
    """An ordered list of host names with an RFC 29 string form.

    Built from a hostlist string, another Hostlist, or an iterable of
    hostlist strings.  Indexing and slicing work like a list of str.
    """

    __slots__ = ("_runs", "_ends")

    def __init__(self, arg: HostlistArg = "") -> None:
        self._runs: list[_Run] = []
        self._ends: list[int] | None = None
        if isinstance(arg, Hostlist):
            self._runs = list(arg._runs)
        elif isinstance(arg, str):
            _parse(arg, self._runs)
        elif isinstance(arg, Iterable):
            for hosts in arg:
                if not isinstance(hosts, str):
                    raise TypeError(
                        f"Hostlist(): expected string or Iterable of strings, got {type(hosts).__name__}")
                _parse(hosts, self._runs)
        else:
            raise TypeError(f"Hostlist(): expected string or Iterable, got {type(arg).__name__}")

    # --- encoding ------------------------------------------------------------

    def encode(self) -> str:
        """The RFC 29 string: consecutive runs that share a prefix and suffix
        go in one bracket list, e.g. ``foo[1-3,5],bar``."""
        out: list[str] = []
        runs = self._runs
        i, n = 0, len(runs)
        while i < n:
            prefix, lo, hi, width, suffix = runs[i]
            if lo == _SINGLE:
                out.append(prefix)
                i += 1
                continue
            j = i + 1
            while (j < n and runs[j][1] != _SINGLE
                   and runs[j][0] == prefix and runs[j][4] == suffix):
                j += 1
            if j == i + 1 and lo == hi:
                out.append(f"{prefix}{_num(lo, width)}{suffix}")
            else:
                ids = ",".join(_num(r[1], r[3]) if r[1] == r[2]
                               else f"{_num(r[1], r[3])}-{_num(r[2], r[3])}"
                               for r in runs[i:j])
                out.append(f"{prefix}[{ids}]{suffix}")
            i = j
        return ",".join(out)

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"Hostlist('{self.encode()}')"

    # --- list behaviour ------------------------------------------------------

    def _hosts(self) -> Iterator[str]:
        for run in self._runs:
            prefix, lo, hi, width, suffix = run
            if lo == _SINGLE:
                yield prefix
            else:
                for n in range(lo, hi + 1):
                    yield f"{prefix}{str(n).zfill(width)}{suffix}"

    def _cumulative(self) -> list[int]:
        if self._ends is None:
            ends, total = [], 0
            for run in self._runs:
                total += _count(run)
                ends.append(total)
            self._ends = ends
        return self._ends

    def count(self) -> int:
        """Number of hosts (duplicates included)."""
        ends = self._cumulative()
        return ends[-1] if ends else 0

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> HostlistIterator:
        return HostlistIterator(self)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice | Iterable[int]) -> Hostlist: ...

    def __getitem__(self, index: int | slice | Iterable[int]) -> str | Hostlist:
        """``hl[i]`` is a host name (negative counts from the end; IndexError
        when out of range); ``hl[a:b]`` and ``hl[iterable of ints]`` (``hl[1, 3]``,
        ``hl[IDset("0-1")]``) are new Hostlists; any other index is a TypeError."""
        if isinstance(index, Integral):
            return self._nth(int(index))
        if isinstance(index, slice):
            positions: Iterable[int] = range(self.count())[index]
        elif isinstance(index, Iterable) and not isinstance(index, (str, bytes)):
            positions = index
        else:
            raise TypeError(f"Hostlist index must be integer, slice or iterable of integers, "
                            f"not {type(index).__name__}")
        result = Hostlist()
        for position in positions:
            if not isinstance(position, Integral):
                raise TypeError(f"Invalid Hostlist index '{position}': not an integer")
            _append_name(result._runs, self._nth(int(position)))
        return result

    def _nth(self, index: int) -> str:
        total = self.count()
        if index < 0:
            index += total
        if not 0 <= index < total:
            raise IndexError("Hostlist index out of range")
        k = bisect_right(self._cumulative(), index)
        run = self._runs[k]
        start = self._ends[k] - _count(run)  # type: ignore[index]
        return _host(run, run[1] + index - start)

    def expand(self) -> list[str]:
        """All host names as a list."""
        return list(self._hosts())

    def _find(self, name: str) -> tuple[int, int]:
        """(run index, offset in run) of the first ``name``, or (-1, -1)."""
        for k, (prefix, lo, hi, width, suffix) in enumerate(self._runs):
            if lo == _SINGLE:
                if name == prefix:
                    return k, 0
                continue
            end = len(name) - len(suffix)
            if end <= len(prefix) or not name.startswith(prefix) or not name.endswith(suffix):
                continue
            mid = name[len(prefix):end]
            if mid.isascii() and mid.isdigit():
                n = int(mid)
                if lo <= n <= hi and _num(n, width) == mid:
                    return k, n - lo
        return -1, -1

    def find(self, host: str) -> int:
        """Position of the first ``host``; FileNotFoundError (ENOENT) if absent."""
        k, offset = self._find(host) if isinstance(host, str) else (-1, -1)
        if k < 0:
            raise _not_found(f"host '{host}' not found")
        return (self._cumulative()[k] - _count(self._runs[k])) + offset

    def index(self, hosts: HostlistArg, ignore_nomatch: bool = False) -> list[int]:
        """Positions of each host of ``hosts`` (a hostlist string or Hostlist), in order.

        A host not in this list raises FileNotFoundError naming every
        missing host (``host 'x' not found``), unless ``ignore_nomatch``,
        which leaves them out.
        """
        wanted = hosts if isinstance(hosts, Hostlist) else Hostlist(hosts)
        positions: list[int] = []
        missing = Hostlist()
        for name in wanted:
            k, offset = self._find(name)
            if k < 0:
                _append_name(missing._runs, name)
                continue
            positions.append((self._cumulative()[k] - _count(self._runs[k])) + offset)
        if missing._runs and not ignore_nomatch:
            plural = "s" if missing.count() > 1 else ""
            raise _not_found(f"host{plural} '{missing.encode()}' not found")
        return positions

    def __contains__(self, host: object) -> bool:
        return isinstance(host, str) and self._find(host)[0] >= 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hostlist):
            return NotImplemented
        return self.count() == other.count() and all(
            a == b for a, b in zip(self._hosts(), other._hosts()))

    __hash__ = None  # type: ignore[assignment]  # mutable

    # --- mutation ------------------------------------------------------------

    def append(self, *args: HostlistArg) -> int:
        """Append hosts from each argument (Hostlist, string or iterable of
        strings); return how many hosts were added."""
        added = 0
        for arg in args:
            other = arg if isinstance(arg, Hostlist) else Hostlist(arg)
            for run in other._runs:
                _append_run(self._runs, run)
            added += other.count()
        self._ends = None
        return added

    def delete(self, hosts: HostlistArg) -> int:
        """Delete the first occurrence of each host in ``hosts``; return how
        many were deleted."""
        deleted = 0
        for name in (hosts if isinstance(hosts, Hostlist) else Hostlist(hosts))._hosts():
            k, offset = self._find(name)
            if k < 0:
                continue
            prefix, lo, hi, width, suffix = self._runs[k]
            n = lo + offset
            pieces: list[_Run] = []
            if lo != _SINGLE:
                if n > lo:
                    pieces.append((prefix, lo, n - 1, width, suffix))
                if n < hi:
                    pieces.append((prefix, n + 1, hi, width, suffix))
            self._runs[k:k + 1] = pieces
            deleted += 1
        self._ends = None
        return deleted

    def _rebuild(self, unique: bool) -> None:
        keyed = []
        for run in self._runs:
            if run[1] == _SINGLE:
                keyed.append((_natural_key(run[0]), run, 0))
                continue
            prefix, suffix = run[0], run[4]
            # The id only forms its own digit group when no digit touches it.
            simple = not (prefix[-1:].isdigit() or suffix[:1].isdigit())
            pk = _natural_key(prefix) if simple else None
            sk = _natural_key(suffix) if simple else None
            keyed.extend((_sort_key(run, n, pk, sk), run, n) for n in range(run[1], run[2] + 1))
        keyed.sort(key=lambda item: item[0])
        runs: list[_Run] = []
        last = None
        for key, run, n in keyed:
            if unique and key == last:
                continue
            last = key
            if run[1] == _SINGLE:
                _append_run(runs, run)
            else:
                _append_run(runs, (run[0], n, n, run[3], run[4]))
        self._runs = runs
        self._ends = None

    def sort(self) -> Hostlist:
        """Sort hosts in natural order (numeric parts by value); returns self."""
        self._rebuild(unique=False)
        return self

    def uniq(self) -> Hostlist:
        """Sort and remove duplicate hosts; returns self."""
        self._rebuild(unique=True)
        return self

    def copy(self) -> Hostlist:
        """An independent copy."""
        return Hostlist(self)


def _not_found(message: str) -> FileNotFoundError:
    """FileNotFoundError with errno ENOENT whose text is ``message`` alone."""
    exc = FileNotFoundError(message)
    exc.errno = errno.ENOENT
    return exc


def decode(arg: HostlistArg) -> Hostlist:
    """Decode a hostlist string or iterable of strings to a Hostlist."""
    return Hostlist(arg)
