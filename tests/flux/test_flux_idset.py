"""RFC 22 idsets: decoding, encoding flags, set operations, bad input (specs/idset.md)."""
from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flux.idset
from flux.idset import (
    IDSET_FLAG_BRACKETS,
    IDSET_FLAG_RANGE,
    IDSET_INVALID_ID,
    IDset,
    IDsetIterator,
    decode,
)

BOTH = IDSET_FLAG_RANGE | IDSET_FLAG_BRACKETS


@pytest.mark.parametrize("text,ids", [
    ("1,2,3,5,6,42", [1, 2, 3, 5, 6, 42]),
    ("1-3,5-6,42", [1, 2, 3, 5, 6, 42]),
    ("[1-3]", [1, 2, 3]),
    ("1,2,5,4", [1, 2, 4, 5]),        # seed: unordered input is accepted
    ("1-4,7,9-10", [1, 2, 3, 4, 7, 9, 10]),
    ("42", [42]),
    ("[99-101]", [99, 100, 101]),     # seed: brackets are ignored
    ("0", [0]),
    ("", []),
    ("[]", []),
    ("1-3,2-5", [1, 2, 3, 4, 5]),     # overlapping ranges merge
    ("3-3", [3]),
    ("1,,2", [1, 2]),                 # Flux skips empty elements
])
def test_decode_vectors(text: str, ids: list[int]) -> None:
    idset = decode(text)
    assert idset.expand() == ids
    assert len(idset) == idset.count() == len(ids)


@pytest.mark.parametrize("ids,flags,text", [
    ([1, 2, 3, 5, 6, 42], IDSET_FLAG_RANGE, "1-3,5-6,42"),
    ([1, 2, 3, 5, 6, 42], 0, "1,2,3,5,6,42"),
    ([1, 2, 3, 5, 6, 42], BOTH, "[1-3,5-6,42]"),
    ([1, 2, 3], IDSET_FLAG_BRACKETS, "[1,2,3]"),
    ([7], BOTH, "7"),                 # a singleton is never bracketed
    ([0, 1], IDSET_FLAG_RANGE, "0-1"),
    ([], BOTH, ""),
])
def test_encode_flags(ids: list[int], flags: int, text: str) -> None:
    assert IDset(ids).encode(flags) == text


def test_default_flags_and_set_flags() -> None:
    idset = IDset("1,2,3")
    assert str(idset) == "1-3"
    idset.set_flags(BOTH)
    assert str(idset) == "[1-3]"
    assert str(IDset("1-3", flags=0)) == "1,2,3"
    assert repr(IDset("1,2,3", flags=0)) == "IDset('1-3')"


def test_flag_values_match_flux() -> None:
    assert (IDSET_FLAG_BRACKETS, IDSET_FLAG_RANGE, IDSET_INVALID_ID) == (2, 4, 4294967294)


@pytest.mark.parametrize("bad", [99, -1, True])
def test_bad_flags_are_rejected(bad: int) -> None:
    with pytest.raises(ValueError, match="invalid IDset encode flags"):
        IDset("1").encode(bad)


@pytest.mark.parametrize("text,why", [
    ("01", "leading zero in '01'"),
    ("1,007-9", "leading zero in '007-9'"),
    ("5-3", "range '5-3' is backwards"),
    ("a", "bad id in 'a'"),
    ("1-", "bad id in '1-'"),
    ("-1", "bad id in '-1'"),
    ("1-2-3", "bad id in '1-2-3'"),
    ("1 2", "bad id in '1 2'"),
    (" 1", "bad id in ' 1'"),
    ("+1", "bad id in '+1'"),
    ("١", "bad id in '١'"),           # non-ASCII digit
    ("[1", "mismatched or nested brackets"),
    ("1]", "mismatched or nested brackets"),
    ("[[1]]", "mismatched or nested brackets"),
    ("4294967294", "id 4294967294 is larger than 4294967293"),
])
def test_bad_strings_are_rejected_naming_the_string(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)) as info:
        IDset(text)
    assert f"invalid idset '{text}'" in str(info.value)


