"""The scheduler with real jobs: order, annotations, R, free, drained nodes, feasibility.

One instance of 4 configured nodes x 2 cores (all forced up so one broker
stands in for them), jobs in exec test mode.
"""
from __future__ import annotations

import errno
import time

import orjson
import pytest

from broker.testing import TestInstance
from flux.job import JobspecV1
# from the submodules: once something imports e.g. the module flux.job.submit, the
# lazy package attribute of that name is the module, not the function
from flux.job.event import event_wait, event_watch
from flux.job.kill import cancel
from flux.job.list import get_job
from flux.job.submit import submit, submit_async
from flux.job.JobID import JobID, id_encode
from flux.resource import ResourceSet

CONFIG = """
[ingest.validator]
plugins = ["jobspec", "feasibility"]
[resource]
monitor-force-up = true
[[resource.config]]
hosts = "node[0-3]"
cores = "0-1"
"""


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    (conf / "resource.toml").write_text(CONFIG)
    conf.chmod(0o755)
    instance = TestInstance(config_path=str(conf)).start()
    yield instance
    assert instance.stop() == 0


@pytest.fixture
def h(inst):
    handle = inst.handle()
    yield handle
    handle.close()


def spec(ntasks=1, nodes=None, run=0.0, cores=1):
    js = JobspecV1.from_command(["true"], num_tasks=ntasks, cores_per_task=cores,
                                num_nodes=nodes)
    js.setattr("system.exec.test", {"run_duration": run})
    return js


def events(h, jobid):
    return {e.name: e for e in event_watch(h, jobid)}


def wait_clean(h, jobid):
    event_wait(h, jobid, "clean", raiseJobException=False)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def sched_status(h):
    return h.rpc("sched.resource-status", {}).get()


def idle(h):
    wait_for(lambda: not sched_status(h)["allocated"]["execution"]["R_lite"])


def test_alloc_writes_R_and_annotates(h):
    jobid = submit(h, spec(ntasks=3))
    wait_clean(h, jobid)
    evs = events(h, jobid)
    R = _kvs_get(h, id_encode(jobid, "kvs") + ".R")
    assert R["version"] == 1
    rset = ResourceSet(R)
    assert rset.dumps() == "rank0/core[0-1] rank1/core0"
    assert rset.nodelist.encode() == "node[0-1]"
    assert R["execution"]["starttime"] <= evs["alloc"].timestamp
    info = get_job(h, jobid)
    assert info["annotations"]["sched"]["resource_summary"] == "rank0/core[0-1] rank1/core0"
    assert "free" in evs
    idle(h)


def _kvs_get(h, key):
    import base64

    return orjson.loads(base64.b64decode(h.rpc("kvs.lookup", {"key": key, "flags": 0})
                                         .get()["val"]["data"]))


def test_duration_sets_expiration(h):
    js = spec()
    js.duration = 100
    jobid = submit(h, js)
    wait_clean(h, jobid)
    R = _kvs_get(h, id_encode(jobid, "kvs") + ".R")
    assert R["execution"]["expiration"] == pytest.approx(R["execution"]["starttime"] + 100)
    idle(h)


def test_priority_then_submit_order(h):
    blocker = submit(h, spec(ntasks=8, run=1.0))
    event_wait(h, blocker, "start")
    low1 = submit(h, spec(ntasks=8), urgency=10)
    high = submit(h, spec(ntasks=8), urgency=20)
    low2 = submit(h, spec(ntasks=8), urgency=10)
    # the blocked head (highest priority) says why it waits
    wait_for(lambda: (get_job(h, high).get("annotations") or {})
             .get("sched", {}).get("reason_pending") == "insufficient resources")
    for jobid in (low1, high, low2):
        wait_clean(h, jobid)
    starts = {jobid: events(h, jobid)["alloc"].timestamp for jobid in (low1, high, low2)}
    assert sorted(starts, key=starts.get) == [high, low1, low2]
    # resources all came back
    idle(h)
    assert sched_status(h)["free"]["execution"]["R_lite"] == \
        [{"rank": "0-3", "children": {"core": "0-1"}}]


def test_impossible_request_is_refused_at_submit(h):
    with pytest.raises(OSError) as info:
        submit(h, spec(ntasks=9))
    assert info.value.errno == errno.EINVAL
    assert "unsatisfiable request: 9 slot(s) of 1 core(s) requested, the instance has room " \
           "for 8" in str(info.value)
    with pytest.raises(OSError, match=r"5 node\(s\) with 1 core\(s\) requested, only 4"):
        submit(h, spec(ntasks=5, nodes=5))


def test_drained_nodes_are_not_used_and_draining_while_busy(inst, h):
    busy = submit(h, spec(ntasks=2, nodes=2, run=1.0))
    event_wait(h, busy, "start")
    on = ResourceSet(_kvs_get(h, id_encode(busy, "kvs") + ".R")).ranks.encode()
    assert on == "0-1"
    h.rpc("resource.drain", {"targets": "0-2", "reason": "maint"}).get()
    r = inst.flux("resource", "status", "-s", "draining,drained", "-no", "{state} {ranks}")
    assert r.stdout.splitlines() == ["draining 0-1", "drained 2"]
    two = submit(h, spec(ntasks=2, nodes=2))
    wait_for(lambda: (get_job(h, two).get("annotations") or {})
             .get("sched", {}).get("reason_pending") == "insufficient resources")
    wait_clean(h, busy)
    wait_for(lambda: inst.flux("resource", "status", "-s", "drained", "-no",
                               "{ranks}").stdout.strip() == "0-2")
    h.rpc("resource.undrain", {"targets": "node1"}).get()
    wait_clean(h, two)
    assert ResourceSet(_kvs_get(h, id_encode(two, "kvs") + ".R")).ranks.encode() == "1,3"
    h.rpc("resource.undrain", {"targets": "0,2"}).get()
    idle(h)


def test_list_shows_allocated_while_running(inst, h):
    jobid = submit(h, spec(ntasks=3, run=1.0))
    event_wait(h, jobid, "start")
    r = inst.flux("resource", "list")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        "     STATE NNODES   NCORES NODELIST",
        "      free      3        5 node[1-3]",
        " allocated      2        3 node[0-1]",
        "      down      0        0"]
    wait_clean(h, jobid)
    idle(h)


def test_cancel_of_a_pending_job(h):
    blocker = submit(h, spec(ntasks=8, run=1.0))
    event_wait(h, blocker, "start")
    waiting = submit(h, spec(ntasks=8))
    # once the scheduler holds its request, the cancel must go through sched.cancel
    wait_for(lambda: (get_job(h, waiting).get("annotations") or {})
             .get("sched", {}).get("reason_pending") == "insufficient resources")
    cancel(h, waiting)
    wait_clean(h, waiting)
    assert "alloc" not in events(h, waiting)
    wait_clean(h, blocker)
    stats = h.rpc("sched.stats", {}).get()
    assert stats["pending"] == 0 and stats["cancel"] >= 1
    idle(h)


def test_throughput_of_many_small_jobs(h):
    """Submit-to-inactive of 300 short jobs through sched (a smoke number, not a benchmark)."""
    t0 = time.monotonic()
    futures = [submit_async(h, spec()) for _ in range(300)]
    ids = [f.get_id() for f in futures]
    wait_clean(h, ids[-1])
    for jobid in ids:
        wait_clean(h, jobid)
    rate = len(ids) / (time.monotonic() - t0)
    assert rate > 50, f"{rate:.0f} jobs/s"
    idle(h)
    assert isinstance(ids[0], JobID)
