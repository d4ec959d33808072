"""flux job subcommands against a real instance in test-exec mode."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
from helpers.live import (
    JOBS_CONF,
    eventlog,
    flux,
    guest,
    start_instance,
    submit1,
    wait_for,
)

from broker.testing import flux_command
from flux.job.JobID import JobID

LONG = ("-S", "system.exec.test.run_duration=600")


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, JOBS_CONF)
    yield instance
    assert instance.stop() == 0


@pytest.fixture(scope="module")
def done(inst):
    """A completed job."""
    jobid = submit1(inst, "--setattr=user.color=\"blue\"", "true")
    wait_for(inst, jobid)
    return jobid


def unknown_forms(known):
    unknown = JobID(int(known) + 123456789)
    return [unknown.dec, unknown.hex, unknown.dothex, unknown.kvs, unknown.f58, unknown.words]


# -- eventlog ---------------------------------------------------------------------------

def test_eventlog_text_and_json(inst, done):
    r = flux(inst, "job", "eventlog", done.f58)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"\d+\.\d{6} submit userid=0 urgency=16 flags=0 version=1", lines[0])
    assert re.fullmatch(r"\d+\.\d{6} clean", lines[-1])
    as_json = eventlog(inst, done)
    assert [e["name"] for e in as_json] == [line.split()[1] for line in lines]
    assert as_json[0]["context"]["urgency"] == 16


def test_color_when_is_optional_and_only_attached(inst, done):
    """flux-job(1) ``-L, --color[=WHEN]`` and flux-jobs(1) ``--color[=WHEN]``: a bare -L
    means always and the next argument stays the job id."""
    r = flux(inst, "job", "eventlog", "-L", done.f58)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("\x1b[")
    r = flux(inst, "job", "eventlog", "-Lnever", done.f58)
    assert r.exit_code == 0 and "\x1b[" not in r.stdout
    r = flux(inst, "job", "wait-event", "-L", done.f58, "submit")
    assert r.exit_code == 0 and r.stdout.startswith("\x1b[")
    r = flux(inst, "jobs", "-n", "--color", done.f58)
    assert r.exit_code == 0 and r.stdout.startswith("\x1b["), r.output


def test_eventlog_time_formats(inst, done):
    r = flux(inst, "job", "eventlog", "-T", "offset", done.dec)
    assert r.stdout.splitlines()[0].split()[0] == "0.000000"
    r = flux(inst, "job", "eventlog", "-T", "iso", done.dec)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d{4}) submit ", r.stdout)
    r = flux(inst, "job", "eventlog", "-H", done.dec)
    lines = r.stdout.splitlines()
    assert re.match(r"\[\w{3}\d\d \d\d:\d\d\] submit ", lines[0])
    assert re.match(r"\[ +\+\d+\.\d{6}\] \w", lines[1])
    r = flux(inst, "job", "eventlog", "-L", "-T", "raw", done.dec)
    assert "\033[" in r.stdout
    for bad in (("-f", "xml"), ("-T", "epoch"), ("--color=maybe",)):
        r = flux(inst, "job", "eventlog", *bad, done.dec)
        assert r.exit_code == 1 and r.stderr.startswith("flux-job: invalid"), bad


def test_eventlog_errors(inst, done):
    for text in unknown_forms(done):
        r = flux(inst, "job", "eventlog", text)
        assert (r.exit_code, r.stderr) == (1, f"flux-job: job {text} not found\n")
    r = flux(inst, "job", "eventlog", "-p", "guest.nope", done.f58)
    assert (r.exit_code, r.stderr) == (1, "flux-job: eventlog path guest.nope not found\n")
    r = flux(inst, "job", "eventlog", "bad-id!")
    assert (r.exit_code, r.stderr) == (1, "flux-job: error parsing jobid: \"bad-id!\"\n")


def test_eventlog_follow_ends_at_clean(inst):
    jobid = submit1(inst, *LONG, "true")
    proc = subprocess.Popen(flux_command() + ["job", "eventlog", "-F", jobid.f58],
                            env=inst.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for(inst, jobid, "start")
    assert flux(inst, "cancel", jobid.f58).exit_code == 0
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    names = [line.split()[1] for line in out.splitlines()]
    assert names[0] == "submit" and names[-1] == "clean" and "exception" in names


# -- wait-event -------------------------------------------------------------------------

def test_wait_event_prints_the_match(inst, done):
    r = flux(inst, "job", "wait-event", done.f58, "submit")
    assert r.exit_code == 0 and re.fullmatch(r"\d+\.\d{6} submit userid=0 .*\n", r.stdout)
    r = flux(inst, "job", "wait-event", "-q", done.f58, "clean")
    assert (r.exit_code, r.stdout) == (0, "")
    r = flux(inst, "job", "wait-event", "-v", done.f58, "clean")
    assert [line.split()[1] for line in r.stdout.splitlines()] == \
        [e["name"] for e in eventlog(inst, done)]
    r = flux(inst, "job", "wait-event", "-f", "json", done.f58, "submit")
    assert json.loads(r.stdout)["name"] == "submit"


def test_wait_event_context_match_and_count(inst):
    jobid = submit1(inst, *LONG, "true")
    wait_for(inst, jobid, "start")
    assert flux(inst, "job", "raise", "-s", "5", "-t", "first", jobid.f58).exit_code == 0
    assert flux(inst, "job", "raise", "-s", "6", "-t", "second", jobid.f58).exit_code == 0
    r = flux(inst, "job", "wait-event", "-m", "type=second", jobid.f58, "exception")
    assert r.exit_code == 0 and "type=\"second\"" in r.stdout
    r = flux(inst, "job", "wait-event", "-m", "severity=5", jobid.f58, "exception")
    assert r.exit_code == 0 and "type=\"first\"" in r.stdout
    r = flux(inst, "job", "wait-event", "-c", "2", jobid.f58, "exception")
    assert r.exit_code == 0 and "type=\"second\"" in r.stdout
    t0 = time.monotonic()
    r = flux(inst, "job", "wait-event", "-t", "0.3s", jobid.f58, "clean")
    assert (r.exit_code, r.stderr) == (1, "flux-job: wait-event timeout on event 'clean'\n")
    assert time.monotonic() - t0 < 5
    r = flux(inst, "job", "wait-event", "-m", "nokeyvalue", jobid.f58, "exception")
    assert r.exit_code == 1 and "key=value" in r.stderr
    assert flux(inst, "job", "wait-event", "-c", "0", jobid.f58, "start").exit_code == 1
    assert flux(inst, "cancel", jobid.f58).exit_code == 0


def test_wait_event_never_received(inst, done):
    r = flux(inst, "job", "wait-event", done.f58, "nosuchevent")
    assert (r.exit_code, r.stderr) == (1, "flux-job: event 'nosuchevent' never received\n")
    r = flux(inst, "job", "wait-event", "-c", "2", done.f58, "start")
    assert r.exit_code == 1 and "never received" in r.stderr
    for text in unknown_forms(done):
        r = flux(inst, "job", "wait-event", text, "clean")
        assert (r.exit_code, r.stderr) == (1, f"flux-job: job {text} not found\n")
    r = flux(inst, "job", "wait-event", "-W", done.f58, "clean")
    assert r.exit_code == 0


# -- info -------------------------------------------------------------------------------

def test_info_keys(inst, done):
    r = flux(inst, "job", "info", done.f58, "jobspec")
    assert r.exit_code == 0, r.output
    jobspec = json.loads(r.stdout)
    assert jobspec["tasks"][0]["command"] == ["true"]
    assert jobspec["attributes"]["user"]["color"] == "blue"
    r = flux(inst, "job", "info", done.f58, "R")
    assert json.loads(r.stdout)["execution"]["R_lite"]
    r = flux(inst, "job", "info", done.f58, "eventlog")
    assert r.stdout.splitlines()[0].startswith("{") and r.stdout.endswith("}\n")
    r = flux(inst, "job", "info", done.f58, "J")
    assert json.loads(r.stdout)["userid"] == 0
    r = flux(inst, "job", "info", "--original", done.f58, "jobspec")
    assert json.loads(r.stdout)["tasks"] == jobspec["tasks"]
    r = flux(inst, "job", "info", "--base", done.f58, "jobspec", "R")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 2


def test_info_errors(inst, done):
    for text in unknown_forms(done):
        r = flux(inst, "job", "info", text, "jobspec")
        assert (r.exit_code, r.stderr) == (1, f"flux-job: job {text} not found\n")
    r = flux(inst, "job", "info", done.f58, "nokey")
    assert (r.exit_code, r.stderr) == (1, f"flux-job: job {done.f58}: key nokey not found\n")
    assert flux(inst, "job", "info", done.f58).exit_code == 2


# -- cancel / raise / kill ---------------------------------------------------------------

def test_cancel_with_note(inst):
    a = submit1(inst, "--urgency=hold", "true")
    b = submit1(inst, "--urgency=hold", "true")
    r = flux(inst, "job", "cancel", a.f58, b.dec, "out", "of", "time")
    assert r.exit_code == 0, r.output
    for jobid in (a, b):
        wait_for(inst, jobid)
        exc = [e for e in eventlog(inst, jobid) if e["name"] == "exception"][0]["context"]
        assert (exc["type"], exc["severity"], exc["note"]) == ("cancel", 0, "out of time")
    c = submit1(inst, "--urgency=hold", "true")
    assert flux(inst, "job", "cancel", "-m", "by option", c.f58).exit_code == 0
    r = flux(inst, "job", "cancel", "-m", "x", c.f58, "and", "note")
    assert r.exit_code == 1 and "Do not set note" in r.stderr


def test_cancel_inactive_and_unknown(inst, done):
    r = flux(inst, "job", "cancel", done.f58)
    assert r.exit_code == 1 and r.stderr.startswith(f"flux-job: cancel {done.f58}: ")
    for text in unknown_forms(done):
        for verb in ("cancel", "raise", "kill"):
            r = flux(inst, "job", verb, text)
            assert r.exit_code == 1 and r.stderr.startswith(f"flux-job: {verb} {text}: ")
        r = flux(inst, "job", "wait", text)
        assert r.exit_code in (1, 2) and r.stderr.startswith("flux-job: ")
    r = flux(inst, "job", "cancel", "nope!")
    assert (r.exit_code, r.stderr) == (1, "flux-job: invalid jobid: nope!\n")
    assert flux(inst, "job", "cancel").exit_code == 2


def test_raise_nonfatal_then_fatal(inst):
    jobid = submit1(inst, *LONG, "true")
    wait_for(inst, jobid, "start")
    assert flux(inst, "job", "raise", "-s", "3", "-t", "warn", jobid.f58, "heads", "up").exit_code == 0
    r = flux(inst, "jobs", "-n", "-o", "{state}", jobid.f58)
    assert r.stdout.strip() == "RUN"
    assert flux(inst, "job", "raise", "-t", "mytype", jobid.f58).exit_code == 0
    wait_for(inst, jobid)
    excs = [e["context"] for e in eventlog(inst, jobid) if e["name"] == "exception"]
    assert [(x["type"], x["severity"], x["note"]) for x in excs] == \
        [("warn", 3, "heads up"), ("mytype", 0, "")]
    assert flux(inst, "job", "raise", "-s", "9", jobid.f58).exit_code == 2
    r = flux(inst, "job", "raise", "-t", "two words", jobid.f58)
    assert r.exit_code == 1


def test_kill_running_job(inst):
    jobid = submit1(inst, *LONG, "true")
    wait_for(inst, jobid, "start")
    assert flux(inst, "job", "kill", "-s", "USR1", jobid.f58).exit_code == 0
    wait_for(inst, jobid)
    finish = [e for e in eventlog(inst, jobid) if e["name"] == "finish"][0]
    assert os.WTERMSIG(finish["context"]["status"]) == signal.SIGUSR1
    r = flux(inst, "job", "kill", "-s", "NOSIG", jobid.f58)
    assert (r.exit_code, r.stderr) == (1, "flux-job: kill: Invalid signal NOSIG\n")
    r = flux(inst, "job", "kill", jobid.f58)          # inactive now
    assert r.exit_code == 1 and r.stderr.startswith(f"flux-job: kill {jobid.f58}: ")
    pending = submit1(inst, "--urgency=hold", "true")
    r = flux(inst, "job", "kill", pending.f58)        # not running
    assert r.exit_code == 1 and r.stderr.startswith(f"flux-job: kill {pending.f58}: ")
    assert flux(inst, "job", "cancel", pending.f58).exit_code == 0


def test_bulk_commands(inst):
    ids = [submit1(inst, "--urgency=hold", "true") for _ in range(3)]
    r = flux(inst, "job", "cancelall")
    assert r.exit_code == 0
    m = re.fullmatch(r"flux-job: Command matched (\d+) jobs \(-f to confirm\)\n", r.stderr)
    assert m and int(m.group(1)) >= 3
    r = flux(inst, "job", "raiseall", "-S", "sched", "note-it", "hello")
    assert r.exit_code == 0 and "(-f to confirm)" in r.stderr
    r = flux(inst, "job", "raiseall", "-f", "-S", "pending", "note-it", "hello")
    assert re.fullmatch(r"flux-job: Raised exception on \d+ jobs \(0 errors\)\n", r.stderr)
    assert any(e["name"] == "exception" and e["context"]["type"] == "note-it"
               and e["context"]["severity"] == 7 for e in eventlog(inst, ids[0]))
    r = flux(inst, "job", "killall")
    assert r.exit_code == 0 and r.stderr.startswith("flux-job: Command matched")
    r = flux(inst, "job", "cancelall", "-f", "-S", "pending", "bye")
    assert re.fullmatch(r"flux-job: Canceled \d+ jobs \(0 errors\)\n", r.stderr)
    for jobid in ids:
        wait_for(inst, jobid)
    r = flux(inst, "job", "cancelall", "-S", "pending")
    assert r.stderr == "flux-job: Command matched 0 jobs\n"
    assert flux(inst, "job", "cancelall", "-q", "-S", "pending").stderr == ""
    r = flux(inst, "job", "cancelall", "-S", "inactive")
    assert (r.exit_code, r.stderr) == (1, "flux-job: Inactive jobs cannot be canceled\n")
    r = flux(inst, "job", "cancelall", "-S", "bogus")
    assert (r.exit_code, r.stderr) == (1, "flux-job: error parsing --states: bogus is unknown\n")
    r = flux(inst, "job", "cancelall", "-u", "nosuchuser")
    assert (r.exit_code, r.stderr) == (1, "flux-job: unknown user nosuchuser\n")
    jobid = submit1(inst, *LONG, "true")
    wait_for(inst, jobid, "start")
    r = flux(inst, "job", "killall", "-f", "-s", "KILL")
    assert re.fullmatch(r"flux-job: Killed \d+ jobs \(0 errors\)\n", r.stderr)
    wait_for(inst, jobid)


# -- urgency ----------------------------------------------------------------------------

def queue_start(inst, start):
    h = inst.handle()
    h.rpc("job-manager.queue-start", {"all": True, "start": start}).get()
    h.close()


def test_urgency(inst, done):
    queue_start(inst, False)     # nothing may start while urgencies change
    try:
        jobid = submit1(inst, "--urgency=hold", "true")
        r = flux(inst, "job", "urgency", "-v", jobid.f58, "10")
        assert (r.exit_code, r.stdout, r.stderr) == (0, "", "old urgency: job held\n")
        r = flux(inst, "job", "urgency", "-v", jobid.f58, "hold")
        assert r.stderr == "old urgency: 10\n"
        assert flux(inst, "jobs", "-n", "-o", "{urgency} {priority}",
                    jobid.f58).stdout.split() == ["0", "0"]
        assert flux(inst, "job", "urgency", jobid.f58, "EXPEDITE").exit_code == 0
        r = flux(inst, "job", "urgency", "-v", jobid.f58, "default")
        assert r.stderr == "old urgency: job expedited\n"
        assert flux(inst, "jobs", "-n", "-o", "{urgency} {priority}",
                    jobid.f58).stdout.split() == ["16", "16"]
        r = flux(inst, "job", "urgency", jobid.f58, "soon")
        assert (r.exit_code, r.stderr) == (1, "flux-job: error parsing urgency: \"soon\"\n")
        r = flux(inst, "job", "urgency", jobid.f58, "32")
        assert r.exit_code == 1 and r.stderr.startswith(f"flux-job: {jobid.f58}: ")
        r = flux(inst, "job", "urgency", done.f58, "default")
        assert r.exit_code == 1 and r.stderr.startswith(f"flux-job: {done.f58}: ")
        for text in unknown_forms(done):
            r = flux(inst, "job", "urgency", text, "default")
            assert r.exit_code == 1 and r.stderr.startswith(f"flux-job: {text}: ")
    finally:
        queue_start(inst, True)
    wait_for(inst, jobid)
    assert flux(inst, "jobs", "-n", "-o", "{status}", jobid.f58).stdout.strip() == "COMPLETED"


def test_guest_limits(inst):
    owner_job = submit1(inst, "--urgency=hold", "true")
    out = guest(inst, "job", "cancel", owner_job.f58)
    assert out.returncode == 1 and out.stderr.startswith(f"flux-job: cancel {owner_job.f58}: ")
    out = guest(inst, "job", "urgency", owner_job.f58, "10")
    assert out.returncode == 1
    out = guest(inst, "submit", "--urgency=hold", "true")
    mine = JobID(out.stdout.strip())
    out = guest(inst, "job", "urgency", mine.f58, "expedite")
    assert out.returncode == 1          # guests may not go above 16
    out = guest(inst, "job", "urgency", "-v", mine.f58, "0")
    assert (out.returncode, out.stderr) == (0, "old urgency: job held\n")
    out = guest(inst, "job", "info", owner_job.f58, "jobspec")
    assert out.returncode == 1
    out = guest(inst, "job", "cancel", mine.f58)
    assert out.returncode == 0, out.stderr
    assert flux(inst, "job", "cancel", owner_job.f58).exit_code == 0


# -- attach, wait, purge -----------------------------------------------------------------

def test_attach(inst, done):
    r = flux(inst, "job", "attach", done.f58)
    assert (r.exit_code, r.stdout) == (0, "")
    jobid = submit1(inst, "--urgency=hold", "true")
    assert flux(inst, "cancel", jobid.f58).exit_code == 0
    r = flux(inst, "job", "attach", jobid.f58)
    assert r.exit_code == 1
    assert re.search(rf"\d+\.\d{{3}}s: job\.exception {jobid.f58} type=cancel severity=0",
                     r.stderr)
    # flux-job(1): the eventlog is followed to --wait-event, by default finish
    r = flux(inst, "job", "attach", "-E", done.f58)
    assert re.search(r"^\d+\.\d{3}s: job\.finish", r.stderr, re.M)
    assert not re.search(r"job\.clean", r.stderr)
    r = flux(inst, "job", "attach", "-E", "-w", "clean", done.f58)
    assert re.search(r"^\d+\.\d{3}s: job\.clean$", r.stderr, re.M)
    for text in unknown_forms(done):
        r = flux(inst, "job", "attach", text)
        assert (r.exit_code, r.stderr) == (1, f"flux-job: Failed to attach to {text}: No such job\n")


def test_attach_killed_job_exit_code(inst):
    jobid = submit1(inst, *LONG, "true")
    wait_for(inst, jobid, "start")
    proc = subprocess.Popen(flux_command() + ["job", "attach", jobid.f58], env=inst.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    assert flux(inst, "job", "kill", jobid.f58).exit_code == 0
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "task(s) Terminated" in err


def test_wait(inst):
    ok = submit1(inst, "--flags=waitable", "true")
    assert flux(inst, "job", "wait", ok.f58).exit_code == 0
    bad = submit1(inst, "--flags=waitable", "--urgency=hold", "true")
    assert flux(inst, "cancel", bad.f58).exit_code == 0
    r = flux(inst, "job", "wait", bad.f58)
    assert r.exit_code == 1 and r.stderr.startswith("flux-job: ")
    any_job = submit1(inst, "--flags=waitable", "true")
    r = flux(inst, "job", "wait")
    assert (r.exit_code, r.stdout) == (0, f"{any_job.f58}\n")
    r = flux(inst, "job", "wait")
    assert r.exit_code == 2
    ids = [submit1(inst, "--flags=waitable", "true") for _ in range(2)]
    failing = submit1(inst, "--flags=waitable", "--urgency=hold", "true")
    assert flux(inst, "cancel", failing.f58).exit_code == 0
    r = flux(inst, "job", "wait", "--all", "-v")
    assert r.exit_code == 1
    assert f"{failing.f58}: " in r.stderr
    assert all(f"{j.f58}: job completed successfully" in r.stderr for j in ids)
    assert flux(inst, "job", "wait", "--all", ids[0].f58).exit_code == 1


def test_purge(inst, done):
    r = flux(inst, "job", "purge", "--num-limit=0")
    m = re.fullmatch(r"use --force to purge (\d+) inactive jobs\n", r.stdout)
    assert r.exit_code == 0 and m and int(m.group(1)) >= 1
    jobid = submit1(inst, "true")
    wait_for(inst, jobid)
    r = flux(inst, "job", "purge", "-f", jobid.f58)
    assert (r.exit_code, r.stdout) == (0, "purged 1 inactive jobs\n")
    r = flux(inst, "job", "eventlog", jobid.f58)
    assert r.exit_code == 1
    assert flux(inst, "job", "purge", "--age-limit=soon").exit_code == 1
