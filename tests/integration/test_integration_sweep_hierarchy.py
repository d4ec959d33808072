"""Nested instances and the tools around them, as flux-alloc(1), flux-proxy(1)
and flux-top(1) describe them: the corners the other hierarchy tests do not
reach (``alloc --bg`` progress and interrupt, ``proxy`` losing its instance and
``/JOBID`` targets, ``top -q`` and the h/l keys).  Real instances: a parent whose
child instances are ``flux alloc --bg`` jobs of one core, and one with queues.
"""
from __future__ import annotations

import re
import socket
import time

import pexpect
import pytest

from broker.testing import TestInstance, flux_command
from integration.test_integration_top import Top

pytestmark = pytest.mark.slow

#: the proxied command cancels the job that is the instance it talks to, then waits
CANCEL_OWN_JOB = ('flux --parent cancel $(flux getattr jobid); '
                  'while flux getattr jobid >/dev/null 2>&1; do sleep 0.1; done; ')


@pytest.fixture(scope="module")
def parent():
    inst = TestInstance(size=1).start()
    yield inst
    inst.flux("cancel", "--all")
    inst.stop(timeout=60)


def child_instance(inst: TestInstance) -> str:
    """A new child instance (``flux alloc --bg -n1``), ready for jobs: its job id."""
    r = inst.flux("alloc", "--bg", "-n1", timeout=90)
    assert r.returncode == 0, (r.stderr, inst.stderr_text()[-3000:])
    return r.stdout.strip()


def test_alloc_bg_verbose_logs_its_progress(parent):
    # flux-alloc(1) --bg -v: the steps on stderr, as flux-core's alloc logs them; the
    # job id alone on stdout
    r = parent.flux("alloc", "--bg", "-v", "-n1", timeout=90)
    try:
        assert r.returncode == 0, r.stderr
        jobid = r.stdout.strip()
        steps = [re.fullmatch(rf"{jobid}: +\d+\.\d{{3}}s: (.*)", line)
                 for line in r.stderr.splitlines()]
        assert all(steps), r.stderr
        assert [m.group(1) for m in steps] == ["waiting for resources", "resources allocated",
                                                "waiting for instance", "ready"]
    finally:
        parent.flux("cancel", r.stdout.strip())


def test_alloc_bg_interrupted_cancels_the_pending_job(parent):
    # ctrl-C while flux alloc --bg waits for resources cancels the job: else it would
    # start later, an instance without an initial program that nobody uses
    # the whole node is taken, so the new instance waits
    hog = parent.flux("submit", "-N1", "--exclusive", "sleep", "300").stdout.strip()
    try:
        assert parent.flux("job", "wait-event", "-t", "30", hog, "start").returncode == 0
        cmd = flux_command()
        child = pexpect.spawn(cmd[0], [*cmd[1:], "alloc", "--bg", "-n1"],
                              env=parent.env, encoding="utf-8", timeout=30)
        try:
            jobid = ""
            deadline = time.monotonic() + 30
            while not jobid and time.monotonic() < deadline:
                jobid = parent.flux("jobs", "-n", "-f", "pending", "-o", "{id.f58}",
                                    "--name=flux").stdout.strip()
                time.sleep(0.1)
            assert jobid
            time.sleep(0.3)
            child.sendcontrol("c")
            child.expect(pexpect.EOF)
            child.close()
            assert child.exitstatus == 1, child.before
            assert f"{jobid}: Interrupt: canceling job" in child.before
        finally:
            if child.isalive():
                child.terminate(force=True)
        r = parent.flux("job", "wait-event", "-t", "30", jobid, "clean")
        assert r.returncode == 0, r.stderr
        r = parent.flux("jobs", "-n", "-o", "{status}", jobid)
        assert r.stdout == "CANCELED\n", r.stdout
    finally:
        parent.flux("cancel", hog)


