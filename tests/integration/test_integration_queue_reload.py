"""``flux config reload`` changing ``[queues]`` on a live instance, as flux-core's
job manager takes it (queue_configure): new queues are added (named ones
enabled and stopped), removed ones are removed (their pending jobs stay pending,
unscheduled, until the queue comes back), the scheduler takes the new
``requires``, and the queues' state is checkpointed for the new set."""
from __future__ import annotations

import os
import time

import pytest

from broker.testing import TestInstance, stray_brokers
from tests.helpers.live import JOBS_CONF, flux

RESOURCES = """[resource]
monitor-force-up = true
[[resource.config]]
hosts = "n0"
cores = "0"
properties = ["fast"]
[[resource.config]]
hosts = "n1"
cores = "0"
properties = ["slow"]
"""
BASE = JOBS_CONF + RESOURCES
TWO = BASE + """[queues.batch]
[queues.debug]
[policy.jobspec.defaults.system]
queue = "batch"
"""
#: a job that holds its resources until canceled (exec test mode)
LONG = ("-S", "system.exec.test.run_duration=600")


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    yield
    assert stray_brokers() == []


@pytest.fixture(scope="module")
def conf(tmp_path_factory, no_stray_brokers):
    path = tmp_path_factory.mktemp("conf")
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="module")
def inst(conf):
    (conf / "a.toml").write_text(BASE)
    instance = TestInstance(config_path=str(conf)).start()
    yield instance
    assert instance.stop() == 0


@pytest.fixture(autouse=True)
def base_config(inst, conf):
    """Every test starts and ends with no queues and no active job."""
    yield
    flux(inst, "cancel", "--all")
    reload_with(inst, conf, BASE)
    r = flux(inst, "queue", "drain", "--timeout=10s")
    assert r.exit_code == 0, r.output


def reload_with(inst, conf, text):
    (conf / "a.toml").write_text(text)
    r = flux(inst, "config", "reload")
    assert r.exit_code == 0, r.output
    return r


def submit(inst, *args):
    r = flux(inst, "submit", *args, "true")
    assert r.exit_code == 0, r.output
    return r.output.strip()


def state(inst, jobid):
    return flux(inst, "jobs", "-no", "{state}", jobid).output.strip()


