"""KVS flag values (flux-core's numbers) and this engine's own additions.

Importable without lmdb or the engine, so that the ``flux.kvs`` client and
the command line can share them.
"""
from __future__ import annotations

__all__ = [
    "FLUX_KVS_READDIR",
    "FLUX_KVS_READLINK",
    "FLUX_KVS_WATCH",
    "FLUX_KVS_WAITCREATE",
    "FLUX_KVS_TREEOBJ",
    "FLUX_KVS_APPEND",
    "FLUX_KVS_WATCH_FULL",
    "FLUX_KVS_WATCH_UNIQ",
    "FLUX_KVS_WATCH_APPEND",
    "FLUX_KVS_NO_MERGE",
    "FLUX_KVS_UNLINK_NODIR",
    "OP_FLAGS",
    "LOOKUP_FLAGS",
    "COMMIT_FLAGS",
    "PRIMARY_NAMESPACE",
    "SYMLINK_CYCLE_LIMIT",
]

# lookup flags
FLUX_KVS_READDIR = 1
FLUX_KVS_READLINK = 2
FLUX_KVS_WATCH = 4
FLUX_KVS_WAITCREATE = 8
FLUX_KVS_TREEOBJ = 16
FLUX_KVS_WATCH_FULL = 64
FLUX_KVS_WATCH_UNIQ = 128
FLUX_KVS_WATCH_APPEND = 256

# txn op flags
FLUX_KVS_APPEND = 32
# This engine's addition (flux-core has no such bit; its CLI checks with a
# racy lookup first): an unlink op carrying it fails with EISDIR when the key
# is a directory, so "remove dirs only when asked" is decided atomically in
# the commit.  Chosen far above flux-core's flag bits.
FLUX_KVS_UNLINK_NODIR = 1 << 16

# commit flags
FLUX_KVS_NO_MERGE = 1

OP_FLAGS = FLUX_KVS_APPEND | FLUX_KVS_UNLINK_NODIR
LOOKUP_FLAGS = (
    FLUX_KVS_READDIR
    | FLUX_KVS_READLINK
    | FLUX_KVS_WATCH
    | FLUX_KVS_WAITCREATE
    | FLUX_KVS_TREEOBJ
    | FLUX_KVS_WATCH_FULL
    | FLUX_KVS_WATCH_UNIQ
    | FLUX_KVS_WATCH_APPEND
)
COMMIT_FLAGS = FLUX_KVS_NO_MERGE

PRIMARY_NAMESPACE = "primary"
# symlinks followed in one lookup before ELOOP (flux-core's limit)
SYMLINK_CYCLE_LIMIT = 10
