"""``flux.util.OutputFormat``: the formatting engine of ``flux jobs`` and friends.

A format is a Python format string whose fields name attributes of the
objects being listed (``{id.f58:>12} {name:<10.10} {runtime!F:>8h}``).
Beyond Python's own rules it supports:

- conversions ``!D`` (timestamp -> ISO 8601), ``!d`` (timestamp ->
  datetime, for ``{t_run!d:%H:%M}``), ``!F`` (seconds -> RFC 23 duration),
  ``!H`` (seconds -> ``h:mm:ss``) and ``!P`` (fraction -> percentage);
- spec suffixes ``h`` (an empty value, ``0s``, ``0.0``, ``0:00:00`` or the
  epoch prints as ``-``), ``+`` (mark a truncated value with ``+``) and
  ``W`` (pad by display width, for wide characters);
- field prefixes ``?:`` (drop the column when it is empty for every item),
  ``+:`` (widen the column to its widest value) and ``?+:`` (both);
- a ``sort:KEY,-KEY2 `` prefix naming sort keys (``-`` reverses).

Every field must appear in ``headings`` (the column titles), so an unknown
field is refused when the format is parsed: ``Unknown format field: foo``.
"""
from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from string import Formatter
from typing import Any, TextIO

__all__ = ["OutputFormat", "UtilFormatter", "UtilDatetime", "DisplayValue", "AltField",
           "Deduplicator", "empty_outputs", "display_width"]

_CONVERSIONS = frozenset("rsaDdFHP")
_SENTINELS = ("?+:", "?:", "+:")      # longest first


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters count 2)."""
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def empty_outputs() -> tuple[str, ...]:
    """Renderings that count as "no value" for ``h`` and ``?:``."""
    local_epoch = datetime.fromtimestamp(0.0).strftime("%Y-%m-%dT%H:%M:%S")
    return ("", "0s", "0.0", "0:00:00", "1970-01-01T00:00:00", local_epoch)


class UtilDatetime(datetime):
    """A datetime whose format spec may end with ``::<python spec>``.

    ``"{0:%b%d %R::>16}"`` formats with strftime first and then pads the
    result; the epoch formats as an empty string.
    """

    def __format__(self, fmt: str) -> str:
        timefmt, _, spec = fmt.partition("::")
        if self.timestamp() == 0.0:
            text = ""
        else:
            text = self.strftime(timefmt or "%Y-%m-%dT%H:%M:%S")
        if spec.endswith("h"):
            text = text or "-"
            spec = spec[:-1] + "s"
        return format(text, spec) if spec else text


def _fsd(value: float) -> str:
    from flux.util.fsd import fsd

    return fsd(value)


def _percent(value: float) -> str:
    pct = value * 100
    if 0 < pct < 1:
        return f"{pct:.2f}%"
    return f"{pct:.3g}%"


def _hms(value: float) -> str:
    # a nonzero duration under a second shows as 0:00:01, not 0:00:00
    if 0 < value < 1:
        value = 1
    return str(timedelta(seconds=round(value)))


_CONVERTERS = {"F": _fsd, "H": _hms, "P": _percent}


class UtilFormatter(Formatter):
    """string.Formatter with Flux's conversions and spec suffixes.

    Fields may walk attributes or mapping keys: ``{0.annotations.sched}``
    works on objects and on dicts alike.
    """

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        first, _, rest = field_name.partition(".")
        obj = args[int(first)] if first.isdigit() else kwargs[first]
        if not rest:
            return obj, first
        for part in rest.split("."):
            if isinstance(obj, Mapping):
                try:
                    obj = obj[part]
                except KeyError:
                    raise KeyError(field_name) from None
            else:
                try:
                    obj = getattr(obj, part)
                except AttributeError:
                    raise KeyError(field_name) from None
        return obj, first

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is None or conversion in ("r", "s", "a"):
            return super().convert_field(value, conversion)
        blank = isinstance(value, str) and value == ""
        if conversion == "d":
            return UtilDatetime.fromtimestamp(0.0 if blank else value)
        if blank:
            return ""
        if conversion == "D":
            if not value:
                return ""
            return datetime.fromtimestamp(value).strftime("%Y-%m-%dT%H:%M:%S")
        convert = _CONVERTERS.get(conversion)
        if convert is None:
            raise ValueError(f"Unknown conversion specifier {conversion!r}")
        try:
            return convert(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"Cannot apply conversion '!{conversion}' to "
                             f"{value!r}") from None

    def format_field(self, value: Any, format_spec: str) -> str:
        mark_truncation = format_spec.endswith("+")
        if mark_truncation:
            format_spec = format_spec[:-1]
        if format_spec.endswith("h") and not isinstance(value, UtilDatetime):
            text = str(value)
            value = "-" if text in empty_outputs() else text
            format_spec = format_spec[:-1] + "s"
        if format_spec.endswith("W"):
            format_spec = format_spec[:-1] + "s"
            value = str(value)
            match = re.match(r"^(.?[<>^])?(\d+)", format_spec)
            if match:
                extra = display_width(value) - len(value)
                width = int(match.group(2))
                if 0 < extra < width:
                    format_spec = (format_spec[:match.start(2)] + str(width - extra)
                                   + format_spec[match.end(2):])
        result = super().format_field(value, format_spec)
        if mark_truncation and len(result) < len(str(value)):
            result = result[:-1] + "+"
        return result


class _HeaderFormatter(UtilFormatter):
    """Looks fields up literally in the headings map (no attribute walk)."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        if field_name in kwargs:
            return kwargs[field_name], field_name
        return super().get_field(field_name, args, kwargs)


