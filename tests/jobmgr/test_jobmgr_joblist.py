"""The job-list projection: fold, orders, filters, stats, snapshots, memory."""
from __future__ import annotations

import errno
import gc
import tracemalloc

import pytest
from hypothesis import given, strategies as st

from flux.errors import FluxError
from jobmgr import events as ev
from jobmgr.events import JobEventError
from jobmgr.joblist.projection import ATTRS, JobList, SortedKeys, r_summary
from jobmgr.states import JobResult, JobState

T0 = 1700000000.0


def jobspec(name="sleep", queue=None, nodes=0, ntasks=1, duration=0, cwd="/home/u"):
    slot = {"type": "slot", "count": ntasks // (nodes or 1), "label": "task",
            "with": [{"type": "core", "count": 1}]}
    res = [{"type": "node", "count": nodes, "with": [slot]}] if nodes else [slot]
    system = {"duration": duration, "cwd": cwd}
    if queue:
        system["queue"] = queue
    return {"version": 1, "resources": res,
            "tasks": [{"command": [f"/bin/{name}"], "slot": "task", "count": {"per_slot": 1}}],
            "attributes": {"system": system}}


def R_for(ranks="0", cores="0-1", hosts="node0", expiration=0.0):
    return {"version": 1, "execution": {"R_lite": [{"rank": ranks, "children": {"core": cores}}],
                                        "nodelist": [hosts], "starttime": 1.0,
                                        "expiration": expiration}}


def E(name, t, ctx=None):
    e = {"timestamp": T0 + t, "name": name}
    if ctx is not None:
        e["context"] = ctx
    return e


def lifecycle(t, end="complete", userid=1001, priority=16, status=0):
    """Events of one job starting at T0+t, up to the given end."""
    out = [E("submit", t, ev.submit(userid)), E("validate", t + 0.1)]
    if end == "depend":
        return out
    out += [E("depend", t + 0.2)]
    if end == "cancel-pending":
        return out + [E("exception", t + 0.3, ev.exception("cancel", 0, "by user")),
                      E("clean", t + 0.4)]
    out += [E("priority", t + 0.3, ev.priority(priority))]
    if end == "sched":
        return out
    out += [E("alloc", t + 0.4, ev.alloc({"sched": {"resource_summary": "rank0/core[0-1]"}})),
            E("start", t + 0.5)]
    if end == "run":
        return out
    if end == "timeout":
        out += [E("exception", t + 0.55, ev.exception("timeout", 0, "limit"))]
        status = 9
    out += [E("finish", t + 0.6, ev.finish(status)), E("release", t + 0.7, ev.release())]
    if end == "cleanup":
        return out
    return out + [E("free", t + 0.8), E("clean", t + 0.9)]


def feed(jl, jobid, events, spec=None, R=None):
    for e in events:
        jl.apply(jobid, e, spec if e["name"] == "submit" else None,
                 R if e["name"] == "alloc" else None)


def ids(rows):
    return [row["id"] for row in rows]


# -- the fold --------------------------------------------------------------------

def test_completed_job_record():
    jl = JobList()
    feed(jl, 42, lifecycle(0), jobspec(queue="batch", duration=60), R_for())
    rec = jl.get(42)
    assert rec["state"] == 64 and rec["result"] == 1 and rec["success"] is True
    assert rec["userid"] == 1001 and rec["urgency"] == 16 and rec["priority"] == 16
    assert rec["t_submit"] == T0 and rec["t_depend"] == T0 + 0.1
    assert rec["t_priority"] == T0 + 0.2 and rec["t_sched"] == T0 + 0.3
    assert rec["t_run"] == T0 + 0.4 and rec["t_cleanup"] == T0 + 0.6
    assert rec["t_inactive"] == T0 + 0.9
    assert (rec["name"], rec["queue"], rec["cwd"], rec["duration"]) == (
        "sleep", "batch", "/home/u", 60.0)
    assert (rec["ntasks"], rec["ncores"], rec["nnodes"], rec["ranks"], rec["nodelist"]) == (
        1, 2, 1, "0", "node0")
    assert rec["waitstatus"] == 0 and rec["exception_occurred"] is False
    assert rec["annotations"] == {"sched": {"resource_summary": "rank0/core[0-1]"}}
    assert "exception_type" not in rec and "dependencies" not in rec
    assert "expiration" not in rec and "project" not in rec
    assert set(rec) <= set(ATTRS)


