"""Online GC on a running instance: purged jobs' blobs go, while jobs keep flowing."""
from __future__ import annotations

import os
import subprocess
import time

from broker.testing import TestInstance, flux_command
from helpers.live import JOBS_CONF


def _instance(tmp_path, *setattrs: str) -> TestInstance:
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    os.chmod(conf, 0o755)
    (conf / "jobs.toml").write_text(JOBS_CONF)
    return TestInstance(config_path=str(conf),
                        setattrs=[f"statedir={tmp_path / 'state'}", *setattrs]).start()


def _root_blob(inst: TestInstance) -> str:
    """The primary namespace's root blob now (a purge replaces it)."""
    r = inst.flux("kvs", "getroot", "--blobref")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_gc_reclaims_purged_jobs_while_jobs_run_and_restart_agrees(tmp_path):
    inst = _instance(tmp_path)
    try:
        ids = inst.flux("submit", "--cc=1-40", "true").stdout.split()
        inst.flux("queue", "drain", timeout=60)
        old = [_root_blob(inst)]
        assert inst.flux("content", "load", old[0]).returncode == 0
        r = inst.flux("job", "purge", "--force", "--num-limit=0")
        assert "purged 40" in r.stdout
        # the job manager pins the root of its last checkpoint (taken every 2 s),
        # which may be OLD itself: wait for the checkpoint after the purge
        h0 = inst.handle()
        deadline = time.monotonic() + 15
        while h0.rpc("content.pins", {}).get()["pins"].get("job-manager", {}).get("ref") in \
                (None, old[0]) or time.monotonic() < deadline - 12:
            assert time.monotonic() < deadline, "no checkpoint after the purge"
            time.sleep(0.2)
        h0.close()
        # jobs keep coming while the collection runs
        env = inst.env
        busy = subprocess.Popen([*flux_command(), "submit", "--cc=1-60", "true"],
                                env=env, stdout=subprocess.PIPE, text=True)
        h = inst.handle()
        rep = h.rpc("content.gc", {"grace": 0}).get()
        assert busy.wait(60) == 0
        later = busy.stdout.read().split()
        assert rep["freed_blobs"] > 40 and rep["freed_bytes"] > 0
        assert rep["longest_pause"] < 1.0
        r = inst.flux("content", "load", old[0])
        assert r.returncode == 1 and "No such file or directory" in r.stderr
        inst.flux("queue", "drain", timeout=60)
        r = inst.flux("jobs", "-an", "-o", "{id} {result}")
        rows = dict(line.split() for line in r.stdout.splitlines())
        assert sorted(rows) == sorted(later) and set(rows.values()) == {"COMPLETED"}
        for jobid in later[:5]:
            assert inst.flux("job", "eventlog", jobid).returncode == 0
        # the CLI reports what a second collection did (nothing left to free but
        # what the last few seconds replaced)
        r = inst.flux("content", "gc")
        assert r.returncode == 0 and r.stdout.startswith("freed ") and "longest pause" in r.stdout
        inst.stop()
        inst = _instance(tmp_path)
        r = inst.flux("jobs", "-an", "-o", "{id} {result}")
        assert dict(line.split() for line in r.stdout.splitlines()) == rows
        assert "replaying every job" not in inst.flux("dmesg").stdout
        # after a kill -9 the job manager diffs from its last checkpoint's root:
        # a collection must not have taken it (it is pinned)
        time.sleep(2.5)                      # a periodic checkpoint
        inst.flux("kvs", "put", "unrelated=1")
        inst.handle().rpc("content.gc", {"grace": 0}).get()
        held = inst.flux("submit", "--urgency=hold", "true").stdout.strip()
        inst.kill()
        inst = _instance(tmp_path)
        r = inst.flux("jobs", "-an", "-o", "{id} {state}")
        states = dict(line.split() for line in r.stdout.splitlines())
        assert states == {**{jobid: "INACTIVE" for jobid in rows}, held: "SCHED"}
        assert "replaying every job" not in inst.flux("dmesg").stdout
        inst.flux("cancel", held)
    finally:
        inst.stop()


def test_gc_starts_by_itself_past_the_threshold(tmp_path):
    inst = _instance(tmp_path, "kvs.gc-threshold=4k")
    try:
        assert inst.flux("getattr", "kvs.gc-threshold").stdout.strip() == "4096"
        for i in range(8):
            assert inst.flux("kvs", "put", f"big={'x' * 2000}{i}").returncode == 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "online GC: freed" in inst.flux("dmesg").stdout:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no automatic collection within 30 s")
        assert inst.flux("kvs", "get", "big").stdout.strip().endswith("7")
        r = inst.flux("setattr", "kvs.gc-threshold", "lots")
        assert r.returncode == 1 and "kvs.gc-threshold" in r.stderr
        assert inst.flux("setattr", "kvs.gc-threshold", "0").returncode == 0
        assert inst.flux("getattr", "kvs.gc-threshold").stdout.strip() == "0"
    finally:
        inst.stop()
