"""The ``sched`` service: a pure allocation core wrapped by the RFC 27 module."""