class _Spec:
    """A format spec split into the parts the header and ``+:`` need."""

    _RE = re.compile(
        r"(?P<fill_align>(?:[\s\S])?[<>=^])?(?P<sign>[- +])?(?P<z>z)?(?P<alt>#)?(?P<zero>0)?"
        r"(?P<width>\d+)?(?P<grouping>[_,])?(?:\.(?P<precision>\d+))?"
        r"(?P<type>[bcdeEfFgGnosxX%])?(?P<suffix>h?W?\+?)")

    def __init__(self, spec: str) -> None:
        if "::" in spec:
            spec = spec.split("::", 1)[1]
        match = self._RE.fullmatch(spec)
        self.parts = match.groupdict(default="") if match else {}
        self.valid = match is not None

    @property
    def align(self) -> str:
        fa = self.parts.get("fill_align", "")
        return fa[-1:] if fa else ""

    @property
    def width(self) -> int:
        width = self.parts.get("width", "")
        return int(width) if width else 0

    def with_width(self, width: int) -> str:
        parts = dict(self.parts)
        parts["width"] = str(width)
        precision = parts.get("precision", "")
        if precision and parts.get("type", "") in ("", "s") and int(precision) < width:
            parts["precision"] = str(width)
        order = ("fill_align", "sign", "z", "alt", "zero", "width", "grouping")
        text = "".join(parts.get(k, "") for k in order)
        if parts.get("precision"):
            text += "." + parts["precision"]
        return text + parts.get("type", "") + parts.get("suffix", "")


