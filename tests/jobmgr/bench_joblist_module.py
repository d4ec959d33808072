"""Benchmark of the job-list service (restart, listing, memory) on real instances.

Two ways to get many inactive jobs:

- default: jobs are written straight into the KVS of an instance that
  loads only content, kvs, kvs-watch, job-list and job-info (a
  ``sitecustomize`` trims the rc1 list), so the job-list service is
  measured alone and 100,000 jobs take seconds to make;
- ``--real``: jobs are submitted and run (test mode) through ingest, the
  job manager and the scheduler.

Metrics (JSON lines ``{"bench": "joblist", "metric", "value", "unit",
"params"}``): job-list's load time replaying every job, loading its
snapshot (``--pending`` jobs still pending), wall time from ``flux start``
to the first answered ``job-list.job-stats``, ``job-list.list`` time for
``flux jobs -a``'s request, ``flux jobs -a`` wall time when that command
exists, and the broker's anonymous RSS per inactive job.

    python tests/jobmgr/bench_joblist_module.py --jobs 50000 --pending 1000
"""
from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time

import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from broker.testing import TestInstance, flux_command  # noqa: E402
from flux.job.JobID import JobID  # noqa: E402

SPEC = {"version": 1,
        "resources": [{"type": "slot", "count": 1, "label": "task",
                       "with": [{"type": "core", "count": 1}]}],
        "tasks": [{"command": ["/bin/true"], "slot": "task", "count": {"per_slot": 1}}],
        "attributes": {"system": {"duration": 0, "cwd": "/home/user"}}}
R = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0"}}],
                                 "nodelist": ["node0"], "starttime": 0.0, "expiration": 0.0}}
SITECUSTOMIZE = """
import os
if os.environ.get("BENCH_JOBLIST_ONLY"):
    import broker.rc
    keep = ("content", "kvs", "kvs-watch", "job-list", "job-info")
    broker.rc.RC1 = tuple(m for m in broker.rc.RC1 if m.name in keep)
"""
LIFECYCLE = [("submit", None), ("validate", None), ("depend", None),
             ("priority", {"priority": 16}),
             ("alloc", {"annotations": {"sched": {"resource_summary": "rank0/core0"}}}),
             ("start", None), ("finish", {"status": 0}),
             ("release", {"ranks": "all", "final": True}), ("free", None), ("clean", None)]


def emit(metric: str, value: float, unit: str, **params: object) -> None:
    print(orjson.dumps({"bench": "joblist", "metric": metric, "value": round(value, 4),
                        "unit": unit, "params": params}).decode(), flush=True)


def val(data: bytes) -> dict:
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode()}


def eventlog(t: float, userid: int, upto: int) -> bytes:
    out = b""
    for i, (name, ctx) in enumerate(LIFECYCLE[:upto]):
        if name == "submit":
            ctx = {"userid": userid, "urgency": 16, "flags": 0, "version": 1}
        entry: dict = {"timestamp": t + i * 0.001, "name": name}
        if ctx is not None:
            entry["context"] = ctx
        out += orjson.dumps(entry) + b"\n"
    return out


def fabricate(h, n: int, first: int = 0, upto: int = len(LIFECYCLE), batch: int = 2000) -> None:
    """Write N job directories (each with UPTO lifecycle events) into the KVS."""
    spec = val(orjson.dumps(SPEC))
    r = val(orjson.dumps(R))
    t0 = time.time() - 3600
    base_ms = int(t0 * 1000) % (1 << 40)
    pending = []
    for start in range(first, first + n, batch):
        ops = []
        for i in range(start, min(first + n, start + batch)):
            d = JobID(((base_ms + i) << 24) | 1).kvs
            ops += [{"key": f"{d}.jobspec", "flags": 0, "dirent": spec},
                    {"key": f"{d}.eventlog", "flags": 0,
                     "dirent": val(eventlog(t0 + i * 0.01, os.getuid(), upto))}]
            if upto > 4:
                ops.append({"key": f"{d}.R", "flags": 0, "dirent": r})
        pending.append(h.rpc("kvs.commit", {"ops": ops}))
        if len(pending) >= 8:
            pending.pop(0).get()
    for f in pending:
        f.get()


def submit_jobs(h, n: int, urgency: int = 16, window: int = 2000) -> None:
    from flux.job import JobspecV1
    from flux.job.submit import submit_async

    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {})
    futures = []
    for _ in range(n):
        futures.append(submit_async(h, js, urgency=urgency))
        if len(futures) >= window:
            for f in futures:
                f.get_id()
            futures = []
    for f in futures:
        f.get_id()


