"""flux batch: a script run as the initial program of a new instance, on real instances.

The parent is a real two-broker instance; each batch job is ``flux broker``
run by the job shell on every node of the job, the script shipped in the
jobspec (RFC 37) and written to the job's tmpdir.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from broker.testing import TestInstance
from flux.job import JobID
from helpers.procs import alive, wait_dead
from jobmgr.resource.parent import renumber_R

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parent():
    inst = TestInstance(size=2).start()
    yield inst
    inst.stop()


def batch(inst, *args, cwd=None, input=None):
    r = inst.flux("batch", *args, input=input) if cwd is None else \
        _in(cwd, lambda: inst.flux("batch", *args, input=input))
    assert r.returncode == 0, r.stderr
    return JobID(r.stdout.strip())


def _in(cwd, fn):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return fn()
    finally:
        os.chdir(old)


def wait_clean(inst, jobid, timeout="60s"):
    r = inst.flux("job", "wait-event", "-t", timeout, str(jobid), "clean", timeout=90)
    assert r.returncode == 0, (r.stderr, inst.stderr_text()[-3000:])


def fields(inst, jobid, fmt):
    r = inst.flux("jobs", "-n", "-o", fmt, str(jobid))
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def events(inst, jobid, path="eventlog"):
    r = inst.flux("job", "eventlog", "-f", "json", "-p", path, str(jobid))
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line]


def job_processes(jobid):
    """Pids whose command line names the job (its brokers run jobtmp-R-ID/script, their
    shell servers connect to sockets under it)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().decode("utf-8", "replace")
        except OSError:
            continue
        if jobid.f58 in cmdline and alive(int(entry)):
            found.append(int(entry))
    return found


def wait_file(path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as fh:
                text = fh.read()
            if text.endswith("\n"):
                return text
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def test_wrap_runs_in_a_child_instance_and_writes_flux_id_out(parent, tmp_path):
    jobid = batch(parent, "-N1", "--wrap", "flux getattr instance-level; flux getattr size;"
                  " flux getattr jobid; flux kvs get resource.R;"
                  " echo $FLUX_ENCLOSING_ID x$FLUX_JOB_ID x$FLUX_KVS_NAMESPACE", cwd=tmp_path)
    wait_clean(parent, jobid)
    out = (tmp_path / f"flux-{jobid.f58}.out").read_text().splitlines()
    assert out[0] == "1" and out[1] == "1" and out[2] == jobid.f58
    # the initial program's environment names the instance's job, not a job of its own
    assert out[4].split() == [jobid.f58, "x", "x"]
    R = json.loads(out[3])
    r = parent.flux("job", "info", str(jobid), "R")
    assert R == renumber_R(json.loads(r.stdout))
    # the job is named after the wrapped command; the script travels in the jobspec
    assert fields(parent, jobid, "{name} {result} {returncode}") == ["flux", "COMPLETED", "0"]
    r = parent.flux("job", "info", str(jobid), "jobspec")
    spec = json.loads(r.stdout)
    script = spec["attributes"]["system"]["files"]["script"]
    assert script["data"].startswith("#!/bin/sh\nflux getattr instance-level;")
    assert spec["tasks"][0]["command"][:2] == ["flux", "broker"]
    assert spec["tasks"][0]["command"][-1] == "{{tmpdir}}/script"


def test_the_jobs_exit_code_is_the_scripts(parent, tmp_path):
    jobid = batch(parent, "-n1", "--output=kvs", "--wrap", "echo failing; exit 3")
    r = parent.flux("job", "attach", str(jobid), timeout=90)
    assert r.returncode == 3 and r.stdout == "failing\n", r.stderr
    assert fields(parent, jobid, "{result} {returncode}") == ["FAILED", "3"]


def test_a_script_file_with_arguments_and_a_script_on_stdin(parent, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho args: \"$@\"\n")
    jobid = batch(parent, "-n1", "--output=kvs", str(script), "a", "b c")
    r = parent.flux("job", "attach", str(jobid), timeout=90)
    assert r.stdout == "args: a b c\n", r.stderr
    assert fields(parent, jobid, "{name}") == ["job.sh"]
    jobid = batch(parent, "-n1", "--output=kvs", input="#!/bin/sh\necho from stdin\n")
    r = parent.flux("job", "attach", str(jobid), timeout=90)
    assert r.stdout == "from stdin\n", r.stderr
    assert fields(parent, jobid, "{name}") == ["batch"]
    # --wrap of stdin
    jobid = batch(parent, "-n1", "--output=kvs", "--wrap", input="echo wrapped\n")
    r = parent.flux("job", "attach", str(jobid), timeout=90)
    assert r.stdout == "wrapped\n", r.stderr


def test_submission_directives_in_the_script(parent, tmp_path):
    """flux-batch(1), RFC 36: ``#flux:`` lines are options; the command line wins."""
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\n"
                      "#flux: -N2 -n2\n"
                      "#flux: --job-name=directed   # named here\n"
                      "#flux: -t 10m\n"
                      "flux getattr size; flux run -N2 -n2 -l hostname | sort | cut -c1-2\n")
    jobid = batch(parent, str(script), cwd=tmp_path)
    wait_clean(parent, jobid)
    out = (tmp_path / f"flux-{jobid.f58}.out").read_text()
    assert out.splitlines() == ["2", "0:", "1:"], out
    assert fields(parent, jobid, "{name} {nnodes} {ntasks} {duration}") == \
        ["directed", "2", "2", "600.0"]
    jobid = batch(parent, "-N1", "--job-name=mine", "--output=kvs", str(script))
    r = parent.flux("job", "attach", str(jobid), timeout=90)
    assert r.stdout.splitlines()[0] == "1", r.stderr
    assert fields(parent, jobid, "{name} {nnodes}") == ["mine", "1"]
    script.write_text("#!/bin/sh\n#flux: -n1\ntrue\n#flux: -t 1m\n")
    r = parent.flux("batch", str(script))
    assert r.returncode == 1 and "job.sh: line 4: orphan directive" in r.stderr


