#!/usr/bin/env python3
"""Benchmark of real job execution: shells, tasks, output, memory.

Every instance is size 1 and runs real processes.  Instances have no
statedir, as flux-core's own measurement here (``flux start`` then
``flux submit --cc=1-1000 --quiet true && flux queue drain``), so the
store is not synced (it is removed at exit); ``throughput_real_durable_jobs_per_s``
is the same run with a statedir (synced commits).
Prints one JSON object per line on stdout,
``{"bench": "exec", "metric": ..., "value": ..., "unit": ..., "params": {...}}``,
and a table on stderr.  ``--quick`` runs in about a minute; ``--tiny`` only
checks that every metric can be produced.

Metrics (targets from issue 9 in parentheses):
  throughput_real_jobs_per_s       N jobs of ``true``, one core each, on the machine's own
                                   cores: from ``flux submit --cc`` to all inactive (>= 300;
                                   flux-core here: 43-51)
  throughput_real_durable_jobs_per_s  the same with a statedir (durable commits)
  throughput_real_wide_jobs_per_s  the same on 16 configured cores (oversubscribed,
                                   cpu-affinity=off), so many jobs run at once (>= 500)
  spawn_bound_per_s                a tight loop starting ``true`` with the same concurrency
                                   (posix_spawn + wait, no Flux): what the machine allows
  exec_efficiency                  wide throughput / spawn bound (>= 0.4)
  run_latency_ms                   median wall time of ``flux run true`` in a running
                                   instance, 20 runs (<= 100; flux-core here: 151)
  output_mb_per_s                  one job writing 100 MB (quick: 20 MB) to stdout, until
                                   ``flux job attach`` has read it all (>= 30), with the
                                   broker's RSS growth
  running_job_pss_kb               PSS of the shell servers (all of the pool) plus the broker's
                                   anonymous memory growth, per running job, with 500
                                   (quick: 200) ``sleep`` jobs running at once (<= 4096)
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import orjson

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from broker.testing import TestInstance, flux_command  # noqa: E402
from benchlib import Parts  # noqa: E402

SIZES = {
    "full": dict(jobs=1000, wide=1000, wide_cores=16, latency_runs=20, output_mb=100,
                 running=500),
    "quick": dict(jobs=300, wide=300, wide_cores=16, latency_runs=20, output_mb=20,
                  running=200),
    "tiny": dict(jobs=20, wide=20, wide_cores=4, latency_runs=3, output_mb=1, running=10),
}
FLUX = flux_command()
PARTS = Parts()


part = PARTS.add


def fake_cores(n: int) -> str:
    return ("[resource]\nnoverify = true\nmonitor-force-up = true\n\n"
            f"[[resource.config]]\nhosts = \"{socket.gethostname()}\"\ncores = \"0-{n - 1}\"\n")


class Ctx:
    def __init__(self, sizes: dict[str, Any]) -> None:
        self.p = sizes
        self.rows: list[tuple[str, float, str]] = []
        self.tmp = tempfile.mkdtemp(prefix="bench-exec-")
        os.chmod(self.tmp, 0o755)
        self.wide_bound = 0.0
        self.wide_rate = 0.0

    def emit(self, metric: str, value: float, unit: str, params: dict[str, Any]) -> None:
        print(orjson.dumps({"bench": "exec", "metric": metric, "value": round(value, 4),
                            "unit": unit, "params": params}).decode(), flush=True)
        self.rows.append((metric, value, unit))

    def instance(self, config: str | None = None, statedir: bool = False) -> TestInstance:
        confdir = None
        if config is not None:
            confdir = tempfile.mkdtemp(dir=self.tmp)
            os.chmod(confdir, 0o755)
            with open(os.path.join(confdir, "bench.toml"), "w", encoding="utf-8") as fh:
                fh.write(config)
        setattrs = []
        if statedir:
            state = tempfile.mkdtemp(dir=self.tmp)
            setattrs.append(f"statedir={state}")
        return TestInstance(config_path=confdir, setattrs=setattrs).start(timeout=120)

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def flux(inst: TestInstance, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(FLUX + list(args), env=inst.env, capture_output=True, text=True,
                          timeout=3600, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"flux {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def throughput(inst: TestInstance, count: int, *options: str) -> float:
    """Jobs per second from ``flux submit --cc=1-COUNT --quiet OPTIONS true`` to drained."""
    t0 = time.perf_counter()
    flux(inst, "submit", f"--cc=1-{count}", "--quiet", *options, "true")
    flux(inst, "queue", "drain")
    elapsed = time.perf_counter() - t0
    bad = flux(inst, "jobs", "-n", "-f", "failed,canceled,timeout", "-o", "{id}").stdout.split()
    if bad:
        raise RuntimeError(f"{len(bad)} jobs did not complete")
    return count / elapsed


@part("throughput")
def bench_throughput(ctx: Ctx) -> None:
    n = ctx.p["jobs"]
    inst = ctx.instance()
    try:
        rate = throughput(inst, n)
    finally:
        inst.stop()
    ctx.emit("throughput_real_jobs_per_s", rate, "job/s",
             {"jobs": n, "cores": len(os.sched_getaffinity(0)), "statedir": False})
    inst = ctx.instance(statedir=True)
    try:
        rate = throughput(inst, n)
    finally:
        inst.stop()
    ctx.emit("throughput_real_durable_jobs_per_s", rate, "job/s",
             {"jobs": n, "cores": len(os.sched_getaffinity(0)), "statedir": True})


def spawn_bound(count: int, concurrency: int) -> float:
    """``true`` started COUNT times, CONCURRENCY at a time (posix_spawn + waitpid)."""
    path = shutil.which("true") or "/bin/true"
    env = {"PATH": os.defpath}
    running: set[int] = set()
    started = 0
    t0 = time.perf_counter()
    while started < count or running:
        while started < count and len(running) < concurrency:
            running.add(os.posix_spawn(path, [path], env))
            started += 1
        pid, _status = os.waitpid(-1, 0)
        running.discard(pid)
    return count / (time.perf_counter() - t0)


@part("wide")
def bench_wide(ctx: Ctx) -> None:
    n, cores = ctx.p["wide"], ctx.p["wide_cores"]
    inst = ctx.instance(fake_cores(cores))
    try:
        rate = throughput(inst, n, "-o", "cpu-affinity=off")
    finally:
        inst.stop()
    bound = spawn_bound(n, cores)
    params = {"jobs": n, "cores": cores}
    ctx.emit("throughput_real_wide_jobs_per_s", rate, "job/s", params)
    ctx.emit("spawn_bound_per_s", bound, "spawn/s", params)
    ctx.emit("exec_efficiency", rate / bound, "ratio", params)


@part("latency")
def bench_latency(ctx: Ctx) -> None:
    runs = ctx.p["latency_runs"]
    inst = ctx.instance()
    try:
        flux(inst, "run", "true")          # the fork server and caches are warm
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            flux(inst, "run", "true")
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        inst.stop()
    ctx.emit("run_latency_ms", statistics.median(times), "ms",
             {"runs": runs, "p90": round(sorted(times)[int(0.9 * (runs - 1))], 1)})


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


@part("output")
def bench_output(ctx: Ctx) -> None:
    mb = ctx.p["output_mb"]
    inst = ctx.instance()
    try:
        broker = inst.broker_pids[0]
        rss0, anon0 = _status(broker, "VmRSS"), _status(broker, "RssAnon")
        t0 = time.perf_counter()
        jobid = flux(inst, "submit", "sh", "-c", f"yes 0123456789abcdefghijklmnopqrstuvwxyz"
                     f" | head -c {mb * 1000 * 1000}").stdout.strip()
        proc = subprocess.run(FLUX + ["job", "attach", jobid], env=inst.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=3600)
        elapsed = time.perf_counter() - t0
        got = len(proc.stdout)
        rss1, anon1 = _status(broker, "VmRSS"), _status(broker, "RssAnon")
    finally:
        inst.stop()
    if got != mb * 1000 * 1000:
        raise RuntimeError(f"attach read {got} bytes, not {mb} MB")
    ctx.emit("output_mb_per_s", got / 1e6 / elapsed, "MB/s",
             {"mb": mb, "broker_rss_growth_mb": round((rss1 - rss0) / 1e6, 1),
              # RSS counts the store's memory map, which now holds the output; the
              # broker's own memory is the anonymous part
              "broker_anon_growth_mb": round((anon1 - anon0) / 1e6, 1)})


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    from shell.procs import children_of
    return children_of(pid)


def _shell_servers(broker: int) -> list[int]:
    """The broker's shell servers: its own, and those it forked (a user's pool)."""
    found: list[int] = []
    todo = [broker]
    while todo:
        for pid in _children(todo.pop()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if b"shell.server" not in fh.read():
                        continue
            except OSError:
                continue
            found.append(pid)
            todo.append(pid)
    return found


@part("running")
def bench_running(ctx: Ctx) -> None:
    n = ctx.p["running"]
    inst = ctx.instance(fake_cores(n))
    try:
        broker = inst.broker_pids[0]
        flux(inst, "run", "true")
        anon0 = _status(broker, "RssAnon")
        flux(inst, "submit", f"--cc=1-{n}", "--quiet", "-o", "cpu-affinity=off", "sleep", "600")
        deadline = time.monotonic() + 600
        while True:
            running = flux(inst, "jobs", "-n", "-f", "running", "-o", "{id}").stdout.split()
            servers = _shell_servers(broker)
            tasks = [t for srv in servers for t in _children(srv) if t not in servers]
            if len(running) == n and len(tasks) >= n:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(running)} of {n} jobs running")
            time.sleep(0.5)
        time.sleep(1.0)
        pss = sum(_pss(p) for p in servers)
        anon = _status(broker, "RssAnon") - anon0
        fds = len(os.listdir(f"/proc/{broker}/fd"))
        flux(inst, "cancel", "--all")
        flux(inst, "queue", "drain")
    finally:
        inst.stop()
    ctx.emit("running_job_pss_kb", (pss + anon) / n / 1024, "KiB",
             {"jobs": n, "shell_pss_kb_per_job": round(pss / n / 1024, 1),
              "broker_anon_kb_per_job": round(anon / n / 1024, 1), "broker_fds": fds})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, about a minute")
    ap.add_argument("--tiny", action="store_true", help="only check every metric is produced")
    ap.add_argument("--only", metavar="PARTS", help="comma-separated parts: " + ",".join(PARTS))
    args = ap.parse_args()
    ctx = Ctx(SIZES["tiny" if args.tiny else "quick" if args.quick else "full"])
    parts = args.only.split(",") if args.only else list(PARTS)
    try:
        for name in parts:
            PARTS[name](ctx)
    finally:
        ctx.close()
    print(f"\n{'metric':<38} {'value':>12}  unit", file=sys.stderr)
    for metric, value, unit in ctx.rows:
        print(f"{metric:<38} {value:>12.2f}  {unit}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
