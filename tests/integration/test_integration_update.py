"""flux update (flux-update(1), seed 000) on real instances, checked again after a restart."""
from __future__ import annotations

import json
import os
import time

import pytest

from broker.testing import TestInstance
from flux.job.JobID import JobID

PENDING_CONF = """
[exec]
test = true
[access]
allow-guest-user = true
[policy.limits]
duration = "1h"
[policy.jobspec.defaults.system]
queue = "batch"
[queues.batch]
requires = ["batch"]
[queues.debug]
requires = ["debug"]
[queues.debug.policy.limits]
duration = "10m"
[resource]
noverify = true
monitor-force-up = true
[[resource.config]]
hosts = "node0"
cores = "0-3"
properties = ["batch", "debug"]
[[resource.config]]
hosts = "node1"
cores = "0-3"
properties = ["batch"]
"""
IMMUTABLE = "flux-update: job is immutable due to previous instance owner update"


class Instance:
    """One statedir, started again after ``restart()``."""

    def __init__(self, tmp_path, conf: str | None) -> None:
        self.statedir = tmp_path / "state"
        self.statedir.mkdir()
        self.conf = None
        if conf is not None:
            confdir = tmp_path / "conf"
            confdir.mkdir()
            os.chmod(confdir, 0o755)     # a guest's commands read it too
            (confdir / "update.toml").write_text(conf)
            self.conf = str(confdir)
        self.inst = self._start()

    def _start(self) -> TestInstance:
        inst = TestInstance(setattrs=[f"statedir={self.statedir}"],
                            config_path=self.conf).start()
        if self.conf and "[queues" in (open(os.path.join(self.conf, "update.toml")).read()):
            inst.flux("queue", "start", "--all")
        return inst

    def restart(self) -> None:
        assert self.inst.stop() == 0
        self.inst = self._start()

    def flux(self, *args: str, check: bool = True):
        r = self.inst.flux(*args, check=False)
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    def update(self, *args: str):
        return self.inst.flux("update", *args, check=False)

    def guest(self, *args: str):
        from helpers.live import guest

        return guest(self.inst, *args)

    def submit(self, *args: str) -> str:
        return self.flux("submit", *args).stdout.strip()

    def field(self, jobid: str, fmt: str) -> str:
        return self.flux("jobs", "-n", "-o", fmt, jobid).stdout.strip()

    def system(self, jobid: str, *opts: str) -> dict:
        spec = json.loads(self.flux("job", "info", *opts, jobid, "jobspec").stdout)
        return spec["attributes"]["system"]

    def events(self, jobid: str) -> list[dict]:
        out = self.flux("job", "eventlog", "-f", "json", jobid).stdout
        return [json.loads(line) for line in out.splitlines()]

    def names(self, jobid: str) -> list[str]:
        return [e["name"] for e in self.events(jobid)]

    def stop(self) -> None:
        if self.inst.proc is not None and self.inst.proc.poll() is None:
            self.inst.stop()


@pytest.fixture
def pending(tmp_path):
    inst = Instance(tmp_path, PENDING_CONF)
    yield inst
    inst.stop()


def refused(r, text: str) -> None:
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.strip() == f"flux-update: {text}"


# -- pending jobs ----------------------------------------------------------------------------

def test_pending_updates_of_each_special_key_survive_restart(pending):
    a = pending.submit("--urgency=hold", "-t", "10m", "--job-name=orig", "true")
    r = pending.update("-v", a, "duration=+20m", "name=renamed")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        "flux-update: updated attributes.system.duration to 1800.0",
        "flux-update: updated attributes.system.job.name to renamed"]
    b = pending.submit("--urgency=hold", "-t", "5m", "true")
    assert pending.update(b, "queue=debug").returncode == 0
    c = pending.submit("--urgency=hold", "-t", "5m", "true")
    assert pending.update(c, "attributes.system.duration=-2m").returncode == 0
    refused(pending.update(c, "duration=-10m"),
            f"current duration for {c} (3m) cannot be reduced by 10m")

    def check() -> None:
        assert pending.field(a, "{duration} {name} {queue}") == "1800.0 renamed batch"
        system = pending.system(a)
        assert system["duration"] == 1800.0 and system["job"]["name"] == "renamed"
        assert pending.system(a, "--original")["duration"] == 600.0
        assert pending.field(b, "{queue}") == "debug"
        assert pending.system(b)["constraints"] == {"properties": ["debug"]}
        assert pending.field(c, "{duration}") == "180.0"
        assert pending.names(c).count("jobspec-update") == 1

    check()
    pending.restart()
    check()
    # the updated jobspec is what the scheduler gets after the restart
    pending.flux("job", "urgency", a, "default")
    pending.flux("job", "urgency", b, "default")
    for jobid in (a, b):
        pending.flux("job", "wait-event", "-t", "30", jobid, "clean")
    R = json.loads(pending.flux("job", "info", a, "R").stdout)["execution"]
    assert R["expiration"] - R["starttime"] == pytest.approx(1800.0)
    assert pending.field(b, "{nodelist}") == "node0"       # debug nodes only
    assert pending.field(a, "{result}") == "COMPLETED"


