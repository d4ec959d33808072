"""tests/bench/bench_overlay.py keeps working: every metric is a JSON line, a table on stderr."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
METRICS = {"quorum_full_s", "rpc_leaf_us_p50", "rpc_leaf_us_p99", "rpc_hop_us_p50",
           "rpc_hop_cpu_us", "event_fanout_ms_p50", "lost_detect_s", "broker_rss_mb"}


def test_bench_overlay_tiny_emits_every_metric(tmp_path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tests/bench/bench_overlay.py"), "--tiny"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert {r["metric"] for r in rows} == METRICS
    assert all(r["bench"] == "overlay" and r["value"] > 0 and r["unit"]
               and r["params"]["brokers"] == 4 for r in rows)
    assert "metric" in proc.stderr


def test_bench_overlay_rejects_unknown_part() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tests/bench/bench_overlay.py"), "--tiny",
                           "--only", "nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown part 'nope'" in proc.stderr
