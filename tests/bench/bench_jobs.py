#!/usr/bin/env python3
"""Benchmark of the job system end to end, through the ``flux`` commands.

Every instance is size 1 with test-mode exec (``[exec] test = true``: a job
"runs" for 0 s with no process) and the default durability (``always``).
Like flux-core's own throughput test (which simulates execution on
made-up resources), the instance is given fake resources: 64 nodes of 32
cores (``[[resource.config]]`` with ``noverify`` and ``monitor-force-up``),
so the scheduler is never what limits the rate; on the machine's real
cores (2 here) throughput would only measure how fast a core is handed
from one job to the next.
Prints one JSON object per line on stdout,
``{"bench": "jobs", "metric": ..., "value": ..., "unit": ..., "params": {...}}``,
and a table on stderr.  ``--quick`` runs in about a minute; ``--tiny`` only
checks that every metric can be produced.

Metrics (targets from issue 5 in parentheses):
  ingest_jobs_per_s            ``flux submit --cc=1-N`` wall time with the queue
                               stopped: jobs accepted per second (>= 5,000)
  throughput_jobs_per_s        N jobs from the start of ``flux submit --cc`` until
                               all are inactive, for each size (>= 1,000)
  throughput_ratio_50k_vs_1k   largest-size throughput / smallest (>= 0.8)
  flux_jobs_ms                 ``flux jobs -a`` wall time (median), per number
                               of inactive jobs (<= 150 at 100,000)
  restart_s                    ``flux shutdown`` then ``flux start`` on the same
                               statedir until job-list reports every job, with N
                               inactive and P pending jobs (<= 5 at 50,000)
  rss_bytes_per_inactive_job   broker heap (RssAnon) growth per job that became inactive
                               (<= 4096), measured on its own instance where jobs are
                               submitted in waves with at most ``rss_wave`` active: a job
                               that is gone from the active set costs only what the job
                               list and the purge index keep.  (Submitting all jobs at once
                               would measure the peak of N active jobs, and pymalloc and
                               glibc keep freed memory, so RSS would never come back down.)
  update_per_s                 pipelined ``job-manager.update`` requests (a new duration
                               for each of N held jobs) through the Python API, until
                               every answer (each one durable) is in (>= 2,000; issue 12)
  update_cli_ms                one ``flux update JOBID duration=...`` wall time, median
                               of ``update_cli_runs`` (<= 150; issue 12)
  rss_file_bytes_per_inactive_job  RssFile growth per inactive job, reported on its own:
                               it is the store's LMDB memory map (pages the kernel may
                               drop at any time and shares with the page cache), not
                               memory the broker holds

Adding a metric: write ``def bench_x(ctx: Ctx) -> None`` that calls
``ctx.emit(...)`` and decorate it with ``@part("name")``.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import orjson

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from broker.testing import TestInstance, flux_command  # noqa: E402
from flux.job.JobID import JobID  # noqa: E402
from benchlib import Parts  # noqa: E402

SIZES = {
    "full": dict(ingest=10_000, throughput=(1_000, 10_000, 50_000), flux_jobs=(10_000, 100_000),
                 flux_jobs_runs=7, restart=(10_000, 50_000), pending=1_000, rss=50_000,
                 rss_wave=1_000, update=10_000, update_cli_runs=11),
    "quick": dict(ingest=3_000, throughput=(500, 2_000, 5_000), flux_jobs=(2_000, 10_000),
                  flux_jobs_runs=5, restart=(2_000, 5_000), pending=200, rss=5_000,
                  rss_wave=1_000, update=2_000, update_cli_runs=7),
    "tiny": dict(ingest=50, throughput=(20, 50), flux_jobs=(20, 50), flux_jobs_runs=2,
                 restart=(20, 40), pending=5, rss=40, rss_wave=20, update=20,
                 update_cli_runs=2),
}

PARTS = Parts()
CONFIG = """[exec]
test = true

[resource]
noverify = true
monitor-force-up = true

