"""The scheduler's pure allocation core."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings, strategies as st

from jobmgr.sched.core import REASON_INSUFFICIENT, Request, SchedCore, resource_summary


def instance(nodes=4, cores="0-3", gpus=None, props=None, expiration=0.0, host="n"):
    children = {"core": cores}
    if gpus:
        children["gpu"] = gpus
    execution = {"R_lite": [{"rank": f"0-{nodes - 1}", "children": children}],
                 "nodelist": [f"{host}[0-{nodes - 1}]"], "starttime": 0.0,
                 "expiration": expiration}
    if props:
        execution["properties"] = props
    return {"version": 1, "execution": execution}


def lite(R):
    return [(e["rank"], e["children"]) for e in R["execution"]["R_lite"]]


def test_first_fit_packs_slots_on_lowest_ranks():
    s = SchedCore(instance())
    R = s.allocate(1, Request(nslots=3, cores_per_slot=1), now=100.0)
    assert lite(R) == [("0", {"core": "0-2"})]
    assert R["execution"]["nodelist"] == ["n0"]
    assert R["execution"]["starttime"] == 100.0 and R["execution"]["expiration"] == 0.0
    R = s.allocate(2, Request(nslots=3, cores_per_slot=2), now=100.0)
    # rank 0 has one core left: slots of two go to ranks 1 and 2
    assert lite(R) == [("1", {"core": "0-3"}), ("2", {"core": "0-1"})]
    assert resource_summary(R) == "rank1/core[0-3] rank2/core[0-1]"
    assert s.free_cores == 16 - 3 - 6
    s.free(1)
    assert lite(s.allocate(3, Request(nslots=4), now=1.0)) == [("0", {"core": "0-3"})]


def test_nnodes_spreads_and_exclusive_takes_whole_nodes():
    s = SchedCore(instance(gpus="0-1"))
    s.allocate(1, Request(nslots=1), now=0.0)
    R = s.allocate(2, Request(nslots=4, nnodes=2, slots_per_node=2), now=0.0)
    assert lite(R) == [("0", {"core": "1-2"}), ("1", {"core": "0-1"})]
    R = s.allocate(3, Request(nslots=2, nnodes=2, slots_per_node=1, exclusive=True), now=0.0)
    assert lite(R) == [("2-3", {"core": "0-3", "gpu": "0-1"})]
    assert resource_summary(R) == "rank[2-3]/core[0-3],gpu[0-1]"
    assert s.allocate(4, Request(nslots=1, nnodes=1, exclusive=True), now=0.0) is None


def test_gpus_per_slot():
    s = SchedCore(instance(nodes=2, gpus="0"))
    R = s.allocate(1, Request(nslots=2, cores_per_slot=1, gpus_per_slot=1), now=0.0)
    assert lite(R) == [("0-1", {"core": "0", "gpu": "0"})]
    assert s.allocate(2, Request(nslots=1, gpus_per_slot=1), now=0.0) is None
    assert s.free_gpus == 0 and s.ngpus == 2


def test_expiration_from_duration_or_instance():
    s = SchedCore(instance(expiration=5000.0))
    assert s.allocate(1, Request(1, duration=60), now=100.0)["execution"]["expiration"] == 160.0
    assert s.allocate(2, Request(1), now=100.0)["execution"]["expiration"] == 5000.0
    s.set_expiration(0)
    assert s.allocate(3, Request(1), now=100.0)["execution"]["expiration"] == 0.0


def test_unavailable_ranks_get_no_new_work_but_keep_jobs():
    s = SchedCore(instance())
    s.allocate(1, Request(4), now=0.0)
    s.set_unavailable([0, 1])
    assert s.unavailable == [0, 1]
    assert lite(s.allocate(2, Request(1), now=0.0)) == [("2", {"core": "0"})]
    assert s.busy_ranks() == {0, 2}
    assert s.free_cores == 7
    s.free(1)
    assert s.free_cores == 7           # rank 0 is still unavailable
    s.set_unavailable([])
    assert s.free_cores == 15
    assert s.status()["down"]["execution"]["R_lite"] == []


def test_constraints_and_queues():
    props = {"ssd": "2-3", "debug": "0", "+local": "1"}
    s = SchedCore(instance(props=props), queues={"debug": ["debug"], "batch": ["^debug"]})
    R = s.allocate(1, Request(1, constraint={"properties": ["ssd"]}), now=0.0)
    assert lite(R) == [("2", {"core": "0"})]
    assert R["execution"]["properties"] == {"ssd": "2"}
    R = s.allocate(2, Request(1, queue="debug"), now=0.0)
    assert lite(R) == [("0", {"core": "0"})]
    assert R["execution"]["properties"] == {"debug": "0"}
    R = s.allocate(3, Request(1, queue="batch"), now=0.0)
    assert lite(R) == [("1", {"core": "0"})] and "properties" not in R["execution"]
    R = s.allocate(4, Request(1, constraint={"or": [{"hostlist": ["n3"]}, {"ranks": ["9"]}]}),
                   now=0.0)
    assert lite(R) == [("3", {"core": "0"})]
    R = s.allocate(5, Request(1, constraint={"not": [{"ranks": ["0-2"]}]}), now=0.0)
    assert lite(R) == [("3", {"core": "1"})]
    assert s.allocate(6, Request(4, queue="debug"), now=0.0) is None
    with pytest.raises(ValueError, match="unknown queue 'gpu'"):
        s.allocate(7, Request(1, queue="gpu"), now=0.0)
    with pytest.raises(ValueError, match="constraint.colour: unknown constraint operator"):
        s.allocate(7, Request(1, constraint={"colour": ["red"]}), now=0.0)
    assert s.feasible(Request(1, queue="gpu")) == "unsatisfiable request: unknown queue 'gpu'"


@pytest.mark.parametrize("request_,reason", [
    (Request(17), "unsatisfiable request: 17 slot(s) of 1 core(s) requested, the instance "
                  "has room for 16"),
    (Request(1, cores_per_slot=5), "unsatisfiable request: 1 slot(s) of 5 core(s) requested"),
    (Request(1, gpus_per_slot=1), "unsatisfiable request: 1 slot(s) of 1 core(s) and 1 gpu(s)"),
    (Request(5, nnodes=5, slots_per_node=1), "unsatisfiable request: 5 node(s) with 1 core(s) "
                                             "requested, only 4 available"),
    (Request(2, nnodes=1, slots_per_node=2, cores_per_slot=3),
     "unsatisfiable request: 1 node(s) with 6 core(s) requested, only 0 available"),
    (Request(1, constraint={"properties": ["nvme"]}),
     "unsatisfiable request: no resources match the job's constraints"),
])
def test_feasibility_reasons(request_, reason):
    s = SchedCore(instance())
    assert s.feasible(request_).startswith(reason)
    assert s.reason_pending(request_) == s.feasible(request_)
    assert s.allocate(1, request_, now=0.0) is None


def test_feasible_ignores_current_use_and_reason_pending():
    s = SchedCore(instance())
    s.allocate(1, Request(16), now=0.0)
    s.set_unavailable([3])
    assert s.feasible(Request(16)) is None
    assert s.reason_pending(Request(1)) == REASON_INSUFFICIENT


def test_restore_and_partial_free():
    s = SchedCore(instance())
    R = instance(nodes=2, cores="0-1")
    s.restore(7, R)
    assert s.free_cores == 12 and 7 in s and s.R_of(7) == R
    with pytest.raises(ValueError, match="job 8: resources on rank 1 are already allocated"):
        s.restore(8, {"version": 1, "execution": {"R_lite": [{"rank": "1", "children": {
            "core": "1-2"}}]}})
    with pytest.raises(ValueError, match="job 8: rank 9 is not in the instance"):
        s.restore(8, {"version": 1, "execution": {"R_lite": [{"rank": "9", "children": {
            "core": "0"}}]}})
    with pytest.raises(ValueError, match="job 7 already holds resources"):
        s.restore(7, R)
    s.free(7, {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {
        "core": "0-1"}}]}}, final=False)
    assert s.free_cores == 14 and 7 in s
    s.free(7)
    assert s.free_cores == 16 and 7 not in s
    with pytest.raises(KeyError, match="job 7 holds no resources"):
        s.free(7)


@pytest.mark.parametrize("R,message", [
    ({"version": 2, "execution": {}}, "R.version: must be 1"),
    ({"version": 1}, "R.execution: must be an object"),
    ({"version": 1, "execution": {"R_lite": [{"rank": 0}]}}, r"R_lite\[0\].rank: must be"),
    ({"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "x"}}]}},
     r"R_lite\[0\].children.core"),
    ({"version": 1, "execution": {"R_lite": [{"rank": "0-1", "children": {"core": "0"}}],
                                  "nodelist": ["a"]}}, "1 hosts for 2 ranks"),
    ("{", "R: invalid JSON"),
])
def test_bad_instance_R_names_the_field(R, message):
    with pytest.raises(ValueError, match=message):
        SchedCore(R)


def test_status_views():
    s = SchedCore(instance(props={"ssd": "3"}))
    s.allocate(1, Request(2), now=0.0)
    s.set_unavailable([3])
    status = s.status()
    assert lite(status["all"]) == [("0-3", {"core": "0-3"})]
    assert lite(status["allocated"]) == [("0", {"core": "0-1"})]
    assert lite(status["free"]) == [("0", {"core": "2-3"}), ("1-2", {"core": "0-3"})]
    assert lite(status["down"]) == [("3", {"core": "0-3"})]
    assert status["down"]["execution"]["properties"] == {"ssd": "3"}


def test_invalid_requests():
    s = SchedCore(instance())
    with pytest.raises(ValueError, match="invalid request: 3 nodes for 2 slots"):
        s.allocate(1, Request(2, nnodes=3), now=0.0)
    with pytest.raises(ValueError, match="invalid request"):
        s.feasible(Request(0))
    s.allocate(1, Request(1), now=0.0)
    with pytest.raises(ValueError, match="job 1 already holds resources"):
        s.allocate(1, Request(1), now=0.0)


def test_request_from_jobspec():
    js = {"version": 1, "resources": [{"type": "node", "count": 2, "exclusive": True, "with": [
        {"type": "slot", "count": 2, "label": "task", "with": [{"type": "core", "count": 3}]}]}],
        "tasks": [{"command": ["x"], "slot": "task", "count": {"per_slot": 1}}],
        "attributes": {"system": {"duration": 30, "queue": "batch"}}}
    req = Request.from_jobspec(js)
    assert (req.nslots, req.cores_per_slot, req.nnodes, req.per_node(), req.exclusive,
            req.duration, req.queue) == (4, 3, 2, 2, True, 30.0, "batch")


OPS = st.lists(st.one_of(
    st.tuples(st.just("alloc"), st.integers(1, 6), st.integers(1, 3), st.integers(0, 1),
              st.integers(0, 2), st.booleans()),
    st.tuples(st.just("free"), st.integers(0, 30)),
    st.tuples(st.just("down"), st.sets(st.integers(0, 3)))), max_size=40)


@settings(max_examples=150)
@given(OPS)
def test_random_alloc_free_never_double_books(ops):
    s = SchedCore(instance(gpus="0-1"))
    held: dict[int, list[tuple[int, str, str]]] = {}
    next_id = 0
    for op in ops:
        if op[0] == "alloc":
            _, nslots, cores, gpus, nnodes, exclusive = op
            nnodes = min(nnodes, nslots)
            req = Request(nslots, cores, gpus, nnodes=nnodes,
                          slots_per_node=-(-nslots // nnodes) if nnodes else 0,
                          exclusive=exclusive and nnodes > 0)
            free_before = s.free_cores
            R = s.allocate(next_id, req, now=1.0)
            if R is not None:
                got = s.free_cores
                used = free_before - got
                if not req.exclusive:
                    assert used == (nnodes * req.per_node() if nnodes else nslots) * cores
                held[next_id] = R
            next_id += 1
        elif op[0] == "free":
            if held:
                jobid = sorted(held)[op[1] % len(held)]
                s.free(jobid)
                del held[jobid]
        else:
            s.set_unavailable(op[1])
        # no core or gpu belongs to two jobs
        seen: set[tuple[int, str, int]] = set()
        for R in held.values():
            from flux.idset import IDset

            for entry in R["execution"]["R_lite"]:
                for rank in IDset(entry["rank"]).expand():
                    for kind, ids in entry["children"].items():
                        for i in IDset(ids).expand():
                            assert (rank, kind, i) not in seen
                            seen.add((rank, kind, i))
        usable = set(range(4)) - set(s.unavailable)
        free_usable_cores = 4 * len(usable) - sum(
            1 for rank, kind, _ in seen if kind == "core" and rank in usable)
        assert s.free_cores == free_usable_cores
    for jobid in list(held):
        s.free(jobid)
    s.set_unavailable([])
    assert s.free_cores == 16 and s.free_gpus == 8 and s.busy_ranks() == set()


def test_allocation_speed_many_nodes():
    nodes = 4096
    # CPU time, not wall time: other processes on a busy machine do not count
    s = SchedCore(instance(nodes=nodes, cores="0-31"))
    start = time.process_time()
    for jobid in range(20000):
        assert s.allocate(jobid, Request(1), now=0.0) is not None
    for jobid in range(0, 20000, 2):
        s.free(jobid)
    elapsed = time.process_time() - start
    assert elapsed < 3.0, f"{30000 / elapsed:.0f} ops/s"
    # a full machine refuses in O(1): no walk over 4096 nodes
    s.allocate(10**6, Request(s.free_cores), now=0.0)
    start = time.process_time()
    for jobid in range(1000):
        assert s.allocate(2 * 10**6 + jobid, Request(1), now=0.0) is None
    assert time.process_time() - start < 0.1


def test_accepts_resourceset_and_summary_matches_its_short_form():
    from flux.resource import ResourceSet

    s = SchedCore(ResourceSet(instance(gpus="0-1")))
    allocated = [s.allocate(1, Request(3, cores_per_slot=2), now=0.0),
                 s.allocate(2, Request(2, nnodes=2, slots_per_node=1, exclusive=True), now=0.0),
                 s.allocate(3, Request(1, gpus_per_slot=1), now=0.0)]
    for R in allocated:
        assert resource_summary(R) == ResourceSet(R).dumps()
    assert ResourceSet(s.status()["all"]).dumps() == "rank[0-3]/core[0-3],gpu[0-1]"
