"""The ``job-exec`` service: runs jobs (RFC 32), on every broker rank."""
