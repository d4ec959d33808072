"""Durability modes of the store and when each one syncs.

``always``  every commit is on stable storage when ``commit`` returns
            (LMDB's default: data pages, then the meta page, both synced).
``batch``   commits are written (so a killed process loses nothing) but
            synced at most every ``sync_interval`` seconds; a machine crash
            may lose the commits of the last interval.
``none``    never synced by the store; for throwaway instances.

Which mode to run is a config knob; the code path is the same.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Durability", "SyncPolicy"]


class Durability(enum.Enum):
    ALWAYS = "always"
    BATCH = "batch"
    NONE = "none"

    @classmethod
    def parse(cls, value: "str | Durability") -> "Durability":
        if isinstance(value, Durability):
            return value
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ValueError(f"durability {value!r} is not one of {names}") from None

    @property
    def lmdb_sync(self) -> bool:
        """Whether LMDB itself syncs at each commit."""
        return self is Durability.ALWAYS


@dataclass(slots=True)
class SyncPolicy:
    """Decides when the store calls an explicit sync (pure; time is passed in)."""

    durability: Durability
    interval: float = 0.05
    last_sync: float = 0.0

    def after_commit(self, now: float) -> bool:
        """True when the commit just made must be followed by an explicit sync."""
        if self.durability is not Durability.BATCH:
            return False
        if now - self.last_sync >= self.interval:
            self.last_sync = now
            return True
        return False

    def at_close(self) -> bool:
        """True when closing must sync (the batch mode's unsynced tail)."""
        return self.durability is Durability.BATCH
