"""flux job hostpids: pairing task pids with the hosts the task map puts them on."""
from __future__ import annotations

import pytest

from cli.job_hostpids import host_pids


def test_pairs_follow_the_task_map_in_rank_order():
    pids, nodeids, hosts = [11, 12, 21, 22], [0, 0, 1, 1], ["a", "b"]
    assert host_pids(pids, nodeids, hosts) == ["a:11", "a:12", "b:21", "b:22"]
    assert host_pids(pids, nodeids, hosts, [3, 0]) == ["b:22", "a:11"]
    # a cyclic map
    assert host_pids(pids, [0, 1, 0, 1], hosts) == ["a:11", "b:12", "a:21", "b:22"]
    # a node R names no host for
    assert host_pids([5], [0], []) == ["?:5"]


def test_ranks_not_in_the_job_and_tasks_that_did_not_start():
    with pytest.raises(ValueError, match="task rank 4 is not in the job"):
        host_pids([1, 2, 3, 4], [0, 0, 0, 0], ["a"], [4])
    with pytest.raises(ValueError, match="task 1 did not start"):
        host_pids([1, 0], [0, 0], ["a"])
