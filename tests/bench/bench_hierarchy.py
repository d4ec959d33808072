#!/usr/bin/env python3
"""Benchmark of job hierarchies: starting a batch instance, and throughput through children.

Every instance here runs real processes (no test mode): the parent is a
four-broker instance (``flux start -s 4`` on this machine), as in seed
004, without a statedir.  Child instances are started with ``flux batch
-N1`` (one whole node each); ``--child=start`` uses ``flux submit -N1 -x
flux start SCRIPT`` instead, for a tree without ``flux batch``.
Prints one JSON object per line on stdout,
``{"bench": "hierarchy", "metric": ..., "value": ..., "unit": ..., "params": {...}}``,
and a table on stderr.  ``--quick`` runs in under a minute; ``--tiny`` only
checks that every metric can be produced.

Metrics (issue 13):
  batch_start_s               ``flux batch -N1 --wrap true``: from the job's ``submit``
                              event to its ``clean`` event, median of 5 (flux-core's
                              ``flux start true`` here: 0.95 s); params.wall_s is the
                              median from running ``flux batch`` to ``clean`` seen by
                              ``flux job wait-event`` (both commands' start-up included)
  hier_throughput_jobs_per_s  N jobs of ``true`` (4,000; quick 800): params.mode
                              ``direct`` is ``flux submit --cc=1-N true`` in the parent
                              until ``flux queue drain`` returns; mode ``children`` is
                              the same N split over 4 child instances, each submitting
                              its N/4 with ``--cc`` and draining, from the first
                              ``flux batch`` until the parent's queue is drained (the
                              children's start-up and shutdown included)
                              (params: cpu_ms_per_job, all the CPU the instance and
                              its commands used, start and stop included, per job;
                              for children, startup_s until the first child submits,
                              inner_jobs_per_s from its first submit to the last
                              child's drain, shutdown_s after that)
  hier_throughput_ratio       children / direct (the FGCS 2020 paper on Flux reports
                              hierarchies multiplying throughput on many nodes)

Each child checks before it exits that all its jobs completed and that
its last job ran a real shell (its exec eventlog has ``shell.start``); a
child that fails the check fails its batch job and the benchmark.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import orjson

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from broker.testing import TestInstance, flux_command  # noqa: E402
from benchlib import Parts  # noqa: E402

SIZES = {
    "full": dict(starts=5, jobs=4000, children=4, brokers=4),
    "quick": dict(starts=5, jobs=800, children=4, brokers=4),
    "tiny": dict(starts=1, jobs=40, children=4, brokers=4),
}
FLUX = flux_command()
PARTS = Parts()

#: a child instance's initial program: submit COUNT jobs of true, wait for them,
#: print when it started submitting and when they were done, and fail unless
#: all completed and the last one ran a real job shell
CHILD_SCRIPT = """#!/bin/sh
t0=$(date +%s.%N)
last=$(flux submit --cc=1-{count} true | tail -n 1) || exit 1
flux queue drain || exit 1
echo "bench-times $t0 $(date +%s.%N)"
stats=$(flux jobs --stats-only)  # (exits 1: no job is active)
case "$stats" in
*", {count} completed, 0 failed,"*) ;;
*) echo "not all {count} jobs completed: $stats" >&2; exit 1 ;;
esac
flux job eventlog -p exec "$last" | grep -q shell.start || {{
    echo "job $last ran no shell (test mode?)" >&2; exit 1; }}
