#!/usr/bin/env python3
"""Benchmark of the store and KVS engine (no broker).

Prints one JSON object per line on stdout,
``{"bench": "store", "metric": ..., "value": ..., "unit": ..., "params": {...}}``,
and a table on stderr.  ``--quick`` runs in well under a minute;
``--tiny`` only checks that every metric can be produced.

Metrics:
  append_events_per_s       job eventlogs at job.<dothex>.eventlog, N events each,
                            appended by many txns per engine.commit (group commit)
  disk_bytes_per_job        data.mdb size / jobs after the appends (before GC)
  live_bytes_per_job_after_gc  LMDB pages in use after GC, per job
  compacted_bytes_per_job   data.mdb size after GC + compact, per job
  lookup_per_s              random job eventlog reads
  commit_latency_ms_p50/p99 one small txn per commit
  append_cost_ratio_10k_vs_10  time per append to a 10,000-event log / to a 10-event log
  bigdir_put_cost_ratio     put+commit into a 100,000-entry dir / into a 10-entry dir
The two ratios are measured with the run's durability (default always, the
store's default) and again as *_nosync with durability none, which leaves
only the engine's own cost.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import orjson

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from eventstore.store import Store  # noqa: E402
from kvs import treeobj  # noqa: E402
from kvs.constants import FLUX_KVS_APPEND  # noqa: E402
from kvs.engine import KVS  # noqa: E402
from kvs.txn import Txn  # noqa: E402

SIZES = {
    "full": dict(jobs=10_000, events=10, batch=1000, lookups=20_000, latency=500,
                 long_log=10_000, ratio_appends=1000, bigdir=100_000, bigdir_puts=500),
    "quick": dict(jobs=3_000, events=10, batch=1000, lookups=10_000, latency=300,
                  long_log=10_000, ratio_appends=500, bigdir=100_000, bigdir_puts=300),
    "tiny": dict(jobs=60, events=10, batch=20, lookups=100, latency=20,
                 long_log=300, ratio_appends=20, bigdir=600, bigdir_puts=10),
}

_EVENTS = [
    ("submit", {"userid": 1001, "urgency": 16, "flags": 0, "version": 1}),
    ("validate", None),
    ("depend", None),
    ("priority", {"priority": 16}),
    ("alloc", {"annotations": {"sched": {"resource_summary": "rank0/core0"}}}),
    ("start", None),
    ("finish", {"status": 0}),
    ("release", {"ranks": "all", "final": True}),
    ("free", None),
    ("clean", None),
]
_JOBSPEC = orjson.dumps({
    "version": 1,
    "resources": [{"type": "slot", "count": 1, "label": "task",
                   "with": [{"type": "core", "count": 1}]}],
    "tasks": [{"command": ["hostname"], "slot": "task", "count": {"per_slot": 1}}],
    "attributes": {"system": {"duration": 0, "cwd": "/home/user", "environment": {}}},
})


def emit(metric: str, value: float, unit: str, params: dict[str, Any], rows: list[Any]) -> None:
    print(orjson.dumps({"bench": "store", "metric": metric, "value": round(value, 4),
                        "unit": unit, "params": params}).decode(), flush=True)
    rows.append((metric, value, unit))


def dothex(i: int) -> str:
    # FLUID-like ids: a few jobs per millisecond from one generator
    fluid = ((1_700_000_000_000 + i // 4) << 24) | (i % 4)
    fluid &= (1 << 64) - 1
    return "%04x.%04x.%04x.%04x" % ((fluid >> 48) & 0xFFFF, (fluid >> 32) & 0xFFFF,
                                    (fluid >> 16) & 0xFFFF, fluid & 0xFFFF)


def event_line(i: int, k: int) -> bytes:
    name, ctx = _EVENTS[k % len(_EVENTS)]
    ev: dict[str, Any] = {"timestamp": 1738774194.078433 + i * 0.001 + k * 0.01, "name": name}
    if ctx is not None:
        ev["context"] = ctx
    return orjson.dumps(ev) + b"\n"


def append_op(key: str, data: bytes) -> dict[str, Any]:
    return {"key": key, "flags": FLUX_KVS_APPEND, "dirent": treeobj.val(data)}


def put_op(key: str, data: bytes) -> dict[str, Any]:
    return {"key": key, "flags": 0, "dirent": treeobj.val(data)}


def bench_jobs(tmp: str, p: dict[str, Any], durability: str, rows: list[Any]) -> None:
    params = {"jobs": p["jobs"], "events": p["events"], "txns_per_commit": p["batch"],
              "durability": durability, "jobspec_per_job": True}
    store = Store(os.path.join(tmp, "jobs"), durability=durability)
    kvs = KVS(store)
    ids = [dothex(i) for i in range(p["jobs"])]
    elapsed = 0.0
    commits = 0
    for k in range(p["events"]):
        for lo in range(0, len(ids), p["batch"]):
            txns = []
            for i in range(lo, min(lo + p["batch"], len(ids))):
                ops = [append_op(f"job.{ids[i]}.eventlog", event_line(i, k))]
                if k == 0:
                    ops.append(put_op(f"job.{ids[i]}.jobspec", _JOBSPEC))
                txns.append(Txn(ops))
            t0 = time.perf_counter()
            res = kvs.commit(txns)
            elapsed += time.perf_counter() - t0
            commits += 1
            bad = [r.error for r in res if r.error is not None]
            if bad:
                raise SystemExit(f"commit failed: {bad[0]}")
    total = p["jobs"] * p["events"]
    emit("append_events_per_s", total / elapsed, "events/s",
         {**params, "commits": commits, "timed": "KVS.commit calls (ops built beforehand)"}, rows)

    st = store.stats()
    emit("disk_bytes_per_job", st.file_bytes / p["jobs"], "bytes", params, rows)

    rng = random.Random(1)
    keys = [f"job.{ids[rng.randrange(len(ids))]}.eventlog" for _ in range(p["lookups"])]
    expect = sum(len(event_line(0, k)) for k in range(p["events"])) - 10
    t0 = time.perf_counter()
    for key in keys:
        if len(kvs.get(key)) < expect:
            raise SystemExit(f"{key}: short eventlog")
    dt = time.perf_counter() - t0
    emit("lookup_per_s", len(keys) / dt, "lookups/s", {"jobs": p["jobs"], "cached": True}, rows)
    kvs.dropcache()
    t0 = time.perf_counter()
    for key in keys[: max(1, len(keys) // 4)]:
        kvs.get(key)
    dt = time.perf_counter() - t0
    emit("lookup_cold_per_s", max(1, len(keys) // 4) / dt, "lookups/s",
         {"jobs": p["jobs"], "cached": "dropcache first"}, rows)

    t0 = time.perf_counter()
    gc = kvs.gc()
    gc_s = time.perf_counter() - t0
    st = store.stats()
    emit("live_bytes_per_job_after_gc", st.live_bytes / p["jobs"], "bytes",
         {**params, "freed_blobs": gc.freed_blobs, "kept_blobs": gc.kept_blobs,
          "gc_seconds": round(gc_s, 3)}, rows)
    store.compact()
    st = store.stats()
    emit("compacted_bytes_per_job", st.file_bytes / p["jobs"], "bytes", params, rows)
    store.close()


def bench_latency(tmp: str, p: dict[str, Any], durability: str, rows: list[Any]) -> None:
    store = Store(os.path.join(tmp, "latency"), durability=durability)
    kvs = KVS(store)
    lat = []
    for i in range(p["latency"]):
        txn = Txn([put_op(f"test.key{i % 50}", b"value %d" % i)])
        t0 = time.perf_counter()
        kvs.commit([txn])[0].check()
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    params = {"durability": durability, "commits": len(lat)}
    emit("commit_latency_ms_p50", statistics.median(lat), "ms", params, rows)
    emit("commit_latency_ms_p99", lat[min(len(lat) - 1, int(len(lat) * 0.99))], "ms", params, rows)
    store.close()


def _timed_commit(kvs: KVS, txn: Txn) -> float:
    t0 = time.perf_counter()
    kvs.commit([txn])[0].check()
    return time.perf_counter() - t0


def _ratio_modes(path: str, durability: str) -> list[tuple[str, str]]:
    """(metric suffix, durability) to measure a ratio in: the run's mode, and without syncs."""
    modes = [("", durability)]
    if durability != "none":
        modes.append(("_nosync", "none"))
    return modes


