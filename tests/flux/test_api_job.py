"""flux.job as a user script calls it, the parts that need no instance: names, argument
errors (type, errno, text), JobID, JobInfo, JobStats, journal events, watcher status,
flux.subprocess commands, and job-list's filter hoisting (python-api.md)."""
from __future__ import annotations

import errno
import os

import pytest

import flux.job
import flux.subprocess
from flux.constants import FLUX_USERID_UNKNOWN
from flux.job import JobID, JobInfo
from flux.job.info import job_fields_to_attrs
from flux.job.journal import SENTINEL_EVENT, JournalConsumer, JournalEvent
from flux.job.stats import JobStats
from flux.job.watcher import JobStatus, JobWatcher
from jobmgr.joblist.query import hoist_filters

EINVAL_TEXT = os.strerror(errno.EINVAL)


def test_flux_job_names_from_python_api():
    for name in ("submit_get_id", "wait_get_status", "result", "result_async", "job_raise",
                 "job_raise_async", "MAIN_EVENTS", "job_fields_to_attrs", "timeleft",
                 "BatchConfig", "decode_signal", "JournalConsumer", "JournalEvent", "JobWatcher",
                 "JobStatus", "job_kvs_lookup", "job_info_lookup", "JobKVSLookup", "JobStats",
                 "get_job", "job_list", "job_list_inactive", "job_list_id", "JobList"):
        assert callable(getattr(flux.job, name)) or name == "MAIN_EVENTS", name
    # submodules are attributes, and the function timeleft is not shadowed by its module
    assert flux.job.journal.JournalConsumer is JournalConsumer
    assert flux.job.watcher.JobWatcher is JobWatcher
    import importlib

    importlib.import_module("flux.job.timeleft")
    assert callable(flux.job.timeleft) and flux.job.timeleft.__name__ == "timeleft"


def test_star_import_gives_every_listed_name():
    scope: dict[str, object] = {}
    exec("from flux.job import *", scope)
    for name in ("submit_get_id", "MAIN_EVENTS", "JobWatcher", "JournalConsumer", "timeleft"):
        assert name in scope


def test_main_events_is_flux_frozenset():
    assert flux.job.MAIN_EVENTS == frozenset(
        "submit depend priority flux-restart urgency alloc free start release finish clean "
        "debug exception".split())
    assert isinstance(flux.job.MAIN_EVENTS, frozenset)
    assert flux.job.FluxExecutor.EVENTS == flux.job.MAIN_EVENTS


@pytest.mark.parametrize("call", [
    lambda: flux.job.submit(None, flux.job.JobspecV1.from_command(["true"])),
    lambda: flux.job.submit_async(None, flux.job.JobspecV1.from_command(["true"])),
    lambda: flux.job.submit_get_id(None),
    lambda: flux.job.wait_get_status(None),
    lambda: flux.job.wait_async(None),
    lambda: flux.job.result_async(None, 1),
    lambda: flux.job.event_wait(None, 1, "start"),
    lambda: flux.job.event_watch_async(None, 1),
    lambda: flux.job.kill(None, 1),
    lambda: flux.job.cancel(None, 1),
    lambda: flux.job.job_raise(None, 1, "test"),
    lambda: flux.job.job_list(None),
    lambda: flux.job.job_list_id(None, 1),
    lambda: flux.job.job_info_lookup(None, 1),
], ids=["submit", "submit_async", "submit_get_id", "wait_get_status", "wait_async",
        "result_async", "event_wait", "event_watch_async", "kill", "cancel", "job_raise",
        "job_list", "job_list_id", "job_info_lookup"])
def test_none_handle_or_future_is_einval(call):
    with pytest.raises(OSError) as info:
        call()
    assert not isinstance(info.value, AttributeError)
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == EINVAL_TEXT


def test_jobid_copy_keeps_orig():
    assert JobID(JobID(1234)).orig == "1234"
    assert JobID(JobID("ƒuzzybunny")).orig == "ƒuzzybunny"
    assert JobID(JobID("0x10")) == 16


def test_job_raise_argument_errors():
    with pytest.raises(OSError) as info:
        flux.job.job_raise_async(None, 1, "bad type", 0)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError, match="severity 8"):
        flux.job.job_raise_async(None, 1, "test", 8)
    with pytest.raises(TypeError, match="once"):
        flux.job.job_raise_async(None, 1, "a", exc_type="b")


# -- JobInfo -------------------------------------------------------------------------------

def job(**kw):
    return JobInfo({"id": 1234, "userid": os.getuid(), "t_submit": 10.0, **kw})


@pytest.mark.parametrize("state,result,status,abbrev", [
    (2, "", "PENDING", "P"), (4, "", "PENDING", "P"), (8, "", "PENDING", "P"),
    (16, "", "RUNNING", "R"), (32, "", "RUNNING", "R"),
    (64, 1, "COMPLETED", "CD"), (64, 2, "FAILED", "F"), (64, 4, "CANCELED", "CA"),
    (64, 8, "TIMEOUT", "TO"),
])
def test_status_and_status_abbrev_as_flux_jobs_man_page(state, result, status, abbrev):
    info = job(state=state, result=result)
    assert (info.status, info.status_abbrev) == (status, abbrev)


