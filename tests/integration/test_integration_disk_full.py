"""A full disk (issue 11): commits are refused with ENOSPC, reads go on, the job pipeline
waits instead of dropping events, and everything resumes by itself when space returns.

The broker's file size limit (RLIMIT_FSIZE, set from outside with prlimit) makes LMDB's
writes fail exactly as a full filesystem does.
"""
from __future__ import annotations

import json
import os
import resource
import time

import pytest

from broker.testing import TestInstance
from jobmgr.job import replay

CONF = """
[exec]
test = true
[resource]
noverify = true
monitor-force-up = true
[[resource.config]]
hosts = "node0"
cores = "0-31"
"""


def eventlog(inst: TestInstance, jobid: str) -> list[dict]:
    out = inst.flux("job", "eventlog", "-f", "json", jobid).stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.slow
def test_a_full_disk_stalls_the_pipeline_then_it_recovers(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "jobs.toml").write_text(CONF)
    state = tmp_path / "state"

    def start() -> TestInstance:
        return TestInstance(config_path=str(conf), setattrs=[f"statedir={state}"]).start()

    inst = start()
    try:
        inst.flux("kvs", "put", "before=1", check=True)
        out = inst.flux("submit", "--cc=1-20", "--setattr=system.exec.test.run_duration=3s",
                        "true", check=True).stdout
        jobs = out.split()
        inst.flux("job", "wait-event", "-t", "30", jobs[-1], "start", check=True)
        pid = inst.broker_pids[0]
        soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        # the disk is full: no write may go past the first page (the soft limit only:
        # raising a hard limit again needs privileges)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, hard))
        try:
            r = inst.flux("kvs", "put", "during=1")
            assert r.returncode == 1 and "disk full" in r.stderr, r.stderr
            r = inst.flux("submit", "true")
            assert r.returncode == 1 and "disk full" in r.stderr, r.stderr
            # reads go on
            assert inst.flux("kvs", "get", "before").stdout == "1\n"
            assert inst.flux("jobs", "-n", "-o", "{id}").returncode == 0
            time.sleep(4)              # the jobs end meanwhile: their events must wait
            log = inst.flux("dmesg").stdout
            assert "sending it again" in log, log[-3000:]
            for jobid in jobs:
                assert "clean" not in [e["name"] for e in eventlog(inst, jobid)]
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
        # space is back: nothing to do but wait
        for jobid in jobs:
            inst.flux("job", "wait-event", "-t", "60", jobid, "clean", check=True)
        inst.flux("kvs", "put", "after=1", check=True)
        for jobid in jobs:
            events = eventlog(inst, jobid)
            names = [e["name"] for e in events]
            assert names.count("alloc") == 1 and names.count("finish") == 1, names
            rec = replay(1, events)            # every event in order, none lost
            assert rec.finish_status == 0 and rec.result.name == "COMPLETED"
        inst.stop()
        inst = start()
        states = inst.flux("jobs", "-a", "-n", "-o", "{status_abbrev}").stdout.split()
        assert states.count("CD") == 20
        assert inst.flux("kvs", "get", "after").stdout == "1\n"
        assert inst.flux("kvs", "get", "during").returncode == 1
    finally:
        inst.stop()
    assert os.path.exists(state)


@pytest.mark.slow
def test_a_jobs_output_written_while_the_disk_is_full_is_kept(tmp_path):
    # the shell's output commits are refused with ENOSPC: it tries them again, in
    # order, and nothing the job wrote is lost once there is room (lines were dropped)
    state = tmp_path / "state"
    inst = TestInstance(setattrs=[f"statedir={state}"]).start()
    try:
        r = inst.flux("submit", "sh", "-c", "for i in $(seq 1 30); do echo line$i; "
                      "sleep 0.1; done", check=True)
        jobid = r.stdout.strip()
        inst.flux("job", "wait-event", "-t", "30", "-p", "exec", jobid, "shell.start",
                  check=True)
        pid = inst.broker_pids[0]
        soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, hard))
        try:
            time.sleep(2.0)             # the job writes most of its lines meanwhile
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
        r = inst.flux("job", "attach", jobid, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [f"line{i}" for i in range(1, 31)]
    finally:
        inst.stop()
