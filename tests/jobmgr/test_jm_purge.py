"""jobmgr.manager.purge: the inactive index, purge selection and limits."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.errors import FluxError
from jobmgr.manager.purge import InactiveIndex, PurgeLimits, parse_purge_limits, select


def index_of(pairs):
    index = InactiveIndex()
    for jobid, t in pairs:
        index.add(jobid, t)
    return index


def test_index_keeps_time_order_even_for_late_arrivals():
    index = index_of([(1, 10.0), (2, 30.0), (3, 20.0)])
    assert index.items() == [(1, 10.0), (3, 20.0), (2, 30.0)]
    assert len(index) == 3 and 3 in index and 4 not in index


def test_oldest_stops_at_the_age_boundary():
    index = index_of([(1, 10.0), (2, 20.0), (3, 30.0)])
    assert index.oldest(2) == [1, 2]
    assert index.oldest(10, older_than=25.0) == [1, 2]


def test_discard_from_head_and_middle():
    index = index_of([(i, float(i)) for i in range(1, 7)])
    assert index.discard([1, 2, 4, 99]) == 3
    assert index.ids() == [3, 5, 6] and len(index) == 3
    assert index.oldest(1) == [3]


def test_encode_decode_roundtrip_and_bad_bytes():
    index = index_of([(5, 1.5), (7, 2.5)])
    index.discard([5])
    again = InactiveIndex.decode(index.encode())
    assert again.items() == [(7, 2.5)]
    import zlib

    with pytest.raises(ValueError, match="not a whole number of entries"):
        InactiveIndex.decode(zlib.compress(b"12345"))


@given(st.lists(st.tuples(st.integers(1, 2**63), st.floats(0, 1e9, allow_nan=False)),
                max_size=60, unique_by=lambda p: p[0]),
       st.lists(st.integers(0, 59), max_size=20))
def test_index_matches_a_sorted_list_model(pairs, drops):
    index = index_of(pairs)
    model = sorted(pairs, key=lambda p: p[1])
    gone = {pairs[i][0] for i in drops if i < len(pairs)}
    index.discard(gone)
    model = [p for p in model if p[0] not in gone]
    assert [t for _, t in index.items()] == [t for _, t in model]
    assert sorted(index.ids()) == sorted(p[0] for p in model)
    assert len(index) == len(model)


def test_select_by_number_and_age_takes_the_larger_oldest_prefix():
    index = index_of([(i, float(i)) for i in range(1, 11)])
    assert select(index, 100.0, None, 7) == [1, 2, 3]
    assert select(index, 100.0, 95.5, None) == [1, 2, 3, 4]
    assert select(index, 100.0, 95.5, 7) == [1, 2, 3, 4]
    assert select(index, 100.0, 98.5, 7) == [1, 2, 3]
    assert select(index, 100.0, None, 0, max_count=2) == [1, 2]
    assert select(index, 100.0, None, None) == []


def test_select_refuses_negative_limits():
    with pytest.raises(FluxError) as exc:
        select(InactiveIndex(), 0.0, -1.0, None)
    assert exc.value.errno == errno.EINVAL


def test_purge_limits_from_config():
    assert parse_purge_limits(None) == PurgeLimits()
    assert parse_purge_limits({"inactive-age-limit": "7d", "inactive-num-limit": 10}) == \
        PurgeLimits(604800.0, 10)
    assert parse_purge_limits({"inactive-age-limit": "inf"}).age is None
    with pytest.raises(ValueError, match="inactive-age-limit: invalid duration"):
        parse_purge_limits({"inactive-age-limit": "a week"})
    with pytest.raises(ValueError, match="inactive-num-limit: must be an integer >= 0"):
        parse_purge_limits({"inactive-num-limit": -3})