[[resource.config]]
hosts = "node[0-63]"
cores = "0-31"
"""
FLUX = flux_command()


part = PARTS.add


class Ctx:
    def __init__(self, sizes: dict[str, Any]) -> None:
        self.p = sizes
        self.rows: list[tuple[str, float, str, str]] = []
        self.tmp = tempfile.mkdtemp(prefix="bench-jobs-")
        os.chmod(self.tmp, 0o755)
        self.confdir = os.path.join(self.tmp, "conf")
        os.mkdir(self.confdir)
        with open(os.path.join(self.confdir, "exec.toml"), "w", encoding="utf-8") as fh:
            fh.write(CONFIG)
        self.instances: list[TestInstance] = []
        self.throughput: dict[int, float] = {}

    def emit(self, metric: str, value: float, unit: str, params: dict[str, Any]) -> None:
        print(orjson.dumps({"bench": "jobs", "metric": metric, "value": round(value, 4),
                            "unit": unit, "params": params}).decode(), flush=True)
        label = ",".join(f"{k}={v}" for k, v in params.items() if k in ("jobs", "inactive"))
        self.rows.append((metric, value, unit, label))

    def instance(self, statedir: str | None = None) -> TestInstance:
        # durable as with a statedir (without one the default would be none)
        setattrs = ["content.durability=always"] + ([f"statedir={statedir}"] if statedir else [])
        inst = TestInstance(config_path=self.confdir, setattrs=setattrs).start(timeout=300)
        self.instances.append(inst)
        return inst

    def stop(self, inst: TestInstance) -> None:
        inst.stop(timeout=600)
        if inst in self.instances:
            self.instances.remove(inst)

    def close(self) -> None:
        for inst in list(self.instances):
            try:
                inst.stop(timeout=600)
            except Exception:  # noqa: BLE001 - best effort at exit
                inst.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def flux(inst: TestInstance, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(FLUX + list(args), env=inst.env, capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"flux {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def submit_burst(inst: TestInstance, count: int, *options: str) -> float:
    """Seconds ``flux submit --cc=1-COUNT --quiet [OPTIONS] true`` takes."""
    t0 = time.perf_counter()
    flux(inst, "submit", f"--cc=1-{count}", "--quiet", *options, "true")
    return time.perf_counter() - t0


def queue_start(h: Any, start: bool) -> None:
    h.rpc("job-manager.queue-start", {"all": True, "start": start}).get()


def drain(h: Any) -> None:
    """Wait until no job is active."""
    h.rpc("job-manager.drain", {}).get()


def wait_inactive(h: Any, count: int, timeout: float = 1800.0) -> None:
    """Wait until job-list counts COUNT inactive jobs (drain would wait for held jobs)."""
    deadline = time.monotonic() + timeout
    while (counts := job_counts(h))[1] < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {counts[1]} of {count} jobs inactive after {timeout}s")
        time.sleep(0.01)


def job_counts(h: Any) -> tuple[int, int]:
    """(total, inactive) jobs job-list knows of."""
    states = h.rpc("job-list.job-stats", {}).get()["job_states"]
    return int(states.get("total", 0)), int(states.get("inactive", 0))


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """A resident-memory figure of PID from /proc (VmRSS, RssAnon or RssFile)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def rss_split(pid: int) -> dict[str, int]:
    return {field: rss_bytes(pid, field) for field in ("VmRSS", "RssAnon", "RssFile")}


def flux_jobs_ms(inst: TestInstance, runs: int) -> tuple[float, int]:
    """Median wall time of ``flux jobs -a`` and the number of lines it printed."""
    flux(inst, "jobs", "-a")  # warm the page cache and job-list
    times = []
    lines = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = flux(inst, "jobs", "-a")
        times.append((time.perf_counter() - t0) * 1000)
        lines = len(proc.stdout.splitlines())
    return statistics.median(times), lines


@part("ingest")
def bench_ingest(ctx: Ctx) -> None:
    inst = ctx.instance()
    h = inst.handle()
    queue_start(h, False)
    count = ctx.p["ingest"]
    submit_burst(inst, min(count, 200))  # warm up: imports, caches
    elapsed = submit_burst(inst, count)
    ctx.emit("ingest_jobs_per_s", count / elapsed, "jobs/s",
             {"jobs": count, "queue": "stopped", "command": f"flux submit --cc=1-{count}"})
    h.close()
    ctx.stop(inst)


@part("throughput")
def bench_throughput(ctx: Ctx) -> None:
    sizes = ctx.p["throughput"]
    for count in sizes:
        inst = ctx.instance()
        h = inst.handle()
        t0 = time.perf_counter()
        submit_burst(inst, count)
        drain(h)
        elapsed = time.perf_counter() - t0
        ctx.throughput[count] = count / elapsed
        ctx.emit("throughput_jobs_per_s", count / elapsed, "jobs/s",
                 {"jobs": count, "seconds": round(elapsed, 3), "exec": "test",
                  "resources": "64 nodes x 32 cores (fake)"})
        h.close()
        ctx.stop(inst)
    low, high = sizes[0], sizes[-1]
    ctx.emit("throughput_ratio_50k_vs_1k", ctx.throughput[high] / ctx.throughput[low], "ratio",
             {"jobs_high": high, "jobs_low": low})


