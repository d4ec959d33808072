"""Real jobs across ranks, lost ranks, shutdown, broker crashes, and other users.

No task or shell of a job may outlive the job, the instance, or a broker
killed with SIGKILL; a restarted instance ends the jobs it lost with an
exception and keeps what they wrote.
"""
from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import time
import uuid

import pytest

from broker.testing import TestInstance
from helpers.live import submit_real
from flux.job import JobID
from helpers.procs import wait_dead

pytestmark = pytest.mark.slow


submit = submit_real


def wait_event(inst, jobid, name, timeout="30s", path=None):
    extra = ["-p", path] if path else []
    r = inst.flux("job", "wait-event", "-t", timeout, *extra, str(jobid), name)
    assert r.returncode == 0, (r.stderr, inst.stderr_text()[-2000:])


def events(inst, jobid, path=None):
    extra = ["-p", path] if path else []
    r = inst.flux("job", "eventlog", "-f", "json", *extra, str(jobid))
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def wait_file(path, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and open(path).read().strip():
            return open(path).read().split()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def pids_job(tmp_path, name):
    """A job command that records its shell's and a grandchild's pids, then waits forever."""
    out = tmp_path / name
    return out, ["sh", "-c", f"sleep 3600 & echo $PPID $$ $! > {out}; wait"]


# -- two ranks --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair():
    inst = TestInstance(size=2).start()
    yield inst
    inst.stop()


def test_a_job_runs_a_shell_on_each_rank(pair):
    r = pair.flux("run", "-N2", "-n4", "-l", "sh", "-c",
                  "echo $(flux getattr rank) $FLUX_JOB_NNODES")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert lines == {"0": "0 2", "1": "0 2", "2": "1 2", "3": "1 2"}
    r = pair.flux("run", "-N2", "sh", "-c", "exit $(flux getattr rank)")
    assert r.returncode == 1


def test_release_per_rank_then_final(pair):
    r = pair.flux("submit", "-N2", "sh", "-c",
                  "test $(flux getattr rank) = 1 && exit 0; sleep 0.5")
    jobid = JobID(r.stdout.strip())
    wait_event(pair, jobid, "clean")
    releases = [e["context"] for e in events(pair, jobid) if e["name"] == "release"]
    assert releases == [{"ranks": "1", "final": False}, {"ranks": "0", "final": True}]


def test_losing_a_rank_ends_its_jobs_with_node_failure(tmp_path):
    inst = TestInstance(size=2).start()
    try:
        pidfile, cmd = pids_job(tmp_path, "pids")
        jobid = submit(inst, "-N2", "sh", "-c",
                       f"if [ $(flux getattr rank) = 1 ]; then {cmd[2]}; else sleep 3600; fi")
        shell, task, grandchild = (int(p) for p in wait_file(pidfile))
        os.kill(inst.broker_pids[1], signal.SIGKILL)
        wait_event(inst, jobid, "clean", timeout="60s")
        exc = [e["context"] for e in events(inst, jobid) if e["name"] == "exception"]
        assert exc and exc[0]["type"] == "node-failure" and "rank 1" in exc[0]["note"]
        assert wait_dead([shell, task, grandchild])
        # rank 0 still runs jobs
        r = inst.flux("run", "echo", "alive")
        assert r.stdout == "alive\n"
    finally:
        inst.kill()


def test_a_rank_leaving_cleanly_ends_its_jobs_too(tmp_path):
    # SIGTERM: the broker leaves in order and ends its shells; the job must not run on
    # without it until the exit-timeout (or for ever with exit-timeout=none)
    inst = TestInstance(size=2).start()
    try:
        jobid = submit(inst, "-N2", "-o", "exit-timeout=none", "sleep", "3600")
        wait_event(inst, jobid, "start")
        os.kill(inst.broker_pids[1], signal.SIGTERM)
        wait_event(inst, jobid, "clean", timeout="20s")
        exc = [e["context"] for e in events(inst, jobid) if e["name"] == "exception"]
        assert exc and exc[0]["type"] == "node-failure" and "rank 1" in exc[0]["note"]
        assert "left the instance" in exc[0]["note"]
    finally:
        inst.kill()


# -- many jobs at once --------------------------------------------------------------------------

def test_a_thousand_jobs_at_once_keep_fds_and_memory_bounded(tmp_path):
    import socket as _socket

    n = 1000
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "r.toml").write_text(f"""[resource]
noverify = true
monitor-force-up = true
[[resource.config]]
hosts = "{_socket.gethostname()}"
cores = "0-{n - 1}"
""")
    inst = TestInstance(config_path=str(conf)).start()
    try:
        broker = inst.broker_pids[0]
        inst.flux("run", "true")
        fds0 = len(os.listdir(f"/proc/{broker}/fd"))
        r = inst.flux("submit", f"--cc=1-{n}", "--quiet", "-o", "cpu-affinity=off",
                      "sh", "-c", "echo started; sleep 300", timeout=120)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            running = inst.flux("jobs", "-n", "-f", "running", "-o", "{id}").stdout.split()
            if len(running) == n:
                break
            time.sleep(0.5)
        assert len(running) == n
        fds = len(os.listdir(f"/proc/{broker}/fd"))
        # one connection per shell server, not per job: the broker's fds do not grow with jobs
        assert fds - fds0 < 20, (fds0, fds)
        with open(f"/proc/{broker}/status") as fh:
            rss = next(int(line.split()[1]) for line in fh if line.startswith("RssAnon"))
        assert rss < 400_000, rss                     # KiB
        assert inst.flux("cancel", "--all").returncode == 0
        assert inst.flux("queue", "drain", timeout=120).returncode == 0
        results = inst.flux("jobs", "-a", "-n", "-o", "{result}").stdout.split()
        assert results.count("CANCELED") == n
    finally:
        inst.stop()