def wait_state(inst, jobid, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while (got := state(inst, jobid)) != want:
        assert time.monotonic() < deadline, f"{jobid} is {got}, not {want}"
        time.sleep(0.05)


def test_queues_added_live_start_stopped_and_enabled(inst, conf):
    reload_with(inst, conf, TWO)
    r = flux(inst, "queue", "status")
    assert r.exit_code == 0 and r.output == (
        "batch: Job submission is enabled\nbatch: Scheduling is stopped\n"
        "debug: Job submission is enabled\ndebug: Scheduling is stopped\n")
    jobid = submit(inst, "-q", "debug")
    assert state(inst, jobid) == "SCHED"
    # no queue given: the new default queue
    assert flux(inst, "jobs", "-no", "{queue}", submit(inst)).output.strip() == "batch"
    assert flux(inst, "queue", "start", "debug").exit_code == 0
    wait_state(inst, jobid, "INACTIVE")
    assert flux(inst, "jobs", "-no", "{result}", jobid).output.strip() == "COMPLETED"


def test_removed_queue_keeps_its_pending_jobs_unscheduled(inst, conf):
    reload_with(inst, conf, TWO)
    assert flux(inst, "queue", "start", "--all").exit_code == 0
    blocker = submit(inst, "-q", "debug", "-N2", *LONG)
    wait_state(inst, blocker, "RUN")
    pending = submit(inst, "-q", "debug")
    reload_with(inst, conf, TWO.replace("[queues.debug]\n", ""))
    assert flux(inst, "queue", "list", "-no", "{queue}").output == "batch\n"
    r = flux(inst, "submit", "-q", "debug", "true")
    assert r.exit_code == 1 and "invalid queue 'debug' (queues: batch)" in r.output
    # the running job is left alone; the pending one waits, with no exception
    assert flux(inst, "cancel", blocker).exit_code == 0
    wait_state(inst, blocker, "INACTIVE")
    time.sleep(0.3)
    assert state(inst, pending) == "SCHED"
    assert "exception" not in flux(inst, "job", "eventlog", pending).output
    # back to the anonymous queue (started): the job runs
    reload_with(inst, conf, BASE)
    wait_state(inst, pending, "INACTIVE")
    assert flux(inst, "jobs", "-no", "{result}", pending).output.strip() == "COMPLETED"


def test_job_of_a_removed_queue_may_move_to_another(inst, conf):
    reload_with(inst, conf, TWO)
    jobid = submit(inst, "-q", "debug")
    reload_with(inst, conf, TWO.replace("[queues.debug]\n", ""))
    r = flux(inst, "update", jobid, "queue=batch")
    assert r.exit_code == 0, r.output
    assert flux(inst, "queue", "start", "batch").exit_code == 0
    wait_state(inst, jobid, "INACTIVE")


def test_readded_queue_starts_afresh(inst, conf):
    reload_with(inst, conf, TWO)
    r = flux(inst, "queue", "disable", "debug", "maintenance")
    assert r.exit_code == 0, r.output
    reload_with(inst, conf, TWO.replace("[queues.debug]\n", ""))
    reload_with(inst, conf, TWO)
    r = flux(inst, "queue", "status", "debug")
    assert r.output == "debug: Job submission is enabled\ndebug: Scheduling is stopped\n"
    # job-ingest forgot the old refusal too
    submit(inst, "-q", "debug")


def test_named_to_anonymous_schedules_pending_jobs(inst, conf):
    reload_with(inst, conf, TWO)
    jobid = submit(inst, "-q", "batch")
    assert state(inst, jobid) == "SCHED"
    reload_with(inst, conf, BASE)
    assert flux(inst, "queue", "status").output == (
        "Job submission is enabled\nScheduling is started\n")
    wait_state(inst, jobid, "INACTIVE")


def test_anonymous_to_named_holds_unnamed_pending_jobs(inst, conf):
    blocker = submit(inst, "-N2", *LONG)
    wait_state(inst, blocker, "RUN")
    pending = submit(inst)
    reload_with(inst, conf, TWO)
    assert flux(inst, "cancel", blocker).exit_code == 0
    wait_state(inst, blocker, "INACTIVE")
    assert flux(inst, "queue", "start", "--all").exit_code == 0
    time.sleep(0.3)
    # its queue (the anonymous one) is gone: it stays pending, with no exception
    assert state(inst, pending) == "SCHED"
    assert "exception" not in flux(inst, "job", "eventlog", pending).output


def test_scheduler_takes_a_new_queue_and_its_requires(inst, conf):
    reload_with(inst, conf, TWO + '[queues.slowq]\nrequires = ["slow"]\n')
    h = inst.handle()
    try:
        assert h.rpc("sched.resource-status").get()["queues"] == {
            "batch": [], "debug": [], "slowq": ["slow"]}
    finally:
        h.close()
    assert flux(inst, "queue", "start", "slowq").exit_code == 0
    jobid = submit(inst, "-q", "slowq")
    wait_state(inst, jobid, "INACTIVE")
    assert flux(inst, "jobs", "-no", "{result} {nodelist}", jobid).output.strip() \
        == "COMPLETED n1"


def test_changed_requires_deny_a_queued_request_that_cannot_fit(inst, conf):
    fast = TWO.replace("[queues.debug]\n", '[queues.debug]\nrequires = ["fast"]\n')
    reload_with(inst, conf, fast)
    assert flux(inst, "queue", "start", "debug").exit_code == 0
    blocker = submit(inst, "-q", "debug", *LONG)
    wait_state(inst, blocker, "RUN")
    pending = submit(inst, "-q", "debug")
    time.sleep(0.2)
    # its constraints say "fast" (from the old requires): with "slow" it can never run
    reload_with(inst, conf, fast.replace('requires = ["fast"]', 'requires = ["slow"]'))
    wait_state(inst, pending, "INACTIVE")
    r = flux(inst, "job", "eventlog", pending)
    assert "type=\"alloc\"" in r.output and "unsatisfiable" in r.output, r.output


def test_refused_reload_keeps_removed_queue_state(inst, conf):
    """job-exec refuses after the job manager took the config: the queue it had
    removed comes back as it was (started), not afresh (stopped)."""
    reload_with(inst, conf, TWO)
    assert flux(inst, "queue", "start", "debug").exit_code == 0
    bad = TWO.replace("[queues.debug]\n", "").replace(
        "[exec]\n", '[exec]\nkill-timeout = "bad"\n')
    (conf / "a.toml").write_text(bad)
    r = flux(inst, "config", "reload")
    assert r.exit_code == 1 and "module job-exec refused" in r.output, r.output
    assert flux(inst, "queue", "status", "debug").output == (
        "debug: Job submission is enabled\ndebug: Scheduling is started\n")


def test_queue_state_after_reload_survives_a_restart(tmp_path):
    conf, statedir = tmp_path / "conf", tmp_path / "state"
    conf.mkdir()
    (conf / "a.toml").write_text(TWO)
    args = {"config_path": str(conf), "setattrs": [f"statedir={statedir}"]}
    inst = TestInstance(**args).start()
    try:
        reload_with(inst, conf, TWO + "[queues.extra]\n")
        assert flux(inst, "queue", "start", "extra").exit_code == 0
        assert flux(inst, "queue", "disable", "batch", "closed").exit_code == 0
    finally:
        assert inst.stop() == 0
    inst = TestInstance(**args).start()
    try:
        r = flux(inst, "queue", "status")
        assert r.output == ("batch: Job submission is disabled: closed\n"
                            "batch: Scheduling is stopped\n"
                            "debug: Job submission is enabled\n"
                            "debug: Scheduling is stopped\n"
                            "extra: Job submission is enabled\n"
                            "extra: Scheduling is started\n"), r.output
    finally:
        assert inst.stop() == 0
