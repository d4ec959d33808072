"""flux jobs --json (flux-jobs(1)) against real instances.

Most tests use test-mode exec (no processes); the -R test runs a real
child Flux instance as a job.
"""
from __future__ import annotations

import json
import time

import pytest
from helpers.live import JOBS_CONF, flux, start_instance, submit1, wait_for

from broker.testing import TestInstance
from flux.job.JobID import JobID


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, JOBS_CONF)
    yield instance
    assert instance.stop() == 0


@pytest.fixture(scope="module")
def jobs(inst):
    ids = {}
    ids["done"] = submit1(inst, "--job-name=done", "true")
    wait_for(inst, ids["done"])
    ids["failed"] = submit1(inst, "--job-name=boom", "-S", "system.exec.test.run_duration=60",
                            "true")
    wait_for(inst, ids["failed"], "start")
    assert flux(inst, "job", "raise", "-t", "test", str(ids["failed"]), "oops").exit_code == 0
    wait_for(inst, ids["failed"])
    ids["running"] = submit1(inst, "--job-name=runner", "-S",
                             "system.exec.test.run_duration=600", "true")
    wait_for(inst, ids["running"], "start")
    ids["held"] = submit1(inst, "--job-name=held", "--urgency=hold", "true")
    return ids


def loads(r):
    assert r.exit_code == 0, r.output
    assert r.stdout.count("\n") == 1      # one JSON document on one line
    return json.loads(r.stdout)


def by_id(doc):
    assert set(doc) == {"jobs"}
    return {JobID(entry["id"]): entry for entry in doc["jobs"]}


def test_default_is_a_jobs_array_of_active_jobs(inst, jobs):
    listed = by_id(loads(flux(inst, "jobs", "--json")))
    assert set(listed) == {jobs["running"], jobs["held"]}
    run, held = listed[jobs["running"]], listed[jobs["held"]]
    assert run["jobid"] == jobs["running"].f58
    assert (run["name"], run["state"], run["status"]) == ("runner", "RUN", "RUNNING")
    assert run["runtime"] > 0 and run["nnodes"] == 1 and run["ntasks"] == 1
    assert (held["name"], held["status"], held["urgency"]) == ("held", "PENDING", 0)
    # only what is known now: a pending job has no runtime, waitstatus or result
    for key in ("runtime", "waitstatus", "result", "t_run", "returncode"):
        assert key not in held, key
    assert held["exception"] == {"occurred": False}


def test_all_and_results(inst, jobs):
    listed = by_id(loads(flux(inst, "jobs", "-a", "--json")))
    assert set(listed) == set(jobs.values())
    done, failed = listed[jobs["done"]], listed[jobs["failed"]]
    assert (done["result"], done["returncode"], done["waitstatus"], done["success"]) == \
        ("COMPLETED", 0, 0, True)
    assert done["t_inactive"] >= done["t_run"] >= done["t_submit"]
    assert failed["result"] == "FAILED" and failed["success"] is False
    assert failed["exception"]["occurred"] is True
    assert (failed["exception"]["type"], failed["exception"]["note"]) == ("test", "oops")


def test_filters_user_name_count(inst, jobs):
    assert set(by_id(loads(flux(inst, "jobs", "--json", "-f", "completed")))) == {jobs["done"]}
    assert set(by_id(loads(flux(inst, "jobs", "--json", "-f", "failed")))) == {jobs["failed"]}
    assert set(by_id(loads(flux(inst, "jobs", "--json", "-f", "running")))) == \
        {jobs["running"]}
    assert set(by_id(loads(flux(inst, "jobs", "-a", "--json", "--name", "boom")))) == \
        {jobs["failed"]}
    assert len(loads(flux(inst, "jobs", "-a", "--json", "-c", "2"))["jobs"]) == 2
    # nothing selected is an empty array, not an error
    assert loads(flux(inst, "jobs", "--json", "-u", "4242")) == {"jobs": []}
    assert set(by_id(loads(flux(inst, "jobs", "--json", "-A")))) >= set(jobs.values())


def test_one_jobid_is_that_jobs_object(inst, jobs):
    doc = loads(flux(inst, "jobs", "--json", jobs["done"].f58))
    assert "jobs" not in doc
    assert (JobID(doc["id"]), doc["name"], doc["result"]) == (jobs["done"], "done", "COMPLETED")
    # any encoding of the id
    doc = loads(flux(inst, "jobs", "--json", str(int(jobs["held"]))))
    assert doc["jobid"] == jobs["held"].f58


def test_several_jobids_are_a_jobs_array(inst, jobs):
    doc = loads(flux(inst, "jobs", "--json", jobs["done"].f58, jobs["held"].f58))
    assert set(by_id(doc)) == {jobs["done"], jobs["held"]}


def test_unknown_jobid(inst, jobs):
    missing = JobID(1)
    r = flux(inst, "jobs", "--json", missing.f58)
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr == f"JobID {missing.f58} unknown\n"
    r = flux(inst, "jobs", "--json", jobs["done"].f58, missing.f58)
    assert r.exit_code == 0
    assert set(by_id(json.loads(r.stdout))) == {jobs["done"]}
    assert r.stderr == f"JobID {missing.f58} unknown\n"


def test_format_and_header_options_are_ignored(inst, jobs):
    plain = by_id(loads(flux(inst, "jobs", "-a", "--json")))
    for args in (["-o", "{nosuchfield}"], ["-o", "long"], ["-n"]):
        listed = by_id(loads(flux(inst, "jobs", "-a", "--json", *args)))
        assert set(listed) == set(plain)


def test_sort(inst, jobs):
    doc = loads(flux(inst, "jobs", "-a", "--json", "--sort", "name"))
    names = [entry["name"] for entry in doc["jobs"]]
    assert names == sorted(names) == ["boom", "done", "held", "runner"]


def test_incompatible_with_stats(inst, jobs):
    for opt in ("--stats", "--stats-only"):
        r = flux(inst, "jobs", "--json", opt)
        assert r.exit_code == 1
        assert r.stdout == ""
        assert "--json incompatible with --stats or --stats-only" in r.stderr


# -- -R: a real child instance ------------------------------------------------------------

@pytest.mark.slow
def test_recursive_nests_each_instances_jobs():
    inst = TestInstance().start()
    try:
        child = submit1(inst, "--job-name=child", "flux", "start", "sh", "-c",
                        "flux submit --job-name=grandjob --urgency=hold true >/dev/null "
                        "&& sleep 300")
        wait_for(inst, child, "start")
        deadline = time.monotonic() + 60
        while True:
            doc = loads(flux(inst, "jobs", "-R", "--json"))
            # job-list follows the job manager's journal: it may not list the
            # child yet, or not as running, when its eventlog already says start
            entry = by_id(doc).get(child, {})
            if entry.get("jobs") or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert [job["name"] for job in entry["jobs"]] == ["grandjob"]
        assert entry["jobs"][0]["status"] == "PENDING"
        assert "jobs" not in entry["jobs"][0]
        # -L0: no recursion; without -R neither
        assert "jobs" not in by_id(loads(flux(inst, "jobs", "-R", "-L0", "--json")))[child]
        assert "jobs" not in by_id(loads(flux(inst, "jobs", "--json")))[child]
        # one JOBID with -R: that job's object holds its jobs
        doc = loads(flux(inst, "jobs", "-R", "--json", child.f58))
        assert [job["name"] for job in doc["jobs"]] == ["grandjob"]
    finally:
        flux(inst, "cancel", "--all")
        inst.stop()
