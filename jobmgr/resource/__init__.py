"""The ``resource`` service: configured resources and their RFC 44 eventlog."""
