#!/usr/bin/env python3
"""Benchmark of a configured (system) instance's overlay: many brokers as separate processes.

N brokers (32; ``--tiny``: 4), each ``flux broker --config-path`` with its own
fake hostname on its own loopback address, one shared configuration
(``[tbon] topo = "kary:2"``, CURVE over tcp), as broker.testing.SystemInstance
runs them.  Prints one JSON object per line on stdout,
``{"bench": "overlay", "metric": ..., "value": ..., "unit": ..., "params": {...}}``,
and a table on stderr.  ``--quick`` runs in under a minute.

Metrics (targets in parentheses):
  quorum_full_s        all brokers started at once until rank 0 has every one online (<= 10)
  rpc_leaf_us_p50/p99  one broker.ping from a client of rank 0 to the deepest rank
                       (tbon.level hops each way) (p50 <= 2000)
  rpc_hop_us_p50       (leaf p50 - rank 0 p50) / hops: the cost of one overlay hop, both ways
  rpc_hop_cpu_us       CPU time (all threads: Python and ZeroMQ's I/O thread) that one broker
                       between rank 0 and the leaf spends per leaf RPC, forwarding the
                       request down and the response up; median over those brokers (load on
                       the machine inflates it too, but less than the latencies; resolution:
                       one clock tick, 10 ms, over all the pings)
  event_fanout_ms_p50  an event published at rank 0 until a subscriber on every broker
                       has it (<= 50)
  lost_detect_s        SIGKILL of a leaf until rank 0 counts it lost (default timeouts scaled
                       down: tbon.child-timeout 2s; a kill is seen by the TCP
                       disconnect, not a timeout)
  broker_rss_mb        resident memory of a follower broker, median (max in params) (<= 40)
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import threading
import time
from typing import Any

import orjson

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from broker.testing import SystemInstance  # noqa: E402

SIZES = {
    "full": dict(size=32, pings=5000, events=50),
    "quick": dict(size=32, pings=1000, events=15),
    "tiny": dict(size=4, pings=50, events=3),
}

PARTS = ("quorum", "rpc", "events", "rss", "lost")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Ctx:
    def __init__(self, sizes: dict[str, Any]) -> None:
        self.p = sizes
        self.rows: list[tuple[str, float, str]] = []
        self.system: SystemInstance | None = None

    def emit(self, metric: str, value: float, unit: str, params: dict[str, Any]) -> None:
        params = {"brokers": self.p["size"], "topo": "kary:2", **params}
        print(orjson.dumps({"bench": "overlay", "metric": metric, "value": round(value, 4),
                            "unit": unit, "params": params}).decode(), flush=True)
        self.rows.append((metric, value, unit))


def deepest(size: int) -> tuple[int, int]:
    from broker.topology import Tree

    tree = Tree.kary(size, 2)
    rank = max(range(size), key=tree.level)
    return rank, tree.level(rank)


def bench_quorum(ctx: Ctx) -> None:
    size = ctx.p["size"]
    s = SystemInstance(size, topo="kary:2",
                       setattrs=["tbon.child-timeout=2s"])
    ctx.system = s
    t0 = time.monotonic()
    s.start_all()
    s.wait_full(120)
    ctx.emit("quorum_full_s", time.monotonic() - t0, "s", {"cpus": os.cpu_count()})


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process PID, all its threads."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def path_to(rank: int, size: int) -> list[int]:
    """The ranks from RANK up to 0."""
    from broker.topology import Tree

    tree = Tree.kary(size, 2)
    out = [rank]
    while out[-1] != 0:
        up = tree.parent(out[-1])
        assert up is not None
        out.append(up)
    return out


def bench_rpc(ctx: Ctx) -> None:
    s = ctx.system
    assert s is not None
    leaf, hops = deepest(ctx.p["size"])
    between = path_to(leaf, ctx.p["size"])[1:-1]
    cpu: dict[int, float] = {}
    h = s.handle(0)
    try:
        def sample(nodeid: int, n: int) -> list[float]:
            for _ in range(min(50, n)):
                h.rpc("broker.ping", {}, nodeid=nodeid).get()
            out = []
            for _ in range(n):
                t = time.perf_counter()
                h.rpc("broker.ping", {}, nodeid=nodeid).get()
                out.append((time.perf_counter() - t) * 1e6)
            return out

        local = sample(0, ctx.p["pings"])
        before = {r: cpu_seconds(s.procs[r].pid) for r in between}
        far = sample(leaf, ctx.p["pings"])
        cpu = {r: (cpu_seconds(s.procs[r].pid) - before[r]) / len(far) * 1e6 for r in between}
    finally:
        h.close()
    p50 = statistics.median(far)
    ctx.emit("rpc_leaf_us_p50", p50, "us", {"rank": leaf, "hops": hops, "n": len(far)})
    ctx.emit("rpc_leaf_us_p99", percentile(far, 0.99), "us", {"rank": leaf, "hops": hops})
    ctx.emit("rpc_hop_us_p50", max(p50 - statistics.median(local), 0.01) / max(hops, 1), "us",
             {"rank0_us_p50": round(statistics.median(local), 1), "hops": hops})
    if cpu:
        # max(): --tiny's few pings may not last one clock tick
        ctx.emit("rpc_hop_cpu_us", max(statistics.median(cpu.values()), 0.01), "us",
                 {"ranks": between, "each": [round(cpu[r], 1) for r in between]})


def bench_events(ctx: Ctx) -> None:
    s = ctx.system
    assert s is not None
    size = ctx.p["size"]
    handles = [s.handle(r) for r in range(size)]
    topic = "bench.fanout"
    for h in handles:
        h.event_subscribe(topic)
    # the subscriptions are in place once a first event reaches everyone
    got: list[list[float]] = [[] for _ in range(size)]
    n = ctx.p["events"] + 1
    barrier = threading.Barrier(size + 1)

    def listen(r: int) -> None:
        barrier.wait()
        for _ in range(n):
            handles[r].event_recv(topic)
            got[r].append(time.perf_counter())

    threads = [threading.Thread(target=listen, args=(r,), daemon=True) for r in range(size)]
    for t in threads:
        t.start()
    barrier.wait()
    pub = s.handle(0)
    sent: list[float] = []
    try:
        for i in range(n):
            sent.append(time.perf_counter())
            pub.event_publish(topic, {"i": i}).get()
            deadline = time.monotonic() + 10
            while min(len(g) for g in got) <= i:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"event {i} did not reach every broker in 10s")
                time.sleep(0.0005)
    finally:
        pub.close()
    for t in threads:
        t.join(5)
    for h in handles:
        h.close()
    spans = [(max(got[r][i] for r in range(size)) - sent[i]) * 1e3 for i in range(1, n)]
    ctx.emit("event_fanout_ms_p50", statistics.median(spans), "ms",
             {"n": len(spans), "max": round(max(spans), 2)})


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def bench_rss(ctx: Ctx) -> None:
    s = ctx.system
    assert s is not None
    values = [rss_mb(s.procs[r].pid) for r in range(1, ctx.p["size"])]
    ctx.emit("broker_rss_mb", statistics.median(values), "MB",
             {"max": round(max(values), 1), "rank0": round(rss_mb(s.procs[0].pid), 1)})


def bench_lost(ctx: Ctx) -> None:
    s = ctx.system
    assert s is not None
    leaf, _hops = deepest(ctx.p["size"])
    t0 = time.monotonic()
    s.held.add(leaf)
    s.signal(leaf, signal.SIGKILL)
    s.wait_for(lambda: leaf in s.state()["lost"], 30, f"rank {leaf} lost", interval=0.005)
    ctx.emit("lost_detect_s", time.monotonic() - t0, "s",
             {"rank": leaf, "child_timeout_s": 2.0})


FUNCS = {"quorum": bench_quorum, "rpc": bench_rpc, "events": bench_events, "rss": bench_rss,
         "lost": bench_lost}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="fewer samples, under a minute")
    g.add_argument("--tiny", action="store_true", help="4 brokers, minimal samples (smoke test)")
    ap.add_argument("--only", default=",".join(PARTS),
                    help=f"comma-separated parts (default: all; quorum always runs): "
                         f"{','.join(PARTS)}")
    args = ap.parse_args(argv)
    names = args.only.split(",")
    for name in names:
        if name not in FUNCS:
            ap.error(f"unknown part '{name}' (choose from {', '.join(PARTS)})")
    ctx = Ctx(SIZES["tiny" if args.tiny else "quick" if args.quick else "full"])
    try:
        bench_quorum(ctx)
        for name in PARTS[1:]:
            if name in names:
                FUNCS[name](ctx)
    finally:
        if ctx.system is not None:
            ctx.system.kill()
    print(f"{'metric':26} {'value':>12}  unit", file=sys.stderr)
    for metric, value, unit in ctx.rows:
        print(f"{metric:26} {value:12.2f}  {unit}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