class OutputFormat:
    """A parsed output format: its fields, header row, sort keys and filters.

    Subclasses set ``headings`` (field -> column title) and may set
    ``formatter``; ``OutputFormat(fmt, headings=...)`` works directly too.
    """

    formatter: type[UtilFormatter] = UtilFormatter
    headings: Mapping[str, str] = {}

    def __init__(self, fmt: str, headings: Mapping[str, str] | None = None,
                 prepend: str = "0.") -> None:
        if headings is not None:
            self.headings = headings
        self.prepend = prepend
        self.sort_keys: list[tuple[str, bool]] = []
        if not isinstance(fmt, str):
            raise ValueError(f"Invalid format: expected a string, got {type(fmt).__name__}")
        try:
            parsed = list(Formatter().parse(fmt))
        except ValueError as exc:
            raise ValueError(f"Invalid format {fmt!r}: {exc}") from None
        self.format_list: list[list[str]] = [[s or "" for s in item] for item in parsed]
        if self.format_list and self.format_list[0][0].startswith("sort:"):
            text = self.format_list[0][0]
            keys, _, remainder = text[5:].partition(" ")
            self.set_sort_keys(keys)
            self.format_list[0][0] = remainder
            fmt = fmt[len(text) - len(remainder):]
        self.fmt_orig = fmt
        self._fields = [field for _, field, _, _ in self.format_list if field]
        for text, field, spec, conv in self.format_list:
            if not field:
                continue
            name = field[2:] if field.startswith("0.") else field
            if name not in self.headings:
                raise ValueError(f"Unknown format field: {name}")
            if conv and conv not in _CONVERSIONS:
                raise ValueError(f"Unknown conversion specifier '!{conv}' for field {name!r}")
            if "{" in spec:
                raise ValueError(f"Nested format spec not supported for field {name!r}")
            if conv != "d" and "::" not in spec and not _Spec(spec).valid:
                raise ValueError(f"Invalid format spec {spec!r} for field {name!r}")
        self.fmt = self.get_format_prepended(prepend, include_sort_prefix=False,
                                             keep_sentinels=False)

    # -- format strings ----------------------------------------------------

    @staticmethod
    def _fmt_tuple(text: str, field: str, spec: str, conv: str) -> str:
        if not field:
            return text
        spec = ":" + spec if spec else ""
        conv = "!" + conv if conv else ""
        return f"{text}{{{field}{conv}{spec}}}"

    @property
    def fields(self) -> list[str]:
        """Requested fields plus sort keys (what a lister must fetch)."""
        names = [f[2:] if f.startswith("0.") else f for f in self._fields]
        names += [key for key, _ in self.sort_keys]
        return list(dict.fromkeys(names))

    def _sort_prefix(self) -> str:
        if not self.sort_keys:
            return ""
        return "sort:" + ",".join(("-" if rev else "") + key for key, rev in self.sort_keys) + " "

    def get_format(self, orig: bool = False, include_sort_prefix: bool = True) -> str:
        fmt = self.fmt_orig if orig else self.fmt
        return (self._sort_prefix() + fmt) if include_sort_prefix else fmt

    def get_format_prepended(self, prepend: str, except_fields: Iterable[str] | None = None,
                             include_sort_prefix: bool = True,
                             nullify_expansion_sentinel: bool = False,
                             keep_sentinels: bool = True) -> str:
        """The format with ``prepend`` before each field name, minus ``except_fields``."""
        skip = set(except_fields or ())
        out = []
        for text, field, spec, conv in self.format_list:
            if field and field in skip:
                kept = text.strip()
                if kept and kept not in _SENTINELS:
                    out.append(text)
                continue
            if field and not field.startswith(prepend):
                field = prepend + field
            if nullify_expansion_sentinel and text.endswith("+:"):
                text, spec = "", ""
            if not keep_sentinels and field:
                text = _strip_sentinel(text)
            out.append(self._fmt_tuple(text, field, spec, conv))
        prefix = self._sort_prefix() if include_sort_prefix else ""
        return prefix + "".join(out)

    def header_format(self) -> str:
        """The format for the header row: only alignment and width are kept."""
        out = []
        for text, field, spec, _ in self.format_list:
            parsed = _Spec(spec)
            width = parsed.width
            if field:
                text = _strip_sentinel(text)
            out.append(self._fmt_tuple(text, field,
                                       f"{parsed.align}{width if width else ''}", ""))
        return "".join(out)

    def header(self) -> str:
        return _HeaderFormatter().format(self.header_format(), **self.headings)

    def copy(self, except_fields: Iterable[str] | None = None,
             nullify_expansion: bool = False) -> OutputFormat:
        fmt = self.get_format_prepended("", except_fields,
                                        nullify_expansion_sentinel=nullify_expansion)
        return self.__class__(fmt, headings=self.headings, prepend=self.prepend)

    # -- rendering ---------------------------------------------------------

    def format(self, obj: Any) -> str:
        """Render ``obj``; a missing field raises KeyError naming it."""
        try:
            return self.formatter().format(self.get_format(include_sort_prefix=False), obj)
        except KeyError as exc:
            raise KeyError(f"Invalid format field {exc.args[0]!r} for "
                           f"{type(obj).__name__}") from None

    def filter(self, items: Iterable[Any], no_header: bool = False) -> str:
        """Apply the ``?:``/``+:``/``?+:`` prefixes over ``items``; return the new format."""
        plan: list[dict[str, Any]] = []
        for index, (text, field, spec, conv) in enumerate(self.format_list):
            sentinel = next((s for s in _SENTINELS if text.endswith(s)), None)
            if sentinel is None or not field:
                continue
            parsed = _Spec(spec)
            name = field[2:] if field.startswith("0.") else field
            maxwidth = parsed.width
            if "+" in sentinel and not no_header:
                maxwidth = max(maxwidth, len(self.headings.get(name, "")))
            plan.append({"index": index, "sentinel": sentinel, "spec": parsed,
                         "fmt": self._fmt_tuple("", "0." + name, "", conv),
                         "maxwidth": maxwidth, "width": 0})
        if not plan:
            return self.get_format(orig=True)
        formatter = self.formatter()
        empty = empty_outputs()
        for item in items:
            for entry in plan:
                rendered = formatter.format(entry["fmt"], item)
                width = 0 if rendered in empty else display_width(rendered)
                entry["width"] = max(entry["width"], width)
                entry["maxwidth"] = max(entry["maxwidth"], width)
        format_list = [list(x) for x in self.format_list]
        drop = set()
        for entry in plan:
            if entry["width"] == 0 and "?" in entry["sentinel"]:
                drop.add(entry["index"])
            elif "+" in entry["sentinel"]:
                format_list[entry["index"]][2] = entry["spec"].with_width(entry["maxwidth"])
        kept = []
        for index, (text, field, spec, conv) in enumerate(format_list):
            if index in drop:
                continue
            for sentinel in _SENTINELS:
                text = text.replace(sentinel, "")
            kept.append(self._fmt_tuple(text, field, spec, conv))
        return self._sort_prefix() + "".join(kept)

    filter_empty = filter

    # -- sorting -----------------------------------------------------------

    def set_sort_keys(self, sort_keys: str) -> None:
        """Set sort keys from ``"key,-key2"`` (``-`` sorts that key descending).

        Empty keys (``"s,"``, ``"s, ,i"``) are skipped; a key that is not a
        field raises ``ValueError("Invalid sort key: KEY")``.
        """
        keys = []
        for key in sort_keys.split(","):
            key = key.strip()
            if not key:
                continue
            reverse = key.startswith("-")
            if reverse:
                key = key[1:]
            if key not in self.headings:
                raise ValueError(f"Invalid sort key: {key}")
            keys.append((key, reverse))
        self.sort_keys = keys

    def sort_items(self, items: list[Any], sort_keys: str | None = None) -> list[Any]:
        """Sort ``items`` in place (stable, last key first) and return it.

        ``sort_keys`` (``"key,-key2"``) sets the keys first; by default the
        keys from a ``sort:`` prefix or ``set_sort_keys`` are used.
        """
        if sort_keys is not None:
            self.set_sort_keys(sort_keys)
        for key, reverse in reversed(self.sort_keys):
            getter = _value_getter(key)
            # the same order as DisplayValue, without an object per item
            items.sort(key=lambda item: _display_key(getter(item)), reverse=reverse)
        return items

    def print_items(self, items: Iterable[Any], no_header: bool = False,
                    pre: Callable[[Any], Any] | None = None,
                    post: Callable[[Any], Any] | None = None,
                    file: TextIO | None = None) -> None:
        """Filter the format over ``items``, sort them, print header and rows."""
        out = file if file is not None else sys.stdout
        items = list(items)
        newfmt = self.__class__(self.filter(items, no_header=no_header),
                                headings=self.headings, prepend=self.prepend)
        self.sort_items(items)
        if not no_header:
            print(newfmt.header(), file=out)
        for item in items:
            line = newfmt.format(item)
            if not line or line.isspace():
                continue
            if pre is not None:
                pre(item)
            print(line, file=out)
            if post is not None:
                post(item)


