"""flux.job.output against a real instance: reading a job's RFC 24 ``guest.output`` log.

These tests append the RFC 24 log of a test-mode job directly to
``job.<id>.guest.output`` in the KVS, as a job shell would, and read it
back through job-info, so every shape of log (bad entries, repeats,
redirects, logs) can be made.  Output written by real jobs, read while
they run, is in test_integration_python_real.py.
"""
from __future__ import annotations

import base64
import errno
import signal
from typing import Any

import pytest

import flux.job
import flux.kvs
from flux.job import JobException
from flux.job.JobID import JobID
from flux.job.output import (
    LOG_ERROR,
    JobOutput,
    OutputEvent,
    job_output,
    output_event_watch,
    output_watch,
    output_watch_async,
    output_watch_lines,
)
from helpers.jobs import jobspec, start_configured, submit

CONFIG = """
[resource]
monitor-force-up = true
noverify = true
[[resource.config]]
hosts = "node[0-1]"
cores = "0-3"
"""

HEADER = {"version": 1, "encoding": {"stdout": "UTF-8", "stderr": "UTF-8"},
          "count": {"stdout": 2, "stderr": 2}, "options": {}}


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_configured(tmp_path_factory, CONFIG)
    yield instance
    assert instance.stop() == 0


@pytest.fixture(scope="module")
def h(inst):
    handle = inst.handle()
    yield handle
    handle.close()


def write_output(h: Any, jobid: int, *events: tuple[str, dict[str, Any]]) -> None:
    """Append RFC 24 events to the job's guest.output, as a job shell would."""
    key = f"{JobID(jobid).kvs}.guest.output"
    for name, context in events:
        flux.kvs.eventlog_append(h, key, name, context)


def ended_job(h: Any) -> int:
    """A test-mode job that has run and is inactive."""
    jobid = submit(h, jobspec())
    flux.job.event_wait(h, jobid, "clean")
    return jobid


TWO_TASKS = (
    ("header", HEADER),
    ("data", {"stream": "stdout", "rank": "0", "data": "hello\nwor"}),
    ("data", {"stream": "stdout", "rank": "1",
              "data": base64.b64encode(b"one\n").decode(), "encoding": "base64"}),
    ("data", {"stream": "stdout", "rank": "0", "data": "ld\n", "eof": True}),
    ("log", {"level": 3, "message": "oops", "rank": 1, "component": "io"}),
    ("log", {"level": 6, "message": "detail", "rank": 0}),
    ("data", {"stream": "stderr", "rank": "0-1", "data": "err\n", "eof": True}),
    ("data", {"stream": "stdout", "rank": "1", "eof": True}),
)


@pytest.fixture(scope="module")
def two_task_job(h):
    jobid = ended_job(h)
    write_output(h, jobid, *TWO_TASKS)
    return jobid


# -- job_output ---------------------------------------------------------------------------------

def test_job_output_of_all_tasks(h, two_task_job):
    out = job_output(h, two_task_job)
    assert out == JobOutput("hello\nworone\nld\n",
                            "flux-shell[1]: ERROR: io: oops\nflux-shell[0]: DEBUG: detail\n"
                            "err\n", "")


def test_job_output_of_one_task_labelled_with_log_split(h, two_task_job):
    out = job_output(h, JobID(two_task_job).f58, tasks="1", labelio=True,
                     log_stderr_level=LOG_ERROR)
    assert out == JobOutput("1: one\n", "flux-shell[1]: ERROR: io: oops\n0-1: err\n",
                            "flux-shell[0]: DEBUG: detail\n")


def test_job_output_nowait_reads_the_log_as_it_is(h, two_task_job):
    assert job_output(h, two_task_job, nowait=True) == job_output(h, two_task_job)


def test_job_output_nowait_without_output_is_file_not_found(h):
    with pytest.raises(FileNotFoundError):
        job_output(h, ended_job(h), nowait=True)


