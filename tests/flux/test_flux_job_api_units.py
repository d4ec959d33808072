"""flux.job client API: the parts that need no instance (folds, payloads, argument checks)."""
from __future__ import annotations

import errno
import os
import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
    FLUX_JOB_STATE_INACTIVE,
    FLUX_USERID_UNKNOWN,
)
from flux.job.info import JobInfo
from flux.job.JobID import JobID
from flux.job.Jobspec import JobspecV1
from flux.job.kill import kill_async, raise_async
from flux.job.kvs import job_kvs_key
from flux.job.list import JobList, _list_payload
from flux.job.stats import JobStats
from flux.job.submit import _jobspec_payload, submit_async
from flux.job.wait import ResultFold


def fold(events: list[tuple[str, float, dict]]) -> dict:
    rf = ResultFold(42)
    for name, ts, ctx in events:
        rf.add(name, ts, ctx)
    return rf.finish()


def test_result_completed_job() -> None:
    res = fold([("submit", 1.0, {}), ("alloc", 2.0, {}), ("start", 2.1, {}),
                ("finish", 5.0, {"status": 0}), ("clean", 6.0, {})])
    assert res == {"id": 42, "exception_occurred": False, "t_submit": 1.0, "t_run": 2.0,
                   "t_cleanup": 5.0, "waitstatus": 0, "result": FLUX_JOB_RESULT_COMPLETED}
    info = JobInfo({**res, "state": FLUX_JOB_STATE_INACTIVE})
    assert info.result == "COMPLETED" and info.returncode == 0 and info.runtime == 3.0


def test_result_nonzero_exit_is_failed_with_returncode() -> None:
    res = fold([("submit", 1.0, {}), ("alloc", 2.0, {}), ("finish", 3.0, {"status": 3 << 8})])
    assert res["result"] == FLUX_JOB_RESULT_FAILED
    assert JobInfo({**res, "state": FLUX_JOB_STATE_INACTIVE}).returncode == 3


def test_result_canceled_before_running_has_returncode_minus_128() -> None:
    res = fold([("submit", 1.0, {}),
                ("exception", 2.0, {"type": "cancel", "severity": 0, "note": "bye"}),
                ("clean", 2.5, {})])
    assert res["result"] == FLUX_JOB_RESULT_CANCELED
    assert "t_run" not in res and "waitstatus" not in res
    info = JobInfo({**res, "state": FLUX_JOB_STATE_INACTIVE})
    assert info.returncode == -128
    assert info.result == "CANCELED"
    assert (info.exception.type, info.exception.note) == ("cancel", "bye")


def test_result_timeout_and_signaled_returncode() -> None:
    res = fold([("submit", 1.0, {}), ("alloc", 2.0, {}),
                ("exception", 3.0, {"type": "timeout", "severity": 0, "note": "limit"}),
                ("finish", 3.5, {"status": signal.SIGKILL})])
    assert res["result"] == FLUX_JOB_RESULT_TIMEOUT
    assert JobInfo({**res, "state": FLUX_JOB_STATE_INACTIVE}).returncode == -signal.SIGKILL


def test_result_fatal_exception_after_zero_status_is_failed() -> None:
    res = fold([("submit", 1.0, {}), ("alloc", 2.0, {}), ("finish", 3.0, {"status": 0}),
                ("exception", 3.5, {"type": "epilog", "severity": 0, "note": ""})])
    assert res["result"] == FLUX_JOB_RESULT_FAILED


def test_result_keeps_most_severe_exception_first_of_equals() -> None:
    res = fold([("submit", 1.0, {}),
                ("exception", 2.0, {"type": "warn", "severity": 5, "note": "a"}),
                ("exception", 3.0, {"type": "cancel", "severity": 0, "note": "b"}),
                ("exception", 4.0, {"type": "other", "severity": 0, "note": "c"}),
                ("exception", 5.0, {"type": "late", "severity": 7, "note": "d"})])
    assert (res["exception_type"], res["exception_severity"], res["exception_note"]) == \
        ("cancel", 0, "b")
    assert res["result"] == FLUX_JOB_RESULT_CANCELED


