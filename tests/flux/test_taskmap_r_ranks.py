"""r_ranks' shortcut for one rank with one core gives what the idset path gives."""
from __future__ import annotations

from typing import Any

import pytest

from flux.idset import IDset
from flux.job import taskmap
from flux.job.taskmap import layout, r_ranks


def _by_idsets(R: dict[str, Any]) -> list[tuple[int, str, str]]:
    (entry,) = R["execution"]["R_lite"]
    children = entry.get("children") or {}
    cores = IDset(str(children.get("core", ""))).encode()
    gpus = IDset(str(children.get("gpu", ""))).encode()
    return [(rank, cores, gpus) for rank in IDset(str(entry["rank"]))]


def _R(rank: Any, children: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "execution": {"R_lite": [{"rank": rank, "children": children}]}}


@pytest.mark.parametrize("rank,children", [
    ("0", {"core": "0"}), ("3", {"core": "15"}), ("12", {"core": "7", "gpu": "1"}),
    ("01", {"core": "2"}), ("1", {"core": "02"}), ("1", {"core": "0-3"}),
    ("1", {"core": "3,1"}), ("0-1", {"core": "4"}), (2, {"core": "1"}),
    ("1", {"core": "1", "gpu": "0-1"}), ("1", {"core": "1", "gpu": ""}),
    ("1", {"core": "1", "memory": "5"}), ("٣", {"core": "1"}),
])
def test_one_rank_one_core_matches_the_idset_path(rank: Any, children: dict[str, Any]) -> None:
    R = _R(rank, children)
    try:
        want = _by_idsets(R)
    except ValueError:
        with pytest.raises(ValueError):
            r_ranks(R)
        return
    assert r_ranks(R) == want


def test_shortcut_is_taken_only_for_canonical_single_ids() -> None:
    assert taskmap._one_id("0") and taskmap._one_id("15")
    assert not any(taskmap._one_id(s) for s in ("", "01", "0-1", "1,2", "٣", 3, None))


def test_layout_counts_one_core_for_a_single_core_rank() -> None:
    jobspec = {"version": 1, "resources": [{"type": "slot", "count": 1, "label": "task",
                                            "with": [{"type": "core", "count": 1}]}],
               "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
               "attributes": {"system": {}}}
    assert layout(jobspec, _R("4", {"core": "9"})) == ([4], [1])