def test_bad_requests(parent, tmp_path):
    r = parent.flux("batch", "--wrap", "true")
    assert r.returncode == 2 and "Number of slots" in r.stderr
    script = tmp_path / "noshebang"
    script.write_text("echo hi\n")
    r = parent.flux("batch", "-n1", str(script))
    assert r.returncode == 1 and "does not appear to start with '#!'" in r.stderr
    r = parent.flux("batch", "-n1", str(tmp_path / "missing.sh"))
    assert r.returncode == 1 and "missing.sh" in r.stderr
    r = parent.flux("batch", "-n1", "--conf", "a..b=1", "--wrap", "true")
    assert r.returncode == 1 and "--conf" in r.stderr


def test_slots_nodes_broker_options_and_conf(parent, tmp_path):
    jobid = batch(parent, "-N2", "-n2", "-B-Slog-stderr-level=5", "--conf",
                  "exec.kill-timeout=2", "--output=kvs", "--wrap",
                  "flux getattr size; flux getattr log-stderr-level; flux config get exec")
    r = parent.flux("job", "attach", str(jobid), timeout=90)
    assert r.returncode == 0, r.stderr
    size, level, conf = r.stdout.splitlines()
    assert size == "2" and level == "5" and json.loads(conf) == {"kill-timeout": 2}
    r = parent.flux("batch", "--dry-run", "-n3", "-c2", "-t", "5m", "--wrap", "true")
    spec = json.loads(r.stdout)
    assert spec["resources"][0]["count"] == 3
    assert spec["resources"][0]["with"][0] == {"type": "core", "count": 2}
    assert spec["attributes"]["system"]["duration"] == 300
    assert spec["attributes"]["system"]["shell"]["options"]["output"]["stdout"]["path"] \
        == "flux-{{id}}.out"


def test_the_store_lives_in_the_jobs_tmpdir_and_goes_with_it(parent, tmp_path):
    done = tmp_path / "done"
    info = tmp_path / "info"
    jobid = batch(parent, "-n1", "--output=kvs", "--wrap",
                  f"echo $(flux getattr rundir) x$FLUX_JOB_TMPDIR > {info}.new;"
                  f" mv {info}.new {info}; while ! test -e {done}; do sleep 0.1; done")
    rundir, tmpdir = wait_file(str(info)).split()
    try:
        # the initial program does not see the variables that described the job
        assert tmpdir == "x"
        assert os.path.exists(os.path.join(rundir, "content.lmdb"))
        jobtmp = os.path.basename(os.path.dirname(rundir))
        assert jobtmp.startswith("jobtmp-") and jobtmp.endswith(jobid.f58)
    finally:
        done.write_text("x")
    wait_clean(parent, jobid)
    assert not os.path.exists(rundir)


