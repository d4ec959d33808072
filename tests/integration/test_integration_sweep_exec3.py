"""Job execution as flux-core's tests and man pages describe it, on real instances:
the exec eventlog's ``shell.task-exit`` (flux-core t2609), a prolog ended at once by
a fatal exception (cancel-on-exception), and prolog/epilog output in the broker log
with ``[job-manager.perilog] log-ignore`` (flux-config-job-manager(5))."""
from __future__ import annotations

import json

import pytest

from broker.testing import TestInstance

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=1).start()
    yield inst
    inst.stop()


def exec_events(inst, jobid: str) -> list[dict]:
    r = inst.flux("job", "eventlog", "-f", "json", "-p", "exec", jobid)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


# -- shell.task-exit -----------------------------------------------------------------------

def test_first_task_exit_is_posted_to_the_exec_eventlog(inst):
    # flux-core t2609: "flux-shell: first task exit posts shell.task-exit event"
    # (flux submit true; flux job wait-event -p exec ID shell.task-exit): it never came
    jobid = inst.flux("submit", "true").stdout.strip()
    r = inst.flux("job", "wait-event", "-t", "10", "-p", "exec", jobid, "shell.task-exit")
    assert r.returncode == 0, r.stderr
    assert inst.flux("job", "wait-event", "-t", "10", jobid, "clean").returncode == 0
    events = exec_events(inst, jobid)
    names = [e["name"] for e in events]
    assert names.index("shell.start") < names.index("shell.task-exit") < names.index("complete")
    start = events[names.index("shell.start")]["context"]
    ctx = events[names.index("shell.task-exit")]["context"]
    assert ctx == {"localid": 0, "rank": 0, "state": "Exited", "pid": start["pids"][0],
                   "wait_status": 0, "signaled": 0, "exitcode": 0}


def test_task_exit_of_a_signaled_task(inst):
    jobid = inst.flux("submit", "sh", "-c", "kill -9 $$").stdout.strip()
    assert inst.flux("job", "wait-event", "-t", "10", jobid, "clean").returncode == 0
    (ctx,) = [e["context"] for e in exec_events(inst, jobid) if e["name"] == "shell.task-exit"]
    assert (ctx["wait_status"], ctx["signaled"], ctx["exitcode"]) == (9, 9, 137)


def test_task_exit_from_a_shell_on_another_rank():
    # the first task to exit is on rank 1: its shell's report comes over the broker
    inst = TestInstance(size=2).start()
    try:
        r = inst.flux("run", "-N2", "-n2", "sh", "-c",
                      "test $FLUX_TASK_RANK = 1 && exit 3; sleep 1", timeout=60)
        assert r.returncode == 3, r.stderr
        jobid = inst.flux("job", "last").stdout.strip()
        events = exec_events(inst, jobid)
        (ctx,) = [e["context"] for e in events if e["name"] == "shell.task-exit"]
        assert (ctx["rank"], ctx["localid"], ctx["exitcode"]) == (1, 0, 3)
        names = [e["name"] for e in events]
        assert names.index("shell.task-exit") < names.index("complete")
    finally:
        inst.stop()


# -- prolog and epilog -----------------------------------------------------------------------

_PROLOG = ("echo hello from prolog; echo; echo 'debug: noisy'; echo oops >&2; "
           "test -e $FLUX_JOB_ID.wait && sleep 30; exit 0")


@pytest.fixture(scope="module")
def perilog_inst(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    (conf / "jm.toml").write_text(
        "[job-manager.prolog]\n"
        f'command = ["sh", "-c", "cd {conf}; {_PROLOG}"]\n'
        "[job-manager.epilog]\n"
        'command = ["sh", "-c", "echo bye from epilog"]\n'
        "[job-manager.perilog]\n"
        'log-ignore = ["^debug:"]\n')
    inst = TestInstance(size=1, config_path=str(conf)).start()
    inst.conf = conf
    yield inst
    inst.stop()


def test_a_fatal_exception_ends_the_prolog_at_once(perilog_inst):
    # the prolog's cancel-on-exception was a poll of the job every 0.1 s: the prolog
    # ended up to 0.1 s after the exception; the job manager now tells it directly
    inst = perilog_inst
    delays = []
    for _ in range(5):
        jobid = inst.flux("submit", "--urgency=0", "true").stdout.strip()
        (inst.conf / f"{jobid}.wait").write_text("")
        assert inst.flux("job", "urgency", jobid, "16").returncode == 0
        r = inst.flux("job", "wait-event", "-t", "20", jobid, "prolog-start")
        assert r.returncode == 0, r.stderr
        assert inst.flux("cancel", jobid).returncode == 0
        assert inst.flux("job", "wait-event", "-t", "20", jobid, "clean").returncode == 0
        r = inst.flux("job", "eventlog", "-f", "json", jobid)
        events = {e["name"]: e for e in map(json.loads, r.stdout.splitlines())}
        assert events["prolog-finish"]["context"]["status"] == 15
        delays.append(events["prolog-finish"]["timestamp"] - events["exception"]["timestamp"])
    # a poll's wait is spread over its 0.1 s period; the hook's is a few ms
    assert sorted(delays)[3] < 0.03, delays


def test_perilog_output_is_logged_except_log_ignore_lines(perilog_inst):
    # flux-config-job-manager(5) [job-manager.perilog] log-ignore: "regular expression
    # strings to ignore in the stdout and stderr of prolog and epilog processes";
    # nothing of their output was logged at all.  flux-core's form:
    # "ID: prolog: HOST (rank N): stdout: LINE"
    inst = perilog_inst
    r = inst.flux("run", "true", timeout=60)
    assert r.returncode == 0, r.stderr
    jobid = inst.flux("job", "last").stdout.strip()
    assert inst.flux("job", "wait-event", "-t", "20", jobid, "clean").returncode == 0
    dmesg = inst.flux("dmesg").stdout
    mine = [line for line in dmesg.splitlines() if f"{jobid}: " in line]
    assert any(line.endswith("(rank 0): stdout: hello from prolog")
               and "job-manager.info" in line and f"{jobid}: prolog: " in line
               for line in mine), mine
    assert any(line.endswith("(rank 0): stderr: oops") and "job-manager.err" in line
               for line in mine), mine
    assert any(f"{jobid}: epilog: " in line and line.endswith("stdout: bye from epilog")
               for line in mine), mine
    assert not any("debug: noisy" in line for line in mine), mine
    assert not any(line.endswith("stdout: ") for line in mine), mine     # blank lines


def test_log_ignore_must_be_regular_expressions():
    from jobmgr.manager.perilog import parse_perilog

    prolog, epilog = parse_perilog({"prolog": {"command": ["a"]}, "epilog": {"command": ["b"]},
                                    "perilog": {"log-ignore": ["^x", "y$"]}})
    assert [p.pattern for p in prolog.log_ignore] == ["^x", "y$"] == \
        [p.pattern for p in epilog.log_ignore]
    with pytest.raises(ValueError, match="Failed to compile regex: \\("):
        parse_perilog({"prolog": {"command": ["a"]}, "perilog": {"log-ignore": ["("]}})
    with pytest.raises(ValueError, match="log-ignore"):
        parse_perilog({"prolog": {"command": ["a"]}, "perilog": {"log-ignore": "x"}})
