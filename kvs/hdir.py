"""Hashed directories (RFC 11 ``hdir``), which flux-core never implemented.

A dir holding more than ``maxdirent`` entries is stored as an hdir: a fixed
array of ``size`` buckets, each null or a dirref to a dir holding the names
that hash to that bucket.  A bucket that itself grows past ``maxdirent``
becomes a nested hdir one ``level`` down, so no stored object grows large
and a commit into a huge directory rewrites a few small objects.

``func`` is ``"blake3"``: ``h = blake3(utf8(name))``, a 32-byte digest;
the bucket of a name at level L is ``int.from_bytes(h[4L:4L+4], "big") %
size``.  Each level reads fresh digest bytes, so names sharing a bucket at
one level spread out at the next.  It is stable across runs and platforms
(unlike Python's ``hash``).  Levels stop at ``MAX_LEVEL`` (bytes 28-31).
"""
from __future__ import annotations

from blake3 import blake3

__all__ = ["FUNC", "FUNCS", "MAX_LEVEL", "name_digest", "bucket_of", "bucket_index"]

FUNC = "blake3"
FUNCS = frozenset((FUNC,))
MAX_LEVEL = 7


def name_digest(name: str) -> bytes:
    return blake3(name.encode()).digest()


def bucket_of(digest: bytes, size: int, level: int) -> int:
    """Bucket of a name, given its digest, in an hdir of ``size`` buckets at ``level``."""
    off = 4 * level
    return int.from_bytes(digest[off:off + 4], "big") % size


def bucket_index(name: str, size: int, level: int = 0) -> int:
    return bucket_of(name_digest(name), size, level)