def test_a_pending_job_with_an_alloc_request_out_gets_the_new_duration(pending):
    # every core is taken: the next job waits at the scheduler with a request out
    big = pending.submit("-N2", "-n8", "-t", "30m", "--setattr=system.exec.test.run_duration=60s", "true")
    pending.flux("job", "wait-event", "-t", "30", big, "start")
    waiting = pending.submit("-t", "5m", "true")
    pending.flux("job", "wait-event", "-t", "30", waiting, "priority")
    h = pending.inst.handle()
    deadline = time.time() + 10
    while h.rpc("sched.stats", {}).get()["pending"] != 1 and time.time() < deadline:
        time.sleep(0.05)
    canceled = h.rpc("sched.stats", {}).get()["cancel"]
    assert pending.update(waiting, "duration=7m").returncode == 0
    # the request made with the old jobspec was withdrawn, and made again
    while h.rpc("sched.stats", {}).get()["cancel"] == canceled and time.time() < deadline:
        time.sleep(0.05)
    assert h.rpc("sched.stats", {}).get()["cancel"] == canceled + 1
    assert h.rpc("sched.stats", {}).get()["pending"] == 1
    h.close()
    pending.flux("cancel", big)
    pending.flux("job", "wait-event", "-t", "30", waiting, "clean")
    R = json.loads(pending.flux("job", "info", waiting, "R").stdout)["execution"]
    assert R["expiration"] - R["starttime"] == pytest.approx(420.0)


def test_refused_updates_change_nothing(pending):
    j = pending.submit("--urgency=hold", "-t", "30m", "--job-name=keep", "true")
    k = pending.submit("--urgency=hold", "-t", "5m", "-n6", "true")
    cases = [
        ((j, "myattr=value"), "update of attributes.system.myattr not supported"),
        ((j, "tasks.0.command=[\"x\"]"), "update of tasks.0.command not supported"),
        ((j, "duration=abc"), "attributes.system.duration: invalid Flux standard duration 'abc'"),
        ((j, "name=[1,2]"), "attributes.system.job.name: job name must be a string, got [1, 2]"),
        ((j, "queue=nosuch"), "invalid queue 'nosuch' (queues: batch, debug)"),
        ((j, "queue=batch"), "job queue is already set to batch"),
        ((j, "queue=debug"),
         "requested duration (30m) exceeds policy limit of 10m of queue 'debug'"),
        ((j, "name=new", "myattr=1"), "update of attributes.system.myattr not supported"),
    ]
    for args, text in cases:
        refused(pending.update(*args), text)
    # a queue too small for the job: the scheduler says so
    r = pending.update(k, "queue=debug")
    assert r.returncode == 1 and r.stderr.startswith("flux-update: attributes.system.queue: ")
    assert "unsatisfiable" in r.stderr
    pending.flux("queue", "disable", "debug", "maintenance")
    refused(pending.update(k, "queue=debug"), "queue debug is currently disabled")
    pending.flux("queue", "enable", "debug")
    # --dry-run sends nothing
    r = pending.update("-n", j, "duration=1h", "myattr=val", "name=x")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"attributes.system.duration": 3600.0,
                                    "attributes.system.myattr": "val",
                                    "attributes.system.job.name": "x"}

    def check() -> None:
        for jobid in (j, k):
            assert "jobspec-update" not in pending.names(jobid)
        assert pending.field(j, "{name} {duration} {queue}") == "keep 1800.0 batch"

    check()
    pending.restart()
    check()


def test_inactive_unknown_and_malformed_job_ids(pending):
    done = pending.submit("-t", "1m", "true")
    pending.flux("job", "wait-event", "-t", "30", done, "clean")
    refused(pending.update(done, "name=x"), "job is inactive")
    unknown = JobID(123456789)
    for text in (unknown.f58, str(int(unknown)), unknown.hex, unknown.dothex, unknown.words):
        refused(pending.update(text, "name=x"), "unknown job id")
    # flux-update(1): an invalid JOBID is exit 1, like an inactive one
    r = pending.update("bogus", "name=x")
    assert r.returncode == 1 and "flux-update: " in r.stderr and "bogus" in r.stderr, r.stderr
    for args in ((done,), (done, "name")):
        r = pending.update(*args)
        assert r.returncode == 2, (args, r.stderr)
    pending.restart()
    refused(pending.update(done, "name=x"), "job is inactive")


