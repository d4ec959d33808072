"""The RFC 11 hash-tree KVS engine and the broker modules that serve it."""
