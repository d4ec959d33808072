"""flux job last, status, timeleft and taskmap against real instances (flux-job(1)).

The job tools run real jobs on a size-2 instance; ``last`` gets an
instance of its own, since it lists every job of the user there.
"""
from __future__ import annotations

import json

import pytest

from broker.testing import TestInstance
from helpers.live import submit_real
from flux.hostlist import Hostlist

pytestmark = pytest.mark.slow

# tests run from inside a job must not see it: timeleft would report it
NOT_IN_A_JOB = {"FLUX_JOB_ID": ""}


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=2).start()
    yield inst
    inst.stop()


submit = submit_real


def wait_event(inst, jobid, name):
    r = inst.flux("job", "wait-event", "-t", "30s", str(jobid), name)
    assert r.returncode == 0, r.stderr


def job(inst, *args, timeout=60):
    return inst.flux("job", *args, timeout=timeout, env=NOT_IN_A_JOB)


def lines(r):
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


# -- last -----------------------------------------------------------------------------

def test_last_lists_the_users_jobs_newest_first():
    inst = TestInstance().start()
    try:
        r = job(inst, "last")
        assert r.returncode == 1
        assert r.stderr.strip() == "flux-job: job history is empty"

        r = inst.flux("submit", "--cc=0-2", "true")
        assert r.returncode == 0, r.stderr
        ids = r.stdout.split()                        # in submission order
        assert len(ids) == 3
        newest_first = ids[::-1]

        assert lines(job(inst, "last")) == [ids[-1]]
        assert lines(job(inst, "last", "2")) == newest_first[:2]
        assert lines(job(inst, "last", "[:2]")) == newest_first[:2]
        assert lines(job(inst, "last", "[0:4]")) == newest_first
        assert lines(job(inst, "last", "[-1:]")) == [ids[0]]
        assert lines(job(inst, "last", "[:]")) == newest_first
        assert lines(job(inst, "last", "[::-1]")) == ids
        assert lines(job(inst, "last", "10")) == newest_first

        for bad in ("0", "x", "[a:b]", "[::0]"):
            r = job(inst, "last", bad)
            assert r.returncode == 1 and r.stderr.startswith("flux-job: "), (bad, r.stderr)
    finally:
        inst.stop()


# -- status ---------------------------------------------------------------------------

def test_status_exit_codes(inst):
    ok = submit(inst, "true")
    three = submit(inst, "sh", "-c", "exit 3")
    assert job(inst, "status", str(ok)).returncode == 0
    assert job(inst, "status", str(three)).returncode == 3
    # the largest exit code of all the jobs
    assert job(inst, "status", str(ok), str(three)).returncode == 3

    r = job(inst, "status", "--json", str(three))
    result = json.loads(r.stdout)
    assert result["id"] == int(three) and result["waitstatus"] == 3 << 8

    r = job(inst, "status", "-v", str(three))
    assert r.returncode == 3 and "exit code 3" in r.stderr


def test_status_of_canceled_jobs(inst):
    # canceled before it ran: no exit code, so the exception exit code (default 1)
    held = submit(inst, "--urgency=hold", "true")
    assert inst.flux("cancel", str(held)).returncode == 0
    r = job(inst, "status", "-v", str(held))
    assert r.returncode == 1
    assert f"{held.f58}: exception type=cancel" in r.stderr
    assert job(inst, "status", "-e", "42", str(held)).returncode == 42
    assert job(inst, "status", "--exception-exit-code=7", str(held)).returncode == 7

    # canceled while it ran: its tasks got SIGTERM, 128 + 15
    running = submit(inst, "sleep", "60")
    wait_event(inst, running, "start")
    assert inst.flux("cancel", str(running)).returncode == 0
    assert job(inst, "status", "-e", "42", str(running)).returncode == 143


def test_status_errors(inst):
    r = job(inst, "status")
    assert r.returncode == 1 and r.stderr.startswith("flux-job: ")
    r = job(inst, "status", "f1234")                    # a valid id no job has
    assert r.returncode == 1 and r.stderr.startswith("flux-job: ")
    r = job(inst, "status", "not-a-jobid")
    assert r.returncode == 1 and "error parsing jobid" in r.stderr


# -- timeleft -------------------------------------------------------------------------

