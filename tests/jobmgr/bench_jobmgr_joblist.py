"""Measure the job core: job-list memory, fold, load, query, snapshot; scheduler rate.

Run: /work/venv/bin/python tests/jobmgr/bench_jobmgr_joblist.py [N]
(not collected by pytest).  Prints one JSON object.  Memory is process RSS
growth while N jobs are folded live and kept inactive, divided by N, in a
fresh child process so earlier phases do not pollute it.
"""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import time

JOBSPEC = {"version": 1,
           "resources": [{"type": "slot", "count": 1, "label": "task",
                          "with": [{"type": "core", "count": 1}]}],
           "tasks": [{"command": ["/usr/bin/sleep", "0"], "slot": "task",
                      "count": {"per_slot": 1}}],
           "attributes": {"system": {"duration": 0, "cwd": "/home/someuser/project"}}}
R = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "3"}}],
                                 "nodelist": ["node0"], "starttime": 1.0, "expiration": 0.0}}


def events(t: float) -> list[dict]:
    names = ["submit", "validate", "depend", "priority", "alloc", "start", "finish",
             "release", "free", "clean"]
    ctx = {"submit": {"userid": 1001, "urgency": 16, "flags": 0, "version": 1},
           "priority": {"priority": 16},
           "alloc": {"annotations": {"sched": {"resource_summary": "rank0/core3"}}},
           "finish": {"status": 0}, "release": {"ranks": "all", "final": True}}
    out = []
    for i, name in enumerate(names):
        entry = {"timestamp": t + i * 0.001, "name": name}
        if name in ctx:
            entry["context"] = ctx[name]
        out.append(entry)
    return out


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


def memory_child(n: int) -> None:
    from jobmgr.joblist.projection import JobList

    gc.collect()
    before = rss()
    jl = JobList()
    base = 1.7e9
    for i in range(n):
        for e in events(base + i):
            jl.apply(1000 + i, e, JOBSPEC if e["name"] == "submit" else None,
                     R if e["name"] == "alloc" else None)
    gc.collect()
    print((rss() - before) / n)


def main(n: int) -> None:
    from jobmgr.joblist.projection import JobList
    from jobmgr.sched.core import Request, SchedCore

    out: dict[str, float] = {"jobs": n}
    child = subprocess.run([sys.executable, __file__, "--memory", str(n)],
                           capture_output=True, text=True, check=True)
    out["rss_bytes_per_inactive_job"] = round(float(child.stdout.strip()))

    base = 1.7e9
    start = time.perf_counter()
    live = JobList()
    for i in range(10000):
        for e in events(base + i):
            live.apply(i, e, JOBSPEC if e["name"] == "submit" else None,
                       R if e["name"] == "alloc" else None)
    out["fold_jobs_per_s"] = round(10000 / (time.perf_counter() - start))

    jobs = [(1000 + i, events(base + i), JOBSPEC, R) for i in range(n)]
    start = time.perf_counter()
    jl = JobList()
    jl.load(jobs)
    out["load_s"] = round(time.perf_counter() - start, 3)
    del jobs

    start = time.perf_counter()
    rows = jl.list(["all"], 1000, userid=1001)
    out["list_all_1000_ms"] = round((time.perf_counter() - start) * 1000, 2)
    assert len(rows) == 1000
    start = time.perf_counter()
    jl.list(["id", "userid", "name", "state", "result", "ntasks", "nnodes", "t_run",
             "t_cleanup", "nodelist"], 1000, userid=1001)
    out["list_default_attrs_1000_ms"] = round((time.perf_counter() - start) * 1000, 2)
    start = time.perf_counter()
    jl.list(["name"], 1000, userid=4242)
    out["list_other_user_ms"] = round((time.perf_counter() - start) * 1000, 2)

    start = time.perf_counter()
    blob = jl.encode()
    out["snapshot_encode_s"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    JobList.decode(blob)
    out["snapshot_decode_s"] = round(time.perf_counter() - start, 3)
    out["snapshot_bytes_per_job"] = round(len(blob) / n)

    R_inst = {"version": 1, "execution": {"R_lite": [{"rank": "0-4095",
                                                      "children": {"core": "0-31"}}],
                                          "nodelist": ["n[0-4095]"]}}
    sched = SchedCore(R_inst)
    start = time.perf_counter()
    for jobid in range(20000):
        sched.allocate(jobid, Request(2), now=0.0)
    for jobid in range(20000):
        sched.free(jobid)
    out["sched_alloc_free_per_s"] = round(40000 / (time.perf_counter() - start))
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--memory":
        memory_child(int(sys.argv[2]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 100000)