def _strip_sentinel(text: str) -> str:
    for sentinel in _SENTINELS:
        if text.endswith(sentinel):
            return text[:-len(sentinel)]
    return text


def _value_getter(path: str) -> Callable[[Any], Any]:
    parts = path.split(".")

    def get(obj: Any) -> Any:
        for part in parts:
            obj = obj[part] if isinstance(obj, Mapping) else getattr(obj, part)
        return obj
    return get


class DisplayValue:
    """A sort key for a listed value, whatever its type.

    Empty values (None, ``""``, ``"-"``) sort first, then numbers by value
    (ints, floats, bools, and strings that read as a number such as
    ``"2.5"``), then other strings in code point order.  NaN sorts after
    every other number.  Any other object sorts by ``str()`` under the same
    rules.  ``value`` is the wrapped value.
    """

    __slots__ = ("value", "_key")

    def __init__(self, value: Any) -> None:
        self.value = value
        self._key = _display_key(value)

    def __lt__(self, other: "DisplayValue") -> bool:
        if not isinstance(other, DisplayValue):
            return NotImplemented
        return self._key < other._key

    def __le__(self, other: "DisplayValue") -> bool:
        if not isinstance(other, DisplayValue):
            return NotImplemented
        return self._key <= other._key

    def __gt__(self, other: "DisplayValue") -> bool:
        if not isinstance(other, DisplayValue):
            return NotImplemented
        return self._key > other._key

    def __ge__(self, other: "DisplayValue") -> bool:
        if not isinstance(other, DisplayValue):
            return NotImplemented
        return self._key >= other._key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DisplayValue):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"DisplayValue({self.value!r})"


