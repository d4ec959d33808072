"""Real execution on a size-1 instance: shells, tasks, stdio, signals, limits, options.

Every job here runs real processes (no test mode).  The instance's kill
timeout is 1 s so escalation to SIGKILL is quick to see.
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import flux
import flux.job
from broker.testing import TestInstance
from helpers.live import submit_real
from helpers.procs import alive, wait_dead
from helpers.standalone import run_standalone
from flux.job import JobID, JobspecV1

pytestmark = pytest.mark.slow

CONF = "[exec]\nkill-timeout = \"1s\"\n[access]\nallow-guest-user = true\n"


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    os.chmod(conf, 0o755)
    (conf / "exec.toml").write_text(CONF)
    inst = TestInstance(config_path=str(conf)).start()
    yield inst
    inst.stop()


@pytest.fixture(scope="module")
def h(inst):
    return inst.handle()


def run(inst, *args, input=None, timeout=60):
    return inst.flux("run", *args, input=input, timeout=timeout)


submit = submit_real


def wait_event(inst, jobid, name, path=None, timeout="30s"):
    extra = ["-p", path] if path else []
    r = inst.flux("job", "wait-event", "-t", timeout, *extra, str(jobid), name)
    assert r.returncode == 0, r.stderr
    return r.stdout


def events(inst, jobid, path=None):
    extra = ["-p", path] if path else []
    r = inst.flux("job", "eventlog", "-f", "json", *extra, str(jobid))
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def last_job(inst):
    r = inst.flux("jobs", "-a", "-n", "-c", "1", "-o", "{id}")
    return JobID(r.stdout.strip())


def jobs_field(inst, jobid, fmt):
    r = inst.flux("jobs", "-n", "-o", fmt, str(jobid))
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()




# -- running, output, exit codes ------------------------------------------------------

def test_run_hostname_prints_the_hostname(inst):
    r = run(inst, "hostname")
    assert r.returncode == 0 and r.stdout == socket.gethostname() + "\n"


def test_exit_code_is_the_largest_task_exit_code(inst):
    r = run(inst, "-n2", "sh", "-c", "exit $((FLUX_TASK_RANK + 3))")
    assert r.returncode == 4
    assert r.stderr.strip().endswith("flux-run: task(s) exited with exit code 4")
    jobid = last_job(inst)
    assert jobs_field(inst, jobid, "{returncode} {waitstatus} {result}") == "4 1024 FAILED"


def test_label_io_and_task_environment(inst):
    r = run(inst, "-n2", "-l", "sh", "-c",
            "echo $FLUX_TASK_RANK $FLUX_TASK_LOCAL_ID $FLUX_JOB_SIZE $FLUX_JOB_NNODES")
    assert sorted(r.stdout.splitlines()) == ["0: 0 0 2 1", "1: 1 1 2 1"]


def test_flux_variables_and_tmpdir(inst):
    r = run(inst, "sh", "-c", "echo $FLUX_JOB_ID $FLUX_URI $FLUX_KVS_NAMESPACE $FLUX_JOB_TMPDIR;"
            " test -d $FLUX_JOB_TMPDIR && test -w $FLUX_JOB_TMPDIR && echo ok")
    jobid = last_job(inst)
    fid, uri, ns, tmpdir, ok = r.stdout.split()
    assert fid == jobid.f58 and uri == inst.uri and ns == f"job-{int(jobid)}" and ok == "ok"
    assert not os.path.exists(tmpdir)            # removed with the job


def test_task_can_use_its_guest_namespace(inst):
    r = run(inst, "sh", "-c", "flux kvs put mykey=42 && flux kvs get mykey")
    assert r.returncode == 0 and r.stdout == "42\n", r.stderr
    jobid = last_job(inst)
    got = inst.flux("kvs", "get", f"{jobid.kvs}.guest.mykey")
    assert got.stdout == "42\n"


def test_cwd(inst, tmp_path):
    r = run(inst, f"--cwd={tmp_path}", "pwd")
    assert r.stdout.strip() == str(tmp_path)


def test_missing_command_is_an_exec_exception_and_exit_127(inst):
    r = run(inst, "no-such-command-xyzzy")
    assert r.returncode == 127
    assert "type=exec" in r.stderr and "start failed" in r.stderr and "task 0 (host " in r.stderr
    jobid = last_job(inst)
    assert jobs_field(inst, jobid, "{exception.type} {result}") == "exec FAILED"


def test_missing_cwd_is_an_exec_exception(inst):
    r = run(inst, "--cwd=/nonexistent/dir", "true")
    assert r.returncode == 1
    assert "Could not change dir to /nonexistent/dir" in r.stderr and "type=exec" in r.stderr


def test_time_limit(inst):
    start = time.monotonic()
    r = run(inst, "-t", "1s", "sleep", "30")
    assert time.monotonic() - start < 10
    assert r.returncode == 142 and "task(s) Alarm clock" in r.stderr
    assert "type=timeout" in r.stderr and "resource allocation expired" in r.stderr
    assert jobs_field(inst, last_job(inst), "{result}") == "TIMEOUT"


def test_cancel_a_running_job(inst):
    jobid = submit(inst, "sleep", "60")
    wait_event(inst, jobid, "start")
    assert inst.flux("cancel", str(jobid)).returncode == 0
    r = inst.flux("job", "attach", str(jobid))
    assert r.returncode == 143 and "task(s) Terminated" in r.stderr
    assert jobs_field(inst, jobid, "{result} {returncode}") == "CANCELED 143"


def test_kill_with_a_signal(inst, tmp_path):
    mark = tmp_path / "trapped"
    jobid = submit(inst, "sh", "-c",
                   f"trap 'echo got USR1; exit 7' USR1; touch {mark}; while :; do sleep 0.1; done")
    wait_event(inst, jobid, "start")
    for _ in range(100):
        if mark.exists():
            break
        time.sleep(0.05)
    assert inst.flux("job", "kill", "-s", "USR1", str(jobid)).returncode == 0
    r = inst.flux("job", "attach", str(jobid))
    assert r.returncode == 7 and "got USR1" in r.stdout


def test_kill_of_a_finished_job_is_a_clear_error(inst):
    run(inst, "true")
    jobid = last_job(inst)
    r = inst.flux("job", "kill", str(jobid))
    assert r.returncode == 1 and r.stderr.strip()
    assert "Traceback" not in r.stderr


def test_tasks_that_ignore_sigterm_get_sigkill_after_the_kill_timeout(inst):
    jobid = submit(inst, "sh", "-c", "trap '' TERM; sleep 60")
    wait_event(inst, jobid, "start")
    time.sleep(0.2)
    start = time.monotonic()
    inst.flux("cancel", str(jobid))
    r = inst.flux("job", "attach", str(jobid))
    assert time.monotonic() - start < 8
    assert r.returncode == 137 and "task(s) Killed" in r.stderr


def test_output_and_error_to_files(inst, tmp_path):
    r = run(inst, "-n2", f"--output={tmp_path}/out-{{{{id}}}}.txt", f"--error={tmp_path}/err.txt",
            "sh", "-c", "echo out $FLUX_TASK_RANK; echo err >&2")
    assert r.returncode == 0 and r.stdout == ""
    jobid = last_job(inst)
    assert sorted((tmp_path / f"out-{jobid.f58}.txt").read_text().splitlines()) == \
        ["out 0", "out 1"]
    assert (tmp_path / "err.txt").read_text() == "err\nerr\n"
    redirects = [e for e in events(inst, jobid, "output") if e["name"] == "redirect"]
    assert {e["context"]["stream"] for e in redirects} == {"stdout", "stderr"}


def test_input_from_a_file_and_an_unreadable_one(inst, tmp_path):
    data = tmp_path / "in.txt"
    data.write_text("line one\nline two\n")
    r = run(inst, "-n2", "-l", f"--input={data}", "wc", "-l")
    assert sorted(r.stdout.split("\n")[:2]) == ["0: 2", "1: 2"]
    r = run(inst, "--input=/nonexistent/input", "cat")
    assert r.returncode == 1
    # the reason as a person reads it, not Python's "[Errno 2]"
    assert "could not open input file /nonexistent/input: No such file or directory" \
        in r.stderr and "Errno" not in r.stderr


def test_stdin_is_forwarded_to_every_task(inst):
    r = run(inst, "-n2", "-l", "cat", input="hello\nworld\n")
    assert sorted(r.stdout.splitlines()) == ["0: hello", "0: world", "1: hello", "1: world"]
    jobid = last_job(inst)
    data = [e for e in events(inst, jobid, "input") if e["name"] == "data"]
    assert data[-1]["context"].get("eof") is True


def test_attach_feeds_stdin_to_a_submitted_job(inst):
    jobid = submit(inst, "-n2", "sh", "-c", "read line; echo got $line")
    wait_event(inst, jobid, "start")
    time.sleep(0.2)
    r = inst.flux("job", "attach", "-l", str(jobid), input="hello\n")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: got hello", "1: got hello"]


def test_attach_stdin_ranks(inst):
    jobid = submit(inst, "-n2", "sh", "-c",
                   "if [ $FLUX_TASK_RANK = 1 ]; then read line; echo got $line; "
                   "else echo skipped; fi")
    wait_event(inst, jobid, "start")
    r = inst.flux("job", "attach", "-l", "-i", "1", str(jobid), input="only one\n")
    assert sorted(r.stdout.splitlines()) == ["0: skipped", "1: got only one"]


def test_binary_output_comes_back_intact(inst, tmp_path):
    blob = os.urandom(200_000)
    (tmp_path / "blob").write_bytes(blob)
    r = subprocess.run(["flux", "run", "cat", str(tmp_path / "blob")], env=inst.env,
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == blob
    encodings = {e["context"].get("encoding") for e in events(inst, last_job(inst), "output")
                 if e["name"] == "data" and e["context"].get("data")}
    assert "base64" in encodings


def test_task_that_closes_stdout_and_keeps_running(inst):
    r = run(inst, "sh", "-c", "echo before; exec >&-; sleep 1; exit 3")
    assert r.returncode == 3 and r.stdout == "before\n"


def test_a_child_that_outlives_its_task_is_killed_at_job_end(inst, tmp_path):
    pidfile = tmp_path / "pid"
    r = run(inst, "sh", "-c", f"sleep 300 >/dev/null 2>&1 & echo $! > {pidfile}")
    assert r.returncode == 0
    pid = int(pidfile.read_text())
    for _ in range(50):
        if not alive(pid):
            break
        time.sleep(0.1)
    assert not alive(pid)


def test_output_of_a_child_left_running_is_kept_for_a_while(inst, tmp_path):
    """As flux-core, what a task's leftover child writes to the job's output is
    output (it was dropped: the child was killed as the task exited); one that
    keeps the output open is killed within about a second, not waited for."""
    r = run(inst, "sh", "-c", "(sleep 0.3; echo late) & echo started")
    assert r.returncode == 0 and r.stdout == "started\nlate\n"
    pidfile = tmp_path / "pid"
    start = time.monotonic()
    r = run(inst, "sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo started")
    assert r.returncode == 0 and r.stdout == "started\n"
    assert time.monotonic() - start < 10
    pid = int(pidfile.read_text())
    for _ in range(50):
        if not alive(pid):
            break
        time.sleep(0.1)
    assert not alive(pid)


def test_a_setsid_child_holding_the_output_pipe_does_not_hang_the_job(inst, tmp_path):
    pidfile = tmp_path / "pid"
    start = time.monotonic()
    # the escapee's own child too: it is reparented to the shell only once its parent dies
    r = run(inst, "sh", "-c", f"setsid sh -c 'sleep 300 & echo $$ $! > {pidfile}; wait' & "
                              "sleep 0.5")
    assert r.returncode == 0 and time.monotonic() - start < 15
    pids = [int(p) for p in pidfile.read_text().split()]
    for _ in range(50):
        if not any(alive(pid) for pid in pids):
            break
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)


def test_a_shell_server_killed_with_sigkill_fails_its_jobs_and_kills_their_tasks(inst, tmp_path):
    pids = tmp_path / "pids"
    victim = submit(inst, "sh", "-c", f"echo $PPID $$ > {pids}; sleep 60")
    for _ in range(100):
        if pids.exists() and pids.read_text().strip():
            break
        time.sleep(0.05)
    server, task = (int(p) for p in pids.read_text().split())
    os.kill(server, signal.SIGKILL)
    r = inst.flux("job", "attach", str(victim))
    assert r.returncode == 137
    assert wait_dead([task])
    # the instance keeps running jobs (a new server is started)
    assert run(inst, "echo", "still here").stdout == "still here\n"


def test_an_error_in_one_jobs_shell_fails_only_that_job(inst, tmp_path):
    plugin = tmp_path / "boom.py"
    plugin.write_text("def flux_plugin_init(p):\n"
                      "    def exit_(topic, shell, task):\n"
                      "        raise RuntimeError('boom in ' + topic)\n"
                      "    p.add_handler('shell.start', exit_)\n")
    initrc = tmp_path / "initrc.py"
    initrc.write_text(f"plugin.load({str(plugin)!r})\n")
    other = submit(inst, "sh", "-c", "sleep 2; echo fine")
    wait_event(inst, other, "start")
    r = run(inst, "-o", f"initrc={initrc}", "sleep", "30")
    assert r.returncode != 0 and "boom in shell.start" in r.stderr
    good = inst.flux("job", "attach", str(other))
    assert good.returncode == 0 and good.stdout == "fine\n"


def test_exec_eventlog_and_guest_namespace_after_the_job(inst):
    run(inst, "true")
    jobid = last_job(inst)
    names = [e["name"] for e in events(inst, jobid, "exec")]
    assert names == ["init", "starting", "shell.init", "shell.start", "shell.task-exit",
                     "complete", "done"]
    spaces = inst.flux("kvs", "namespace", "list").stdout
    assert f"job-{int(jobid)}" not in spaces
    assert inst.flux("kvs", "get", f"{jobid.kvs}.guest.exec.eventlog").returncode == 0


def test_watches_of_guest_logs_end(inst):
    jobid = submit(inst, "sh", "-c", "echo a; sleep 0.5; echo b")
    procs = [subprocess.Popen(["flux", "job", "eventlog", "-F", "-p", path, str(jobid)],
                              env=inst.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for path in ("exec", "output", "input")]
    out = [p.communicate(timeout=30) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert out[0][0].splitlines()[-1].split()[1] == "done"
    assert '"b\\n"' in out[1][0]
    wait_event(inst, jobid, "done", path="exec")


def test_exit_timeout(inst):
    start = time.monotonic()
    r = run(inst, "-n2", "-o", "exit-timeout=1s", "sh", "-c",
            "test $FLUX_TASK_RANK = 1 && sleep 60; exit 0")
    assert time.monotonic() - start < 15
    assert "exit-timeout" in r.stderr and r.returncode != 0


def test_exit_on_error(inst):
    start = time.monotonic()
    r = run(inst, "-n2", "-o", "exit-on-error", "sh", "-c",
            "test $FLUX_TASK_RANK = 1 && exit 2; sleep 60")
    assert time.monotonic() - start < 15
    assert "exit-on-error" in r.stderr and r.returncode != 0


def test_signal_before_the_time_limit(inst):
    r = run(inst, "--signal=USR2@1s", "-t", "3s", "sh", "-c",
            "trap 'echo warned; exit 0' USR2; while :; do sleep 0.1; done")
    assert r.returncode == 0 and "warned" in r.stdout


def test_cpu_affinity(inst):
    def allowed(*opts):
        r = run(inst, *opts, "-l", "sh", "-c", "grep Cpus_allowed_list /proc/self/status")
        return {line.split(":")[0]: line.split()[-1] for line in r.stdout.splitlines()}

    ncpu = len(os.sched_getaffinity(0))
    if ncpu < 2:
        pytest.skip("needs 2 CPUs to see a binding")
    one = allowed("-n1")
    assert len(one) == 1 and "-" not in one["0"] and "," not in one["0"]
    per_task = allowed("-n2", "-o", "cpu-affinity=per-task")
    assert per_task["0"] != per_task["1"]
    off = allowed("-n1", "-o", "cpu-affinity=off")
    assert off["0"] == allowed_list_of_self()


def allowed_list_of_self():
    with open("/proc/self/status") as fh:
        return next(line.split()[-1] for line in fh if line.startswith("Cpus_allowed_list"))


def test_rlimit(inst):
    assert run(inst, "--rlimit=nofile=123", "sh", "-c", "ulimit -n").stdout == "123\n"


def test_an_open_files_limit_below_the_shells_own_descriptors(inst):
    # the shell server holds more descriptors than 8: the C library would refuse to
    # start a task under that limit, so the task lowers it itself
    r = run(inst, "-n2", "-l", "--rlimit=nofile=8", "sh", "-c", "ulimit -n; exec 3>&-; true")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: 8", "1: 8"]
    r = run(inst, "--rlimit=nofile=8", "nosuchcommand")
    assert r.returncode == 127 and "nosuchcommand: No such file or directory" in r.stderr


def test_pty(inst):
    r = run(inst, "-o", "pty", "sh", "-c", "test -t 0 && test -t 1 && tty")
    assert r.returncode == 0 and r.stdout.startswith("/dev/pts/")


def test_site_plugin_from_an_initrc(inst, tmp_path):
    plugin = tmp_path / "hello.py"
    plugin.write_text("def flux_plugin_init(p):\n"
                      "    def init(topic, shell, task):\n"
                      "        task.env['SITE_PLUGIN'] = 'rank-%d' % task.rank\n"
                      "    p.add_handler('task.init', init)\n")
    initrc = tmp_path / "initrc.py"
    initrc.write_text(f"plugin.searchpath = [{str(tmp_path)!r}]\nplugin.load('hello.py')\n")
    r = run(inst, "-n2", "-l", "-o", f"initrc={initrc}", "sh", "-c", "echo $SITE_PLUGIN")
    assert sorted(r.stdout.splitlines()) == ["0: rank-0", "1: rank-1"]


def test_initrc_api_of_flux_shell_1(inst, tmp_path):
    # flux-shell(1)'s initrc members: rcpath, get/set/unsetenv, info, rankinfo,
    # task.info and task.setenv; and its example handler of every topic that logs
    # (it must not call itself again for its own log messages)
    (tmp_path / "more.py").write_text("shell.setenv('SOURCED', shell.rcpath)\n")
    initrc = tmp_path / "initrc.py"
    initrc.write_text(
        "plugin.register(name='test', handlers=[\n"
        "    {'topic': '*', 'fn': lambda topic, sh, task: shell.log('topic=' + topic)}])\n"
        "def tinit(topic, sh, task):\n"
        "    task.setenv('TASKVAR', 'r%d-%s' % (task.info.rank, task.info['state']))\n"
        "    task.setenv('HOME', 'kept', 0)\n"
        "    task.unsetenv('DROPME')\n"
        "plugin.register(name='t2', handlers=[{'topic': 'task.init', 'fn': tinit}])\n"
        "source('more.py')\n"
        "shell.setenv('SHELLVAR', '%s/%s/%d/%s/%d/%s' % (shell.info.rank, shell.info.size,\n"
        "    shell.info.ntasks, shell.info['service'], shell.rankinfo.broker_rank,\n"
        "    shell.get_rankinfo(0)['resources']['core']))\n"
        "shell.unsetenv('GONE')\n")
    env = dict(inst.env, DROPME="1", GONE="1", HOME="/home/x")
    r = inst.flux("run", "-o", "verbose", "-o", f"initrc={initrc}", "--env=DROPME", "--env=GONE",
                  "--env=HOME", "sh", "-c",
                  "echo $TASKVAR $HOME ${DROPME:-none} ${GONE:-none} $SHELLVAR $SOURCED",
                  env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    assert words[:4] == ["r0-init", "/home/x", "none", "none"]
    rank, size, ntasks, service, broker_rank, cores = words[4].split("/")
    assert (rank, size, ntasks, broker_rank) == ("0", "1", "1", "0")
    assert re.fullmatch(rf"{os.getuid()}-shell-[0-9]+", service)
    assert cores == "0" and words[5] == str(tmp_path)
    topics = [line for line in r.stderr.splitlines() if "topic=" in line]
    assert any("topic=task.exit" in t for t in topics)
    # one shell.log topic per message, not a storm
    assert sum("topic=shell.log" in t for t in topics) < 40


def _proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def test_stop_tasks_in_exec_leaves_the_tasks_stopped_for_a_debugger(inst):
    # flux-shell(1): "Stops tasks in exec() using PTRACE_TRACEME"
    jobid = submit(inst, "-n2", "-o", "stop-tasks-in-exec", "sh", "-c",
                   "echo went on; exit 3")
    wait_event(inst, jobid, "start")
    r = inst.flux("job", "hostpids", str(jobid))
    pids = [int(p.split(":")[1]) for p in r.stdout.strip().split(",")]
    deadline = time.monotonic() + 20
    while not all(_proc_state(p) == "T" for p in pids):
        assert time.monotonic() < deadline, [_proc_state(p) for p in pids]
        time.sleep(0.05)
    for pid in pids:
        # the command itself, stopped after its exec, and no longer traced
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            assert fh.read().split(b"\0")[:2] == [b"sh", b"-c"]
        with open(f"/proc/{pid}/status") as fh:
            assert "TracerPid:\t0" in fh.read()
    time.sleep(0.3)
    assert all(_proc_state(p) == "T" for p in pids)    # still waiting
    assert inst.flux("job", "kill", "-s", "SIGCONT", str(jobid)).returncode == 0
    r = inst.flux("job", "attach", str(jobid), timeout=30)
    assert r.returncode == 3 and r.stdout == "went on\nwent on\n", r.stderr
    r = run(inst, "-o", "stop-tasks-in-exec", "no-such-command-x")
    assert r.returncode == 127 and "no-such-command-x: No such file or directory" in r.stderr


def test_a_billion_tasks_on_one_node_fail_at_once_not_the_server(inst, tmp_path):
    # a jobspec any user can write: the shell refuses it before building its tasks
    r = inst.flux("run", "--dry-run", "true")
    spec = json.loads(r.stdout)
    spec["tasks"][0]["count"] = {"total": 10 ** 9}
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(spec))
    r = inst.flux("job", "submit", str(path))
    assert r.returncode == 0, r.stderr
    r = inst.flux("job", "attach", r.stdout.strip(), timeout=60)
    assert r.returncode == 1
    assert "1000000000 tasks on this node: more than the shell can start" in r.stderr
    assert run(inst, "echo", "still here").stdout == "still here\n"


def test_submit_wait_names_each_failed_job(inst):
    r = inst.flux("submit", "--cc=1-2", "--wait", "sh", "-c", "exit 2", timeout=60)
    assert r.returncode == 2
    ids = r.stdout.split()
    for jobid in ids:
        assert f"{jobid}: task(s) exited with exit code 2" in r.stderr, r.stderr


def test_bad_verbose_level_is_an_exec_error(inst):
    r = run(inst, "-o", "verbose=abc", "true")
    assert r.returncode == 1 and "verbose: invalid value 'abc'" in r.stderr


def test_output_limit_truncates(inst):
    r = run(inst, "-o", "output.limit=100", "sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x")
    assert r.returncode == 0 and r.stdout == "x" * 100
    assert "limit of 100 bytes" in r.stderr


def test_shell_verbose_logs_into_the_output_log(inst):
    # verbose=1 (flux-core's DEBUG, level 6): what the shell does; verbose=2 adds TRACE (7)
    run(inst, "-o", "verbose=1", "true")
    logs = [e["context"] for e in events(inst, last_job(inst), "output") if e["name"] == "log"]
    assert any("started pid" in c["message"] and c["level"] == 6 for c in logs)
    assert any("exited with status 0" in c["message"] for c in logs)
    assert not any(c["level"] == 7 for c in logs)
    r = run(inst, "-o", "verbose=2", "true")
    logs = [e["context"] for e in events(inst, last_job(inst), "output") if e["name"] == "log"]
    assert any(c["message"].startswith("plugins: ") and c["level"] == 7 for c in logs)
    assert "flux-shell[0]: TRACE: plugins:" in r.stderr
    assert "flux-shell[0]: DEBUG: task 0: started pid" in r.stderr
    logs = [e for e in events(inst, last_job(inst), "output") if e["name"] == "log"]
    assert any("started pid" in e["context"]["message"] for e in logs)


def test_submit_wait_event(inst, tmp_path):
    # returns once the event is posted: the job is running then, not done
    mark = tmp_path / "ran"
    r = inst.flux("submit", "--wait-event=start", "sh", "-c", f"sleep 1; touch {mark}")
    assert r.returncode == 0, r.stderr
    jobid = JobID(r.stdout.strip())
    assert jobs_field(inst, jobid, "{status}") == "RUNNING" and not mark.exists()
    r = inst.flux("submit", "--cc=1-2", "--wait-event=exec.shell.init", "true")
    assert r.returncode == 0 and len(r.stdout.split()) == 2, r.stderr
    # a job that ends without the event: exit 1, saying which
    proc = subprocess.Popen(["flux", "submit", "--urgency=hold", "--wait-event=start", "true"],
                            env=inst.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    held = proc.stdout.readline().strip()
    inst.flux("cancel", held)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err == f"flux-submit: {held}: the job ended without event start\n"


def test_submit_wait_and_watch(inst):
    r = inst.flux("submit", "--wait", "sh", "-c", "exit 3")
    assert r.returncode == 3
    r = inst.flux("submit", "--watch", "echo", "watched")
    assert r.returncode == 0 and "watched" in r.stdout


def test_python_submit_and_result(h):
    spec = JobspecV1.from_command(["sh", "-c", "exit 5"])
    jobid = flux.job.submit(h, spec)
    info = flux.job.result(h, jobid)
    assert info.returncode == 5 and info.result == "FAILED"
    ok = flux.job.result(h, flux.job.submit(h, JobspecV1.from_command(["true"])))
    assert ok.returncode == 0 and ok.result == "COMPLETED"


def test_killall(inst):
    ids = [submit(inst, "sleep", "60") for _ in range(2)]
    for jobid in ids:
        wait_event(inst, jobid, "start")
    r = inst.flux("job", "killall", "-f")
    assert r.returncode == 0
    for jobid in ids:
        wait_event(inst, jobid, "clean")
        assert jobs_field(inst, jobid, "{returncode}") == "143"


def test_standalone_flux_shell(tmp_path):
    spec = JobspecV1.from_command(["sh", "-c", "echo hi $FLUX_TASK_RANK; exit 2"], num_tasks=2)
    spec.cwd = str(tmp_path)
    spec.setattr_shell_option("output.stdout.label", True)
    r = run_standalone(tmp_path, spec)
    assert r.returncode == 2
    assert sorted(r.stdout.splitlines()) == ["0: hi 0", "1: hi 1"]
    assert "DEBUG" not in r.stderr
    # -v: "log actions to stderr" (flux-shell(1))
    r = run_standalone(tmp_path, spec, "-v")
    assert r.returncode == 2
    assert "flux-shell[0]: DEBUG: shell 0 of 1 on broker rank 0: 2 of 2 task(s)" in r.stderr
    assert "flux-shell[0]: DEBUG: task 1: exited with status 2" in r.stderr
    assert "TRACE" not in r.stderr


def test_standalone_output_keeps_each_tasks_lines_whole(tmp_path):
    # two tasks each write half a line, wait, and end it: their halves do not mix
    script = ('printf "a$FLUX_TASK_RANK"; sleep 0.3; printf "b$FLUX_TASK_RANK\\n"; '
              'printf "tail$FLUX_TASK_RANK"')
    spec = JobspecV1.from_command(["sh", "-c", script], num_tasks=2)
    spec.cwd = str(tmp_path)
    r = run_standalone(tmp_path, spec)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "a0b0\n" in out and "a1b1\n" in out and out.count("tail") == 2, out
    # unbuffered (buffer.type none): what each write brings, at once
    spec.setattr_shell_option("output.stdout.buffer.type", "none")
    r = run_standalone(tmp_path, spec)
    assert r.returncode == 0 and sorted(r.stdout[:4]) == sorted("a0a1"), r.stdout


def _running_flux_run(inst, *args):
    proc = subprocess.Popen(["flux", "run", *args], env=inst.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ids = inst.flux("jobs", "-n", "-f", "running", "-o", "{id}").stdout.split()
        if ids:
            return proc, JobID(ids[0])
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the job never started")


def test_ctrl_c_twice_cancels_the_job(inst):
    proc, jobid = _running_flux_run(inst, "sleep", "60")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert "one more ctrl-C within 2s to cancel or ctrl-Z to detach" in err
    assert "interrupted by ctrl-C" in err and proc.returncode == 143
    assert jobs_field(inst, jobid, "{result}") == "CANCELED"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_to_flux_run_cancels_a_job_still_pending(inst, signum):
    # (a held job has no tasks to forward the signal to: timeout(1) must still work)
    proc = subprocess.Popen(["flux", "run", "--urgency=hold", "true"], env=inst.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    ids: list[str] = []
    while not ids and time.monotonic() < deadline:
        ids = inst.flux("jobs", "-n", "-f", "pending", "-o", "{id}").stdout.split()
        time.sleep(0.05)
    assert ids, "the job was never submitted"
    jobid = JobID(ids[0])
    time.sleep(0.5)  # flux run follows the job (and watches signals) once submitted
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=30)
    name = signal.Signals(signum).name
    assert f"interrupted by {name}" in err and proc.returncode == 1, err
    assert jobs_field(inst, jobid, "{result}") == "CANCELED"


def test_ctrl_c_then_ctrl_z_detaches_and_the_job_runs_on(inst):
    proc, jobid = _running_flux_run(inst, "sleep", "60")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTSTP)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "detaching" in err
    assert jobs_field(inst, jobid, "{status}") == "RUNNING"
    inst.flux("cancel", str(jobid))
    wait_event(inst, jobid, "clean")


def test_unbuffered_output_sets_the_shell_options(inst):
    r = inst.flux("run", "--dry-run", "-u", "true")
    opts = json.loads(r.stdout)["attributes"]["system"]["shell"]["options"]
    assert opts["output"]["stdout"]["buffer"]["type"] == "none"
    assert opts["output"]["batch-timeout"] == 0.05
    # and a partial line is not held back
    r = run(inst, "-u", "sh", "-c", "printf 'no newline'")
    assert r.stdout == "no newline"


def test_verbose_run_prints_the_jobid_and_events(inst):
    r = run(inst, "-vvv", "true")
    assert r.stderr.startswith("jobid: ")
    assert "job.start" in r.stderr and "exec.shell.start" in r.stderr
    # the job's and exec's events, watched apart, are printed in time order
    lines = [line for line in r.stderr.splitlines()[1:] if line[:1].isdigit()]
    stamps = [float(line.split("s:", 1)[0]) for line in lines]
    assert stamps == sorted(stamps), r.stderr
    names = [line.split(": ", 1)[1].split()[0] for line in lines]
    assert names.index("exec.init") < names.index("job.start") < names.index("job.finish")
    assert names.index("exec.shell.start") < names.index("job.start")
    # an exception without a note is printed without a trailing blank
    proc = subprocess.Popen(["flux", "run", "-vv", "--urgency=hold", "true"], env=inst.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (held := inst.flux("jobs", "-n", "-f", "pending", "-o", "{id}").stdout.split()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    inst.flux("cancel", *held)
    _out, err = proc.communicate(timeout=30)
    exc = [line for line in err.splitlines() if "job.exception" in line]
    assert exc and exc[0].endswith("type=cancel severity=0"), err


def test_the_time_limit_can_be_moved_while_the_job_runs(inst, h):
    jobid = submit(inst, "-t", "2s", "sleep", "30")
    wait_event(inst, jobid, "start")
    h.rpc("job-exec.expiration", {"id": int(jobid), "expiration": time.time() + 60}).get()
    time.sleep(3)
    assert jobs_field(inst, jobid, "{status}") == "RUNNING"
    # and back: an expiration in the past ends it at once with a timeout
    h.rpc("job-exec.expiration", {"id": int(jobid), "expiration": time.time() - 1}).get()
    wait_event(inst, jobid, "clean")
    assert jobs_field(inst, jobid, "{result}") == "TIMEOUT"
    with pytest.raises(OSError) as info:
        h.rpc("job-exec.expiration", {"id": int(jobid), "expiration": 1.0}).get()
    assert info.value.errno == errno.ENOENT
    with pytest.raises(OSError) as info:
        h.rpc("job-exec.expiration", {"id": int(jobid), "expiration": "soon"}).get()
    assert info.value.errno == errno.EPROTO
