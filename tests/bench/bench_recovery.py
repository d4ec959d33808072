#!/usr/bin/env python3
"""Benchmark of recovery and reclamation: restart after kill -9, online GC at steady state.

Instances as in bench_jobs (size 1, test-mode exec, fake resources,
durability ``always``, a statedir), with the project's bytecode caches
written first (``byte_compile``).  One JSON object per line on stdout
(``{"bench": "recovery", ...}``), a table on stderr; ``--quick`` runs in
about a minute, ``--tiny`` only checks every metric can be produced.

Metrics (targets from issue 11 in parentheses):
  restart_after_kill_s      SIGKILL the broker at a random moment of a submit burst
                            after N inactive jobs exist, then ``flux start`` on the
                            same statedir until job-list lists every acknowledged job,
                            with P pending (held) jobs (<= 2 at 100,000)
  restart_clean_s           the same after ``flux shutdown`` (<= 1 at 100,000): the median of
                            ``clean_runs`` shutdown/start cycles (each appends flux-restart and
                            priority events to every held job, as a restart does); params give
                            every run and the broker's CPU seconds until the listing, which a
                            busy machine inflates far less than wall time
  gc_disk_bytes_per_job     with purge on (``inactive-num-limit``) and automatic GC,
                            N jobs run in waves: the store file's size at the end
                            divided by N (<= 4096)
  gc_file_growth_ratio      file size after the last wave / after the middle wave
                            (1.0: the file stopped growing once the load was steady)
  gc_longest_pause_ms       the longest step of any collection in the run
  gc_collections            how many collections ran by themselves
"""
from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_jobs import (  # noqa: E402
    FLUX,
    Ctx as _JobsCtx,
    job_counts,
    submit_burst,
    wait_inactive,
)

import orjson  # noqa: E402
from benchlib import Parts, byte_compile  # noqa: E402

SIZES = {
    "full": dict(kill=(10_000, 100_000), pending=1_000, clean_runs=3, gc_jobs=100_000,
                 gc_waves=20, gc_keep=1_000, gc_threshold="16M"),
    "quick": dict(kill=(2_000, 10_000), pending=200, clean_runs=3, gc_jobs=10_000,
                  gc_waves=10, gc_keep=500, gc_threshold="2M"),
    "tiny": dict(kill=(50,), pending=5, clean_runs=2, gc_jobs=200, gc_waves=4, gc_keep=20,
                 gc_threshold="64k"),
}
PARTS = Parts()


part = PARTS.add


class Ctx(_JobsCtx):
    def emit(self, metric: str, value: float, unit: str, params: dict[str, Any]) -> None:
        print(orjson.dumps({"bench": "recovery", "metric": metric, "value": round(value, 4),
                            "unit": unit, "params": params}).decode(), flush=True)
        label = ",".join(f"{k}={v}" for k, v in params.items() if k in ("jobs", "inactive"))
        self.rows.append((metric, value, unit, label))

    def instance_with(self, statedir: str, *setattrs: str) -> Any:
        from broker.testing import TestInstance

        inst = TestInstance(config_path=self.confdir,
                            setattrs=[f"content.durability={os.environ.get('BENCH_DURABILITY', 'always')}", f"statedir={statedir}",
                                      *setattrs]).start(timeout=300)
        self.instances.append(inst)
        return inst


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process PID has used (from /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


def _wait_listed(h: Any, expected: int, what: str) -> None:
    deadline = time.monotonic() + 1800
    while (total := job_counts(h)[0]) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"job-list lists {total} of {expected} jobs after {what}")
        time.sleep(0.01)


