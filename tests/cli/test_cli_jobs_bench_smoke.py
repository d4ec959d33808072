"""tests/bench/bench_jobs.py keeps working: every metric comes out as a JSON line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
METRICS = {"ingest_jobs_per_s", "throughput_jobs_per_s", "throughput_ratio_50k_vs_1k",
           "flux_jobs_ms", "restart_s", "rss_bytes_per_inactive_job",
           "rss_file_bytes_per_inactive_job", "update_per_s", "update_cli_ms"}
# memory growth over a few dozen jobs can round to nothing
MAY_BE_ZERO = {"rss_bytes_per_inactive_job", "rss_file_bytes_per_inactive_job"}


def test_bench_jobs_tiny_emits_all_metrics() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tests/bench/bench_jobs.py"), "--tiny"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert all(r["bench"] == "jobs" and isinstance(r["value"], (int, float))
               and (r["value"] > 0 or r["metric"] in MAY_BE_ZERO and r["value"] == 0)
               and r["unit"] for r in rows)
    assert {r["metric"] for r in rows} == METRICS
    # one throughput and flux_jobs row per size, one restart row per size
    assert sum(r["metric"] == "throughput_jobs_per_s" for r in rows) == 2
    assert sum(r["metric"] == "flux_jobs_ms" for r in rows) == 2
    assert [r["params"]["inactive"] for r in rows if r["metric"] == "restart_s"] == [20, 40]
    assert "throughput_ratio_50k_vs_1k" in proc.stderr   # the table


def test_bench_jobs_rejects_unknown_part() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tests/bench/bench_jobs.py"), "--tiny",
                           "--only", "nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown part 'nope'" in proc.stderr