"""


part = PARTS.add


class Ctx:
    def __init__(self, sizes: dict[str, Any], child: str) -> None:
        self.p = sizes
        self.child = child
        self.rows: list[tuple[str, float, str, str]] = []
        self.tmp = tempfile.mkdtemp(prefix="bench-hier-")
        os.chmod(self.tmp, 0o755)
        self.instances: list[TestInstance] = []

    def emit(self, metric: str, value: float, unit: str, params: dict[str, Any],
             label: str = "") -> None:
        print(orjson.dumps({"bench": "hierarchy", "metric": metric, "value": round(value, 4),
                            "unit": unit, "params": params}).decode(), flush=True)
        self.rows.append((metric, value, unit, label))

    def instance(self) -> TestInstance:
        inst = TestInstance(size=self.p["brokers"]).start(timeout=120)
        self.instances.append(inst)
        return inst

    def stop(self, inst: TestInstance) -> None:
        self.instances.remove(inst)
        inst.stop()

    def close(self) -> None:
        for inst in list(self.instances):
            try:
                inst.stop()
            except Exception:  # noqa: BLE001 - stop the rest
                inst.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def flux(ctx: Ctx, inst: TestInstance, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(FLUX + list(args), env=inst.env, cwd=ctx.tmp, capture_output=True,
                          text=True, timeout=3600, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"flux {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def child_command(ctx: Ctx, script: str) -> list[str]:
    """The command that submits SCRIPT (a file) as a one-node child instance."""
    if ctx.child == "batch":
        return FLUX + ["batch", "-N1", f"--output={ctx.tmp}/flux-{{{{id}}}}.out", script]
    return FLUX + ["submit", "-N1", "-x", f"--output={ctx.tmp}/flux-{{{{id}}}}.out",
                   "flux", "start", script]


def submit_children(ctx: Ctx, inst: TestInstance, scripts: list[str]) -> list[str]:
    """Submit one child per script, all at once; their job ids."""
    procs = [subprocess.Popen(child_command(ctx, s), env=inst.env, cwd=ctx.tmp, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for s in scripts]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"submitting a child failed ({proc.returncode}): {err}")
        ids.append(out.strip())
    return ids


def child_output(ctx: Ctx, jobid: str) -> str:
    path = os.path.join(ctx.tmp, f"flux-{jobid}.out")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def check_children(ctx: Ctx, inst: TestInstance, ids: list[str]) -> None:
    """Every child job completed (its script's checks passed), or say why not."""
    for jobid in ids:
        status = flux(ctx, inst, "jobs", "-n", "-o", "{status} {returncode}", jobid).stdout
        if status.split() != ["COMPLETED", "0"]:
            raise RuntimeError(f"child {jobid}: {status.strip()}\n{child_output(ctx, jobid)}")


def child_span(ctx: Ctx, ids: list[str]) -> tuple[float, float]:
    """(first submit, last drained) over the children, from their ``bench-times`` lines."""
    starts, ends = [], []
    for jobid in ids:
        for line in child_output(ctx, jobid).splitlines():
            if line.startswith("bench-times "):
                _, t0, t1 = line.split()
                starts.append(float(t0))
                ends.append(float(t1))
    if len(starts) != len(ids):
        raise RuntimeError("a child printed no bench-times line")
    return min(starts), max(ends)


def write_script(ctx: Ctx, name: str, text: str) -> str:
    path = os.path.join(ctx.tmp, name)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o755)
    return path


def event_times(ctx: Ctx, inst: TestInstance, jobid: str) -> dict[str, float]:
    """The first timestamp of each event of the job's main eventlog."""
    times: dict[str, float] = {}
    out = flux(ctx, inst, "job", "eventlog", "-f", "json", jobid).stdout
    for line in out.splitlines():
        event = orjson.loads(line)
        times.setdefault(event["name"], float(event["timestamp"]))
    return times


@part("start")
def bench_start(ctx: Ctx) -> None:
    runs = ctx.p["starts"]
    inst = ctx.instance()
    try:
        true = write_script(ctx, "true.sh", "#!/bin/sh\ntrue\n")
        if ctx.child == "batch":
            submit = FLUX + ["batch", "-N1", f"--output={ctx.tmp}/flux-{{{{id}}}}.out",
                             "--wrap", "true"]
        else:
            submit = child_command(ctx, true)
        spans, walls = [], []
        for _ in range(runs + 1):  # the first one warms the caches and is not counted
            t0 = time.perf_counter()
            jobid = subprocess.run(submit, env=inst.env, cwd=ctx.tmp, capture_output=True,
                                   text=True, timeout=600, check=True).stdout.strip()
            flux(ctx, inst, "job", "wait-event", "-t", "120s", jobid, "clean")
            walls.append(time.perf_counter() - t0)
            check_children(ctx, inst, [jobid])
            ev = event_times(ctx, inst, jobid)
            spans.append(ev["clean"] - ev["submit"])
        spans, walls = spans[1:], walls[1:]
    finally:
        ctx.stop(inst)
    ctx.emit("batch_start_s", statistics.median(spans), "s",
             {"runs": runs, "child": ctx.child, "brokers": ctx.p["brokers"],
              "min": round(min(spans), 3), "max": round(max(spans), 3),
              "wall_s": round(statistics.median(walls), 3), "flux_core_start_true_s": 0.95},
             label=f"runs={runs}")