def test_construction_from_other_types() -> None:
    assert IDset([3, 1, 2, 2]).expand() == [1, 2, 3]
    assert IDset({0, 5, 7}).expand() == [0, 5, 7]
    assert IDset(range(10, 20)).expand() == list(range(10, 20))
    assert IDset(range(0)).expand() == []
    assert IDset(i for i in (4, 9)).expand() == [4, 9]
    assert IDset(6).expand() == [6]
    original = IDset("1-3")
    copy = IDset(original)
    copy.set(9)
    assert original.expand() == [1, 2, 3]


@pytest.mark.parametrize("arg,exc,match", [
    (1.5, TypeError, "got float"),
    (True, TypeError, "got bool"),
    ([1, "2"], TypeError, "not str"),
    ([1, 2.0], TypeError, "not float"),
    ([True], TypeError, "not bool"),
    ([0, -4], ValueError, "negative id -4"),
    (-2, ValueError, "negative id -2"),
    ([2**40], ValueError, "larger than"),
])
def test_bad_construction_arguments(arg: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        IDset(arg)  # type: ignore[arg-type]


def test_seed_examples_set_and_clear_chain() -> None:
    assert str(IDset().set(0, 3)) == "0-3"
    assert str(IDset("0-9").clear(0, 3)) == "4-9"
    idset = IDset()
    assert idset.set(5) is idset  # returns self, mutated


def test_set_and_clear_merge_and_split_ranges() -> None:
    idset = IDset("0-2,8-9")
    idset.set(3, 7)
    assert str(idset) == "0-9" and len(idset) == 10
    idset.clear(4)
    assert str(idset) == "0-3,5-9" and len(idset) == 9
    idset.clear(0, 100)
    assert str(idset) == "" and len(idset) == 0


@pytest.mark.parametrize("method", ["set", "clear"])
def test_set_and_clear_reject_bad_ranges(method: str) -> None:
    with pytest.raises(ValueError, match="> 2"):
        getattr(IDset(), method)(5, 2)
    with pytest.raises(ValueError, match=f"negative id -1 passed to IDset.{method}"):
        getattr(IDset(), method)(-1)
    with pytest.raises(TypeError, match=f"IDset.{method} supports integers"):
        getattr(IDset(), method)("3")


def test_queries() -> None:
    idset = IDset("2-4,10")
    assert idset.test(3) and not idset.test(5)
    assert 10 in idset and 11 not in idset
    with pytest.raises(TypeError):
        "10" in idset  # noqa: B015
    with pytest.raises(ValueError):
        -1 in idset  # noqa: B015
    assert idset[2] is True and idset[9] is False
    assert idset.first() == 2 and idset.last() == 10
    assert [idset.next(i) for i in (0, 2, 4, 9, 10)] == [2, 3, 10, 10, IDSET_INVALID_ID]
    empty = IDset()
    assert empty.first() == empty.last() == IDSET_INVALID_ID
    assert not empty and idset
    with pytest.raises(TypeError):
        idset.test(1.0)  # type: ignore[arg-type]


def test_iteration_and_iterator_class() -> None:
    idset = IDset("0-2,7")
    assert list(idset) == [0, 1, 2, 7]
    it = IDsetIterator(idset)
    assert iter(it) is it and next(it) == 0


def test_setitem() -> None:
    idset = IDset()
    idset[4] = True
    idset[5] = 1
    assert str(idset) == "4-5"
    idset[4] = False
    assert str(idset) == "5"
    with pytest.raises(TypeError, match="bool or 0/1"):
        idset[1] = "yes"  # type: ignore[assignment]


def test_set_algebra_returns_new_sets() -> None:
    a = IDset("0-5")
    assert str(a.union("8", [10, 11], IDset("3-9"))) == "0-11"
    assert str(a.intersect("2-9", [3, 4, 5, 6])) == "3-5"
    assert str(a.difference("1", IDset("3-4"))) == "0,2,5"
    assert str(a.intersect()) == "0-5" and a.intersect() is not a
    assert str(a) == "0-5"
    assert str(a | IDset("7")) == str(a + IDset("7")) == "0-5,7"
    assert str(a - IDset("0")) == "1-5" and str(a & IDset("5-6")) == "5"


def test_add_and_subtract_mutate_in_place() -> None:
    a = IDset("0-5")
    assert a.add("10-12") is a and str(a) == "0-5,10-12"
    assert a.subtract([0, 11]) is a and str(a) == "1-5,10,12"
    a += IDset("6")
    a -= IDset("1")
    assert str(a) == "2-6,10,12"


def test_equality() -> None:
    assert IDset("1-3") == IDset([1, 2, 3])
    assert IDset("1-3") != IDset("1-4")
    with pytest.raises(TypeError):
        IDset("1") != "1"  # noqa: B015
    assert IDset("1").equal(IDset("1"))
    with pytest.raises(TypeError, match="expected an IDset"):
        IDset("1").equal("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(IDset("1"))


def test_copy_and_expand() -> None:
    a = IDset("1-3")
    b = a.copy()
    b.set(4)
    assert a.expand() == [1, 2, 3] and b.expand() == [1, 2, 3, 4]


def test_large_contiguous_ranges_stay_compact() -> None:
    everything = IDset("0-4294967293")
    assert len(everything) == 4294967294
    assert list(everything.ranges()) == [(0, 4294967293)]
    holes = everything.difference("5,7,1000000")
    assert str(holes) == "0-4,6,8-999999,1000001-4294967293"
    assert holes.test(4294967293) and not holes.test(1000000)
    assert str(IDset(range(65536))) == "0-65535"


def test_module_path_matches_flux() -> None:
    assert flux.idset.IDset is IDset and flux.idset.decode("1").expand() == [1]


id_sets = st.sets(st.integers(min_value=0, max_value=200), max_size=60)


@given(id_sets, st.sampled_from([0, IDSET_FLAG_RANGE, IDSET_FLAG_BRACKETS, BOTH]))
def test_encode_decode_round_trip(ids: set[int], flags: int) -> None:
    idset = IDset(ids)
    text = idset.encode(flags)
    assert IDset(text) == idset
    assert IDset(text).expand() == sorted(ids)
    if flags & IDSET_FLAG_BRACKETS and len(ids) > 1:
        assert text.startswith("[") and text.endswith("]")


@given(id_sets, id_sets)
def test_set_algebra_matches_python_sets(a: set[int], b: set[int]) -> None:
    x, y = IDset(a), IDset(b)
    assert set(x | y) == a | b and len(x | y) == len(a | b)
    assert set(x & y) == a & b and len(x & y) == len(a & b)
    assert set(x - y) == a - b and len(x - y) == len(a - b)


@given(id_sets, st.lists(st.tuples(st.booleans(), st.integers(0, 210), st.integers(0, 20)),
                         max_size=20))
def test_set_and_clear_match_a_model(ids: set[int], ops: list[tuple[bool, int, int]]) -> None:
    idset, model = IDset(ids), set(ids)
    for add, start, length in ops:
        span = set(range(start, start + length + 1))
        if add:
            idset.set(start, start + length)
            model |= span
        else:
            idset.clear(start, start + length)
            model -= span
        assert len(idset) == len(model)
    assert idset.expand() == sorted(model)
    pairs = list(idset.ranges())
    # stored ranges are sorted, disjoint and never adjacent
    assert all(hi + 1 < lo for (_, hi), (lo, _) in zip(pairs, pairs[1:]))
    for i in range(0, 235, 7):
        expected = min((v for v in model if v > i), default=IDSET_INVALID_ID)
        assert idset.next(i) == expected