def bench_append_ratio(tmp: str, p: dict[str, Any], durability: str, rows: list[Any]) -> None:
    """Per-append cost on a long log vs on short logs."""
    path = os.path.join(tmp, "ratio")
    line = event_line(0, 4)
    n_small = max(1, p["ratio_appends"] // 10)
    modes = _ratio_modes(path, durability)
    with Store(path, durability="none") as store:
        kvs = KVS(store)
        setup: list[Txn] = []
        for _ in range(p["long_log"]):
            setup.append(Txn([append_op("logs.long", line)]))
            if len(setup) == 500:
                kvs.commit(setup)
                setup = []
        for m in range(len(modes)):
            for j in range(n_small):
                for _ in range(10):
                    setup.append(Txn([append_op(f"logs.m{m}s{j}", line)]))
        kvs.commit(setup)
    for m, (suffix, mode) in enumerate(modes):
        with Store(path, durability=mode) as store:
            kvs = KVS(store)
            kvs.get("logs.long")  # warm the cache
            # interleaved, so that load from elsewhere on the machine hits both alike;
            # each short log goes from 10 to 20 events, the long one from N to N + appends
            small, large = [], []
            for _ in range(10):
                for j in range(n_small):
                    small.append(_timed_commit(kvs, Txn([append_op(f"logs.m{m}s{j}", line)])))
                    large.append(_timed_commit(kvs, Txn([append_op("logs.long", line)])))
            events = kvs.get_treeobj("logs.long")["size"] // len(line)
        emit("append_cost_ratio_10k_vs_10" + suffix, statistics.mean(large) / statistics.mean(small), "ratio",
             {"long_log_events": events, "appends": len(small), "durability": mode,
              "small_us": round(statistics.mean(small) * 1e6, 1),
              "large_us": round(statistics.mean(large) * 1e6, 1)}, rows)


def bench_bigdir(tmp: str, p: dict[str, Any], durability: str, rows: list[Any]) -> None:
    """put+commit into a directory of N entries vs into one of 10."""
    path = os.path.join(tmp, "bigdir")
    v = b"x" * 16
    with Store(path, durability="none") as store:
        kvs = KVS(store)
        for lo in range(0, p["bigdir"], 5000):
            kvs.commit([Txn([put_op(f"big.k{i}", v) for i in range(lo, min(lo + 5000, p["bigdir"]))])])
        kvs.commit([Txn([put_op(f"small.k{i}", v) for i in range(10)])])
    rng = random.Random(2)
    for suffix, mode in _ratio_modes(path, durability):
        with Store(path, durability=mode) as store:
            kvs = KVS(store)
            kvs.listdir("big")  # warm the cache: the steady state of a running instance
            big, small = [], []
            for i in range(p["bigdir_puts"]):
                # a new value for an existing entry, so both directories keep their size
                big.append(_timed_commit(kvs, Txn([put_op(f"big.k{rng.randrange(p['bigdir'])}", b"v%d" % i)])))
                small.append(_timed_commit(kvs, Txn([put_op(f"small.k{i % 10}", b"v%d" % i)])))
            assert len(kvs.listdir("small")) == 10
        emit("bigdir_put_cost_ratio" + suffix, statistics.mean(big) / statistics.mean(small), "ratio",
             {"entries": p["bigdir"], "small_entries": 10, "puts": p["bigdir_puts"], "durability": mode,
              "big_us": round(statistics.mean(big) * 1e6, 1),
              "small_us": round(statistics.mean(small) * 1e6, 1)}, rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    g.add_argument("--tiny", action="store_true", help="minimal sizes (smoke test)")
    ap.add_argument("--durability", default="always", choices=["always", "batch", "none"])
    ap.add_argument("--dir", help="work directory (default: a temporary one, removed)")
    ap.add_argument("--only", default="jobs,latency,ratio,bigdir",
                    help="comma-separated parts to run (default: all): jobs,latency,ratio,bigdir")
    args = ap.parse_args(argv)
    p = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    tmp = args.dir or tempfile.mkdtemp(prefix="bench_store.")
    rows: list[Any] = []
    try:
        parts = set(args.only.split(","))
        if "jobs" in parts:
            bench_jobs(tmp, p, args.durability, rows)
        if "latency" in parts:
            bench_latency(tmp, p, args.durability, rows)
        if "ratio" in parts:
            bench_append_ratio(tmp, p, args.durability, rows)
        if "bigdir" in parts:
            bench_bigdir(tmp, p, args.durability, rows)
    finally:
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'metric':34} {'value':>14}  unit", file=sys.stderr)
    for metric, value, unit in rows:
        print(f"{metric:34} {value:14.2f}  {unit}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
