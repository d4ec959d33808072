"""A Flux instance run as a job of another ("child instance"): its attributes, its
resources and time limit from the parent job, and expiration updates followed.

The parent is a real two-broker instance; the child is ``flux start`` run as
the job's tasks (one broker per task, bootstrapped over the shell's PMI).
"""
from __future__ import annotations

import json
import os
import time

import pytest

from broker.testing import TestInstance
from helpers.live import submit_real
from flux.job import JobID
from helpers.procs import wait_dead
from jobmgr.resource.parent import renumber_R

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parent():
    inst = TestInstance(size=2).start()
    yield inst
    inst.stop()


submit = submit_real


def attach(inst, jobid):
    """The job's output, once it has finished (0 exit code required)."""
    r = inst.flux("job", "attach", str(jobid), timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr, inst.stderr_text()[-3000:])
    return r.stdout


def job_R(inst, jobid):
    r = inst.flux("job", "info", str(jobid), "R")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_file(path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as fh:
                text = fh.read().strip()
            if text:
                return text
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def eventually(fn, timeout=10.0):
    """FN() once it is true (returns it); its last value fails the test after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            assert value, value
            return value
        time.sleep(0.1)


def test_a_child_has_the_jobid_and_parent_kvs_namespace_attributes(parent):
    jobid = submit(parent, "flux", "start", "sh", "-c",
                   "flux getattr jobid; flux getattr parent-kvs-namespace; "
                   "flux getattr parent-uri")
    out = attach(parent, jobid).splitlines()
    assert out[0] == jobid.f58
    assert out[1] == f"job-{int(jobid)}"
    assert out[2] == parent.uri
    # a -S value on the command line wins
    jobid = submit(parent, "flux", "start", "-Sjobid=mine", "flux", "getattr", "jobid")
    assert attach(parent, jobid) == "mine\n"


def test_an_instance_not_started_in_another_has_no_jobid(parent):
    assert parent.flux("getattr", "jobid").returncode != 0
    assert parent.flux("getattr", "parent-kvs-namespace").returncode != 0


def test_a_child_takes_the_jobs_cores_and_time_limit(parent):
    # without cpu affinity every broker would discover both cores of its node
    jobid = submit(parent, "-N1", "-n1", "-c1", "-t", "10m", "-o", "cpu-affinity=off",
                   "flux", "start", "sh", "-c",
                   "flux kvs get resource.R; flux resource list -s all -no '{ncores}'; "
                   "flux resource status -no '{state}'; flux run flux jobs -no '{expiration}'")
    out = attach(parent, jobid).splitlines()
    R, ncores, state, inner = json.loads(out[0]), out[1], out[2], out[3]
    parent_R = job_R(parent, jobid)
    assert R == renumber_R(parent_R)
    assert R["execution"]["R_lite"] == [{"rank": "0", "children": {"core":
                                         parent_R["execution"]["R_lite"][0]["children"]["core"]}}]
    assert ncores == "1" and state == "avail"
    expiration = parent_R["execution"]["expiration"]
    assert expiration == pytest.approx(parent_R["execution"]["starttime"] + 600)
    assert R["execution"]["expiration"] == expiration
    # a job of the child without a time limit ends when the child's job does
    assert float(inner) == pytest.approx(expiration)


def test_a_child_across_two_nodes_gets_renumbered_ranks(parent):
    jobid = submit(parent, "-N2", "-n2", "-o", "cpu-affinity=off", "flux", "start", "sh", "-c",
                   "flux kvs get resource.R; flux kvs get resource.eventlog")
    lines = attach(parent, jobid).splitlines()
    R = json.loads(lines[0])
    events = [json.loads(line) for line in lines[1:] if line]
    parent_R = job_R(parent, jobid)
    assert R == renumber_R(parent_R)
    ranks = [e["rank"] for e in R["execution"]["R_lite"]]
    assert ranks in (["0-1"], ["0", "1"])
    define = [e for e in events if e["name"] == "resource-define"]
    assert define[0]["context"] == {"method": "job-info"}


def test_a_child_follows_expiration_updates_of_its_job(parent, tmp_path):
    urifile = tmp_path / "uri"
    jobid = submit(parent, "-t", "10m", "flux", "start", "sh", "-c",
                   f"echo $FLUX_URI $(flux getattr broker.pid) > {urifile}.new; "
                   f"mv {urifile}.new {urifile}; sleep 300")
    try:
        uri, pid = wait_file(str(urifile)).split()
        child = {"FLUX_URI": uri}

        def child_kvs(key):
            r = parent.flux("kvs", "get", key, env=child)
            assert r.returncode == 0, r.stderr
            return r.stdout

        original = json.loads(child_kvs("resource.R"))["execution"]["expiration"]
        assert original == job_R(parent, jobid)["execution"]["expiration"]
        new = round(time.time() + 3000.25, 3)
        r = parent.flux("kvs", "eventlog", "append", f"{jobid.kvs}.eventlog",
                        "resource-update", json.dumps({"expiration": new}))
        assert r.returncode == 0, r.stderr

        def updated():
            for line in filter(None, child_kvs("resource.eventlog").splitlines()):
                event = json.loads(line)
                if event["name"] == "resource-update" \
                        and event["context"].get("expiration") == new:
                    return True
            return False

        eventually(updated)
        assert eventually(lambda: json.loads(child_kvs("resource.R"))
                          ["execution"]["expiration"] == new)
        # the child's scheduler has the new expiration for its jobs
        r = parent.flux("run", "flux", "jobs", "-no", "{expiration}", env=child, timeout=60)
        assert r.returncode == 0, r.stderr
        assert float(r.stdout) == pytest.approx(new)
    finally:
        parent.flux("cancel", str(jobid))
    r = parent.flux("job", "wait-event", "-t", "30s", str(jobid), "clean")
    assert r.returncode == 0, r.stderr
    assert wait_dead([int(pid)], timeout=10.0)


def test_flux_update_of_the_job_moves_the_childs_running_jobs(parent, tmp_path):
    """End to end: the parent's job manager posts the resource-update (flux update), the
    child's resource module rewrites resource.R, the child's job manager moves its jobs."""
    urifile = tmp_path / "uri"
    jobid = submit(parent, "-t", "10m", "flux", "start", "sh", "-c",
                   "flux submit sleep 300 > /dev/null; "
                   f"echo $FLUX_URI $(flux getattr broker.pid) > {urifile}.new; "
                   f"mv {urifile}.new {urifile}; sleep 300")
    try:
        uri, pid = wait_file(str(urifile)).split()
        child = {"FLUX_URI": uri}

        def inner_expiration():
            r = parent.flux("jobs", "-no", "{state} {expiration}", env=child)
            assert r.returncode == 0, r.stderr
            state, expiration = r.stdout.split()
            return float(expiration) if state == "RUN" else None

        first = eventually(inner_expiration)
        assert first == pytest.approx(job_R(parent, jobid)["execution"]["expiration"])
        r = parent.flux("update", str(jobid), "duration=+10m")
        assert r.returncode == 0, r.stderr
        assert eventually(lambda: inner_expiration() == pytest.approx(first + 600))
    finally:
        parent.flux("cancel", str(jobid))
    r = parent.flux("job", "wait-event", "-t", "30s", str(jobid), "clean")
    assert r.returncode == 0, r.stderr
    assert wait_dead([int(pid)], timeout=10.0)


def test_a_child_records_its_uri_in_its_job(parent, tmp_path):
    from flux.uri import JobURI

    done = tmp_path / "done"
    jobid = submit(parent, "flux", "start", "sh", "-c", f"while ! test -e {done}; do sleep 0.1; done")
    try:
        def uri():
            r = parent.flux("jobs", "-no", "{user.uri}", str(jobid))
            return r.stdout.strip() if r.stdout.strip().startswith("ssh://") else None

        remote = eventually(uri, timeout=60)
        # its local form reaches the child, which knows its job
        r = parent.flux("getattr", "jobid", env={"FLUX_URI": JobURI(remote).local})
        assert r.returncode == 0 and JobID(r.stdout.strip()) == jobid
    finally:
        done.write_text("x")
    attach(parent, jobid)
    # volatile: not in the eventlog
    r = parent.flux("job", "eventlog", str(jobid))
    assert "memo" not in r.stdout