@pytest.mark.parametrize("kw,code", [
    ({"state": 64, "result": 1, "waitstatus": 0}, 0),
    ({"state": 64, "result": 2, "waitstatus": 3 << 8}, 3),
    ({"state": 64, "result": 2, "waitstatus": 9}, -9),
    # a wait status counts whatever the state (Flux's rule)
    ({"state": 32, "waitstatus": 5 << 8}, 5),
    ({"state": 64, "result": 4}, -128),
    ({"state": 64, "result": 2}, 1),
    ({"state": 64, "result": 8}, ""),
    ({"state": 16}, ""),
])
def test_returncode_rules(kw, code):
    assert job(**kw).returncode == code


def test_to_dict_filtered_and_unfiltered():
    info = job(state=64, result=1, waitstatus=0, t_run=11.0, t_cleanup=12.5, name="x",
               annotations={"user": {"a": 1}})
    full = info.to_dict(filtered=False)
    assert full["id"] == 1234 and full["jobid"] == JobID(1234).f58
    assert full["state"] == "INACTIVE" and full["result"] == "COMPLETED"
    assert full["status"] == "COMPLETED" and full["returncode"] == 0
    assert full["runtime"] == 1.5 and full["username"]
    assert full["t_depend"] == 0.0 and full["nodelist"] == ""
    assert full["exception"] == {"occurred": "", "severity": "", "type": "", "note": ""}
    assert full["annotations"] == {"user": {"a": 1}} and full["dependencies"] == []
    short = info.to_dict()
    assert "t_depend" not in short and "nodelist" not in short and "expiration" not in short
    assert short["t_run"] == 11.0 and short["name"] == "x"
    assert short["exception"] == {"occurred": False}
    failed = job(state=64, result=2, exception_occurred=True, exception_type="exec",
                 exception_severity=0, exception_note="boom").to_dict()
    assert failed["exception"] == {"occurred": True, "severity": 0, "type": "exec",
                                   "note": "boom"}
    assert failed["returncode"] == 1


def test_job_fields_to_attrs():
    assert job_fields_to_attrs(["id.f58", "status_abbrev", "runtime"]) == \
        {"state", "result", "t_run", "t_cleanup"}
    assert job_fields_to_attrs(["sched.reason_pending", "annotations.user.x"]) == \
        {"annotations"}
    assert job_fields_to_attrs(["returncode"]) == {"waitstatus", "result"}
    with pytest.raises(KeyError, match="nosuchfield"):
        job_fields_to_attrs(["nosuchfield"])


def test_jobstats_attributes_are_minus_one_until_updated():
    stats = JobStats(None, queue=["a", "b"])
    for name in ("depend priority sched run cleanup inactive total successful failed timeout "
                 "canceled inactive_purged pending running active").split():
        assert getattr(stats, name) == -1, name
    assert stats.queues == ["a", "b"] and JobStats(None, queue="a").queues == ["a"]


# -- journal events, watcher status, subprocess commands ----------------------------------

def test_journal_event_and_sentinel():
    event = JournalEvent(1234, {"timestamp": 1.5, "name": "submit", "context": {"urgency": 16}},
                         jobspec={"version": 1})
    assert event.jobid == 1234 and isinstance(event.jobid, JobID)
    assert (event.name, event.timestamp, event.jobspec, event.R) == \
        ("submit", 1.5, {"version": 1}, None)
    assert str(event) == f"{JobID(1234).f58}: 1.50000 submit " + \
        '{"urgency":16} jobspec={"version":1}'
    alloc = JournalEvent(1234, {"timestamp": 2.0, "name": "alloc"}, R={"version": 1})
    assert str(alloc) == f"{JobID(1234).f58}: 2.00000 alloc " + 'R={"version":1}'
    assert not event.is_empty() and event != SENTINEL_EVENT
    assert SENTINEL_EVENT.is_empty() and SENTINEL_EVENT == JournalConsumer.SENTINEL_EVENT
    assert str(SENTINEL_EVENT) == "-1: End of historical data stream"


def test_journal_consumer_poll_before_start_is_runtime_error():
    consumer = JournalConsumer(object())
    with pytest.raises(RuntimeError, match=r"poll\(\) called before start\(\)"):
        consumer.poll()
    with pytest.raises(OSError) as info:
        JournalConsumer(None)
    assert info.value.errno == errno.EINVAL


def test_job_status_from_jobinfo():
    status = JobStatus(job(state=8))
    assert (status.status, status.exitcode, status.active) == ("pending", 0, True)
    assert JobStatus(job(state=16)).status == "running"
    assert JobStatus(job(state=64, result=1, waitstatus=0)).status == "complete"
    failed = JobStatus(job(state=64, result=2, waitstatus=2 << 8))
    assert (failed.status, failed.exitcode, failed.active) == ("failed", 2, False)
    status.add_event("alloc")
    status.add_event("alloc")
    assert status.has_event("alloc") and status.event_count("alloc") == 2
    assert not status.has_event("start") and status.event_count("start") == 0
    with pytest.raises(ValueError, match="requires an object of type JobInfo"):
        JobStatus({"id": 1})


