"""kill -9 recovery: rounds of mixed load, the broker SIGKILLed at a random moment, a restart,
and nothing acknowledged is lost.

Each round starts the instance on the same statedir and runs, at once:
CLI bursts of test-mode jobs, pipelined Python submits, KVS puts, eventlog
appends and a real job (``sleep``) that is running when the kill comes.
After a random 0.3-1.5 s every process of the instance's session is
SIGKILLed.  The next start must show every acknowledged job (in ``flux
jobs`` and in the KVS, with an eventlog that parses), key and event; no
job may be stuck; the real job's task must not outlive its broker; and
job ids keep increasing.

``RECOVERY_ROUNDS`` (default 3) sets the number of rounds; the long run
is ``tests/bench/bench_recovery.py``.
"""
from __future__ import annotations

import base64
import os
import random
import subprocess
import threading
import time

import orjson
import pytest

from broker.testing import TestInstance, flux_command
from eventstore.eventlog import decode_events
from flux.constants import FLUX_KVS_APPEND
from flux.job.JobID import JobID

ROUNDS = int(os.environ.get("RECOVERY_ROUNDS", "3"))
# a marker only the real job of this test runs, to find it in the process table
MARK = f"{9000 + os.getpid() % 900}"


class Acked:
    """What clients were told is committed (thread-safe appends)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: set[int] = set()
        self.keys: dict[str, str] = {}
        self.events: dict[str, list[str]] = {}


def _val(data: bytes) -> dict:
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode()}


def _cli_bursts(inst: TestInstance, acked: Acked, stop: threading.Event) -> None:
    while not stop.is_set():
        r = subprocess.run([*flux_command(), "submit", "--cc=1-20",
                            "--setattr=system.exec.test.run_duration=0.01s", "true"],
                           env=inst.env, capture_output=True, text=True, timeout=60)
        with acked.lock:
            acked.jobs.update(JobID(x) for x in r.stdout.split())
        if r.returncode != 0:
            return


def _api_submits(inst: TestInstance, acked: Acked, stop: threading.Event) -> None:
    from flux.job import JobspecV1, submit_async

    spec = JobspecV1.from_command(["true"])
    spec.setattr("system.exec.test.run_duration", "0.01s")
    try:
        h = inst.handle()
        while not stop.is_set():
            futures = [submit_async(h, spec) for _ in range(20)]
            for f in futures:
                jobid = f.get_id()
                with acked.lock:
                    acked.jobs.add(int(jobid))
    except OSError:
        return


def _kvs_writes(inst: TestInstance, acked: Acked, stop: threading.Event, rnd: int) -> None:
    i = 0
    log = f"recovery.log{rnd}"
    try:
        h = inst.handle()
        while not stop.is_set():
            key = f"recovery.r{rnd}.k{i}"
            name = f"ev{i}"
            line = orjson.dumps({"timestamp": time.time(), "name": name}) + b"\n"
            put = h.rpc("kvs.commit", {"namespace": "primary", "flags": 0,
                                       "ops": [{"key": key, "flags": 0,
                                                "dirent": _val(orjson.dumps(i))}]})
            app = h.rpc("kvs.commit", {"namespace": "primary", "flags": 0,
                                       "ops": [{"key": log, "flags": FLUX_KVS_APPEND,
                                                "dirent": _val(line)}]})
            put.get()
            with acked.lock:
                acked.keys[key] = str(i)
            app.get()
            with acked.lock:
                acked.events.setdefault(log, []).append(name)
            i += 1
    except OSError:
        return


def _task_alive() -> bool:
    """Whether a live ``sleep MARK`` is in the process table (read from /proc)."""
    want = f"sleep\0{MARK}\0".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if fh.read() != want:
                    continue
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                if not fh.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except OSError:
            continue
    return False


def _check(inst: TestInstance, acked: Acked) -> int:
    """Everything acknowledged is there and every active job ends; returns the largest id."""
    h = inst.handle()
    listed = {int(JobID(x)) for x in inst.flux("jobs", "-a", "-n", "--count=0", "-o", "{id}",
                                               timeout=120).stdout.split()}
    missing = acked.jobs - listed
    assert not missing, f"{len(missing)} acknowledged jobs lost, e.g. {sorted(missing)[:3]}"
    # every job's eventlog is whole
    futures = [(jobid, h.rpc("job-info.lookup", {"id": jobid, "keys": ["eventlog"],
                                                 "flags": 0})) for jobid in sorted(listed)]
    for jobid, f in futures:
        events = decode_events(f.get()["eventlog"])
        assert events[0]["name"] == "submit", (jobid, events[:2])
    for key, want in acked.keys.items():
        assert inst.flux("kvs", "get", key).stdout.strip() == want, key
    for log, names in acked.events.items():
        raw = inst.flux("kvs", "get", "-r", log).stdout
        got = [e["name"] for e in decode_events(raw)]
        assert got[:len(names)] == names, (log, len(got), len(names))
    # no job is stuck: whatever was active at the kill ends by itself
    r = inst.flux("queue", "drain", "--timeout=60", timeout=90)
    assert r.returncode == 0, (r.stderr, inst.flux("jobs", "-o", "{id} {state} {name}").stdout)
    h.close()
    return max(listed) if listed else 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill9_rounds_lose_nothing_acknowledged(tmp_path):
    statedir = tmp_path / "state"
    rng = random.Random(int(os.environ.get("RECOVERY_SEED", "7")))
    acked = Acked()
    last_max = 0

    def start() -> TestInstance:
        return TestInstance(setattrs=[f"statedir={statedir}"]).start(timeout=120)

    for rnd in range(ROUNDS):
        inst = start()
        if rnd:
            last_max = max(last_max, _check(inst, acked))
        r = inst.flux("submit", "sleep", MARK)
        assert r.returncode == 0, r.stderr
        real = JobID(r.stdout.strip())
        acked.jobs.add(int(real))
        assert inst.flux("job", "wait-event", "-t", "30", str(real), "start").returncode == 0
        stop = threading.Event()
        workers = [threading.Thread(target=_cli_bursts, args=(inst, acked, stop)),
                   threading.Thread(target=_api_submits, args=(inst, acked, stop)),
                   threading.Thread(target=_kvs_writes, args=(inst, acked, stop, rnd))]
        for t in workers:
            t.start()
        time.sleep(rng.uniform(0.3, 1.5))
        inst.kill()
        stop.set()
        for t in workers:
            t.join(60)
        assert not inst.live_pids()
        # the real job's task dies with its broker
        deadline = time.monotonic() + 15
        while _task_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _task_alive(), f"sleep {MARK} outlived its killed instance"
    inst = start()
    try:
        last_max = max(last_max, _check(inst, acked))
        # ids keep increasing across every kill
        new = int(JobID(inst.flux("submit", "--setattr=system.exec.test.run_duration=0",
                                  "true").stdout.strip()))
        assert new > last_max >= max(acked.jobs)
        assert len(acked.jobs) > ROUNDS * 20 and len(acked.keys) > ROUNDS * 5
        assert sum(map(len, acked.events.values())) > ROUNDS * 5
    finally:
        inst.stop()
