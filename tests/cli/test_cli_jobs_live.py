"""flux jobs against a real instance holding jobs in every state and with every result."""
from __future__ import annotations

import os
import re

import pytest
from helpers.live import JOBS_CONF, flux, guest, start_instance, submit1, wait_for

from flux.job.JobID import JobID

NCORES = len(os.sched_getaffinity(0))
HEADER = "       JOBID USER     NAME       ST NTASKS NNODES  RUNTIME NODELIST"


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, JOBS_CONF)
    yield instance
    assert instance.stop() == 0


@pytest.fixture(scope="module")
def jobs(inst):
    """One job per state/result of interest, created in an order that makes each one."""
    ids = {}
    ids["completed"] = submit1(inst, "--job-name=done", "true")
    wait_for(inst, ids["completed"])
    ids["failed"] = submit1(inst, "-S", "system.exec.test.run_duration=60", "true")
    wait_for(inst, ids["failed"], "start")
    assert flux(inst, "job", "raise", "-t", "test", str(ids["failed"]), "boom").exit_code == 0
    wait_for(inst, ids["failed"])
    ids["timeout"] = submit1(inst, "-t", "0.1s", "-S", "system.exec.test.run_duration=60", "true")
    wait_for(inst, ids["timeout"])
    ids["canceled"] = submit1(inst, "--urgency=hold", "true")
    assert flux(inst, "cancel", str(ids["canceled"])).exit_code == 0
    wait_for(inst, ids["canceled"])
    ids["running"] = submit1(inst, f"-n{NCORES}", "-S", "system.exec.test.run_duration=600",
                             "sleep", "600")
    wait_for(inst, ids["running"], "start")
    ids["blocked"] = submit1(inst, "true")        # waits for the cores the running job holds
    ids["held"] = submit1(inst, "--urgency=hold", "true")
    return ids


def listed(r):
    assert r.exit_code == 0, r.output
    return [JobID(line.split()[0]) for line in r.stdout.splitlines()]


def test_default_lists_pending_and_running(inst, jobs):
    r = flux(inst, "jobs")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == HEADER
    assert set(JobID(line.split()[0]) for line in lines[1:]) == \
        {jobs["running"], jobs["blocked"], jobs["held"]}
    running = [line for line in lines if line.split()[0] == jobs["running"].f58][0]
    assert re.match(rf"^ +{jobs['running'].f58} \S+ +sleep +R +{NCORES} +1 +[\d.]+\w +\S+$",
                    running)


def test_all_and_count_and_no_header(inst, jobs):
    everything = set(listed(flux(inst, "jobs", "-a", "-n")))
    assert set(jobs.values()) <= everything
    assert len(listed(flux(inst, "jobs", "-a", "-n", "-c", "2"))) == 2
    assert set(listed(flux(inst, "jobs", "-A", "-n"))) >= everything
    # flux-jobs(1) names it --no-header; older pages --suppress-header
    for option in ("--no-header", "--suppress-header"):
        out = flux(inst, "jobs", "-a", option).stdout
        assert "JOBID" not in out and set(listed(flux(inst, "jobs", "-a", option))) == everything


@pytest.mark.parametrize("filt, expect", [
    ("pending", {"blocked", "held"}),
    ("running", {"running"}),
    ("sched", {"blocked", "held"}),
    ("RUN", {"running"}),
    ("completed", {"completed"}),
    ("failed", {"failed"}),
    ("canceled", {"canceled"}),
    ("timeout", {"timeout"}),
    ("failed,timeout", {"failed", "timeout"}),
    ("pending,canceled", {"blocked", "held", "canceled"}),
    ("inactive", {"completed", "failed", "timeout", "canceled"}),
])
def test_filters(inst, jobs, filt, expect):
    got = set(listed(flux(inst, "jobs", "-n", "-f", filt)))
    mine = set(jobs.values())
    assert got & mine == {jobs[name] for name in expect}


def test_bad_filter_and_bad_format_exit_1(inst, jobs):
    r = flux(inst, "jobs", "-f", "running,bogus")
    assert (r.exit_code, r.stderr) == (1, "flux-jobs: Invalid filter specified: bogus\n")
    r = flux(inst, "jobs", "-o", "{id} {foo}")
    assert (r.exit_code, r.stderr) == (1, "flux-jobs: Unknown format field: foo\n")
    r = flux(inst, "jobs", "-o", "{id!Z}")
    assert (r.exit_code, r.stderr) == (
        1, "flux-jobs: Unknown conversion specifier '!Z' for field 'id'\n")
    # a conversion that does not fit the value: one line, no traceback
    r = flux(inst, "jobs", "-a", "-o", "{name!F}")
    assert r.exit_code == 1 and r.stderr.startswith("flux-jobs: Cannot apply conversion '!F'")
    assert "Traceback" not in r.stderr
    r = flux(inst, "jobs", "-u", "nosuchuser")
    assert (r.exit_code, r.stderr) == (1, "flux-jobs: Invalid user nosuchuser specified\n")
    assert flux(inst, "jobs", "-c", "-1").exit_code == 2