@part("kill")
def bench_kill(ctx: Ctx) -> None:
    statedir = os.path.join(ctx.tmp, "kill-state")
    os.mkdir(statedir)
    inst = ctx.instance_with(statedir)
    h = inst.handle()
    pending = ctx.p["pending"]
    submit_burst(inst, pending, "--urgency=hold")
    acked = pending
    rng = random.Random(11)
    for count in ctx.p["kill"]:
        # most of the jobs cleanly, then a burst cut by SIGKILL at a random moment
        cut = min(200, count // 2)
        clean = count - (acked - pending) - cut
        if clean > 0:
            submit_burst(inst, clean)
            wait_inactive(h, acked - pending + clean)
            acked += clean
        burst = subprocess.Popen(FLUX + ["submit", f"--cc=1-{cut}", "true"], env=inst.env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(rng.uniform(0.05, 0.4))
        h.close()
        inst.kill()
        out, _ = burst.communicate(timeout=60)
        acked += len(out.split())
        ctx.instances.remove(inst)
        t0 = time.perf_counter()
        inst = ctx.instance_with(statedir)
        h = inst.handle()
        _wait_listed(h, acked, "kill -9")
        elapsed = time.perf_counter() - t0
        total = job_counts(h)[0]
        ctx.emit("restart_after_kill_s", elapsed, "s",
                 {"inactive": total - pending, "pending": pending, "jobs": total})
        runs: list[float] = []
        cpu: list[float] = []
        for _ in range(ctx.p["clean_runs"]):
            h.close()
            ctx.stop(inst)
            t0 = time.perf_counter()
            inst = ctx.instance_with(statedir)
            h = inst.handle()
            _wait_listed(h, total, "a clean shutdown")
            runs.append(round(time.perf_counter() - t0, 3))
            cpu.append(_cpu_seconds(inst.broker_pids[0]))
        ctx.emit("restart_clean_s", statistics.median(runs), "s",
                 {"inactive": total - pending, "pending": pending, "jobs": total,
                  "runs": runs, "broker_cpu_s": cpu})
        wait_inactive(h, total - pending)
    h.close()
    ctx.stop(inst)


@part("gc")
def bench_gc(ctx: Ctx) -> None:
    p = ctx.p
    statedir = os.path.join(ctx.tmp, "gc-state")
    os.mkdir(statedir)
    conf = os.path.join(ctx.confdir, "purge.toml")
    with open(conf, "w", encoding="utf-8") as fh:
        fh.write(f"[job-manager]\ninactive-num-limit = {p['gc_keep']}\n")
    try:
        inst = ctx.instance_with(statedir, f"kvs.gc-threshold={p['gc_threshold']}")
        h = inst.handle()
        data = os.path.join(statedir, "content.lmdb", "data.mdb")
        waves, total = p["gc_waves"], p["gc_jobs"]
        per = total // waves
        sizes = []
        pauses = 0.0
        phases = {"longest_mark": 0.0, "longest_sweep": 0.0}
        for w in range(waves):
            submit_burst(inst, per)
            h.rpc("job-manager.drain", {}).get()
            sizes.append(os.stat(data).st_size)
            last = h.rpc("kvs.stats", {}).get()["gc"]["last"]
            if last:
                pauses = max(pauses, last["longest_pause"])
                for k in phases:
                    phases[k] = max(phases[k], last.get(k, 0.0))
        # let a collection that is due run, as a steady instance would
        deadline = time.monotonic() + 15
        while h.rpc("kvs.stats", {}).get()["gc"]["running"] and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = h.rpc("kvs.stats", {}).get()["gc"]
        if stats["last"]:
            pauses = max(pauses, stats["last"]["longest_pause"])
        size = os.stat(data).st_size
        done = per * waves
        ctx.emit("gc_disk_bytes_per_job", size / done, "B/job",
                 {"jobs": done, "file_bytes": size, "kept": p["gc_keep"],
                  "threshold": p["gc_threshold"]})
        ctx.emit("gc_file_growth_ratio", sizes[-1] / sizes[len(sizes) // 2], "ratio",
                 {"jobs": done, "sizes": sizes})
        ctx.emit("gc_longest_pause_ms", pauses * 1000, "ms",
                 {"jobs": done, **{k + "_ms": round(v * 1000, 1) for k, v in phases.items()}})
        ctx.emit("gc_collections", stats["collections"], "count", {"jobs": done})
        h.close()
        ctx.stop(inst)
    finally:
        os.unlink(conf)




def main(argv: list[str] | None = None) -> int:
    from benchlib import run_parts

    byte_compile()
    return run_parts(__doc__, PARTS, SIZES, lambda sizes, _args: Ctx(sizes), argv)

if __name__ == "__main__":
    raise SystemExit(main())
