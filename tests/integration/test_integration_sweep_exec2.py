"""Job execution details as flux-shell(1), flux-shell-options(7) and flux-core's
tests describe them, on a real size-1 instance: exit-timeout, the start-failure
message, ``nosetpgrp``, ``userrc``, prolog cancel and timeouts, cpu/gpu-affinity maps."""
from __future__ import annotations

import os
import time

import pytest

from broker.testing import TestInstance

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=1).start()
    yield inst
    inst.stop()


def run(inst, *args, timeout=60):
    return inst.flux("run", *args, timeout=timeout)


# -- exit-timeout --------------------------------------------------------------------------

def test_exit_timeout_zero_fires_when_the_first_task_exits(inst):
    # flux-shell-options(7): only "none" disables the timer; 0 was taken as none and
    # the job ran on until its last task ended
    t0 = time.monotonic()
    r = run(inst, "-n2", "-o", "exit-timeout=0",
            "sh", "-c", "test $FLUX_TASK_RANK = 1 && exit 0; sleep 30")
    assert time.monotonic() - t0 < 15
    assert r.returncode != 0
    assert "type=exec" in r.stderr and "exit-timeout" in r.stderr


def test_exit_timeout_false_is_refused_none_accepted(inst):
    # flux-core t2609: "exit-timeout=false is rejected", "exit-timeout=none is accepted"
    r = run(inst, "-o", "exit-timeout=false", "true")
    assert r.returncode == 1
    assert "exit-timeout: invalid duration false" in r.stderr
    assert run(inst, "-o", "exit-timeout=none", "true").returncode == 0
    assert run(inst, "-o", "exit-timeout=42.34", "true").returncode == 0


# -- start failure -------------------------------------------------------------------------

def test_start_failure_says_host_and_strerror(inst, tmp_path):
    # flux-core (t2606, python t0010): "task 0 (host HOST): start failed: nosuchprog:
    # No such file or directory"; ours said "(rank 0)" and "command not found"
    r = run(inst, "nosuchprog")
    assert r.returncode == 127
    assert "task 0 (host " in r.stderr
    assert "start failed: nosuchprog: No such file or directory" in r.stderr
    assert "command not found" not in r.stderr
    script = tmp_path / "noexec"
    script.write_text("echo hi\n")
    r = run(inst, str(script))
    assert r.returncode == 126
    assert f"start failed: {script}: Permission denied" in r.stderr


# -- nosetpgrp -----------------------------------------------------------------------------

_PGRP = 'set -- $(cat /proc/$$/stat); test "$1" = "$5" && echo own || echo shared'


def test_nosetpgrp_leaves_tasks_in_the_shells_process_group(inst):
    # flux-shell-options(7) nosetpgrp: "Disable the use of setpgrp(2) to launch each
    # job task in its own process group"; the option was ignored
    r = run(inst, "sh", "-c", _PGRP)
    assert r.returncode == 0 and r.stdout == "own\n", r.stderr
    r = run(inst, "-o", "nosetpgrp", "sh", "-c", _PGRP)
    assert r.returncode == 0 and r.stdout == "shared\n", r.stderr
    # signals still reach the task itself
    sub = inst.flux("submit", "-o", "nosetpgrp", "sleep", "30")
    jobid = sub.stdout.strip()
    assert inst.flux("job", "wait-event", "-t", "20", jobid, "start").returncode == 0
    assert inst.flux("job", "kill", jobid).returncode == 0
    r = inst.flux("job", "attach", jobid, timeout=30)
    assert r.returncode == 143, r.stderr


# -- userrc --------------------------------------------------------------------------------

def test_userrc_runs_after_the_system_initrc(inst, tmp_path):
    # flux-shell-options(7) userrc=FILE: "Load another initrc.lua file after the
    # system one"; the option was ignored
    (tmp_path / "sys.py").write_text('shell.setenv("ORDER", "system")\n')
    (tmp_path / "user.py").write_text(
        'shell.setenv("ORDER", (shell.getenv("ORDER") or "") + ",user")\n')
    r = run(inst, f"--cwd={tmp_path}", "-o", "initrc=sys.py", "-o", "userrc=user.py",
            "printenv", "ORDER")
    assert r.returncode == 0 and r.stdout == "system,user\n", r.stderr
    r = run(inst, "-o", f"userrc={tmp_path / 'user.py'}", "printenv", "ORDER")
    assert r.returncode == 0 and r.stdout == ",user\n", r.stderr
    r = run(inst, "-o", f"userrc={tmp_path / 'missing.py'}", "true")
    assert r.returncode == 1 and "missing.py: No such file or directory" in r.stderr