def test_status_result_and_exception_fields(inst, jobs):
    fmt = ("{id.dec} {status} {status_abbrev} {state_single} {result:h} {result_abbrev:h} "
           "{returncode:h} {exception.occurred} {exception.type:h}")
    r = flux(inst, "jobs", "-a", "-n", "-o", fmt)
    rows = {int(line.split()[0]): line.split()[1:] for line in r.stdout.splitlines()}
    assert rows[jobs["completed"]] == ["COMPLETED", "CD", "I", "COMPLETED", "CD", "0", "False",
                                       "-"]
    assert rows[jobs["failed"]][:5] == ["FAILED", "F", "I", "FAILED", "F"]
    assert rows[jobs["failed"]][6:] == ["True", "test"]
    assert rows[jobs["timeout"]][:5] == ["TIMEOUT", "TO", "I", "TIMEOUT", "TO"]
    assert rows[jobs["canceled"]] == ["CANCELED", "CA", "I", "CANCELED", "CA", "-128", "True",
                                      "cancel"]
    assert rows[jobs["running"]][:3] == ["RUNNING", "R", "R"]
    assert rows[jobs["held"]][:3] == ["PENDING", "P", "S"]


def test_times_conversions_and_annotations(inst, jobs):
    fmt = "{id.dec}|{t_submit!D}|{runtime!H}|{t_inactive!d:%H:%M}|{sched.reason_pending}|{name}"
    r = flux(inst, "jobs", "-a", "-n", "-o", fmt)
    rows = {int(line.split("|")[0]): line.split("|")[1:] for line in r.stdout.splitlines()}
    submit_t, runtime, inactive, reason, name = rows[jobs["completed"]]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", submit_t)
    assert re.fullmatch(r"\d+:\d\d:\d\d", runtime)
    assert re.fullmatch(r"\d\d:\d\d", inactive)
    assert name == "done"
    assert rows[jobs["blocked"]][3] != ""        # the scheduler says why it waits
    assert rows[jobs["held"]][2] == ""           # not inactive: !d of a missing time is ""


def test_named_formats(inst, jobs):
    for name in ("default", "long", "deps", "full"):
        r = flux(inst, "jobs", "-a", "-o", name)
        assert r.exit_code == 0, (name, r.output)
        assert len(r.stdout.splitlines()) > len(jobs)
    r = flux(inst, "jobs", "-a", "-o", "long")
    assert "QUEUE" not in r.stdout.splitlines()[0]   # no queues: the ?: column is gone


def test_jobids_in_every_encoding(inst, jobs):
    jobid = jobs["completed"]
    for text in (jobid.dec, jobid.hex, jobid.dothex, jobid.kvs, jobid.f58, jobid.f58plain,
                 jobid.words):
        assert listed(flux(inst, "jobs", "-n", text)) == [jobid]
    r = flux(inst, "jobs", "-n", "-o", "{id.dec}", jobs["held"].f58, jobs["completed"].dec)
    assert sorted(r.stdout.split()) == sorted([jobs["held"].dec, jobs["completed"].dec])


def test_unknown_jobids_in_every_encoding(inst, jobs):
    unknown = JobID(int(jobs["completed"]) + 987654321)
    for text in (unknown.dec, unknown.hex, unknown.dothex, unknown.kvs, unknown.f58,
                 unknown.words):
        r = flux(inst, "jobs", "-n", text, jobs["completed"].f58)
        assert r.exit_code == 0       # one JOBID is known
        assert r.stderr == f"JobID {text} unknown\n"
        assert listed(flux(inst, "jobs", "-n", jobs["completed"].f58)) == [jobs["completed"]]
    r = flux(inst, "jobs", "not-a-jobid!")
    assert r.exit_code == 2


def test_stats(inst, jobs):
    r = flux(inst, "jobs", "--stats", "-n", "-o", "{id}")
    assert r.exit_code == 0
    first = r.stdout.splitlines()[0]
    m = re.fullmatch(r"(\d+) running, (\d+) completed, (\d+) failed, (\d+) pending"
                     r"(, \d+ inactive purged)?", first)
    assert m and int(m.group(1)) >= 1 and int(m.group(3)) >= 3 and int(m.group(4)) >= 2
    r = flux(inst, "jobs", "--stats-only")
    assert r.exit_code == 0 and r.stdout == first + "\n"


def test_color(inst, jobs):
    r = flux(inst, "jobs", "-a", "-n", "--color", "-o", "{id.dec}")
    lines = {line.replace("\033[01;32m", "").replace("\033[01;31m", "")
             .replace("\033[37m", "").replace("\033[0;0m", ""): line
             for line in r.stdout.splitlines()}
    assert lines[jobs["completed"].dec].startswith("\033[01;32m")
    assert lines[jobs["failed"].dec].startswith("\033[01;31m")
    assert lines[jobs["canceled"].dec].startswith("\033[37m")
    assert lines[jobs["held"].dec] == jobs["held"].dec
    r = flux(inst, "jobs", "-a", "-n", "--color=never", "-o", "{id.dec}")
    assert "\033" not in r.stdout
    assert flux(inst, "jobs", "--color=sometimes").exit_code == 2


def test_sort_and_user(inst, jobs):
    r = flux(inst, "jobs", "-a", "-n", "--sort=id", "-o", "{id.dec}")
    ids = [int(x) for x in r.stdout.split()]
    assert ids == sorted(ids)
    r = flux(inst, "jobs", "-a", "-n", "-o", "sort:-id {id.dec}")
    assert [int(x) for x in r.stdout.split()] == sorted(ids, reverse=True)
    assert set(listed(flux(inst, "jobs", "-a", "-n", "-u", "root"))) >= set(jobs.values())
    assert set(listed(flux(inst, "jobs", "-a", "-n", "-u", "65534"))) & set(jobs.values()) == set()


def test_guest_sees_own_jobs(inst, jobs):
    out = guest(inst, "submit", "--urgency=hold", "true")
    assert out.returncode == 0, out.stderr
    mine = JobID(out.stdout.strip())
    out = guest(inst, "jobs", "-n", "-o", "{id.dec} {username}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [mine.dec, "nobody"]
    assert flux(inst, "cancel", mine.f58).exit_code == 0