def test_proxy_hangs_up_its_command_when_the_instance_goes(parent):
    # flux-proxy(1): on a lost connection, an error message, SIGHUP and SIGCONT to the
    # command, and its exit code (128 + SIGHUP) once it has ended
    jobid = child_instance(parent)
    r = parent.flux("proxy", jobid, "sh", "-c", CANCEL_OWN_JOB + "while :; do sleep 0.1; done",
                    timeout=30)
    assert r.returncode == 129, (r.stdout, r.stderr)
    assert r.stderr == ("flux-proxy: Lost connection to Flux\n"
                        "flux-proxy: Sending SIGHUP to child processes\n")


def test_proxy_nohup_leaves_the_command_alone(parent):
    jobid = child_instance(parent)
    r = parent.flux("proxy", "--nohup", jobid, "sh", "-c", CANCEL_OWN_JOB + "exit 3",
                    timeout=30)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stderr == "flux-proxy: Lost connection to Flux\n"


def test_proxy_takes_a_job_id_with_a_leading_slash(parent):
    # flux-proxy(1) resolves any TARGET but a native URI with flux-uri(1), whose jobid
    # resolver takes /JOBID (flux-core's t1105-proxy.t: flux proxy /$id?local)
    jobid = child_instance(parent)
    try:
        r = parent.flux("proxy", f"/{jobid}?local", "flux", "getattr", "jobid")
        assert r.returncode == 0 and r.stdout == f"{jobid}\n", r.stderr
        r = parent.flux("proxy", f"/{jobid}/..", "flux", "getattr", "instance-level")
        assert r.returncode == 0 and r.stdout == "0\n", r.stderr
    finally:
        parent.flux("cancel", jobid)


#: three queues: one without requirements, one whose property the node has, one whose
#: property no node has
QUEUES_CONFIG = f"""
[resource]
noverify = true
[[resource.config]]
hosts = "{socket.gethostname()}"
cores = "0-3"
properties = ["debug"]

[queues.batch]
[queues.debug]
requires = ["debug"]
[queues.gpu]
requires = ["gpu"]
"""


@pytest.fixture(scope="module")
def queued(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    (conf / "queues.toml").write_text(QUEUES_CONFIG)
    inst = TestInstance(config_path=str(conf)).start()
    try:
        assert inst.flux("queue", "start", "--all").returncode == 0
        ids = {}
        for queue, size in (("batch", "1"), ("debug", "2")):
            r = inst.flux("submit", f"--queue={queue}", "-n", size, "sleep", "300")
            assert r.returncode == 0, r.stderr
            ids[queue] = r.stdout.strip()
        for jobid in ids.values():
            assert inst.flux("job", "wait-event", "-t", "30", jobid, "start").returncode == 0
        yield inst, ids
    finally:
        inst.flux("cancel", "--all")
        inst.stop(timeout=60)


def test_top_queue_option_and_the_h_l_keys(queued):
    # flux-top(1): -q NAME limits status and jobs to a queue; h/l rotate through them
    inst, ids = queued
    top = Top(inst, "-q", "debug")
    try:
        top.wait_text("queue: debug")
        top.wait_text(ids["debug"])
        assert ids["batch"] not in top.text
        assert "1 running" in top.lines[2], top.text
        # the queue's resources: the node has its property; 3 of 4 cores are allocated
        assert "cores [" in top.lines[2] and "3/4]" in top.lines[2], top.text
        top.press("l")
        top.wait_text("queue: gpu")
        top.wait(lambda t: "0/0]" in t.lines[2] and ids["debug"] not in t.text, 10.0,
                 "the gpu queue, with no resources and no jobs")
        assert "0 running" in top.lines[2], top.text
        top.press("l")  # after the last queue: every queue
        top.wait(lambda t: "queue:" not in t.text and ids["batch"] in t.text, 10.0,
                 "all the queues")
        assert ids["debug"] in top.text and "2 running" in top.lines[2], top.text
        top.press("h")
        top.wait_text("queue: gpu")
        top.press("q")
        assert top.wait_exit() == 0
    finally:
        top.close()


def test_top_refuses_a_queue_that_is_not_configured(queued):
    inst, _ids = queued
    top = Top(inst, "--queue=nope")
    try:
        assert top.wait_exit() == 1
        assert "flux-top: queue nope not configured" in top.output
    finally:
        top.close()
