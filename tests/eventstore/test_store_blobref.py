"""Blobrefs: blake3-<64 hex>, parse errors name the ref."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore import blobref
from flux.errors import FluxError

# blake3 of b"" and b"hello" (published blake3 test values)
EMPTY = "blake3-af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
HELLO = "blake3-ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"


def test_blobref_vectors() -> None:
    assert blobref.blobref(b"") == EMPTY
    assert blobref.blobref(b"hello") == HELLO


def test_parse_returns_raw_digest() -> None:
    raw = blobref.parse(HELLO)
    assert raw == bytes.fromhex(HELLO[len("blake3-"):])
    assert blobref.from_digest(raw) == HELLO
    assert blobref.digest(b"hello") == raw


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("sha1-f1d2d2f924e986ac86fdf7b36c94bcdf32beec15", "unsupported hash 'sha1'"),
        ("blake3-" + "A" * 64, "lowercase hex"),
        ("blake3-" + "a" * 63, "lowercase hex"),
        ("blake3-" + "g" * 64, "lowercase hex"),
        ("blake3" + "a" * 65, "lowercase hex"),
        ("", "lowercase hex"),
    ],
)
def test_parse_rejects_and_names_the_ref(bad: str, fragment: str) -> None:
    with pytest.raises(FluxError) as ei:
        blobref.parse(bad)
    assert ei.value.errno == errno.EINVAL
    assert fragment in str(ei.value)
    assert repr(bad[:20]).strip("'") in str(ei.value)


def test_parse_rejects_non_string() -> None:
    with pytest.raises(FluxError, match="must be a string, not bytes"):
        blobref.parse(b"blake3-00")


def test_from_digest_rejects_wrong_length() -> None:
    with pytest.raises(FluxError, match="digest of 3 bytes"):
        blobref.from_digest(b"abc")


@given(st.binary(max_size=300))
def test_roundtrip_property(data: bytes) -> None:
    ref = blobref.blobref(data)
    assert blobref.is_blobref(ref)
    assert blobref.from_digest(blobref.parse(ref)) == ref
    assert len(ref) == blobref.REF_LEN