def test_guest_limits_owner_bypass_and_immutable(pending):
    r = pending.guest("submit", "--urgency=hold", "-t", "30m", "true")
    assert r.returncode == 0, r.stderr
    job = r.stdout.strip()
    r = pending.guest("update", job, "duration=2h")
    assert r.returncode == 1
    assert r.stderr.strip() == ("flux-update: requested duration (2h) exceeds policy limit of "
                                "1h of queue 'batch'")
    assert pending.guest("update", job, "duration=45m").returncode == 0
    assert pending.field(job, "{duration}") == "2700.0"
    # the owner may go past the limit; the job is then the owner's to change
    assert pending.update(job, "duration=2h").returncode == 0
    names = pending.names(job)
    assert names[-3:] == ["set-flags", "jobspec-update", "priority"]
    r = pending.guest("update", job, "name=x")
    assert r.returncode == 1 and r.stderr.strip() == IMMUTABLE
    assert pending.update(job, "name=by-owner").returncode == 0
    # a guest cannot touch the owner's jobs
    mine = pending.submit("--urgency=hold", "-t", "1m", "true")
    r = pending.guest("update", mine, "name=x")
    assert r.returncode == 1 and "guests may only update their own jobs" in r.stderr
    # a running job's duration is the owner's to change
    r = pending.guest("submit", "-t", "30m", "--setattr=system.exec.test.run_duration=100s",
                      "true")
    running = r.stdout.strip()
    pending.flux("job", "wait-event", "-t", "30", running, "start")
    r = pending.guest("update", running, "duration=40m")
    assert r.returncode == 1
    assert r.stderr.strip() == ("flux-update: duration update of running job requires "
                                "instance owner privileges")
    pending.flux("cancel", running)
    pending.restart()
    r = pending.guest("update", job, "name=y")
    assert r.returncode == 1 and r.stderr.strip() == IMMUTABLE
    assert pending.field(job, "{name} {duration}") == "by-owner 7200.0"


# -- running jobs (real execution) --------------------------------------------------------------

@pytest.fixture
def real(tmp_path):
    inst = Instance(tmp_path, None)
    yield inst
    inst.stop()


def _R(inst: Instance, jobid: str) -> dict:
    return json.loads(inst.flux("job", "info", jobid, "R").stdout)["execution"]


def test_running_job_duration_extended_then_cut(real):
    job = real.submit("-t", "3s", "sleep", "300")
    real.flux("job", "wait-event", "-t", "30", job, "start")
    assert real.update(job, "duration=+1m").returncode == 0
    start = _R(real, job)["starttime"]
    assert _R(real, job)["expiration"] == pytest.approx(start + 63)
    assert float(real.field(job, "{expiration}")) == pytest.approx(start + 63)
    (update,) = [e for e in real.events(job) if e["name"] == "resource-update"]
    assert update["context"]["expiration"] == pytest.approx(start + 63)
    time.sleep(max(0.0, start + 4 - time.time()))
    assert real.field(job, "{state}") == "RUN"          # the old limit has passed
    refused(real.update(job, "queue=batch"), "update of queue for running job not supported")
    # cut it to a time already past: it ends at once with a timeout
    t0 = time.time()
    assert real.update(job, "duration=1s").returncode == 0
    real.flux("job", "wait-event", "-t", "20", job, "clean")
    assert time.time() - t0 < 15
    assert real.field(job, "{result}") == "TIMEOUT"
    exc = [e["context"] for e in real.events(job) if e["name"] == "exception"]
    assert exc[0]["type"] == "timeout"
    real.restart()
    assert real.field(job, "{result} {duration}") == "TIMEOUT 1.0"
    assert real.names(job).count("resource-update") == 2


def test_running_job_ends_at_its_new_time(real):
    job = real.submit("sleep", "300")                   # no time limit
    real.flux("job", "wait-event", "-t", "30", job, "start")
    start = _R(real, job)["starttime"]
    refused(real.update(job, "duration=+1m"),
            f"duration for {job} is unlimited, can't update by +1m")
    assert real.update(job, "duration=4s").returncode == 0
    real.flux("job", "wait-event", "-t", "30", job, "clean")
    exc = [e for e in real.events(job) if e["name"] == "exception"]
    assert exc[0]["context"]["type"] == "timeout"
    assert exc[0]["timestamp"] - start == pytest.approx(4, abs=1.5)
    r = real.flux("job", "attach", job, check=False)
    assert r.returncode == 142 and "Alarm clock" in r.stderr


def test_signal_before_the_time_limit_follows_the_update(real, tmp_path):
    marks = tmp_path / "signals"
    script = f"trap 'echo got >> {marks}' USR1; while :; do sleep 0.1; done"
    job = real.submit("-t", "6s", "-o", "signal=SIGUSR1@3s", "sh", "-c", script)
    real.flux("job", "wait-event", "-t", "30", job, "start")
    assert real.update(job, "duration=+1m").returncode == 0
    start = _R(real, job)["starttime"]
    time.sleep(max(0.0, start + 4.5 - time.time()))
    assert not marks.exists()                    # the signal moved with the limit
    # bring the limit close: the signal comes 3s before it, then the limit
    assert real.update(job, "duration=8s").returncode == 0
    real.flux("job", "wait-event", "-t", "30", job, "clean")
    assert marks.read_text().split() == ["got"]
    assert real.field(job, "{result}") == "TIMEOUT"
