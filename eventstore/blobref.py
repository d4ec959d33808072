"""RFC 10 blobrefs: ``blake3-<64 lowercase hex>``.

The store keys blobs by the raw 32-byte digest; the string form is what
tree objects, checkpoints and messages carry.  The prefix names the hash so
that it could be swapped one day (it is what ``content.hash`` reports).
"""
from __future__ import annotations

import errno
import re

from blake3 import blake3

from flux.errors import FluxError

__all__ = [
    "HASH_NAME",
    "PREFIX",
    "REF_LEN",
    "blobref",
    "digest",
    "from_digest",
    "parse",
    "is_blobref",
]

HASH_NAME = "blake3"
PREFIX = HASH_NAME + "-"
DIGEST_SIZE = 32
REF_LEN = len(PREFIX) + 2 * DIGEST_SIZE
_MATCH = re.compile(PREFIX + r"[0-9a-f]{%d}" % (2 * DIGEST_SIZE)).fullmatch


def blobref(data: bytes) -> str:
    """Blobref of ``data``."""
    return PREFIX + blake3(data).hexdigest()


def digest(data: bytes) -> bytes:
    """Raw 32-byte digest of ``data`` (the store's key)."""
    return blake3(data).digest()


def from_digest(raw: bytes) -> str:
    """Blobref string for a raw digest."""
    if len(raw) != DIGEST_SIZE:
        raise FluxError(errno.EINVAL, f"digest of {len(raw)} bytes is not a {HASH_NAME} digest")
    return PREFIX + raw.hex()


def is_blobref(ref: object) -> bool:
    """True when ``ref`` is a well-formed blake3 blobref string."""
    return type(ref) is str and _MATCH(ref) is not None


def parse(ref: object) -> bytes:
    """Raw digest of a blobref string; EINVAL naming the ref when malformed."""
    if type(ref) is not str:
        raise FluxError(errno.EINVAL, f"blobref must be a string, not {type(ref).__name__}")
    if not is_blobref(ref):
        if "-" in ref and not ref.startswith(PREFIX):
            why = f"unsupported hash {ref.split('-', 1)[0]!r} (this store uses {HASH_NAME})"
        else:
            why = f"expected {PREFIX}<{2 * DIGEST_SIZE} lowercase hex digits>"
        raise FluxError(errno.EINVAL, f"invalid blobref {ref[:100]!r}: {why}")
    return bytes.fromhex(ref[len(PREFIX):])