def test_pending_record_leaves_unset_attributes_out():
    jl = JobList()
    feed(jl, 1, lifecycle(0, "depend"), jobspec())
    rec = jl.get(1, ["priority", "t_run", "result", "success", "state", "nnodes"])
    assert rec == {"id": 1, "state": JobState.DEPEND}


def test_exceptions_dependencies_memo_annotations_updates():
    jl = JobList()
    feed(jl, 1, lifecycle(0, "depend"), jobspec())
    for e in [E("dependency-add", 1, ev.dependency_add("afterok=ƒ2")),
              E("dependency-add", 1.1, ev.dependency_add("begin-time=9.000000")),
              E("dependency-remove", 1.2, ev.dependency_remove("afterok=ƒ2")),
              E("memo", 1.3, {"tag": "x"}),
              E("annotations", 1.4, {"annotations": {"sched": {"reason_pending": "deps"}}}),
              E("jobspec-update", 1.5, {"attributes.system.job.name": "renamed",
                                        "attributes.system.duration": 30,
                                        "attributes.system.queue": "debug"}),
              E("exception", 1.6, ev.exception("warn", 4, "first")),
              E("exception", 1.7, ev.exception("other", 2, "worse")),
              E("exception", 1.8, ev.exception("other2", 2, "as bad")),
              E("exception", 1.9, ev.exception("dependency", 0, "never")),
              E("clean", 2.0)]:
        jl.apply(1, e)
    rec = jl.get(1)
    assert rec["dependencies"] == ["begin-time=9.000000"]
    assert rec["annotations"] == {"user": {"tag": "x"}, "sched": {"reason_pending": "deps"}}
    assert (rec["name"], rec["duration"], rec["queue"]) == ("renamed", 30.0, "debug")
    assert (rec["exception_type"], rec["exception_severity"], rec["exception_note"]) == (
        "dependency", 0, "never")
    assert rec["result"] == JobResult.FAILED and rec["success"] is False
    assert "waitstatus" not in rec and "t_run" not in rec


def test_results_canceled_and_timeout():
    jl = JobList()
    feed(jl, 1, lifecycle(0, "cancel-pending"), jobspec())
    feed(jl, 2, lifecycle(1, "timeout"), jobspec(), R_for())
    feed(jl, 3, lifecycle(2, status=256), jobspec(), R_for())
    assert [jl.get(i)["result"] for i in (1, 2, 3)] == [4, 8, 2]


def test_R_and_resource_update():
    jl = JobList()
    R = {"version": 1, "execution": {
        "R_lite": [{"rank": "0-1", "children": {"core": "0-3", "gpu": "0"}},
                   {"rank": "5", "children": {"core": "0"}}],
        "nodelist": ["n[0-1]", "n5"], "expiration": T0 + 100}}
    feed(jl, 1, lifecycle(0, "run"), jobspec(nodes=3, ntasks=3), R)
    rec = jl.get(1)
    assert (rec["ranks"], rec["nodelist"], rec["nnodes"], rec["ncores"], rec["ngpus"]) == (
        "0-1,5", "n[0-1,5]", 3, 9, 2)
    assert rec["expiration"] == T0 + 100
    jl.apply(1, E("resource-update", 5, ev.resource_update(T0 + 500)))
    assert jl.get(1)["expiration"] == T0 + 500
    with pytest.raises(ValueError, match="R.execution.R_lite\\[0\\].rank"):
        r_summary({"execution": {"R_lite": [{"rank": 5}]}})
    with pytest.raises(ValueError, match="R: invalid JSON"):
        r_summary("{")


def test_invalidate_removes_the_job():
    jl = JobList()
    feed(jl, 1, [E("submit", 0, ev.submit(5)), E("invalidate", 1)], jobspec())
    assert 1 not in jl and len(jl) == 0
    assert jl.stats()["job_states"]["total"] == 0


def test_errors():
    jl = JobList()
    feed(jl, 1, lifecycle(0), jobspec(), R_for())
    with pytest.raises(FluxError) as info:
        jl.apply(2, E("validate", 1))
    assert info.value.errno == errno.ENOENT and "job 2: unknown job" in str(info.value)
    with pytest.raises(JobEventError, match="job 1: event 'memo' for an inactive job"):
        jl.apply(1, E("memo", 2, {"a": 1}))
    with pytest.raises(JobEventError, match="submit for a job that already exists"):
        jl.apply(1, E("submit", 3, ev.submit(1)))
    feed(jl, 2, lifecycle(5, "depend"), jobspec())
    before = jl.get(2)
    with pytest.raises(JobEventError, match="'alloc' is not valid in state DEPEND"):
        jl.apply(2, E("alloc", 6))
    with pytest.raises(ValueError, match="jobspec resources"):
        jl.apply(2, E("memo", 6, {"a": 1}), jobspec={"resources": []})
    assert jl.get(2) == before
    with pytest.raises(ValueError, match="attrs: unknown job attribute 'colour'"):
        jl.list(["colour"])
    with pytest.raises(ValueError, match="unknown constraint operator 'colour'"):
        jl.list(["name"], constraint={"colour": ["red"]})
    with pytest.raises(FluxError, match="unknown job"):
        jl.get(99)