# -- shutdown and crashes ---------------------------------------------------------------------

def test_shutdown_ends_running_jobs_and_their_processes(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    inst = TestInstance(setattrs=[f"statedir={state}"]).start()
    pidfile, cmd = pids_job(tmp_path, "pids")
    jobid = submit(inst, *cmd)
    pids = [int(p) for p in wait_file(pidfile)]
    t0 = time.monotonic()
    inst.stop()
    # the tasks took the first signal: no wait for the kill timeout (5 s), and so no
    # "unkillable processes" drain of the node (every shutdown of a system instance
    # with running jobs drained its nodes)
    assert time.monotonic() - t0 < 4.0
    assert wait_dead(pids, timeout=1.0)           # gone before the broker exited
    again = TestInstance(setattrs=[f"statedir={state}"]).start()
    try:
        r = again.flux("resource", "status", "-s", "drained", "-no", "{nodelist}")
        assert r.returncode == 0 and r.stdout.strip() == "", r.stdout
        names = [e["name"] for e in events(again, jobid)]
        assert names[-1] == "clean" and "finish" in names
        exc = [e["context"] for e in events(again, jobid) if e["name"] == "exception"]
        assert exc[0]["type"] == "exec" and "shutting down" in exc[0]["note"]
        assert [e["name"] for e in events(again, jobid, "exec")][-1] == "done"
    finally:
        again.stop()


def test_shutdown_keeps_pending_jobs_queued(tmp_path):
    # the Administrator's Guide: a shutdown preserves the jobs not yet allocated; the
    # cores the running job frees at the shutdown must not go to them (they would only
    # fail to start)
    state = tmp_path / "state"
    state.mkdir()
    ncores = len(os.sched_getaffinity(0))
    # with an initial program: its end (the shutdown) ends the running jobs while the
    # scheduler is still loaded
    inst = TestInstance(setattrs=[f"statedir={state}"], rc2=["sleep", "3600"]).start()
    running = submit(inst, f"-n{ncores}", "sleep", "100")
    wait_event(inst, running, "start")
    pending = [submit(inst, f"-n{ncores}", "true") for _ in range(2)]
    inst.stop()
    again = TestInstance(setattrs=[f"statedir={state}"]).start()
    try:
        for jobid in pending:
            names = [e["name"] for e in events(again, jobid)]
            assert "exception" not in names, names
            wait_event(again, jobid, "clean", timeout="60s")
            assert "finish" in [e["name"] for e in events(again, jobid)]
    finally:
        again.stop()


def test_broker_sigkill_leaves_no_process_and_restart_ends_the_job(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    inst = TestInstance(setattrs=[f"statedir={state}"]).start()
    pidfile, cmd = pids_job(tmp_path, "pids")
    marker = uuid.uuid4().hex
    jobid = submit(inst, "sh", "-c", f"echo {marker}; {cmd[2]}")
    pids = [int(p) for p in wait_file(pidfile)]
    wait_event(inst, jobid, "start")
    time.sleep(0.3)                              # the output batch reaches the KVS
    for pid in inst.broker_pids:
        os.kill(pid, signal.SIGKILL)
    inst.proc.wait()
    assert wait_dead(pids, timeout=10.0)
    again = TestInstance(setattrs=[f"statedir={state}"]).start()
    try:
        wait_event(again, jobid, "clean")
        exc = [e["context"] for e in events(again, jobid) if e["name"] == "exception"]
        assert exc and exc[0]["type"] == "exec" and "lost" in exc[0]["note"]
        out = again.flux("job", "attach", str(jobid))
        assert marker in out.stdout
        assert f"job-{int(jobid)}" not in again.flux("kvs", "namespace", "list").stdout
    finally:
        again.stop()


# -- other users --------------------------------------------------------------------------------

GUEST_CONF = "[access]\nallow-guest-user = true\n"


def test_a_guests_job_runs_as_the_guest(tmp_path_factory):
    if os.getuid() != 0:
        pytest.skip("needs root to submit as user nobody")
    from helpers.live import guest, start_instance

    inst = start_instance(tmp_path_factory, GUEST_CONF)
    try:
        # (no flux command inside: this machine's Python is not readable by nobody)
        r = guest(inst, "run", "--cwd=/", "sh", "-c", "id -u; id -g; stat -c %u $FLUX_JOB_TMPDIR")
        nobody = pwd.getpwnam("nobody")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [str(nobody.pw_uid), str(nobody.pw_gid), str(nobody.pw_uid)]
        # the guest's namespace and output are readable by the guest afterwards
        jobid = JobID(inst.flux("jobs", "-A", "-n", "-c1", "-o", "{id}").stdout.strip())
        again = guest(inst, "job", "attach", str(jobid))
        assert again.returncode == 0 and again.stdout.split()[0] == str(nobody.pw_uid)
    finally:
        inst.stop()


def test_an_instance_not_running_as_root_refuses_other_users_jobs():
    # a guest's tasks never run as the owner (id -u above); without root the
    # instance cannot switch users, so it refuses such jobs
    from jobmgr.exec.module import user_check

    assert user_check(1000, owner=1000, euid=1000) is None
    assert user_check(0, owner=0, euid=0) is None
    assert user_check(2000, owner=1000, euid=0) is None
    note = user_check(2000, owner=1000, euid=1000)
    assert note is not None and "cannot run jobs for other users" in note
