"""The object cache is an LRU bounded by entries and bytes."""
from __future__ import annotations

import pytest

from kvs.cache import ObjectCache


def test_lru_by_entries() -> None:
    c = ObjectCache(max_entries=2, max_bytes=100)
    c.put("a", 1, 1)
    c.put("b", 2, 1)
    assert c.get("a") == 1  # a is now most recent
    c.put("c", 3, 1)
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3
    st = c.stats()
    assert (st.entries, st.bytes, st.hits) == (2, 2, 3)


def test_bounded_by_bytes_and_pop() -> None:
    c = ObjectCache(max_entries=10, max_bytes=10)
    c.put("a", 1, 6)
    c.put("b", 2, 6)
    assert "a" not in c and len(c) == 1
    assert c.pop("b") == 2 and c.pop("b") is None
    assert c.stats().bytes == 0
    c.put("huge", 3, 50)  # a single oversized entry is kept until the next put
    assert c.get("huge") == 3
    c.clear()
    assert len(c) == 0 and c.get("x") is None


def test_bad_bounds() -> None:
    with pytest.raises(ValueError):
        ObjectCache(0, 1)