# -- orders and filters ------------------------------------------------------------

def make_mix():
    jl = JobList()
    spec = jobspec
    feed(jl, 10, lifecycle(0, "sched", priority=5), spec("a"))
    feed(jl, 11, lifecycle(1, "sched", priority=9), spec("b"))
    feed(jl, 12, lifecycle(2, "sched", priority=5), spec("c"))
    feed(jl, 13, lifecycle(3, "depend", userid=2000), spec("d", queue="debug"))
    feed(jl, 20, lifecycle(4, "run"), spec("e"), R_for())
    feed(jl, 21, lifecycle(5, "run"), spec("f"), R_for("1", "0", "node1"))
    feed(jl, 22, lifecycle(6, "cleanup", userid=2000), spec("g"), R_for())
    feed(jl, 30, lifecycle(7), spec("h"), R_for())
    feed(jl, 31, lifecycle(8, "cancel-pending", userid=2000), spec("i", queue="debug"))
    feed(jl, 32, lifecycle(9, status=256), spec("j"), R_for("3", "0", "node3"))
    feed(jl, 33, lifecycle(10, "timeout"), spec("k"), R_for())
    return jl


def test_list_order_pending_running_inactive():
    jl = make_mix()
    assert ids(jl.list(["state"], 0)) == [11, 10, 12, 13, 22, 21, 20, 33, 32, 31, 30]
    assert ids(jl.list([], 4)) == [11, 10, 12, 13]


def test_priority_change_reorders_pending():
    jl = make_mix()
    jl.apply(12, E("urgency", 20, ev.urgency(31, 1)))
    jl.apply(12, E("priority", 20.1, ev.priority(4294967295)))
    assert ids(jl.list([], 0, states=JobState.PENDING)) == [12, 11, 10, 13]


@pytest.mark.parametrize("kwargs,expected", [
    ({"userid": 2000}, [13, 22, 31]),
    ({"states": JobState.PENDING}, [11, 10, 12, 13]),
    ({"states": JobState.RUNNING}, [22, 21, 20]),
    ({"states": JobState.RUN}, [21, 20]),
    ({"states": JobState.INACTIVE}, [33, 32, 31, 30]),
    ({"results": JobResult.FAILED | JobResult.CANCELED}, [32, 31]),
    ({"states": JobState.PENDING, "results": JobResult.TIMEOUT}, [11, 10, 12, 13, 33]),
    ({"since": T0 + 8.95}, [11, 10, 12, 13, 22, 21, 20, 33, 32]),
    ({"name": "h"}, [30]),
    ({"queue": "debug"}, [13, 31]),
    ({"userid": 2000, "states": JobState.INACTIVE}, [31]),
    ({"constraint": {"userid": [2000]}}, [13, 22, 31]),
    ({"constraint": {"or": [{"name": ["a", "k"]}, {"queue": ["debug"]}]}}, [10, 13, 33, 31]),
    ({"constraint": {"not": [{"states": ["pending", "running"]}]}}, [33, 32, 31, 30]),
    ({"constraint": {"results": ["completed"]}}, [30]),
    ({"constraint": {"and": [{"t_submit": [">=1700000005.0"]},
                             {"t_submit": ["<1700000009"]}]}}, [22, 21, 31, 30]),
    ({"constraint": {"hostlist": ["node[1,3]"]}}, [21, 32]),
    ({"constraint": {"ranks": ["3"]}}, [32]),
    ({"constraint": {"states": [64], "t_inactive": [">1700000010"]}}, [33]),
    ({"ids": [33, 10, 99, 21, 11]}, [11, 10, 21, 33]),
    ({"ids": [33, 13, 22], "userid": 2000}, [13, 22]),
    ({"ids": []}, []),
    ({"constraint": {}}, [11, 10, 12, 13, 22, 21, 20, 33, 32, 31, 30]),
    ({"constraint": {"or": []}}, [11, 10, 12, 13, 22, 21, 20, 33, 32, 31, 30]),
    ({"constraint": {"not": []}}, []),
])
def test_filters(kwargs, expected):
    assert ids(make_mix().list(["state"], 0, **kwargs)) == expected


