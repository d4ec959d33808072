"""Job submission commands as a user meets them, on a real size-1 instance:
flux-run(1)'s per-resource options, short options written ``-X=VALUE``,
``flux proxy`` and ctrl-C, ``flux job attach -w``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from broker.testing import TestInstance, flux_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=1).start()
    yield inst
    inst.stop()


def dry(inst, *args):
    r = inst.flux("submit", "--dry-run", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def shell_option(jobspec, name):
    return jobspec["attributes"]["system"].get("shell", {}).get("options", {}).get(name)


# -- per-resource options (flux-run(1) "Per-resource options") ---------------------------

def test_cores_and_tasks_per_core_make_a_per_resource_request(inst):
    js = dry(inst, "--cores=1", "--tasks-per-core=3", "true")
    assert js["resources"] == [{"type": "slot", "count": 1, "label": "task",
                                "with": [{"type": "core", "count": 1}]}]
    assert shell_option(js, "per-resource") == {"type": "core", "count": 3}
    r = inst.flux("run", "--cores=1", "--tasks-per-core=3", "printenv", "FLUX_TASK_RANK")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["0", "1", "2"]


def test_cores_with_nodes_and_tasks_per_node(inst):
    # --cores over -N: one slot of cores/N on each node; -N alone: whole nodes
    js = dry(inst, "-N1", "--cores=1", "--tasks-per-node=2", "true")
    node = js["resources"][0]
    assert node["type"] == "node" and node["count"] == 1 and not node.get("exclusive")
    assert node["with"][0]["with"] == [{"type": "core", "count": 1}]
    assert shell_option(js, "per-resource") == {"type": "node", "count": 2}
    js = dry(inst, "-N1", "--gpus-per-node=2", "true")
    node = js["resources"][0]
    assert node["exclusive"] is True
    assert node["with"][0]["with"] == [{"type": "core", "count": 1}, {"type": "gpu", "count": 2}]
    r = inst.flux("run", "-N1", "--cores=1", "--tasks-per-node=2", "printenv", "FLUX_TASK_RANK")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["0", "1"]


def test_per_resource_options_refuse_per_task_ones(inst):
    for args, text in ((["--cores=2", "-n2"], "Per-resource options can't be used with "
                                              "per-task options"),
                       (["--cores=2", "-c1"], "Per-resource options can't be used"),
                       (["--gpus-per-node=1"], "--gpus-per-node requires --nodes"),
                       (["--cores=2", "--tasks-per-core=1", "--tasks-per-node=1"],
                        "Do not specify both the number of tasks per node and per core")):
        r = inst.flux("submit", "--dry-run", *args, "true")
        assert r.returncode == 1, (args, r.stderr)
        assert text in r.stderr, (args, r.stderr)


def test_bulksubmit_takes_per_resource_options(inst):
    r = inst.flux("bulksubmit", "--wait", "--cores={}", "--tasks-per-core=2", "true",
                  ":::", "1")
    assert r.returncode == 0, r.stderr
    jobid = r.stdout.split()[0]
    js = json.loads(inst.flux("job", "info", jobid, "jobspec").stdout)
    assert shell_option(js, "per-resource") == {"type": "core", "count": 2}


# -- short options with "=" ---------------------------------------------------------------

def test_short_option_value_after_equals_sign(inst):
    # argparse (Flux's commands) reads -B=-Sfoo=1 as -B "-Sfoo=1"; click kept the "="
    r = inst.flux("batch", "--dry-run", "-n1", "-B=-Sfoo=1", "--wrap", "true")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tasks"][0]["command"][:3] == ["flux", "broker", "-Sfoo=1"]
    js = dry(inst, "-t=5", "-S=user.x=1", "-n=2", "true")
    assert js["attributes"]["system"]["duration"] == 5
    assert js["attributes"]["user"] == {"x": 1}
    assert js["resources"][0]["count"] == 2
    # the value of another option is left alone
    js = dry(inst, "--job-name", "-t=5", "true")
    assert js["attributes"]["system"]["job"]["name"] == "-t=5"


# -- flux proxy ------------------------------------------------------------------------

def test_proxy_ctrl_c_exits_with_the_commands_code(inst):
    # ctrl-C reaches the terminal's whole foreground group: the proxy waits for its
    # command and exits with its code, 128+SIGINT, not click's "Aborted!" and 1
    proc = subprocess.Popen(flux_command() + ["proxy", inst.uri, "sleep", "100"],
                            env=inst.env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                      text=True).stdout.split()
            if children:
                break
            time.sleep(0.1)
        assert children, "the proxy's command did not start"
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Aborted" not in err


# -- flux job attach -w ------------------------------------------------------------------

def test_attach_wait_event(inst):
    jobid = inst.flux("submit", "sh", "-c", "echo hi; exit 3").stdout.strip()
    assert inst.flux("job", "wait-event", jobid, "clean").returncode == 0
    # flux-job(1): -w "Wait for event EVENT before detaching from eventlog. The
    # default is finish."
    r = inst.flux("job", "attach", "-E", jobid)
    assert r.returncode == 3 and r.stdout == "hi\n"
    names = [line.split()[1] for line in r.stderr.splitlines() if ": job." in line]
    assert names[-1] == "job.finish"
    r = inst.flux("job", "attach", "-E", "-w=start", jobid)       # as argparse reads -w=
    assert [line.split()[1] for line in r.stderr.splitlines() if ": job." in line][-1] \
        == "job.start"
    r = inst.flux("job", "attach", "-E", "-w", "clean", jobid)
    assert r.returncode == 3
    assert [line.split()[1] for line in r.stderr.splitlines() if ": job." in line][-1] \
        == "job.clean"
    # detached before finish: the output still comes; no exit status was seen, so
    # the exit code is 1 (flux-core's attach starts from 1 and sets it at finish)
    r = inst.flux("job", "attach", "--wait-event=start", jobid)
    assert r.returncode == 1, r.stderr
    assert r.stdout == "hi\n"
    r = inst.flux("run", "--wait-event=start", "sh", "-c", "echo run; exit 0")
    assert r.returncode == 1 and r.stdout == "run\n", r.stderr
    r = inst.flux("run", "--wait-event=finish", "sh", "-c", "exit 4")
    assert r.returncode == 4, r.stderr
    held = inst.flux("submit", "--urgency=hold", "true").stdout.strip()
    try:
        r = inst.flux("job", "attach", "-w", "submit", held, timeout=10)
        assert r.returncode == 1 and r.stdout == ""
    finally:
        inst.flux("cancel", held)


def test_attach_show_status(inst):
    # flux-job(1): --show-status "Force immediate display of the status line";
    # FLUX_ATTACH_NONINTERACTIVE: never
    jobid = inst.flux("submit", "true").stdout.strip()
    assert inst.flux("job", "wait-event", jobid, "clean").returncode == 0
    r = inst.flux("job", "attach", "--show-status", jobid)
    assert r.returncode == 0, r.stderr
    for text in ("resolving dependencies", "waiting for resources", "starting", "started"):
        assert f"flux-job: {jobid} {text}" in r.stderr, r.stderr
    assert r.stderr.endswith("\n")
    r = inst.flux("job", "attach", "--show-status", jobid,
                  env={"FLUX_ATTACH_NONINTERACTIVE": "1"})
    assert r.returncode == 0 and r.stderr == ""


def test_attach_status_line_on_a_terminal(inst):
    # "When flux job attach is run interactively ... the command may display a
    # status line while the job is pending": after 2 s, its clock ticking
    import pty
    import select

    jobid = inst.flux("submit", "--urgency=hold", "true").stdout.strip()
    pid, fd = pty.fork()
    if pid == 0:                                                  # pragma: no cover
        os.environ.clear()
        os.environ.update(inst.env)
        os.execvp(flux_command()[0], flux_command() + ["job", "attach", jobid])
    out = b""
    try:
        deadline = time.monotonic() + 15
        while b"00:00:03" not in out and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                out += os.read(fd, 4096)
        assert f"flux-job: {jobid} waiting for resources".encode() in out, out
        assert b"00:00:02" in out and b"00:00:03" in out
    finally:
        inst.flux("cancel", jobid)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 1


def test_submit_refuses_per_task_input(inst, tmp_path):
    # flux-run(1) --input: "As a special case for flux run, the argument may
    # specify an idset of task ranks"; flux submit says it does not support it
    # (it used to take "0" for a file name, and the job failed on it)
    for prog in ("submit", "bulksubmit"):
        extra = [":::", "x"] if prog == "bulksubmit" else []
        r = inst.flux(prog, "--input=0-1", "true", *extra)
        assert r.returncode == 1, r.stderr
        assert r.stderr == f"flux-{prog}: per-task input not supported for submit\n"
    path = tmp_path / "in.txt"
    path.write_text("from a file\n")
    r = inst.flux("submit", "--watch", f"--input={path}", "cat")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "from a file"
