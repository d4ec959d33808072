"""flux.hostlist.Hostlist and flux.idset.IDset items of python-api.md, as scripts use them."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.hostlist import Hostlist
from flux.idset import IDset

# -- Hostlist.find / index -----------------------------------------------------


def test_find_returns_position() -> None:
    hl = Hostlist("foo[0-3],bar,foo1")
    assert hl.find("foo0") == 0
    assert hl.find("foo3") == 3
    assert hl.find("bar") == 4
    assert hl.find("foo1") == 1  # the first occurrence


def test_find_missing_is_file_not_found() -> None:
    with pytest.raises(FileNotFoundError) as info:
        Hostlist("foo[0-3]").find("foo7")
    assert info.value.errno == errno.ENOENT
    assert "foo7" in str(info.value)


def test_index_returns_list_of_positions() -> None:
    hl = Hostlist("foo[0-9]")
    assert hl.index("foo[1,3]") == [1, 3]
    assert hl.index("foo3,foo1") == [3, 1]
    assert hl.index(Hostlist("foo[8-9]")) == [8, 9]
    assert hl.index("foo5") == [5]
    assert hl.index("") == []


def test_index_missing_hosts() -> None:
    hl = Hostlist("foo[0-9]")
    with pytest.raises(FileNotFoundError) as info:
        hl.index("foo[1,11]")
    assert info.value.errno == errno.ENOENT
    assert str(info.value) == "host 'foo11' not found"
    with pytest.raises(FileNotFoundError) as info:
        hl.index("foo[1,11-12],bar")
    assert str(info.value) == "hosts 'foo[11-12],bar' not found"
    assert hl.index("foo[1,11-12],bar,foo2", ignore_nomatch=True) == [1, 2]


def test_index_bad_hostlist_is_value_error() -> None:
    with pytest.raises(ValueError, match="invalid hostlist"):
        Hostlist("foo[0-3]").index("foo[")


# -- Hostlist indexing ---------------------------------------------------------


def test_getitem_int_is_str() -> None:
    hl = Hostlist("foo[0-9]")
    assert hl[0] == "foo0" and hl[-1] == "foo9"
    assert isinstance(hl[3], str)
    with pytest.raises(IndexError):
        hl[10]


def test_getitem_slice_is_hostlist() -> None:
    hl = Hostlist("foo[0-9]")
    part = hl[8:]
    assert isinstance(part, Hostlist)
    assert str(part) == "foo[8-9]"
    assert str(hl[1:3]) == "foo[1-2]"
    assert str(hl[::3]) == "foo[0,3,6,9]"
    assert str(hl[20:]) == "" and len(hl[20:]) == 0
    # a slice is a copy
    part.append("bar")
    assert len(hl) == 10


def test_getitem_iterable_is_hostlist() -> None:
    hl = Hostlist("foo[0-9]")
    assert str(hl[1, 3]) == "foo[1,3]"
    assert isinstance(hl[1, 2, 3], Hostlist) and str(hl[1, 2, 3]) == "foo[1-3]"
    assert str(hl[[9, 0]]) == "foo[9,0]"
    assert str(hl[IDset("0-1")]) == "foo[0-1]"
    assert str(hl[IDset("2,5-6")]) == "foo[2,5-6]"
    assert str(hl[range(2)]) == "foo[0-1]"
    assert str(hl[-1, 0]) == "foo[9,0]"
    with pytest.raises(IndexError):
        hl[1, 10]


@pytest.mark.parametrize("bad", ["0", 1.5, None, ["1"], (1, "2"), [1.0]])
def test_getitem_non_int_is_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        Hostlist("foo[0-9]")[bad]  # type: ignore[index]


def test_contains_uses_find() -> None:
    hl = Hostlist("foo[0-3]")
    assert "foo2" in hl and "foo9" not in hl


@given(st.lists(st.sampled_from(["a", "b", "n1", "n2", "n3", "n10"]), min_size=1, max_size=12),
       st.data())
def test_index_agrees_with_list(names: list[str], data: st.DataObject) -> None:
    hl = Hostlist(names)
    picks = data.draw(st.lists(st.sampled_from(names), max_size=5))
    assert hl.index(picks) == [names.index(p) for p in picks]
    positions = data.draw(st.lists(st.integers(0, len(names) - 1), max_size=5))
    assert hl[positions].expand() == [names[i] for i in positions]


# -- IDset membership and equality ---------------------------------------------


def test_idset_contains() -> None:
    ids = IDset("0-3,7")
    assert 2 in ids and 7 in ids
    assert 5 not in ids and 100 not in ids


def test_idset_contains_negative_is_value_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        -1 in IDset("0-3")  # noqa: B015


@pytest.mark.parametrize("bad", ["1", 1.0, None, [1]])
def test_idset_contains_non_int_is_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="IDset.test supports integers"):
        bad in IDset("0-3")  # noqa: B015


def test_idset_equality() -> None:
    assert IDset("1-3") == IDset([1, 2, 3])
    assert IDset("1-3") != IDset("1-4")
    assert not IDset("1-3") != IDset("1,2,3")


@pytest.mark.parametrize("other", ["1-3", [1, 2, 3], None, 3])
def test_idset_eq_with_non_idset_is_type_error(other: object) -> None:
    with pytest.raises(TypeError):
        IDset("1-3") == other  # noqa: B015
    with pytest.raises(TypeError):
        IDset("1-3") != other  # noqa: B015


def test_idset_contains_huge_id_is_false() -> None:
    assert 2**40 not in IDset("0-3") and not IDset("0-3").test(2**40)
