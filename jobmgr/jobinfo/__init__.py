"""The ``job-info`` service: job KVS lookups and eventlog watches (RFC 41)."""