_EMPTY_RANK, _NUMBER_RANK, _STRING_RANK = 0, 1, 2


def _number_key(number: float) -> tuple[Any, ...]:
    if number != number:  # NaN: after every number, all equal
        return (_NUMBER_RANK, 1, 0.0)
    return (_NUMBER_RANK, 0, number)


def _display_key(value: Any) -> tuple[Any, ...]:
    if value is None:
        return (_EMPTY_RANK,)
    if isinstance(value, (int, float)):
        try:
            return _number_key(float(value))
        except OverflowError:  # an int too large for a float
            return (_NUMBER_RANK, 0, math.inf if value > 0 else -math.inf)
    text = value if isinstance(value, str) else str(value)
    if text in ("", "-"):
        return (_EMPTY_RANK,)
    try:
        number = float(text)
    except ValueError:
        return (_STRING_RANK, text)
    if number != number:  # "nan" reads as a word, not a number
        return (_STRING_RANK, text)
    return _number_key(number)


class AltField:
    """A value with a default and an ASCII form: ``{field}`` / ``{field.ascii}``."""

    def __init__(self, default: str, ascii: str) -> None:  # noqa: A002
        self.default = default
        self.ascii = ascii

    def __str__(self) -> str:
        return self.default

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class Deduplicator:
    """Collect items, merging those that format alike (minus ``except_fields``).

    ``combine(existing, new)`` is called for each merged item; iterate the
    deduplicator for the kept items in order.
    """

    def __init__(self, formatter: OutputFormat, except_fields: Iterable[str] | None = None,
                 combine: Callable[[Any, Any], Any] | None = None) -> None:
        self.formatter = formatter.copy(except_fields=except_fields, nullify_expansion=True)
        self.combine = combine
        self.hash: dict[str, Any] = {}
        self.items: list[Any] = []

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def append(self, item: Any) -> None:
        key = self.formatter.format(item)
        existing = self.hash.get(key)
        if existing is None:
            self.hash[key] = item
            self.items.append(item)
        elif self.combine is not None:
            self.combine(existing, item)