def test_result_bad_events_name_the_problem() -> None:
    with pytest.raises(OSError, match="finish event has no status"):
        ResultFold(1).add("finish", 1.0, {})
    with pytest.raises(OSError, match="exception event has no 'severity' key"):
        ResultFold(1).add("exception", 1.0, {"type": "x"})


@given(st.lists(st.tuples(st.sampled_from(["cancel", "timeout", "x"]),
                          st.integers(0, 7)), max_size=6),
       st.one_of(st.none(), st.integers(0, 255)))
def test_result_rule_matches_first_fatal_exception(excs: list, status: int | None) -> None:
    events = [("submit", 1.0, {}), ("alloc", 2.0, {})]
    events += [("exception", 3.0 + i, {"type": t, "severity": s, "note": ""})
               for i, (t, s) in enumerate(excs)]
    if status is not None:
        events.append(("finish", 20.0, {"status": status}))
    res = fold(events)
    fatal = [t for t, s in excs if s == 0]
    if fatal:
        expect = {"cancel": FLUX_JOB_RESULT_CANCELED,
                  "timeout": FLUX_JOB_RESULT_TIMEOUT}.get(fatal[0], FLUX_JOB_RESULT_FAILED)
    else:
        expect = FLUX_JOB_RESULT_COMPLETED if status == 0 else FLUX_JOB_RESULT_FAILED
    assert res["result"] == expect
    if excs:
        assert res["exception_severity"] == min(s for _, s in excs)


def test_list_payload_puts_every_filter_in_one_and_constraint() -> None:
    # Flux's shape: every filter an "and" term (job-list hoists the plain ones)
    assert _list_payload(10, ["all"], 1000, 0, 0, 0.0, None, None, None) == \
        {"max_entries": 10, "attrs": ["all"], "since": 0.0,
         "constraint": {"and": [{"userid": [1000]}]}}
    assert _list_payload(0, [], FLUX_USERID_UNKNOWN, 14, 0, 5.5, "a", "q", None) == \
        {"max_entries": 0, "attrs": [], "since": 5.5,
         "constraint": {"and": [{"name": ["a"]}, {"queue": ["q"]}, {"states": [14]}]}}
    assert _list_payload(1, [], FLUX_USERID_UNKNOWN, 0, 2, 0.0, None, None,
                         None)["constraint"] == {"and": [{"results": [2]}]}
    both = _list_payload(1, [], FLUX_USERID_UNKNOWN, 14, 2, 0.0, None, ("a", "b"),
                         {"name": ["x"]})
    assert both["constraint"] == {"and": [{"queue": ["a", "b"]},
                                          {"or": [{"states": [14]}, {"results": [2]}]},
                                          {"name": ["x"]}]}
    with pytest.raises(TypeError, match="constraint must be a dict"):
        _list_payload(1, [], 0, 0, 0, 0.0, None, None, "userid:1")
    with pytest.raises(TypeError, match="queue names must be str"):
        _list_payload(1, [], 0, 0, 0, 0.0, None, [1], None)


def test_joblist_filters_and_users() -> None:
    jl = JobList(None, filters=["pending,failed", "RUN"], user="all")
    assert (jl.states, jl.results, jl.userid) == (14 | 16, 2, FLUX_USERID_UNKNOWN)
    assert JobList(None).userid == FLUX_USERID_UNKNOWN
    assert JobList(None, user=str(os.getuid())).userid == os.getuid()
    assert JobList(None, user="root").userid == 0
    assert JobList(None, user=1234).userid == 1234
    with pytest.raises(ValueError, match="Invalid filter specified: bogus"):
        JobList(None, filters=["bogus"])
    with pytest.raises(ValueError, match="Invalid user no-such-user-x specified"):
        JobList(None, user="no-such-user-x")
    assert JobList(None, ids=["ƒ2", 7]).ids == [JobID(1), JobID(7)]


