"""Store statistics: blob totals and how much of the LMDB file is in use."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StoreStats", "pages_in_use"]


@dataclass(slots=True, frozen=True)
class StoreStats:
    blob_count: int
    blob_bytes: int
    file_bytes: int
    pages_in_use: int
    page_size: int
    map_size: int

    @property
    def live_bytes(self) -> int:
        """Bytes of the pages that hold data (the rest of the file is free pages)."""
        return self.pages_in_use * self.page_size


def pages_in_use(db_stats: list[dict[str, int]]) -> int:
    """Pages held by the given databases' B-trees, plus LMDB's two meta pages."""
    return 2 + sum(s["branch_pages"] + s["leaf_pages"] + s["overflow_pages"] for s in db_stats)
