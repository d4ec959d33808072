"""tests/bench/bench_hierarchy.py and bench_recovery.py keep working: every metric is a JSON line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]

BENCHES = {
    "hierarchy": {"batch_start_s", "hier_throughput_jobs_per_s", "hier_throughput_ratio"},
    "recovery": {"restart_after_kill_s", "restart_clean_s", "gc_disk_bytes_per_job",
                 "gc_file_growth_ratio", "gc_longest_pause_ms", "gc_collections"},
}
# a tiny run may end before the first automatic collection
MAY_BE_ZERO = {"gc_longest_pause_ms", "gc_collections"}


@pytest.mark.parametrize("name", sorted(BENCHES))
def test_bench_tiny_emits_every_metric(name: str, tmp_path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / f"tests/bench/bench_{name}.py"), "--tiny"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert rows and all(r["bench"] == name and isinstance(r["value"], (int, float)) and r["unit"]
                        and (r["value"] > 0 or r["metric"] in MAY_BE_ZERO) for r in rows)
    assert {r["metric"] for r in rows} == BENCHES[name]
    assert "metric" in proc.stderr   # the table


@pytest.mark.parametrize("name", sorted(BENCHES))
def test_bench_rejects_unknown_part(name: str) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / f"tests/bench/bench_{name}.py"), "--tiny",
                           "--only", "nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown part 'nope'" in proc.stderr
