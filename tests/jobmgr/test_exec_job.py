"""jobmgr.exec.job.ExecJob: rank 0's pure state machine over a job's shells."""
from __future__ import annotations

import errno
import signal

from hypothesis import given, settings, strategies as st

from jobmgr.exec.job import TIMEOUT_NOTE, ExecJob, ExecSettings


def kinds(actions):
    return [a.kind for a in actions]


def responses(actions):
    return [(a["type"], a["data"]) for a in actions if a.kind == "respond"]


def logs(actions):
    return [a["name"] for a in actions if a.kind == "eventlog"]


def job(size=1, **kw):
    settings_ = ExecSettings(**{"kill_timeout": 5.0, **kw})
    return ExecJob(42, list(range(10, 10 + size)), settings_, expiration=0.0, f58="f42")


def run_to_start(j):
    out = []
    for r in range(j.size):
        out += j.launched_on(r)
    for r in range(j.size):
        out += j.barrier(r, "init", None, f"i{r}")
    for r in range(j.size):
        out += j.barrier(r, "start", {"task-count": 3} if r == 0 else None, f"s{r}")
    return out


def test_normal_run_order():
    j = job(size=2)
    out = run_to_start(j)
    assert logs(out) == ["shell.init", "shell.start"]
    assert responses(out) == [("start", {})]
    barriers = [a for a in out if a.kind == "barrier"]
    assert [b["waiters"] for b in barriers] == [["i0", "i1"], ["s0", "s1"]]
    assert barriers[1]["data"] == {}
    first = j.shell_exited(1, 0)
    # a rank that is done is released early; the others keep running
    assert responses(first) == [("release", {"ranks": "11", "final": False})]
    last = j.shell_exited(0, 3 << 8)
    assert logs(last) == ["complete", "done"]
    assert responses(last) == []
    assert kinds(last)[-1] == "finalize"
    assert [a for a in last if a.kind == "eventlog"][0]["context"] == {"status": 3 << 8}
    # finish waits for the guest namespace to be in the job directory, with the release
    assert responses(j.finalized()) == [("finish", {"status": 3 << 8}),
                                        ("release", {"ranks": "10", "final": True})]
    assert j.finalized() == []


def test_barrier_waits_for_every_shell_and_merges_data():
    j = job(size=3)
    assert j.barrier(0, "pmi.1", {"a": "1"}, "t0") == []
    assert j.barrier(2, "pmi.1", {"c": "3"}, "t2") == []
    out = j.barrier(1, "pmi.1", {"b": "2"}, "t1")
    (done,) = [a for a in out if a.kind == "barrier"]
    assert done["data"] == {"a": "1", "b": "2", "c": "3"}
    assert done["waiters"] == ["t0", "t1", "t2"]


def test_barrier_fails_when_a_shell_exits_before_entering():
    j = job(size=2)
    j.launched_on(0)
    j.launched_on(1)
    assert j.barrier(0, "init", None, "t0") == []
    out = j.shell_exited(1, 1 << 8)
    failed = [a for a in out if a.kind == "barrier"]
    assert failed and failed[0]["waiters"] == ["t0"] and failed[0]["errnum"] == errno.ECONNRESET
    # a later barrier cannot complete either
    late = j.barrier(0, "start", None, "t0b")
    assert late[0]["errnum"] == errno.ECONNRESET
    # not started: the job fails without a finish
    j.shell_exited(0, 1 << 8)
    assert "finish" not in [t for t, _d in responses(j.finalized())]


def test_shell_start_gathers_every_shells_task_pids_by_task_rank():
    j = job(size=2)
    for r in range(2):
        j.launched_on(r)
        j.barrier(r, "init", None, f"i{r}")
    j.barrier(0, "start", {"task-count": 4, "taskmap": {"version": 1, "map": [[0, 2, 2, 1]]},
                           "pids": [[0, 100], [1, 101]]}, "s0")
    # shell 1's second task did not start (pid 0); a malformed entry is left out
    out = j.barrier(1, "start", {"pids": [[2, 200], [3, 0], ["x", 5], [4]]}, "s1")
    event = [a for a in out if a.kind == "eventlog"][0]
    assert event["name"] == "shell.start"
    assert event["context"] == {"task-count": 4, "taskmap": {"version": 1, "map": [[0, 2, 2, 1]]},
                                "pids": [100, 101, 200, 0]}
    # a rank at or beyond the task count is not one of the job's tasks
    j = job(size=1)
    j.launched_on(0)
    j.barrier(0, "init", None, "i")
    out = j.barrier(0, "start", {"task-count": 2, "pids": [[0, 7], [1, 8], [900000, 9]]}, "s")
    assert [a for a in out if a.kind == "eventlog"][0]["context"]["pids"] == [7, 8]
    assert "pids" not in [a for a in out if a.kind == "barrier"][0]["data"]


