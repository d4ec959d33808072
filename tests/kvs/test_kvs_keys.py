"""KVS keys: normalization and errors naming the key."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.errors import FluxError
from kvs import keys


@pytest.mark.parametrize(
    "key, norm, comps",
    [
        ("a.b.c", "a.b.c", ("a", "b", "c")),
        (".", ".", ()),
        ("...", ".", ()),
        (".a..b.", "a.b", ("a", "b")),
        ("job.0000.0004.b200.0000", "job.0000.0004.b200.0000", ("job", "0000", "0004", "b200", "0000")),
        ("ünïcødé.x", "ünïcødé.x", ("ünïcødé", "x")),
        ("has space.x", "has space.x", ("has space", "x")),
    ],
)
def test_normalize(key: str, norm: str, comps: tuple[str, ...]) -> None:
    assert keys.normalize(key) == norm
    assert keys.split(key) == comps
    assert keys.parse(key) == (comps, norm)
    assert keys.join(comps) == norm


@pytest.mark.parametrize(
    "key, fragment",
    [
        ("", "empty key"),
        ("a.\x01b", "control character '\\x01' at offset 2"),
        ("a\nb", "control character '\\n' at offset 1"),
        ("a.\x7f", "control character '\\x7f'"),
        ("a." + "x" * 1025, "component longer than 1024"),
    ],
)
def test_invalid_keys_name_the_key(key: str, fragment: str) -> None:
    with pytest.raises(FluxError) as ei:
        keys.split(key)
    assert ei.value.errno == errno.EINVAL
    assert fragment in str(ei.value)
    assert "invalid key" in str(ei.value)


def test_non_string_key() -> None:
    with pytest.raises(FluxError, match="key must be a string, not number"):
        keys.split(5)


@pytest.mark.parametrize("name", ["", "a.b", "x\x00", None])
def test_check_component(name: object) -> None:
    with pytest.raises(FluxError, match="invalid directory entry name"):
        keys.check_component(name)


_comp = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="."),
                min_size=1, max_size=8)


@given(st.lists(_comp, max_size=6), st.lists(st.integers(0, 3), min_size=7, max_size=7))
def test_redundant_dots_normalize_away(parts: list[str], dots: list[int]) -> None:
    # leading/trailing dots optional, at least one between components
    key = "".join("." * (dots[i] + (i > 0)) + p for i, p in enumerate(parts)) + "." * dots[-1]
    if not key:
        return
    assert keys.split(key) == tuple(parts)
    assert keys.normalize(keys.normalize(key)) == keys.normalize(key)
