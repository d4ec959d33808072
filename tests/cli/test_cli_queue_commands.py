"""flux queue: text builders, and the commands against real instances."""
from __future__ import annotations

import os

import pytest

from broker.testing import TestInstance
from cli.cmd_queue import queue_rows, split_args, status_lines, verbose_lines
from jobmgr.policy import parse_job_policy

NAMED = """
[queues.batch]
[queues.debug]
policy.limits.duration = "30m"
policy.limits.job-size.max.nnodes = 2
[policy.jobspec.defaults.system]
queue = "batch"
duration = "1m"
[exec]
test = true
"""


# --- pure parts ------------------------------------------------------------------------

def test_status_lines():
    assert status_lines(None, {"enable": True, "start": True}) == [
        "Job submission is enabled", "Scheduling is started"]
    assert status_lines("batch", {"enable": False, "disable_reason": "maint",
                                  "start": False}) == [
        "batch: Job submission is disabled: maint", "batch: Scheduling is stopped"]


def test_verbose_lines_match_the_admin_guide():
    assert verbose_lines({"queue_length": 0, "alloc_pending": 0, "free_pending": 0,
                          "running": 0}) == [
        "0 alloc requests queued", "0 alloc requests pending to scheduler",
        "0 free requests pending to scheduler", "0 running jobs"]


def test_split_args_takes_a_queue_name_then_the_reason():
    assert split_args(["batch", "going", "down"], ["batch"], None) == ("batch", "going down")
    assert split_args(["going", "down"], ["batch"], None) == (None, "going down")
    assert split_args(["x"], [], "debug") == ("debug", "x")
    assert split_args([], [], None) == (None, None)


def test_queue_rows_show_defaults_and_limits():
    policy = parse_job_policy({"queues": {"a": {"policy": {"limits": {"duration": "1h",
                                                                      "job-size": {
                                                                          "max": {"ncores": 8},
                                                                          "min": {"ncores": 2}}}}}},
                               "policy": {"jobspec": {"defaults": {"system":
                                                                   {"queue": "a"}}}}})
    (row,) = queue_rows(["a"], {"a": {"enable": False, "start": True}}, policy, "a")
    assert row["queuem"] == "a*" and row["submission"] == "disabled"
    assert (row["enabled"], row["enabled"].ascii, row["started"].ascii) == ("\u2717", "n", "y")
    assert row["limits"]["timelimit"] == 3600.0
    assert row["limits"]["range"] == {"nnodes": "0-inf", "ncores": "2-8", "ngpus": "0-inf"}


# --- live --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def named(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    os.chmod(conf, 0o755)
    (conf / "queues.toml").write_text(NAMED)
    instance = TestInstance(config_path=str(conf)).start()
    yield instance
    assert instance.stop() == 0


@pytest.fixture(scope="module")
def anon(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    (conf / "exec.toml").write_text("[exec]\ntest = true\n")
    instance = TestInstance(config_path=str(conf)).start()
    yield instance
    assert instance.stop() == 0


def run(inst, *args):
    r = inst.flux("queue", *args)
    return r.returncode, r.stdout, r.stderr


def test_named_queues_start_stopped(named):
    assert run(named, "status") == (0, "batch: Job submission is enabled\n"
                                       "batch: Scheduling is stopped\n"
                                       "debug: Job submission is enabled\n"
                                       "debug: Scheduling is stopped\n", "")


def test_start_all_then_stop_one_with_a_reason(named):
    assert run(named, "start", "--all") == (0, "batch: Scheduling is started\n"
                                               "debug: Scheduling is started\n", "")
    code, out, _ = run(named, "stop", "debug", "going", "down")
    assert (code, out) == (0, "debug: Scheduling is stopped: going down\n")
    assert run(named, "status", "debug")[1] == ("debug: Job submission is enabled\n"
                                                "debug: Scheduling is stopped: going down\n")
    assert run(named, "start", "-q", "debug", "--quiet") == (0, "", "")


def test_disable_with_message_and_enable(named):
    code, out, _ = run(named, "disable", "-m", "maintenance", "batch")
    assert (code, out) == (0, "batch: Job submission is disabled: maintenance\n")
    r = named.flux("submit", "true")
    assert r.returncode == 1
    assert "queue batch: job submission is disabled: maintenance" in r.stderr
    assert run(named, "enable", "batch")[1] == "batch: Job submission is enabled\n"


def test_list_shows_state_defaults_and_limits(named):
    run(named, "start", "--all")        # whatever other tests on this worker left behind
    code, out, _ = run(named, "list")
    assert code == 0
    header, batch, debug = out.splitlines()
    assert header.split() == ["QUEUE", "EN", "ST", "TDEFAULT", "TLIMIT", "NNODES", "NCORES",
                              "NGPUS"]
    assert batch.split()[:5] == ["batch*", "\u2714", "\u2714", "1m", "-"]
    assert debug.split()[3:6] == ["1m", "30m", "0-2"]
    code, out, _ = run(named, "list", "-n", "-o", "{queue} {scheduling}", "-q", "debug")
    assert (code, out) == (0, "debug started\n")


def test_named_queue_errors(named):
    code, _, err = run(named, "status", "nope")
    assert code == 1 and "flux-queue: queue 'nope' does not exist" in err
    code, _, err = run(named, "stop")
    assert code == 2 and "name one or use --all" in err
    code, _, err = run(named, "list", "-q", "nope")
    assert code == 1 and "unknown queue: nope" in err
    code, _, err = run(named, "list", "-o", "{bogus}")
    assert code == 2


def test_anonymous_queue_status_and_verbose(anon):
    assert run(anon, "status") == (0, "Job submission is enabled\nScheduling is started\n", "")
    code, out, _ = run(anon, "stop", "--nocheckpoint", "-m", "wait")
    assert (code, out) == (0, "Scheduling is stopped: wait\n")
    code, out, _ = run(anon, "status", "-v")
    assert out.splitlines()[1:] == ["Scheduling is stopped: wait", "0 alloc requests queued",
                                    "0 alloc requests pending to scheduler",
                                    "0 free requests pending to scheduler", "0 running jobs"]
    code, out, err = run(anon, "start", "nope")
    assert code == 2 and "start takes no reason" in err
    assert run(anon, "start")[1] == "Scheduling is started\n"


def test_idle_and_drain(anon):
    r = anon.flux("submit", "--setattr=system.exec.test.run_duration=60s", "true")
    assert r.returncode == 0, r.stderr
    jobid = r.stdout.strip()
    code, _, err = run(anon, "drain", "--timeout=0.2s")
    assert code == 1 and "timeout" in err
    code, _, err = run(anon, "idle", "--timeout=0.2s")
    assert code == 1
    code, _, err = run(anon, "idle", "--timeout=soon")
    assert code == 2 and "--timeout" in err
    assert anon.flux("cancel", jobid).returncode == 0
    assert run(anon, "drain", "--timeout=10s") == (0, "", "")
    assert run(anon, "idle") == (0, "0 pending jobs\n", "")