def test_subprocess_command_create():
    cmd = flux.subprocess.command_create(["echo", "hi"], label="x", cwd="/tmp",
                                         env={"A": "1"}, opts={"o": "v"})
    assert cmd == {"cmdline": ["echo", "hi"], "label": "x", "cwd": "/tmp", "env": {"A": "1"},
                   "opts": {"o": "v"}, "channels": []}
    default = flux.subprocess.command_create(["true"])
    assert default["cwd"] == os.getcwd() and default["env"] == dict(os.environ)
    assert "label" not in default
    with pytest.raises(TypeError):
        flux.subprocess.command_create("echo hi")


@pytest.mark.parametrize("fn", [flux.subprocess.kill, flux.subprocess.wait])
def test_subprocess_pid_or_label(fn):
    with pytest.raises(ValueError, match="at least one of pid or label"):
        fn(object())
    with pytest.raises(ValueError, match="only one of pid or label"):
        fn(object(), pid=1, label="x")


# -- job-list: Flux's one-constraint requests are answered from the indexes -----------------

def test_hoist_filters_takes_plain_terms_out():
    fields, rest = hoist_filters({"and": [{"userid": [5]}, {"name": ["n"]}, {"queue": ["q"]},
                                          {"states": [8]}]})
    assert fields == {"userid": 5, "name": "n", "queue": "q", "states": 8} and rest is None
    # states OR results without INACTIVE: the fields' own either-or rule
    fields, rest = hoist_filters({"and": [{"or": [{"states": [14]}, {"results": [2]}]}]})
    assert fields == {"states": 14, "results": 2} and rest is None
    # with INACTIVE in the states, the states test alone decides
    fields, rest = hoist_filters({"and": [{"or": [{"states": [64]}, {"results": [2]}]}]})
    assert fields == {"states": 64} and rest is None


def test_hoist_filters_leaves_what_it_cannot_index():
    # two queues, a states AND results pair, an unknown operator
    cons = {"and": [{"queue": ["a", "b"]}, {"states": [8]}, {"results": [2]},
                    {"hostlist": ["x"]}, {"userid": [FLUX_USERID_UNKNOWN]}]}
    fields, rest = hoist_filters(cons)
    assert fields == {"states": 8, "userid": FLUX_USERID_UNKNOWN}
    assert rest == {"and": [{"queue": ["a", "b"]}, {"results": [2]}, {"hostlist": ["x"]}]}
    assert hoist_filters({"or": [{"userid": [1]}]}) == ({}, {"or": [{"userid": [1]}]})
    assert hoist_filters({"and": [{"states": ["bogus"]}]}) == \
        ({}, {"and": [{"states": ["bogus"]}]})


def test_progress_bar_line_format():
    import io
    import re
    import time

    from flux.job.watcher import JobProgressBar

    bar = JobProgressBar(object(), starttime=time.time(), jps=True, stream=io.StringIO())
    bar.add_jobs(job(state=8), JobInfo({"id": 99, "state": 16, "t_submit": time.time()}))
    assert bar.starttime == 10.0          # the earliest submission
    bar.starttime = time.time()
    assert re.fullmatch(r"PD:1 R:1 CD:0 F:0 \| {30}\|   0\.0% 0:00:00 +0\.0 job/s", bar.line())
    bar.process_event(99, JournalEvent(99, {"timestamp": 1.0, "name": "finish",
                                            "context": {"status": 0}}))
    bar.process_event(99, None)
    assert bar.line().startswith("PD:1 R:0 CD:1 F:0 |" + "#" * 15 + " " * 15 + "|  50.0% ")
    bar.start()
    bar.stop()            # not a terminal: only the final line is written
    assert bar.stream.getvalue().startswith("PD:1 R:0 CD:1 F:0 |") and \
        bar.stream.getvalue().count("\n") == 1


def test_progress_bar_keeps_output_above_it_on_a_terminal():
    import io

    from flux.job.watcher import JobProgressBar

    class Tty(io.StringIO):
        encoding = "utf-8"

        def isatty(self):
            return True

    class Handle:
        def timer_watcher_create(self, *_a, **_k):
            return type("T", (), {"start": lambda s: None, "stop": lambda s: None})()

        def reactor_decref(self):
            pass

        def reactor_incref(self):
            pass

    stream = Tty()
    bar = JobProgressBar(Handle(), stream=stream)
    # no job yet: an empty bar at 0%, not a full one at 100%
    assert "|" + " " * 30 + "|   0.0%" in bar.line()
    bar.start()
    drawn = stream.getvalue()
    bar.above(lambda: stream.write("job1-line1\n"))
    after = stream.getvalue()[len(drawn):]
    # the bar's line is cleared, the output written, the bar drawn again below it
    assert after.startswith("\r\033[Kjob1-line1\n\r" + bar.line()[:20])
    bar.stop()