@given(st.dictionaries(st.integers(0, 40), st.integers(1, 1 << 22), min_size=1))
def test_pids_in_shell_start_are_indexed_by_task_rank(pids):
    j = job(size=1)
    j.launched_on(0)
    j.barrier(0, "init", None, "i")
    out = j.barrier(0, "start", {"pids": [[r, p] for r, p in pids.items()]}, "s")
    context = [a for a in out if a.kind == "eventlog"][0]["context"]
    assert context["pids"] == [pids.get(r, 0) for r in range(max(pids) + 1)]


def test_barriers_are_independent_and_used_once():
    j = job(size=2)
    j.barrier(0, "init", None, "a")
    assert j.barrier(0, "init", None, "b")[0]["errnum"] == errno.EEXIST
    # shell 0 may go on to the next barrier before shell 1 reached the first
    assert j.barrier(0, "start", None, "c") == []
    assert logs(j.barrier(1, "init", None, "d")) == ["shell.init"]
    assert logs(j.barrier(1, "start", None, "e")) == ["shell.start"]
    assert j.barrier(1, "init", None, "f")[0]["errnum"] == errno.EEXIST


def test_time_limit_raises_timeout_and_sends_sigalrm_then_sigkill():
    j = ExecJob(1, [0], ExecSettings(kill_timeout=5.0), expiration=100.0)
    timers = j.begin(now=40.0)
    assert [(a["name"], a["delay"]) for a in timers if a.kind == "timer"] == [("expire", 60.0)]
    run_to_start(j)
    out = j.timer("expire")
    assert responses(out) == [("exception", {"severity": 0, "type": "timeout",
                                             "note": TIMEOUT_NOTE})]
    sig = [a for a in out if a.kind == "signal"][0]
    assert sig["signum"] == signal.SIGALRM and sig["ranks"] == [0]
    # a later automatic kill (the job manager's after the exception) changes nothing
    assert j.kill(signal.SIGTERM, after_exception=True) == []
    esc = j.timer("kill")
    assert [a["signum"] for a in esc if a.kind == "signal"] == [signal.SIGKILL]
    end = j.shell_exited(0, (128 + signal.SIGALRM) << 8)
    assert {"name": "kill"} in [a.args for a in end if a.kind == "cancel_timer"]
    assert ("finish", {"status": (128 + signal.SIGALRM) << 8}) in responses(j.finalized())


def test_unkillable_shells_get_their_ranks_drained_and_the_job_ends():
    j = job(size=2)
    run_to_start(j)
    j.shell_exited(0, 0)
    j.kill(signal.SIGTERM, after_exception=True)
    j.timer("kill")                       # SIGKILL
    out = j.timer("kill")                 # still there: drain rank 11
    drains = [a for a in out if a.kind == "drain"]
    assert drains == [drains[0]] and drains[0]["ranks"] == [11]
    assert "unkillable" in drains[0]["reason"] and "f42" in drains[0]["reason"]
    assert "finalize" in kinds(out)
    assert responses(j.finalized())[0] == ("finish", {"status": signal.SIGKILL})


def test_user_kill_does_not_escalate():
    j = job()
    run_to_start(j)
    out = j.kill(signal.SIGUSR1)
    assert kinds(out) == ["signal"] and out[0]["signum"] == signal.SIGUSR1
    assert j.kill_stage == 0


def test_exit_timeout_after_first_task_exit():
    j = job(size=2, exit_timeout=30.0)
    run_to_start(j)
    out = j.task_exited(0, 0)
    assert [(a["name"], a["delay"]) for a in out if a.kind == "timer"] == [("exit-timeout", 30.0)]
    assert j.task_exited(1, 0) == []     # only the first exit starts it
    out = j.timer("exit-timeout")
    (exc,) = responses(out)
    assert exc[0] == "exception" and exc[1]["type"] == "exec"
    assert "exit-timeout" in exc[1]["note"]