def test_jobstats_update_computes_virtual_counts() -> None:
    resp = {"job_states": {"new": 1, "depend": 2, "priority": 3, "sched": 4, "run": 5,
                           "cleanup": 6, "inactive": 7, "total": 28},
            "successful": 3, "failed": 2, "canceled": 1, "timeout": 1, "inactive_purged": 9,
            "queues": [{"name": "batch", "job_states": {"run": 2, "inactive": 1, "total": 3},
                        "successful": 1, "failed": 0, "canceled": 0, "timeout": 0},
                       {"name": "debug", "job_states": {"sched": 1, "inactive": 1, "total": 2},
                        "successful": 0, "failed": 1, "canceled": 0, "timeout": 0}]}
    st_all = JobStats(None)
    assert st_all.active == st_all.pending == st_all.inactive_purged == -1
    st_all._apply(resp)
    assert (st_all.pending, st_all.running, st_all.active, st_all.inactive) == (9, 11, 21, 7)
    # "failed" counts every unsuccessful job, as Flux's JobStats does
    assert (st_all.successful, st_all.failed, st_all.canceled, st_all.timeout) == (3, 4, 1, 1)
    assert st_all.inactive_purged == 9 and st_all.total == 28
    st_q = JobStats(None, queue="batch")
    st_q._apply(resp)
    assert (st_q.run, st_q.running, st_q.inactive, st_q.successful) == (2, 2, 1, 1)
    both = JobStats(None, queue=["batch", "debug"])
    both._apply(resp)
    assert (both.total, both.pending, both.running, both.failed) == (5, 1, 2, 1)
    with pytest.raises(ValueError, match="no stats available for queue nope"):
        JobStats(None, queue="nope")._apply(resp)


def test_submit_checks_arguments_before_sending() -> None:
    spec = JobspecV1.from_command(["true"])
    assert _jobspec_payload(spec) is spec.jobspec
    assert _jobspec_payload('{"a":1}') == '{"a":1}'
    assert _jobspec_payload(b'{"a":1}') == '{"a":1}'
    with pytest.raises(OSError, match="invalid jobspec: None") as info:
        _jobspec_payload(None)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(TypeError, match="not int"):
        _jobspec_payload(5)
    with pytest.raises(OSError, match=r"urgency range is \[0:31\]"):
        submit_async(None, spec, urgency=32)
    with pytest.raises(OSError, match=r"urgency range is \[0:31\]"):
        submit_async(None, spec, urgency=True)


def test_kill_and_raise_check_arguments() -> None:
    with pytest.raises(OSError, match="invalid signal number 99"):
        kill_async(None, 1, 99)
    with pytest.raises(OSError, match="invalid exception type 'two words'"):
        raise_async(None, 1, "two words")
    with pytest.raises(OSError, match="invalid exception severity 8"):
        raise_async(None, 1, "cancel", 8)


def test_job_kvs_key() -> None:
    assert job_kvs_key(1) == "job.0000.0000.0000.0001"
    assert job_kvs_key("ƒ2", "guest") == "job.0000.0000.0000.0001.guest"


def test_functions_named_like_their_modules() -> None:
    import subprocess
    import sys

    code = ("import flux.job\n"
            "flux.job.cancel_async, flux.job.result, flux.job.submit_async\n"
            "import flux.job.wait\n"
            "for name in ('kill', 'wait', 'submit'):\n"
            "    assert callable(getattr(flux.job, name)), name\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_submodules_are_attributes_of_flux_job_after_import():
    import flux.job

    assert flux.job.output.job_output is flux.job.job_output
    assert flux.job.executor.FluxExecutor is flux.job.FluxExecutor
    with pytest.raises(AttributeError):
        flux.job.no_such_thing