def wait_inactive(h, n: int, timeout: float = 3600.0) -> None:
    deadline = time.monotonic() + timeout
    while h.rpc("job-list.job-stats", {}).get()["job_states"]["inactive"] < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} jobs not inactive in time")
        time.sleep(0.5)


def rss_anon(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def time_list(h, reps: int = 5) -> float:
    best = 1e9
    for _ in range(reps):
        t = time.perf_counter()
        h.rpc("job-list.list", {"max_entries": 1000, "attrs": ["all"], "states": 126,
                                "userid": os.getuid()}).get()
        best = min(best, time.perf_counter() - t)
    return best


def time_flux_jobs(inst: TestInstance) -> float | None:
    env = dict(inst.env)
    if subprocess.run(flux_command() + ["jobs", "--help"], env=env, capture_output=True,
                      check=False).returncode != 0:
        return None
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(flux_command() + ["jobs", "-a"], env=env, stdout=subprocess.DEVNULL,
                       check=True)
        best = min(best, time.perf_counter() - t)
    return best


def started(statedir: str, env: dict[str, str]) -> tuple[TestInstance, float]:
    """Start on STATEDIR; seconds until job-list answers (its load is done)."""
    t = time.perf_counter()
    inst = TestInstance(setattrs=[f"statedir={statedir}"], env=env).start(timeout=600)
    h = inst.handle()
    h.rpc("job-list.job-stats", {}).get()
    h.close()
    return inst, time.perf_counter() - t


def load_of(inst: TestInstance) -> dict:
    h = inst.handle()
    try:
        return h.rpc("job-list.stats", {}).get()
    finally:
        h.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--pending", type=int, default=0)
    ap.add_argument("--real", action="store_true", help="run real (test-mode) jobs")
    args = ap.parse_args()
    n = args.jobs
    work = tempfile.mkdtemp(prefix="bench-joblist-")
    statedir = os.path.join(work, "state")
    env: dict[str, str] = {}
    if not args.real:
        with open(os.path.join(work, "sitecustomize.py"), "w", encoding="utf-8") as fh:
            fh.write(SITECUSTOMIZE)
        env = {"BENCH_JOBLIST_ONLY": "1",
               "PYTHONPATH": os.pathsep.join([work, ROOT, os.environ.get("PYTHONPATH", "")])}
    mode = "real" if args.real else "joblist-only"
    try:
        inst, _ = started(statedir, env)
        h = inst.handle()
        rss0 = rss_anon(inst.broker_pids[0])
        t = time.perf_counter()
        if args.real:
            submit_jobs(h, n)
            wait_inactive(h, n)
            if args.pending:
                submit_jobs(h, args.pending, urgency=0)
        else:
            fabricate(h, n)
            fabricate(h, args.pending, first=n, upto=4)
        emit("make_jobs_s", time.perf_counter() - t, "s", jobs=n, mode=mode)
        h.close()
        if args.real:
            emit("rss_anon_bytes_per_inactive_job", (rss_anon(inst.broker_pids[0]) - rss0) / n,
                 "B", jobs=n, mode=mode, note="whole broker, while the jobs ran")
        assert inst.stop() == 0

        if not args.real:
            # the first start after writing them replays every job (nothing
            # told job-list about jobs written behind its back)
            inst, seconds = started(statedir, env)
            st = load_of(inst)
            emit("joblist_replay_load_s", st["load"]["seconds"], "s", jobs=n + args.pending,
                 replayed=st["load"]["replayed"])
            emit("start_to_list_replay_s", seconds, "s", jobs=n + args.pending)
            assert inst.stop() == 0

        inst, seconds = started(statedir, env)
        st = load_of(inst)
        assert st["inactive"] == n, st
        emit("start_to_list_s", seconds, "s", jobs=n, pending=args.pending, mode=mode)
        emit("joblist_snapshot_load_s", st["load"]["seconds"], "s", jobs=n,
             pending=args.pending, source=st["load"]["source"], mode=mode)
        h = inst.handle()
        emit("joblist_list_ms", time_list(h) * 1000, "ms", jobs=n, mode=mode)
        h.close()
        if not args.real:
            pid = inst.broker_pids[0]
            base = TestInstance(env=env).start()
            empty = rss_anon(base.broker_pids[0])
            base.stop()
            emit("rss_anon_bytes_per_inactive_job", (rss_anon(pid) - empty) / n, "B", jobs=n,
                 mode=mode, note="broker with job-list loaded from its snapshot vs empty")
        elapsed = time_flux_jobs(inst)
        if elapsed is not None:
            emit("flux_jobs_ms", elapsed * 1000, "ms", jobs=n, mode=mode)
        inst.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