def test_cancel_ends_the_instance_its_jobs_and_their_processes(parent, tmp_path):
    state = tmp_path / "state"
    pidfile = tmp_path / "pids"
    jobid = batch(parent, "-N2", "-n2", "-B", f"-Sstatedir={state}", "--output=kvs", "--wrap",
                  f"flux submit -N2 -n2 sh -c 'echo $$ >> {pidfile}; exec sleep 300' >/dev/null;"
                  " sleep 300")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pidfile.exists() and len(pidfile.read_text().split()) == 2:
            break
        time.sleep(0.1)
    pids = [int(p) for p in pidfile.read_text().split()]
    assert all(alive(p) for p in pids)
    instance = job_processes(jobid)
    assert len(instance) >= 4           # two brokers and their shell servers
    t0 = time.monotonic()
    assert parent.flux("cancel", str(jobid)).returncode == 0
    wait_clean(parent, jobid)
    # ended in order, without waiting out the parent's kill timeout (5 s)
    assert time.monotonic() - t0 < 4.5
    result, code = fields(parent, jobid, "{result} {returncode}")
    assert result == "CANCELED" and code != "137"
    assert wait_dead(pids + instance, timeout=5.0)
    assert job_processes(jobid) == []
    # the child's own job got an exception: its store (the statedir we gave) says so
    r = parent.flux("start", f"-Sstatedir={state}", "flux", "jobs", "-a", "-n", "-o",
                    "{result} {exception.type}", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["FAILED", "exec"]


def test_a_time_limit_ends_the_instance_with_timeout(parent, tmp_path):
    pidfile = tmp_path / "pid"
    jobid = batch(parent, "-n1", "-t", "2s", "--output=kvs", "--wrap",
                  f"flux submit sh -c 'echo $$ > {pidfile}; exec sleep 300' >/dev/null; sleep 300")
    wait_clean(parent, jobid)
    assert fields(parent, jobid, "{result} {exception.type}") == ["TIMEOUT", "timeout"]
    assert wait_dead(job_processes(jobid), timeout=5.0)
    if pidfile.exists():
        assert wait_dead([int(pidfile.read_text())], timeout=5.0)


def test_a_batch_job_submits_a_batch_job(parent, tmp_path):
    out = tmp_path / "out"
    jobid = batch(parent, "-n2", "--output=kvs", "--wrap",
                  f"flux batch -n1 --output={out} --wrap flux getattr instance-level"
                  " > /dev/null; flux queue drain")
    wait_clean(parent, jobid)
    assert fields(parent, jobid, "{result}") == ["COMPLETED"]
    assert out.read_text() == "2\n"


def test_an_instance_ends_a_job_across_its_ranks_before_its_brokers_leave(tmp_path):
    """Rank 0 ends the running jobs at cleanup, while the broker of every rank they
    run on is still there to report them (it used to take exec's timeouts: 12 s)."""
    pidfile = tmp_path / "pids"
    t0 = time.monotonic()
    r = TestInstance(size=1).flux(
        "start", "-s2", "sh", "-c",
        f"flux submit -N2 -n2 sh -c 'echo $$ >> {pidfile}; exec sleep 300' >/dev/null;"
        f" while test $(cat {pidfile} 2>/dev/null | wc -l) -lt 2; do sleep 0.1; done",
        timeout=60)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 8.0
    assert wait_dead([int(p) for p in pidfile.read_text().split()], timeout=5.0)


def test_a_rundir_too_deep_for_a_socket_address_gets_a_short_socket(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    r = TestInstance(size=1).flux("start", "-s1", f"--rundir={deep}", "sh", "-c",
                                  "flux getattr local-uri; flux getattr instance-level",
                                  timeout=60)
    assert r.returncode == 0, r.stderr
    uri, level = r.stdout.split()
    path = uri[len("local://"):]
    assert level == "0" and len(path.encode()) <= 107 and not path.startswith(str(tmp_path))
    assert not os.path.exists(os.path.dirname(path))     # removed with the instance


def test_a_script_that_ignores_the_hangup_is_killed_with_all_it_started(parent, tmp_path):
    """The broker is SIGKILLed after the parent's kill timeout; its initial program
    dies with it (PDEATHSIG) and what that started is swept by FLUX_ENCLOSING_ID."""
    pidfile = tmp_path / "pids"
    jobid = batch(parent, "-n1", "--output=kvs", "--wrap",
                  f"trap '' HUP TERM; sleep 300 & echo $$ $! > {pidfile}; wait; wait; sleep 300")
    text = wait_file(str(pidfile))
    pids = [int(p) for p in text.split()]
    assert parent.flux("cancel", str(jobid)).returncode == 0
    wait_clean(parent, jobid)
    assert fields(parent, jobid, "{result}") == ["CANCELED"]
    assert wait_dead(pids, timeout=5.0), [p for p in pids if alive(p)]
    assert wait_dead(job_processes(jobid), timeout=5.0)