@pytest.mark.parametrize("constraint,message", [
    ({"userid": ["bob"]}, "userid: userids must be non-negative integers"),
    ({"states": ["nope"]}, "states: unknown name 'nope'"),
    ({"states": [128]}, "states: invalid bitmask 128"),
    ({"results": [0]}, "results: invalid bitmask 0"),
    ({"t_run": ["=5"]}, "t_run: '=5' must start with"),
    ({"t_run": [">x"]}, "t_run: invalid timestamp"),
    ({"and": {"userid": [1]}}, "and: must be an array"),
    ({"or": [5]}, r"or\[0\]: constraint must be an object"),
    ({"name": "x"}, "name: must be an array"),
    ({"hostlist": ["foo[1-"]}, "hostlist"),
])
def test_bad_constraints_name_the_problem(constraint, message):
    with pytest.raises(ValueError, match=message):
        JobList().list(["name"], constraint=constraint)


def test_comparison_budget():
    jl = make_mix()
    with pytest.raises(FluxError, match="Excessive comparisons") as info:
        jl.list([], 0, constraint={"userid": [1001]}, max_comparisons=5)
    assert info.value.errno == errno.E2BIG
    assert len(jl.list([], 0, constraint={"userid": [1001]}, max_comparisons=100)) == 8


def test_stats_and_queues():
    jl = make_mix()
    stats = jl.stats()
    assert stats["job_states"] == {"new": 0, "depend": 1, "priority": 0, "sched": 3, "run": 2,
                                   "cleanup": 1, "inactive": 4, "total": 11}
    assert (stats["successful"], stats["failed"], stats["canceled"], stats["timeout"]) == (
        1, 1, 1, 1)
    assert stats["queues"] == [{"name": "debug", "job_states": {
        "new": 0, "depend": 1, "priority": 0, "sched": 0, "run": 0, "cleanup": 0,
        "inactive": 1, "total": 2}, "successful": 0, "failed": 0, "canceled": 1, "timeout": 0}]
    # a queue change moves the job's count
    jl.apply(13, E("jobspec-update", 30, {"attributes.system.queue": "batch"}))
    queues = {q["name"]: q["job_states"]["depend"] for q in jl.stats()["queues"]}
    assert queues == {"batch": 1, "debug": 0}


def test_remove_purge_and_oldest():
    jl = make_mix()
    assert jl.oldest_inactive(2) == [30, 31]
    assert jl.purge([30, 31, 99, 10]) == 2
    assert jl.inactive_purged == 2 and jl.stats()["inactive_purged"] == 2
    assert ids(jl.list([], 0, states=JobState.INACTIVE)) == [33, 32]
    assert ids(jl.list([], 0, userid=2000, states=JobState.INACTIVE)) == []
    assert jl.remove(10) and jl.remove(32) and not jl.remove(10)
    assert 10 not in jl and jl.state_of(32) is None and jl.state_of(33) == JobState.INACTIVE
    assert jl.stats()["job_states"]["total"] == 7


def test_replace_rebuilds_one_job():
    jl = make_mix()
    jl.replace(11, lifecycle(1), jobspec("b2"), R_for())
    assert jl.get(11)["name"] == "b2" and jl.get(11)["state"] == 64
    assert ids(jl.list([], 0, states=JobState.INACTIVE))[:1] == [33]
    jl.replace(30, lifecycle(7, "sched"), jobspec("h"))
    assert jl.state_of(30) == JobState.SCHED
    assert jl.stats()["job_states"]["total"] == 11


def test_out_of_order_inactive_times_stay_sorted():
    jl = JobList()
    feed(jl, 1, lifecycle(50), jobspec(), R_for())
    feed(jl, 2, lifecycle(10), jobspec(), R_for())
    feed(jl, 3, lifecycle(30), jobspec(), R_for())
    assert ids(jl.list([], 0)) == [1, 3, 2]


# -- load, snapshots and their agreement with the live fold ----------------------------

ENDS = ["complete", "depend", "cancel-pending", "sched", "run", "timeout", "cleanup", "fail"]


