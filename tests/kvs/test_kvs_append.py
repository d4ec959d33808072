"""Valref compaction policy for appends (pure functions)."""
from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from kvs.append import merge_count, simulate, split_chunks


def test_binary_counter_with_equal_appends() -> None:
    sizes, _ = simulate([1] * 13, 1 << 20)
    assert sizes == [8, 4, 1]  # 13 = 0b1101
    sizes, _ = simulate([1] * 16, 1 << 20)
    assert sizes == [16]


def test_nothing_merges_up_to_min_chunks() -> None:
    assert simulate([1] * 8, 1 << 20, 8)[0] == [1] * 8
    assert simulate([1] * 9, 1 << 20, 8)[0] == [9]
    assert merge_count(lambda i: 1, 8, 100, 8) == 1
    assert merge_count(lambda i: 1, 9, 100, 8) == 9


def test_chunk_max_caps_merges() -> None:
    sizes, _ = simulate([10] * 20, 40)
    assert max(sizes) <= 40 and sum(sizes) == 200
    assert sizes[:5] == [40] * 5


def test_merge_count_reads_only_needed_sizes() -> None:
    seen = []

    def size_at(i: int) -> int:
        seen.append(i)
        return [100, 50, 1][i]

    assert merge_count(size_at, 3, 1000) == 1
    assert seen == [2, 1]


def test_split_chunks() -> None:
    assert split_chunks(b"", 4) == []
    assert split_chunks(b"abc", 4) == [b"abc"]
    assert split_chunks(b"abcdefghij", 4) == [b"abcd", b"efgh", b"ij"]


@given(st.lists(st.integers(1, 300), min_size=1, max_size=400), st.sampled_from([0, 8]))
def test_policy_bounds(appends: list[int], min_chunks: int) -> None:
    cap = 4096
    sizes, written = simulate(appends, cap, min_chunks)
    total = sum(appends)
    assert sum(sizes) == total
    assert all(0 < s <= cap for s in sizes)
    # chunks below the cap fall strictly in size towards the tail (past min_chunks),
    # so there are few of them: sealed chunks plus a logarithmic tail
    sealed = sum(1 for s in sizes if s > cap // 2)
    assert len(sizes) <= max(min_chunks, 0) + sealed + 2 * math.log2(total + 1) + 2
    # every byte is rewritten a logarithmic number of times
    assert written <= total * (2 + math.log2(len(appends) + 1))
