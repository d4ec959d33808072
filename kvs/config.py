"""The ``[kvs]`` table (flux-config-kvs(5)), checked as a pure function.

``parse_kvs_config(table)`` returns a :class:`KvsConfig` or raises
ValueError naming the key: ``kvs.KEY: problem``.  Keys:

- ``gc-threshold``: an integer >= 0.  Here it is what the ``kvs.gc-threshold``
  attribute holds (store growth in bytes that starts an online collection;
  0: never by itself), specs/online-gc.md.
- ``checkpoint-period``: an RFC 23 duration.  Our store is durable at every
  commit, so there is no periodic checkpoint to take; the value is checked
  and kept, nothing more (specs/kvs-service.md).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flux.util.fsd import parse_fsd

__all__ = ["KVS_CONFIG_KEYS", "KvsConfig", "parse_kvs_config"]

KVS_CONFIG_KEYS = ("checkpoint-period", "gc-threshold")


@dataclass(slots=True, frozen=True)
class KvsConfig:
    """None: the key is not set."""

    gc_threshold: int | None = None
    checkpoint_period: float | None = None


def parse_kvs_config(table: Any) -> KvsConfig:
    """Check the ``[kvs]`` table (None: not there)."""
    if table is None:
        return KvsConfig()
    if not isinstance(table, Mapping):
        raise ValueError(f"kvs: must be a table, got {type(table).__name__}")
    for key in table:
        if key not in KVS_CONFIG_KEYS:
            raise ValueError(f"kvs.{key}: unknown key (known: {', '.join(KVS_CONFIG_KEYS)})")
    threshold = table.get("gc-threshold")
    if threshold is not None and (type(threshold) is not int or threshold < 0):
        raise ValueError(f"kvs.gc-threshold: must be an integer >= 0, got {threshold!r}")
    period = table.get("checkpoint-period")
    seconds = None
    if period is not None:
        try:
            seconds = parse_fsd(period)
        except (ValueError, TypeError):
            raise ValueError(f"kvs.checkpoint-period: invalid duration {period!r} "
                             "(use an FSD such as '30m')") from None
    return KvsConfig(threshold, seconds)
