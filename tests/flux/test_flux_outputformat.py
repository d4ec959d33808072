"""flux.util.OutputFormat: fields, conversions, headers, sentinels, sorting."""
from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest

from flux.util import OutputFormat
from flux.util.outputformat import UtilDatetime, UtilFormatter, display_width, empty_outputs

HEAD = {"id": "ID", "name": "NAME", "t": "TIME", "x.y": "XY", "n": "N", "d": "D",
        "pct": "PCT"}


class Item:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def fmt(text, **kw):
    return OutputFormat(text, headings=HEAD, **kw)


def test_format_objects_and_dicts():
    f = fmt("{id:>4} {name:<6.6}|{x.y}")
    assert f.format(Item(id=7, name="abcdefgh", x=Item(y="z"))) == "   7 abcdef|z"
    assert f.format({"id": 7, "name": "ab", "x": {"y": 1}}) == "   7 ab    |1"
    assert f.header() == "  ID NAME  |XY"
    assert f.fields == ["id", "name", "x.y"]
    assert f.get_format() == "{0.id:>4} {0.name:<6.6}|{0.x.y}"


def test_a_conversion_that_does_not_fit_the_value_is_a_value_error():
    f = fmt("{name!F}")
    with pytest.raises(ValueError, match="Cannot apply conversion '!F' to 'abc'"):
        f.format(Item(id=1, name="abc", x=None))
    assert fmt("{id!H}").format(Item(id=61.0, name="", x=None)) == "0:01:01"


def test_unknown_field_and_bad_formats_are_refused():
    with pytest.raises(ValueError, match="Unknown format field: foo"):
        fmt("{id} {foo}")
    with pytest.raises(ValueError, match="Unknown conversion specifier '!Z' for field 'id'"):
        fmt("{id!Z}")
    with pytest.raises(ValueError, match="Invalid format spec '>>>4' for field 'name'"):
        fmt("{name:>>>4}")
    with pytest.raises(ValueError, match="Invalid format '{id': expected '}'"):
        fmt("{id")
    with pytest.raises(ValueError, match="Invalid sort key: bogus"):
        fmt("sort:bogus {id}")


def test_missing_attribute_names_the_field():
    with pytest.raises(KeyError, match="Invalid format field '0.name' for Item"):
        fmt("{name}").format(Item(id=1))


def test_conversions():
    ts = datetime(2020, 1, 7, 13, 31, 0).timestamp()
    item = Item(t=ts, d=3725.4, n="", pct=0.5)
    assert fmt("{t!D}").format(item) == "2020-01-07T13:31:00"
    assert fmt("{n!D}").format(item) == ""
    assert fmt("{t!d:%H:%M}").format(item) == "13:31"
    assert fmt("{n!d:%Y}").format(item) == ""          # the epoch prints empty
    assert fmt("{d!H}").format(item) == "1:02:05"
    assert fmt("{n!H}|{n!F}").format(item) == "|"
    assert fmt("{d!F}").format(Item(d=5400.0)) == "1.5h"
    assert fmt("{pct!P}").format(item) == "50%"
    assert fmt("{pct!P}").format(Item(pct=0.015)) == "1.5%"
    assert fmt("{pct!P}").format(Item(pct=0.0005)) == "0.05%"
    assert fmt("{pct!P:>5}").format(Item(pct=1.0)) == " 100%"
    assert fmt("{d!H}").format(Item(d=0.2)) == "0:00:01"
    assert fmt("{d!r}").format(Item(d="x")) == "'x'"


def test_h_presentation_turns_empty_values_into_hyphens():
    f = fmt("{n:>3h}|{d!F:>4h}|{d!H:h}|{t!D:h}|{name:h}")
    assert f.format(Item(n="", d=0, t=0.0, name="0.0")) == "  -|   -|-|-|-"
    assert f.format(Item(n="ab", d=60, t=0.0, name="x")) == " ab|  1m|0:01:00|-|x"
    assert fmt("{t!d:%H::>5h}").format(Item(t=0.0)) == "    -"


def test_truncation_marker_and_wide_characters():
    f = fmt("{name:<5.5+}|")
    assert f.format(Item(name="abcdefgh")) == "abcd+|"
    assert f.format(Item(name="abc")) == "abc  |"
    assert display_width("ƒ😃") == 3
    assert fmt("{name:>6W}|").format(Item(name="😃😃")) == "  😃😃|"


def test_sentinels_filter_and_expand():
    items = [Item(id=1, name="", x=Item(y="longvalue")), Item(id=22, name="", x=Item(y="a"))]
    f = fmt("{id:>3} ?:{name:<8} +:{x.y:<2} ?+:{n}")
    for item in items:
        item.n = ""
    newfmt = f.filter(items)
    assert newfmt == "{id:>3} {x.y:<9}"
    out = io.StringIO()
    f.print_items(items, file=out)
    assert out.getvalue().splitlines() == [" ID XY       ", "  1 longvalue", " 22 a        "]
    # the header alone counts toward the width of a +: column
    assert fmt("+:{x.y}").filter([Item(x=Item(y="a"))]) == "{x.y:2}"
    assert fmt("+:{x.y}").filter([Item(x=Item(y="a"))], no_header=True) == "{x.y:1}"
    # sentinels never show in an unfiltered format either
    assert f.header() == " ID NAME     XY N"


def test_sort_keys_and_prefix():
    items = [Item(id=1, t=3.0, name="b"), Item(id=2, t=1.0, name="a"),
             Item(id=3, t=3.0, name="a")]
    f = fmt("sort:-t,name {id}")
    assert f.sort_keys == [("t", True), ("name", False)]
    assert [i.id for i in f.sort_items(list(items))] == [3, 1, 2]
    assert f.get_format() == "sort:-t,name {0.id}"
    assert f.get_format(include_sort_prefix=False) == "{0.id}"
    assert set(f.fields) == {"id", "t", "name"}
    f.set_sort_keys("id")
    assert [i.id for i in f.sort_items(list(items))] == [1, 2, 3]
    assert [i.id for i in f.sort_items(list(items), "name,-id")] == [3, 2, 1]
    assert f.sort_keys == [("name", False), ("id", True)]
    with pytest.raises(ValueError, match="Invalid sort key: nope"):
        f.sort_items(list(items), "nope")
    # mixed types (unset "" vs numbers) still sort: empty first, as Flux's DisplayValue
    mixed = [Item(t=2.0), Item(t=""), Item(t=1.0)]
    assert [i.t for i in fmt("sort:t {id}").sort_items(mixed)] == ["", 1.0, 2.0]


def test_copy_without_fields():
    f = fmt("{id:>4} {name} ?:{n}")
    assert f.copy(except_fields=["name"]).get_format() == "{0.id:>4} {0.n}"
    assert fmt("+:{name:<10.10}").copy(nullify_expansion=True).get_format() == "{0.name}"


def test_print_items_skips_blank_lines_and_calls_hooks():
    seen = []
    out = io.StringIO()
    fmt("{name}").print_items([Item(name=" "), Item(name="x")], no_header=True, file=out,
                              pre=seen.append, post=seen.append)
    assert out.getvalue() == "x\n"
    assert len(seen) == 2


def test_empty_outputs_and_util_datetime():
    assert {"", "0s", "0.0", "0:00:00"} <= set(empty_outputs())
    when = UtilDatetime.fromtimestamp(datetime(2021, 9, 21, 18, 36).timestamp())
    assert format(when, "%b%d %R::>12") == " Sep21 18:36"
    assert format(when, "") == "2021-09-21T18:36:00"
    assert UtilFormatter().format("{0!H}", timedelta(0).total_seconds()) == "0:00:00"
