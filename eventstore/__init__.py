"""The append-only store: RFC 18 eventlog codec and RFC 10 blobs on LMDB."""