def cpu_s() -> float:
    """CPU seconds used so far by the processes this one started and reaped (an
    instance counts once it is stopped: brokers, shells, tasks, commands)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def drained_rate(ctx: Ctx, inst: TestInstance, count: int,
                 start: Callable[[], Any]) -> tuple[float, Any]:
    """COUNT / seconds from calling START until the instance's queue is drained;
    and what START returned."""
    t0 = time.perf_counter()
    result = start()
    flux(ctx, inst, "queue", "drain")
    elapsed = time.perf_counter() - t0
    return count / elapsed, result


@part("throughput")
def bench_throughput(ctx: Ctx) -> None:
    n, k = ctx.p["jobs"], ctx.p["children"]
    if n % k:
        raise ValueError(f"{n} jobs do not split over {k} children")
    params = {"jobs": n, "brokers": ctx.p["brokers"], "cores": len(os.sched_getaffinity(0))}
    # directly in the parent
    cpu0 = cpu_s()
    inst = ctx.instance()
    try:
        flux(ctx, inst, "run", "true")  # the shell servers are up and warm
        direct, last = drained_rate(ctx, inst, n, lambda: flux(
            ctx, inst, "submit", f"--cc=1-{n}", "true").stdout.split()[-1])
        bad = flux(ctx, inst, "jobs", "-n", "-f", "failed,canceled,timeout", "-o",
                   "{id}").stdout.split()
        if bad:
            raise RuntimeError(f"{len(bad)} of {n} jobs did not complete")
        if "shell.start" not in flux(ctx, inst, "job", "eventlog", "-p", "exec", last).stdout:
            raise RuntimeError(f"job {last} ran no shell (test mode?)")
    finally:
        ctx.stop(inst)
    cpu_direct = cpu_s() - cpu0
    ctx.emit("hier_throughput_jobs_per_s", direct, "job/s",
             {**params, "mode": "direct", "cpu_ms_per_job": round(cpu_direct / n * 1000, 2)},
             label="direct")
    # the same jobs over K children, in a fresh parent
    cpu0 = cpu_s()
    inst = ctx.instance()
    try:
        flux(ctx, inst, "run", "true")
        script = write_script(ctx, "child.sh", CHILD_SCRIPT.format(count=n // k))
        t0 = time.time()
        hier, ids = drained_rate(ctx, inst, n, lambda: submit_children(ctx, inst, [script] * k))
        t1 = time.time()
        check_children(ctx, inst, ids)
        first, last = child_span(ctx, ids)
    finally:
        ctx.stop(inst)
    cpu_hier = cpu_s() - cpu0
    ctx.emit("hier_throughput_jobs_per_s", hier, "job/s",
             {**params, "mode": "children", "children": k, "child": ctx.child,
              "cpu_ms_per_job": round(cpu_hier / n * 1000, 2),
              # until the first child submits; from its first submit to the last drain
              # (the children's own rate); after the last drain until the parent's
              "startup_s": round(first - t0, 3), "inner_jobs_per_s": round(n / (last - first), 1),
              "shutdown_s": round(t1 - last, 3)},
             label=f"{k} children")
    ctx.emit("hier_throughput_ratio", hier / direct, "ratio",
             {**params, "children": k, "child": ctx.child}, label=f"{k} children")


def batch_works() -> bool:
    """Whether this tree has ``flux batch``."""
    proc = subprocess.run(FLUX + ["batch", "--help"], capture_output=True, timeout=60)
    return proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    from benchlib import run_parts

    def add_arguments(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--child", choices=("auto", "batch", "start"), default="auto",
                        help="how child instances start: flux batch, or flux submit ... "
                             "flux start (default: batch if this tree has it)")

    def make_ctx(sizes: dict[str, Any], args: argparse.Namespace) -> Ctx:
        child = args.child
        if child == "auto":
            child = "batch" if batch_works() else "start"
        return Ctx(sizes, child)

    return run_parts(__doc__, PARTS, SIZES, make_ctx, argv, add_arguments, label_width=12)

if __name__ == "__main__":
    raise SystemExit(main())
