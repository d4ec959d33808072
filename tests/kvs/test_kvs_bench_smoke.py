"""tests/bench/bench_store.py keeps working: every metric comes out as a JSON line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
METRICS = {
    "append_events_per_s", "append_cost_ratio_10k_vs_10", "lookup_per_s", "disk_bytes_per_job",
    "live_bytes_per_job_after_gc", "commit_latency_ms_p50", "commit_latency_ms_p99", "bigdir_put_cost_ratio",
}


def test_bench_store_tiny_emits_all_metrics(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tests/bench/bench_store.py"), "--tiny",
                           "--dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert all(r["bench"] == "store" and isinstance(r["value"], (int, float)) and r["unit"] for r in rows)
    assert METRICS <= {r["metric"] for r in rows}
    assert "append_events_per_s" in proc.stderr  # the table
