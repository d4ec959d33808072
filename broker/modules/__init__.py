"""Broker modules that ship with the broker itself (``testmod``)."""
