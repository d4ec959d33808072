#!/usr/bin/env python3
"""Benchmark of the broker and the Python client (real instances).

Prints one JSON object per line on stdout,
``{"bench": "broker", "metric": ..., "value": ..., "unit": ..., "params": {...}}``,
and a table on stderr.  ``--quick`` runs in well under a minute;
``--tiny`` only checks that every metric can be produced.

Metrics (targets in parentheses):
  rpc_rtt_us_p50/p99          one synchronous broker.ping over the local connector (p50 <= 150)
  rpc_rtt_rank2_us_p50/p99    the same, to rank 2 of a size-3 instance (two overlay hops)
  rpc_per_s                   pipelined broker.ping from one client, WINDOW in flight
  flux_start_true_s           wall time of ``flux start true``, size 1, median (<= 1.0)
  kvs_commit_per_s            pipelined flux.kvs.put + commit_async from one client, new keys
                              100 to a directory as the job tree lays data out (>= 12,000)
  kvs_commit_flat_per_s       the same with every key in ONE directory (worst case: each batch
                              rewrites most hdir buckets of a growing directory)
  kvs_get_us_p50/p99          one flux.kvs.get round trip (p50 <= 175)
  wait_event_latency_ms_p50/p99
                              an eventlog append sent by one client until a WATCH_APPEND
                              watcher (another connection) has it: includes the durable
                              commit (p50 <= 2); ..._after_ack_ms: from the committer's ack
  cli_kvs_get_ms              wall time of one ``flux kvs get KEY`` command, median (<= 30)
  cli_eventlog_ms             the same for ``flux job eventlog JOBID`` (<= 30)
  cli_getattr_ms              the same for ``flux getattr rank`` (<= 30)
  cli_python_floor_ms         ``python -c pass`` with the same interpreter and environment:
                              what no command can go below (site, .pth files); each cli_*
                              metric's params also give its min and its median CPU time
                              The cli_* metrics run with cached bytecode: the packages are
                              compiled first (as a non-editable install does), whatever
                              PYTHONDONTWRITEBYTECODE says.

Adding a metric: write ``def bench_x(ctx: Ctx) -> None`` that calls
``ctx.emit(...)``, decorate it with ``@part("name")``; instances are
started on demand with ``ctx.instance(size)`` and shared between parts.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import orjson

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from broker.testing import TestInstance, flux_command  # noqa: E402
from benchlib import Parts, byte_compile  # noqa: E402

SIZES = {
    "full": dict(rtt=20_000, rtt_remote=5_000, pipelined=100_000, window=1000, starts=7,
                 commits=100_000, gets=20_000, appends=2_000, cli_gets=21),
    "quick": dict(rtt=5_000, rtt_remote=2_000, pipelined=30_000, window=1000, starts=3,
                  commits=30_000, gets=5_000, appends=500, cli_gets=9),
    "tiny": dict(rtt=50, rtt_remote=20, pipelined=200, window=50, starts=1,
                 commits=200, gets=50, appends=20, cli_gets=1),
}

PARTS = Parts()


part = PARTS.add


class Ctx:
    def __init__(self, sizes: dict[str, Any]) -> None:
        self.p = sizes
        self.rows: list[tuple[str, float, str]] = []
        self._instances: dict[int, TestInstance] = {}

    def emit(self, metric: str, value: float, unit: str, params: dict[str, Any]) -> None:
        print(orjson.dumps({"bench": "broker", "metric": metric, "value": round(value, 4),
                            "unit": unit, "params": params}).decode(), flush=True)
        self.rows.append((metric, value, unit))

    def instance(self, size: int) -> TestInstance:
        if size not in self._instances:
            # durable as a statedir instance would be (without one the default is none)
            self._instances[size] = TestInstance(
                size=size, setattrs=["content.durability=always"]).start()
        return self._instances[size]

    def close(self) -> None:
        for inst in self._instances.values():
            inst.stop()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rtt(h: Any, n: int, nodeid: int | None) -> list[float]:
    kwargs = {} if nodeid is None else {"nodeid": nodeid}
    for _ in range(min(200, n)):  # warm up
        h.rpc("broker.ping", **kwargs).get()
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        t0 = clock()
        h.rpc("broker.ping", **kwargs).get()
        samples.append((clock() - t0) * 1e6)
    return samples


@part("rtt")
def bench_rtt(ctx: Ctx) -> None:
    h = ctx.instance(1).handle()
    samples = _rtt(h, ctx.p["rtt"], None)
    params = {"rpcs": ctx.p["rtt"], "size": 1, "topic": "broker.ping", "target": "local"}
    ctx.emit("rpc_rtt_us_p50", statistics.median(samples), "us", params)
    ctx.emit("rpc_rtt_us_p99", percentile(samples, 0.99), "us", params)
    h.close()


@part("rtt_remote")
def bench_rtt_remote(ctx: Ctx) -> None:
    h = ctx.instance(3).handle()
    samples = _rtt(h, ctx.p["rtt_remote"], 2)
    params = {"rpcs": ctx.p["rtt_remote"], "size": 3, "topic": "broker.ping", "target": "rank 2"}
    ctx.emit("rpc_rtt_rank2_us_p50", statistics.median(samples), "us", params)
    ctx.emit("rpc_rtt_rank2_us_p99", percentile(samples, 0.99), "us", params)
    h.close()


@part("pipelined")
def bench_pipelined(ctx: Ctx) -> None:
    h = ctx.instance(1).handle()
    total = ctx.p["pipelined"]
    window = ctx.p["window"]
    t0 = time.perf_counter()
    done = 0
    while done < total:
        futures = [h.rpc("broker.ping") for _ in range(min(window, total - done))]
        for f in futures:
            f.get()
        done += len(futures)
    elapsed = time.perf_counter() - t0
    ctx.emit("rpc_per_s", total / elapsed, "rpc/s",
             {"rpcs": total, "window": window, "topic": "broker.ping", "size": 1})
    h.close()


@part("start")
def bench_start(ctx: Ctx) -> None:
    cmd = flux_command() + ["start", "true"]
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    times = []
    for _ in range(ctx.p["starts"]):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True)
        times.append(time.perf_counter() - t0)
    ctx.emit("flux_start_true_s", statistics.median(times), "s",
             {"runs": len(times), "size": 1, "min": round(min(times), 4)})


def _pipelined_commits(ctx: Ctx, key: Callable[[int], str]) -> tuple[float, dict[str, Any]]:
    import flux.kvs

    h = ctx.instance(1).handle()
    total = ctx.p["commits"]
    window = ctx.p["window"]
    t0 = time.perf_counter()
    done = 0
    while done < total:
        futures = []
        for i in range(done, min(done + window, total)):
            flux.kvs.put(h, key(i), i)
            futures.append(flux.kvs.commit_async(h))
        for f in futures:
            f.get()
        done += len(futures)
    elapsed = time.perf_counter() - t0
    h.close()
    return total / elapsed, {"commits": total, "window": window, "ops_per_commit": 1, "size": 1,
                             "durability": "always"}


@part("kvs_commit")
def bench_kvs_commit(ctx: Ctx) -> None:
    rate, params = _pipelined_commits(ctx, lambda i: f"bench.commit.d{i // 100}.k{i % 100}")
    ctx.emit("kvs_commit_per_s", rate, "commit/s", dict(params, keys="100 per directory"))


@part("kvs_commit_flat")
def bench_kvs_commit_flat(ctx: Ctx) -> None:
    rate, params = _pipelined_commits(ctx, lambda i: f"bench.flat.k{i}")
    ctx.emit("kvs_commit_flat_per_s", rate, "commit/s", dict(params, keys="one directory"))


@part("kvs_get")
def bench_kvs_get(ctx: Ctx) -> None:
    import flux.kvs

    h = ctx.instance(1).handle()
    flux.kvs.put(h, "bench.get.key", {"value": 42})
    flux.kvs.commit(h)
    for _ in range(min(200, ctx.p["gets"])):
        flux.kvs.get(h, "bench.get.key")
    clock = time.perf_counter
    samples = []
    for _ in range(ctx.p["gets"]):
        t0 = clock()
        flux.kvs.get(h, "bench.get.key")
        samples.append((clock() - t0) * 1e6)
    params = {"gets": ctx.p["gets"], "size": 1, "api": "flux.kvs.get"}
    ctx.emit("kvs_get_us_p50", statistics.median(samples), "us", params)
    ctx.emit("kvs_get_us_p99", percentile(samples, 0.99), "us", params)
    h.close()


@part("wait_event")
def bench_wait_event(ctx: Ctx) -> None:
    import flux.kvs
    from kvs.constants import FLUX_KVS_WAITCREATE, FLUX_KVS_WATCH, FLUX_KVS_WATCH_APPEND

    inst = ctx.instance(1)
    watcher, writer = inst.handle(), inst.handle()
    key = "bench.wait.eventlog"
    flux.kvs.eventlog_append(writer, key, "start")
    stream = flux.kvs.watch(watcher, key,
                            FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND | FLUX_KVS_WAITCREATE)
    stream.get()
    stream.reset()
    clock = time.perf_counter
    e2e, after_ack = [], []
    for i in range(ctx.p["appends"]):
        txn = flux.kvs.KVSTxn(writer)
        txn.append(key, b'{"timestamp":1.0,"name":"ev%d"}\n' % i)
        t0 = clock()
        txn.commit_async().get()
        t1 = clock()
        stream.wait_for(10.0)
        t2 = clock()
        stream.get()
        stream.reset()
        e2e.append((t2 - t0) * 1e3)
        after_ack.append((t2 - t1) * 1e3)
    flux.kvs.watch_cancel(watcher, stream)
    params = {"appends": ctx.p["appends"], "size": 1, "durability": "always",
              "flags": "WATCH|WATCH_APPEND"}
    ctx.emit("wait_event_latency_ms_p50", statistics.median(e2e), "ms", params)
    ctx.emit("wait_event_latency_ms_p99", percentile(e2e, 0.99), "ms", params)
    ctx.emit("wait_event_latency_after_ack_ms_p50", statistics.median(after_ack), "ms", params)
    watcher.close()
    writer.close()




def _time_command(cmd: list[str], env: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) milliseconds of RUNS runs of CMD, after one warm-up."""
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall, cpu = [], []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        wall.append((time.perf_counter() - t0) * 1e3)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1e3)
    return wall, cpu