@part("rss")
def bench_rss(ctx: Ctx) -> None:
    total, wave = ctx.p["rss"], ctx.p["rss_wave"]
    inst = ctx.instance()
    h = inst.handle()
    pid = inst.broker_pids[0]
    # one wave first: imports, module caches and the first directories are not per-job costs
    submit_burst(inst, wave)
    drain(h)
    before = rss_split(pid)
    done = 0
    while done < total:
        n = min(wave, total - done)
        submit_burst(inst, n)
        drain(h)
        done += n
    after = rss_split(pid)
    _total, inactive = job_counts(h)
    h.close()
    ctx.stop(inst)
    grown = {field: after[field] - before[field] for field in after}
    params = {"inactive": done, "active_at_most": wave, "listed_inactive": inactive,
              "rss_anon_growth": grown["RssAnon"], "rss_file_growth": grown["RssFile"],
              "vmrss_bytes_per_job": round(grown["VmRSS"] / done)}
    ctx.emit("rss_bytes_per_inactive_job", max(grown["RssAnon"], 0) / done, "bytes", params)
    ctx.emit("rss_file_bytes_per_inactive_job", max(grown["RssFile"], 0) / done, "bytes",
             {"inactive": done, "active_at_most": wave})


@part("flux_jobs")
def bench_flux_jobs(ctx: Ctx) -> None:
    small, large = ctx.p["flux_jobs"]
    runs = ctx.p["flux_jobs_runs"]
    inst = ctx.instance()
    submit_burst(inst, small)
    h = inst.handle()
    drain(h)
    ms, lines = flux_jobs_ms(inst, runs)
    ctx.emit("flux_jobs_ms", ms, "ms", {"inactive": small, "lines": lines, "runs": runs})
    submit_burst(inst, large - small)
    drain(h)
    h.close()
    ms, lines = flux_jobs_ms(inst, runs)
    ctx.emit("flux_jobs_ms", ms, "ms", {"inactive": large, "lines": lines, "runs": runs})
    ctx.stop(inst)


@part("update")
def bench_update(ctx: Ctx) -> None:
    count = ctx.p["update"]
    inst = ctx.instance()
    h = inst.handle()
    out = flux(inst, "submit", f"--cc=1-{count}", "--urgency=hold", "-t", "10m", "true").stdout
    ids = [int(JobID(line)) for line in out.split()]
    t0 = time.perf_counter()
    futures = [h.rpc("job-manager.update",
                     {"id": jobid, "updates": {"attributes.system.duration": 600.0 + i % 97}})
               for i, jobid in enumerate(ids)]
    for future in futures:
        future.get()
    elapsed = time.perf_counter() - t0
    ctx.emit("update_per_s", count / elapsed, "updates/s",
             {"jobs": count, "api": "pipelined job-manager.update"})
    flux(inst, "update", str(ids[0]), "duration=+1m")   # warm the command's imports
    times = []
    for i in range(ctx.p["update_cli_runs"]):
        t0 = time.perf_counter()
        flux(inst, "update", str(ids[i + 1]), "duration=20m")
        times.append((time.perf_counter() - t0) * 1000)
    ctx.emit("update_cli_ms", statistics.median(times), "ms",
             {"runs": len(times), "command": "flux update JOBID duration=20m"})
    h.close()
    ctx.stop(inst)


@part("restart")
def bench_restart(ctx: Ctx) -> None:
    sizes = ctx.p["restart"]
    pending = ctx.p["pending"]
    statedir = os.path.join(ctx.tmp, "statedir")
    os.mkdir(statedir)
    inst = ctx.instance(statedir)
    h = inst.handle()
    inactive = 0
    held = False
    for count in sizes:
        submit_burst(inst, count - inactive)
        wait_inactive(h, count)
        inactive = count
        if not held:
            submit_burst(inst, pending, "--urgency=hold")
            held = True
        expected = inactive + pending
        h.close()
        ctx.stop(inst)
        t0 = time.perf_counter()
        inst = ctx.instance(statedir)
        h = inst.handle()
        deadline = time.monotonic() + 1800
        while (total := job_counts(h)[0]) < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"job-list lists {total} of {expected} jobs after restart")
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        ctx.emit("restart_s", elapsed, "s", {"inactive": inactive, "pending": pending})
    h.close()
    ctx.stop(inst)


def main(argv: list[str] | None = None) -> int:
    from benchlib import run_parts

    return run_parts(__doc__, PARTS, SIZES, lambda sizes, _args: Ctx(sizes), argv)

if __name__ == "__main__":
    raise SystemExit(main())