@st.composite
def job_sets(draw):
    count = draw(st.integers(0, 25))
    jobs = []
    for n in range(count):
        end = draw(st.sampled_from(ENDS))
        t = draw(st.floats(0, 1000, allow_nan=False))
        events = lifecycle(t, "complete" if end == "fail" else end,
                           userid=draw(st.sampled_from([1001, 2000])),
                           priority=draw(st.integers(0, 20)),
                           status=256 if end == "fail" else 0)
        queue = draw(st.sampled_from([None, "a", "b"]))
        jobs.append((100 + n, events, jobspec(f"n{n % 3}", queue=queue), R_for()))
    return jobs


def everything(jl):
    return jl.list(["all"], 0), jl.stats()


@given(job_sets())
def test_load_snapshot_and_live_fold_agree(jobs):
    live = JobList()
    timeline = sorted((e["timestamp"], i, jobid, e, spec, R)
                      for jobid, events, spec, R in jobs for i, e in enumerate(events))
    for _, _, jobid, e, spec, R in timeline:
        live.apply(jobid, e, spec if e["name"] == "submit" else None,
                   R if e["name"] == "alloc" else None)
    loaded = JobList()
    assert loaded.load((j, ev_, s, R) for j, ev_, s, R in jobs) == []
    assert everything(loaded) == everything(live)
    restored = JobList.decode(live.encode())
    assert everything(restored) == everything(live)
    # and the restored projection keeps folding
    for jobid, events, spec, R in jobs:
        if restored.state_of(jobid) != JobState.INACTIVE:
            restored.apply(jobid, E("exception", 2000, ev.exception("cancel")))
            live.apply(jobid, E("exception", 2000, ev.exception("cancel")))
    assert everything(restored) == everything(live)


def test_load_reports_bad_eventlogs_and_keeps_the_rest():
    jl = JobList()
    errors = jl.load([
        (1, lifecycle(0), jobspec(), R_for()),
        (2, [E("validate", 0)], None, None),
        (3, [], None, None),
        (4, lifecycle(1)[:2] + [E("alloc", 2)], jobspec(), None),
        (5, [E("submit", 0, ev.submit(1)), E("invalidate", 1)], None, None),
    ])
    assert [(j, type(e).__name__) for j, e in errors] == [
        (2, "JobEventError"), (3, "JobEventError"), (4, "JobEventError")]
    assert "job 4: event 3: event 'alloc' is not valid in state DEPEND" in str(errors[2][1])
    assert ids(jl.list([], 0)) == [1]


@pytest.mark.parametrize("mangle,message", [
    (lambda b: b"XXXXXXXX" + b[8:], "bad magic"),
    (lambda b: b[:10], "truncated header"),
    (lambda b: b[:-1], "expected"),
    (lambda b: b + b"x", "expected"),
])
def test_decode_rejects_damaged_snapshots(mangle, message):
    data = make_mix().encode()
    with pytest.raises(ValueError, match=f"job-list snapshot: .*{message}"):
        JobList.decode(mangle(data))


def test_memory_per_inactive_job_is_small():
    """Each inactive job must cost well under the 4 KiB budget (flux-core: ~85 KB)."""
    n = 4000
    gc.collect()
    tracemalloc.start()
    jl = JobList()
    spec = jobspec(cwd="/home/someuser/projects/simulation-campaign-2024")
    R = R_for()
    for i in range(n):
        feed(jl, 10_000 + i, lifecycle(i * 0.01), spec, R)
    gc.collect()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert jl.inactive_count == n
    per_job = size / n
    assert per_job < 1200, f"{per_job:.0f} bytes per inactive job"


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30))))
def test_sorted_keys_lazy_removal_keeps_order(ops):
    keys = SortedKeys()
    model = set()
    for add, k in ops:
        if add:
            if k not in model:
                keys.add(k)
                model.add(k)
        else:
            keys.discard(k)
            model.discard(k)
        assert list(keys) == sorted(model)
        assert list(reversed(keys)) == sorted(model, reverse=True)
        assert len(keys) == len(model)


def test_sorted_keys_compacts_once_half_is_removed():
    keys = SortedKeys(range(10))
    for k in range(5):
        keys.discard(k)
    assert len(keys._keys) == 10 and len(keys) == 5      # marked, not moved
    keys.discard(5)
    assert keys._keys == [6, 7, 8, 9] and not keys._dead  # compacted
    keys.discard(9)                                       # the last: popped at once
    assert keys._keys == [6, 7, 8]
    keys.discard(6)
    keys.add(6)                                           # revived in place
    assert list(keys) == [6, 7, 8] and not keys._dead