def _emit_command(ctx: Ctx, metric: str, cmd: list[str], env: dict[str, str]) -> None:
    wall, cpu = _time_command(cmd, env, ctx.p["cli_gets"])
    ctx.emit(metric, statistics.median(wall), "ms",
             {"runs": len(wall), "size": 1, "min": round(min(wall), 2),
              "cpu_ms": round(statistics.median(cpu), 2), "bytecode": "cached",
              "command": " ".join(["flux"] + cmd[len(flux_command()):])})


@part("cli")
def bench_cli(ctx: Ctx) -> None:
    """The commands scripts call in loops, each a fresh process."""
    byte_compile()
    inst = ctx.instance(1)
    env = inst.env
    inst.flux("kvs", "put", "bench.cli=1", check=True)
    jobid = inst.flux("submit", "--setattr=system.exec.test.run_duration=0", "true",
                      check=True).stdout.strip()
    inst.flux("job", "wait-event", "-t", "30s", jobid, "clean", check=True)
    wall, cpu = _time_command([sys.executable, "-c", "pass"], env, ctx.p["cli_gets"])
    ctx.emit("cli_python_floor_ms", statistics.median(wall), "ms",
             {"runs": len(wall), "min": round(min(wall), 2),
              "cpu_ms": round(statistics.median(cpu), 2)})
    flux = flux_command()
    _emit_command(ctx, "cli_kvs_get_ms", flux + ["kvs", "get", "bench.cli"], env)
    _emit_command(ctx, "cli_eventlog_ms", flux + ["job", "eventlog", jobid], env)
    _emit_command(ctx, "cli_getattr_ms", flux + ["getattr", "rank"], env)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    g.add_argument("--tiny", action="store_true", help="minimal sizes (smoke test)")
    ap.add_argument("--only", default=",".join(PARTS),
                    help=f"comma-separated parts to run (default: all): {','.join(PARTS)}")
    args = ap.parse_args(argv)
    sizes = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    ctx = Ctx(sizes)
    try:
        for name in args.only.split(","):
            if name not in PARTS:
                ap.error(f"unknown part '{name}' (choose from {', '.join(PARTS)})")
            PARTS[name](ctx)
    finally:
        ctx.close()
    print(f"{'metric':34} {'value':>14}  unit", file=sys.stderr)
    for metric, value, unit in ctx.rows:
        print(f"{metric:34} {value:14.2f}  {unit}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