def test_job_output_of_a_job_that_wrote_nothing_is_empty(h):
    assert job_output(h, ended_job(h)) == JobOutput("", "", "")


def test_job_output_of_an_unknown_job_is_file_not_found(h):
    for nowait in (False, True):
        with pytest.raises(FileNotFoundError):
            job_output(h, 123456789, nowait=nowait)


def test_job_output_of_a_job_canceled_before_start_raises_job_exception(h):
    jobid = submit(h, jobspec(), urgency=0)
    flux.job.cancel(h, jobid, "not wanted")
    with pytest.raises(JobException) as exc:
        job_output(h, jobid)
    assert exc.value.type == "cancel" and exc.value.note == "not wanted"


# -- watchers -----------------------------------------------------------------------------------

def test_output_watch_of_an_ended_job(h, two_task_job):
    assert list(output_watch(h, two_task_job)) == [
        ("stdout", "hello\nwor"), ("stdout", "one\n"), ("stdout", "ld\n"),
        ("stderr", "flux-shell[1]: ERROR: io: oops\n"), ("stderr", "flux-shell[0]: DEBUG: detail\n"),
        ("stderr", "err\n")]


def test_output_watch_lines_of_an_ended_job(h, two_task_job):
    assert list(output_watch_lines(h, two_task_job, labelio=True, nowait=True)) == [
        ("stdout", "0: hello"), ("stdout", "1: one"), ("stdout", "0: world"),
        ("stderr", "flux-shell[1]: ERROR: io: oops"), ("stderr", "flux-shell[0]: DEBUG: detail"),
        ("stderr", "0-1: err")]


def test_output_event_watch_of_an_ended_job(h, two_task_job):
    events = list(output_event_watch(h, two_task_job))
    assert [e.name for e in events] == [name for name, _ in TWO_TASKS]
    assert isinstance(events[2], OutputEvent) and events[2].data == "one\n"


def test_output_watch_of_a_job_canceled_before_start(h):
    jobid = submit(h, jobspec(), urgency=0)
    flux.job.cancel(h, jobid, "bye")
    gen = output_watch(h, jobid)
    assert next(gen) == ("stderr", "job.exception: type=cancel severity=0 bye\n")
    with pytest.raises(OSError) as exc:
        next(gen)
    assert exc.value.errno == errno.EIO and "never started" in str(exc.value)


def test_output_watch_of_an_unknown_job_is_file_not_found(h):
    with pytest.raises(FileNotFoundError):
        list(output_watch(h, 123456789))


def test_output_watch_waits_for_finish_and_reports_exceptions_before_it(h):
    """The output has ended but the job has not: exceptions until finish are still reported."""
    jobid = submit(h, jobspec(run_duration="300s"))
    flux.job.event_wait(h, jobid, "start")
    one_stream = {**HEADER, "count": {"stdout": 1, "stderr": 1}}
    write_output(h, jobid, ("header", one_stream),
                 ("data", {"stream": "stdout", "rank": "0", "data": "only\n", "eof": True}),
                 ("data", {"stream": "stderr", "rank": "0", "eof": True}))
    got: list[tuple[Any, Any]] = []

    def on_output(fut: Any) -> None:
        item = fut.get_output()
        got.append(item)
        if item == ("stdout", "only\n"):
            # the job is still running: what happens to it now is still reported
            flux.job.raise_exception(h, jobid, "test", 1, "just so")
            flux.job.kill(h, jobid, signal.SIGTERM)
        elif item == (None, None):
            safety.stop()

    # ends the test instead of hanging if the watch never ends
    safety = h.timer_watcher_create(30.0, lambda *args: h.reactor_stop())
    safety.start()
    output_watch_async(h, jobid).then(on_output)
    h.reactor_run()
    assert got == [("stdout", "only\n"), ("stderr", "job.exception: type=test severity=1 just so\n"),
                   (None, None)]