def test_exit_on_error_raises_at_once():
    j = job(size=2, exit_on_error=True)
    run_to_start(j)
    out = j.task_exited(1, 2 << 8)
    (exc,) = responses(out)
    assert exc[1]["severity"] == 0 and "exit-on-error" in exc[1]["note"] and "code 2" in exc[1]["note"]
    assert [a["signum"] for a in out if a.kind == "signal"] == [signal.SIGTERM]


def test_exit_on_error_names_the_signal_of_a_killed_task():
    j = job(size=2, exit_on_error=True)
    run_to_start(j)
    (exc,) = responses(j.task_exited(0, signal.SIGKILL))
    assert exc[1]["note"].endswith("was killed by SIGKILL")


def test_signal_before_expiration_and_moving_the_expiration():
    j = ExecJob(1, [0], ExecSettings(signal_before=(signal.SIGUSR1, 60.0)), expiration=200.0)
    timers = {a["name"]: a["delay"] for a in j.begin(now=100.0) if a.kind == "timer"}
    assert timers == {"expire": 100.0, "signal": 40.0}
    run_to_start(j)
    sent = j.timer("signal")
    assert sent[0]["signum"] == signal.SIGUSR1 and j.fatal is False
    moved = {a["name"]: a["delay"] for a in j.update_expiration(400.0, now=150.0)
             if a.kind == "timer"}
    assert moved == {"expire": 250.0, "signal": 190.0}
    cleared = j.update_expiration(0.0, now=150.0)
    assert {a["name"] for a in cleared if a.kind == "cancel_timer"} == {"expire", "signal"}


def test_launch_failure_is_a_fatal_exec_exception_naming_the_rank():
    j = job(size=2)
    j.launched_on(0)
    out = j.launch_failed(1, "cannot start the job shell: boom")
    exc = responses(out)[0]
    assert exc[0] == "exception" and exc[1]["note"] == "rank 11: cannot start the job shell: boom"
    end = j.shell_exited(0, signal.SIGKILL)
    assert "finalize" in kinds(end)
    assert "finish" not in [t for t, _d in responses(j.finalized())]


def test_shell_exception_once():
    j = job()
    run_to_start(j)
    first = j.exception(0, "exec", "task 0: start failed")
    assert responses(first)[0][1]["note"] == "task 0: start failed"
    assert j.exception(0, "exec", "again") == []
    assert responses(j.exception(3, "exec", "minor")) == [
        ("exception", {"severity": 3, "type": "exec", "note": "minor"})]


EVENTS = st.lists(st.tuples(st.sampled_from(["exit", "barrier", "kill", "timer", "task"]),
                            st.integers(0, 2), st.integers(0, 300)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_any_history_ends_with_one_final_release_and_finish_only_if_started(events):
    j = job(size=3, exit_timeout=1.0)
    out = []
    for r in range(3):
        out += j.launched_on(r)
    for kind, rank, value in events:
        if kind == "exit":
            out += j.shell_exited(rank, value)
        elif kind == "barrier":
            out += j.barrier(rank, ["init", "start"][value % 2], None, rank)
        elif kind == "kill":
            out += j.kill(signal.SIGTERM, after_exception=bool(value % 2))
        elif kind == "timer":
            out += j.timer(["kill", "expire", "exit-timeout"][value % 3])
        else:
            out += j.task_exited(rank, value)
    for r in range(3):
        out += j.shell_exited(r, 0)
    out += j.finalized()
    sent = responses(out)
    finals = [d for t, d in sent if t == "release" and d["final"]]
    assert len(finals) == 1 and sent[-1][0] == "release"
    finishes = [t for t, _d in sent if t == "finish"]
    assert len(finishes) == (1 if j.started else 0)
    assert sum(1 for t, d in sent if t == "exception" and d["severity"] == 0) <= 1
    assert kinds(out).count("finalize") == 1
    if j.started:
        assert sent.index(("start", {})) < [t for t, _d in sent].index("finish")