def test_timeleft_inside_a_job(inst):
    r = inst.flux("run", "-t", "1m", "flux", "job", "timeleft", timeout=60)
    assert r.returncode == 0, r.stderr
    assert 50 <= int(r.stdout) <= 60

    r = inst.flux("run", "-t", "1m", "flux", "job", "timeleft", "-H", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("s")

    # no time limit: UINT_MAX, "infinity" in FSD
    r = inst.flux("run", "flux", "job", "timeleft", timeout=60)
    assert r.returncode == 0 and int(r.stdout) == 2**32 - 1, r.stderr
    r = inst.flux("run", "flux", "job", "timeleft", "-H", timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "infinity", r.stderr


def test_timeleft_outside_any_job(inst):
    r = job(inst, "timeleft")
    assert r.returncode == 1
    assert r.stderr.strip() == "flux-job: unable to associate this process with a Flux jobid"


def test_timeleft_of_a_jobid(inst):
    running = submit(inst, "-t", "2m", "sleep", "60")
    try:
        wait_event(inst, running, "start")
        left = int(lines(job(inst, "timeleft", str(running)))[0])
        assert 100 <= left <= 120
        assert lines(job(inst, "timeleft", "-H", str(running)))[0].endswith("m")
    finally:
        inst.flux("cancel", str(running))
        wait_event(inst, running, "clean")
    # ended: nothing left
    assert lines(job(inst, "timeleft", str(running))) == ["0"]

    held = submit(inst, "--urgency=hold", "-t", "10m", "true")
    try:
        r = job(inst, "timeleft", str(held))
        assert r.returncode == 1 and "has not started" in r.stderr
    finally:
        inst.flux("cancel", str(held))

    for bad in ("x1234", "f1234"):
        r = job(inst, "timeleft", bad)
        assert r.returncode == 1 and r.stderr.startswith("flux-job: "), r.stderr


# -- taskmap --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_node_job(inst):
    """A finished -N2 -n4 job and the hostnames of its nodes, from its R."""
    jobid = submit(inst, "-N2", "-n4", "true")
    wait_event(inst, jobid, "clean")
    r = inst.flux("job", "info", str(jobid), "R")
    assert r.returncode == 0, r.stderr
    hosts = list(Hostlist(json.loads(r.stdout)["execution"]["nodelist"]))
    assert len(hosts) == 2
    return jobid, hosts


def test_taskmap_formats(inst, two_node_job):
    jobid, hosts = two_node_job
    assert lines(job(inst, "taskmap", str(jobid))) == ["[[0,2,2,1]]"]
    assert lines(job(inst, "taskmap", "--to=raw", str(jobid))) == ["0-1;2-3"]
    assert lines(job(inst, "taskmap", "--to=pmi", str(jobid))) == ["(vector,(0,2,2))"]
    assert lines(job(inst, "taskmap", "--to=multiline", str(jobid))) == ["0", "0", "1", "1"]
    assert lines(job(inst, "taskmap", "--to=hosts", str(jobid))) == [
        f"{hosts[0]}: 0-1", f"{hosts[1]}: 2-3"]


def test_shell_start_logs_the_task_map(inst, two_node_job):
    # flux-job(1): the map is posted to the shell.start event of the exec eventlog
    jobid, _hosts = two_node_job
    r = inst.flux("job", "eventlog", "-f", "json", "-p", "exec", str(jobid))
    assert r.returncode == 0, r.stderr
    (start,) = [e for e in map(json.loads, r.stdout.splitlines()) if e["name"] == "shell.start"]
    pids = start["context"].pop("pids")
    assert start["context"] == {"task-count": 4, "taskmap": {"version": 1, "map": [[0, 2, 2, 1]]}}
    # and each task's pid, by task rank (flux job hostpids reads them)
    assert len(pids) == 4 and all(type(p) is int and p > 1 for p in pids)


def test_taskmap_queries(inst, two_node_job):
    jobid, hosts = two_node_job
    assert lines(job(inst, "taskmap", "--taskids=0", str(jobid))) == ["0-1"]
    assert lines(job(inst, "taskmap", "--taskids=1", str(jobid))) == ["2-3"]
    assert lines(job(inst, "taskmap", "--ntasks=1", str(jobid))) == ["2"]
    assert lines(job(inst, "taskmap", "--nodeid=1", str(jobid))) == ["0"]
    assert lines(job(inst, "taskmap", "--nodeid=3", str(jobid))) == ["1"]
    assert lines(job(inst, "taskmap", "--hostname=3", str(jobid))) == [hosts[1]]

    assert job(inst, "taskmap", "--nodeid=4", str(jobid)).returncode == 1
    assert job(inst, "taskmap", "--taskids=2", str(jobid)).returncode == 1
    # one query per call: a usage error
    assert job(inst, "taskmap", "--nodeid=1", "--to=raw", str(jobid)).returncode == 2


def test_taskmap_converts_a_taskmap_argument(inst):
    # RFC 34 test vectors
    assert lines(job(inst, "taskmap", "--to=raw", "[[0,4,1,4]]")) == [
        "0,4,8,12;1,5,9,13;2,6,10,14;3,7,11,15"]
    assert lines(job(inst, "taskmap", "0-1;2-3;4-5;6-7;8-11;12-15")) == [
        "[[0,4,2,1],[4,2,4,1]]"]
    assert lines(job(inst, "taskmap", "0,2;1,3")) == ["[[0,2,1,2]]"]
    assert lines(job(inst, "taskmap", "--to=pmi", '{"version":1,"map":[[0,2,2,1]]}')) == [
        "(vector,(0,2,2))"]
    assert lines(job(inst, "taskmap", "--to=raw", "(vector,(0,2,2))")) == ["0-1;2-3"]
    assert lines(job(inst, "taskmap", "--ntasks=0", "[[0,2,3,1]]")) == ["3"]

    assert job(inst, "taskmap", "[[0,4,4]]").returncode == 1
    # a task map names no hosts
    assert job(inst, "taskmap", "--hostname=0", "[[0,1,1,1]]").returncode == 1


def test_taskmap_of_a_job_that_never_started(inst):
    held = submit(inst, "--urgency=hold", "true")
    assert inst.flux("cancel", str(held)).returncode == 0
    r = job(inst, "taskmap", str(held))
    assert r.returncode == 1
    assert r.stderr.startswith("flux-job: ") and str(held) in r.stderr


def test_the_taskmap_option_places_ranks(inst):
    # --taskmap=cyclic deals the ranks to the nodes in turn (flux-run(1))
    r = inst.flux("run", "-N2", "-n4", "--taskmap=cyclic", "-l", "flux", "getattr", "rank",
                  timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: 0", "1: 1", "2: 0", "3: 1"]
    jobid = submit(inst, "-N2", "-n4", "--taskmap=cyclic", "true")
    wait_event(inst, jobid, "clean")
    assert job(inst, "taskmap", str(jobid)).stdout.strip() == "[[0,2,1,2]]"
    assert job(inst, "taskmap", "--to=raw", str(jobid)).stdout.strip() == "0,2;1,3"
    # an explicit RFC 34 map; and a scheme that does not exist fails the job, named
    r = inst.flux("run", "-N2", "-n4", "--taskmap=manual:[[1,1,1,1],[0,2,1,1],[0,1,1,1]]",
                  "-l", "flux", "getattr", "rank", timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: 1", "1: 0", "2: 1", "3: 0"]
    r = inst.flux("run", "-n2", "--taskmap=bogus", "true", timeout=60)
    assert r.returncode == 1
    assert "taskmap: unknown scheme 'bogus'" in r.stderr


# -- hostpids -------------------------------------------------------------------------

def test_hostpids_of_a_running_job(inst):
    jobid = submit(inst, "-N2", "-n4", "sleep", "60")
    try:
        r = job(inst, "hostpids", str(jobid))
        assert r.returncode == 0, r.stderr
        pairs = r.stdout.strip().split(",")
        hosts = list(Hostlist(json.loads(inst.flux("job", "info", str(jobid), "R").stdout)
                              ["execution"]["nodelist"]))
        assert [p.split(":")[0] for p in pairs] == [hosts[0], hosts[0], hosts[1], hosts[1]]
        # they are the tasks: sleep processes, each with its own FLUX_TASK_RANK
        for rank, pair in enumerate(pairs):
            pid = int(pair.split(":")[1])
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                assert fh.read().split(b"\0")[0].endswith(b"sleep")
            with open(f"/proc/{pid}/environ", "rb") as fh:
                assert f"FLUX_TASK_RANK={rank}".encode() in fh.read().split(b"\0")
        r = job(inst, "hostpids", "-r", "1,3", "-d", " ", str(jobid))
        assert r.stdout.strip().split(" ") == [pairs[1], pairs[3]]
        r = job(inst, "hostpids", "-r", "7", str(jobid))
        assert r.returncode == 1 and "task rank 7 is not in the job" in r.stderr
    finally:
        inst.flux("cancel", str(jobid))
    wait_event(inst, jobid, "clean")
    r = job(inst, "hostpids", str(jobid))
    assert r.returncode == 1 and "has ended" in r.stderr


def test_hostpids_waits_for_the_tasks_and_can_time_out(inst):
    held = submit(inst, "--urgency=hold", "true")
    try:
        r = job(inst, "hostpids", "-t", "0.3s", str(held))
        assert r.returncode == 1 and "timeout waiting for the tasks" in r.stderr
    finally:
        inst.flux("cancel", str(held))
    r = job(inst, "hostpids", str(held))         # canceled before it ran
    assert r.returncode == 1 and "ended before its tasks started" in r.stderr
    r = job(inst, "hostpids", "-t", "bogus", str(held))
    assert r.returncode == 2