# -- prolog and epilog ---------------------------------------------------------------------

def test_epilog_has_no_timeout_by_default_prolog_30m():
    # flux-config-job-manager(5): the prolog's default timeout is 30m, "By default,
    # the epilog timeout is disabled" (ours killed an epilog after 30m)
    from jobmgr.manager.perilog import parse_perilog

    prolog, epilog = parse_perilog({"prolog": {"command": ["a"]}, "epilog": {"command": ["b"]}})
    assert prolog.timeout == 1800.0 and epilog.timeout is None
    assert prolog.cancel_on_exception and epilog.cancel_on_exception
    prolog, _ = parse_perilog({"prolog": {"command": ["a"], "cancel-on-exception": False,
                                          "kill-timeout": 5}})
    assert not prolog.cancel_on_exception
    with pytest.raises(ValueError, match="cancel-on-exception"):
        parse_perilog({"prolog": {"command": ["a"], "cancel-on-exception": "yes"}})


def test_a_canceled_job_ends_its_running_prolog(tmp_path):
    # flux-config-job-manager(5) cancel-on-exception (default true): "a fatal job
    # exception raised while the prolog is active terminates the prolog"; a job
    # canceled in its prolog waited the prolog out (here 30 s)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "jm.toml").write_text(
        '[job-manager.prolog]\ncommand = ["sh", "-c", "sleep 30"]\n'
        '[job-manager.epilog]\ncommand = ["true"]\n')
    inst = TestInstance(size=1, config_path=str(conf)).start()
    try:
        jobid = inst.flux("submit", "true").stdout.strip()
        r = inst.flux("job", "wait-event", "-t", "20", jobid, "prolog-start")
        assert r.returncode == 0, r.stderr
        t0 = time.monotonic()
        assert inst.flux("cancel", jobid).returncode == 0
        r = inst.flux("job", "wait-event", "-t", "20", jobid, "clean")
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - t0 < 10
        events = inst.flux("job", "eventlog", jobid).stdout
        assert 'prolog-finish description="job-manager.prolog" status=15' in events
        assert "epilog-finish" in events and "type=\"prolog\"" not in events
    finally:
        inst.stop()


# -- cpu-affinity / gpu-affinity -----------------------------------------------------------

_CPUS = "grep Cpus_allowed_list /proc/self/status | cut -f2"


def test_cpu_affinity_map_binds_each_task_to_its_set(inst):
    # flux-shell-options(7) cpu-affinity=map:LIST: "Bind each task to LIST, a
    # semicolon-delimited list of cores" in hwloc list, bitmask or taskset form;
    # only on/off/per-task were taken
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    r = run(inst, "-n2", "-l", "-o", "cpu-affinity=map:1;0", "sh", "-c", _CPUS)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: 1", "1: 0"]
    r = run(inst, "-n2", "-l", "-o", "cpu-affinity=map:0x2;0x00000001", "sh", "-c", _CPUS)
    assert sorted(r.stdout.splitlines()) == ["0: 1", "1: 0"], r.stderr
    r = run(inst, "-n2", "-o", "cpu-affinity=map:1", "true")
    assert r.returncode == 1 and "map has 1 CPU set(s) for 2 local task(s)" in r.stderr


def test_cpu_affinity_verbose_and_dry_run_log_the_sets(inst):
    # flux-shell-options(7): "verbose: Log the cpuset assigned to the shell and each
    # task"; "dry-run: Print cpusets but do not actually apply CPU affinity"
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    r = run(inst, "-n2", "-l", "-o", "cpu-affinity=verbose,per-task", "sh", "-c", _CPUS)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: 0", "1: 1"]
    assert "task 0 (local): cpus 0" in r.stderr and "task 1 (local): cpus 1" in r.stderr
    r = run(inst, "-n2", "-l", "-o", "cpu-affinity=dry-run,per-task", "sh", "-c", _CPUS)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: 0-1", "1: 0-1"]     # not applied
    assert "dry run" in r.stderr and "task 1 (local): cpus 1" in r.stderr


def test_gpu_affinity_map_sets_each_tasks_devices(inst):
    # flux-shell-options(7) gpu-affinity=map:LIST
    r = run(inst, "-n2", "-l", "-o", "gpu-affinity=map:1;0x6", "printenv",
            "CUDA_VISIBLE_DEVICES")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: 1", "1: 1,2"]
