"""flux submit and flux run against a real instance in test-exec mode."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from helpers.live import (
    JOBS_CONF,
    eventlog,
    flux,
    guest,
    start_instance,
    submit,
    wait_for,
)

from broker.testing import flux_command
from flux.job.JobID import JobID

F58 = re.compile(r"^ƒ[1-9A-HJ-NP-Za-km-z]+$")


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, JOBS_CONF)
    yield instance
    assert instance.stop() == 0


def jobspec_of(inst, jobid):
    r = flux(inst, "job", "info", str(jobid), "jobspec")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


# -- flux submit -----------------------------------------------------------------

def test_submit_prints_the_job_id_and_the_job_runs(inst):
    r = flux(inst, "submit", "true")
    assert r.exit_code == 0, r.output
    assert F58.match(r.stdout.strip())
    jobid = JobID(r.stdout.strip())
    wait_for(inst, jobid)
    names = [e["name"] for e in eventlog(inst, jobid)]
    assert names[0] == "submit" and names[-1] == "clean"
    assert "start" in names and "finish" in names


def test_submit_cc_copies_in_order_with_flux_job_cc(inst):
    ids = submit(inst, "--cc=1-5", "true")
    assert len(ids) == 5 and ids == sorted(ids)
    envs = [jobspec_of(inst, j)["attributes"]["system"]["environment"] for j in ids]
    assert [e["FLUX_JOB_CC"] for e in envs] == ["1", "2", "3", "4", "5"]
    bcc = submit(inst, "--bcc=1-2", "true")
    assert all("FLUX_JOB_CC" not in jobspec_of(inst, j)["attributes"]["system"]["environment"]
               for j in bcc)
    subst = submit(inst, "--cc=7-8", "--job-name=n{cc}", "echo", "{cc}")
    assert [jobspec_of(inst, j)["tasks"][0]["command"] for j in subst] == [["echo", "7"],
                                                                           ["echo", "8"]]


def test_submit_quiet_and_wait(inst):
    r = flux(inst, "submit", "--quiet", "--wait", "--cc=1-3", "true")
    assert (r.exit_code, r.stdout) == (0, "")


def test_submit_wait_reports_failures_and_exit_code(inst):
    r = flux(inst, "submit", "--wait", "-t", "0.2s", "-S", "system.exec.test.run_duration=30",
             "true")
    assert r.exit_code != 0
    assert "type=timeout" in r.stderr


def test_submit_progress_lines(inst):
    r = flux(inst, "submit", "--progress", "--jps", "--cc=1-3", "true")
    assert r.exit_code == 0, r.output
    assert re.search(r"Submitting 3/3 \|#+\| 100\.0% 0:00:\d\d +[\d.]+ job/s\n$", r.stderr)
    r = flux(inst, "submit", "--quiet", "--wait", "--progress", "--cc=1-4", "true")
    assert r.exit_code == 0, r.output
    assert re.search(r"PD:0 R:0 CD:4 F:0 \|#+\| 100\.0% 0:00:\d\d\n$", r.stderr)


def test_submit_watch_waits(inst):
    r = flux(inst, "submit", "--watch", "true")
    assert r.exit_code == 0, r.output
    jobid = JobID(r.stdout.split()[0])
    assert eventlog(inst, jobid)[-1]["name"] == "clean"


def test_submit_urgency_hold_and_expedite(inst):
    [held] = submit(inst, "--urgency=hold", "true")
    [fast] = submit(inst, "--urgency=expedite", "true")
    wait_for(inst, fast)
    r = flux(inst, "jobs", "-n", "-o", "{id.dec} {urgency} {priority} {state}", str(held))
    assert r.stdout.split() == [str(int(held)), "0", "0", "SCHED"]
    assert flux(inst, "cancel", str(held)).exit_code == 0


def test_submit_dependency_and_begin_time(inst):
    [first] = submit(inst, "-S", "system.exec.test.run_duration=60", "true")
    [second] = submit(inst, f"--dependency=afterok:{first}", "true")
    [later] = submit(inst, "--begin-time=+1h", "true")
    r = flux(inst, "jobs", "-n", "-o", "{id.dec} {state} {dependencies}", str(second), str(later))
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert lines[str(int(second))].startswith("DEPEND afterok")
    assert lines[str(int(later))].startswith("DEPEND begin-time")
    assert flux(inst, "cancel", str(first), str(later)).exit_code == 0
    r = flux(inst, "job", "wait-event", "-t", "30s", str(second), "exception")
    assert r.exit_code == 0 and "type=\"dependency\"" in r.stdout


def test_submit_refusals_name_the_problem(inst):
    r = flux(inst, "submit", "-S", 'system.constraints={"foo": []}', "true")
    assert r.exit_code == 1 and r.stderr.startswith("flux-submit: ")
    r = flux(inst, "submit", "--queue=nosuchqueue", "true")
    assert r.exit_code == 1 and r.stderr.startswith("flux-submit: ")
    r = flux(inst, "submit", "--urgency=40", "true")
    assert r.exit_code == 1 and "urgency" in r.stderr
    r = flux(inst, "submit", "--setattr=system.duration=\"soon\"", "true")
    assert r.exit_code == 1 and "duration" in r.stderr      # ingest names the bad path


def test_submit_flags_waitable_and_debug(inst):
    [jobid] = submit(inst, "--flags=waitable", "--debug", "true")
    assert eventlog(inst, jobid)[0]["context"]["flags"] != 0
    r = flux(inst, "job", "wait", str(jobid))      # waitable
    assert r.exit_code == 0, r.output
    [plain] = submit(inst, "true")
    assert eventlog(inst, plain)[0]["context"]["flags"] == 0
    r = flux(inst, "job", "wait", str(plain))     # not waitable: refused
    assert r.exit_code in (1, 2) and r.stderr.startswith("flux-job: ")


def test_guest_submit_limits(inst):
    out = guest(inst, "submit", "true")
    assert out.returncode == 0, out.stderr
    assert F58.match(out.stdout.strip())
    out = guest(inst, "submit", "--urgency=expedite", "true")
    assert out.returncode == 1 and out.stderr.startswith("flux-submit: ")
    out = guest(inst, "submit", "--flags=waitable", "true")
    assert out.returncode == 1 and out.stderr.startswith("flux-submit: ")


# -- flux run ----------------------------------------------------------------------

def test_run_exits_with_the_job_exit_code(inst):
    r = flux(inst, "run", "true")
    assert (r.exit_code, r.stdout) == (0, "")
    r = flux(inst, "run", "-v", "true")
    assert r.exit_code == 0 and re.match(r"jobid: ƒ\w+\n", r.stderr)
    r = flux(inst, "run", "-vv", "true")
    assert r.exit_code == 0
    assert re.search(r"^\d+\.\d{3}s: job\.submit \{", r.stderr, re.M)
    assert re.search(r"^\d+\.\d{3}s: job\.clean$", r.stderr, re.M)


def test_run_timeout_fails(inst):
    r = flux(inst, "run", "-t", "0.2s", "-S", "system.exec.test.run_duration=30", "true")
    assert r.exit_code != 0
    assert re.search(r"\d+\.\d{3}s: job\.exception ƒ\w+ type=timeout severity=0", r.stderr)


def test_run_forwards_sigterm_to_the_job(inst):
    proc = subprocess.Popen(flux_command() + ["run", "-v", "-S",
                                              "system.exec.test.run_duration=60", "true"],
                            env=inst.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stderr.readline()
    jobid = line.split()[1]
    wait_for(inst, JobID(jobid), "start")
    time.sleep(0.2)   # let flux run reach its reactor
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    finish = [e for e in eventlog(inst, JobID(jobid)) if e["name"] == "finish"][0]
    assert os.WTERMSIG(finish["context"]["status"]) == signal.SIGTERM


def test_run_ctrl_c_twice_cancels(inst):
    proc = subprocess.Popen(flux_command() + ["run", "-v", "-S",
                                              "system.exec.test.run_duration=60", "true"],
                            env=inst.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    jobid = JobID(proc.stderr.readline().split()[1])
    wait_for(inst, jobid, "start")
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert "one more ctrl-C" in proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "type=cancel" in err
    assert any(e["name"] == "exception" and e["context"]["note"] == "interrupted by ctrl-C"
               for e in eventlog(inst, jobid))


def test_run_unknown_queue_refused(inst):
    r = flux(inst, "run", "--queue=nosuchqueue", "true")
    assert r.exit_code == 1 and r.stderr.startswith("flux-run: ")


def test_cli_startup_is_cheap():
    """flux submit must not import the broker's heavy dependencies."""
    code = ("import sys, cli.cmd_submit, cli.cmd_run, cli.cmd_jobs, cli.cmd_job, cli.cmd_cancel;"
            "print(sorted(m for m in ('zmq','lmdb','yaml','structlog','asyncio') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
