"""flux.job.FluxExecutor against a real instance, with test-mode jobs.

Test-mode jobs run no process: they finish with status 0, or with the
signal's wait status when killed.  Real tasks (nonzero exit codes, tasks
killed by a signal inside the shell) are in test_integration_python_real.py.
Waits are on events (threading.Event, future timeouts), never on sleeps.
"""
from __future__ import annotations

import concurrent.futures
import errno
import gc
import json
import signal
import threading
from typing import Any

import pytest

import flux
import flux.job
from flux.eventlog import EventLogEvent
from flux.job import FluxExecutor, FluxExecutorFuture, JobException
from flux.job.executor import EVENTS
from flux.job.JobID import JobID
from helpers.jobs import eventlog, jobspec, start_configured

CONFIG = """
[resource]
monitor-force-up = true
noverify = true
[[resource.config]]
hosts = "node[0-1]"
cores = "0-3"
"""

T = 30.0   # generous timeout for every wait: a hang fails instead of blocking the suite


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


@pytest.fixture
def ex(inst):
    executor = FluxExecutor(handle_args=(inst.uri,))
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


def release(h: Any, jobid: int) -> None:
    """Let a held job (urgency 0) be scheduled."""
    h.rpc("job-manager.urgency", {"id": int(jobid), "urgency": 16}).get()


def on_event(fut: FluxExecutorFuture, name: str) -> threading.Event:
    """A threading.Event set when job event NAME reaches FUT's callbacks."""
    seen = threading.Event()
    fut.add_event_callback(name, lambda f, e: seen.set())
    return seen


class Gate:
    """Blocks an executor thread inside a jobid callback until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, fut: FluxExecutorFuture) -> None:
        self.entered.set()
        self.opened.wait(T)


# -- results -----------------------------------------------------------------------------------

def test_submitted_job_result_is_zero_and_jobid_is_its_id(h, ex):
    fut = ex.submit(json.dumps(jobspec()))        # a jobspec's JSON text
    assert fut.result(timeout=T) == 0
    jobid = fut.jobid()
    assert isinstance(jobid, JobID)
    assert flux.job.event_wait(h, jobid, "finish").context["status"] == 0


def test_submit_takes_a_jobspec_snapshot_and_submit_keywords(h, ex):
    gate = Gate()
    first = ex.submit(jobspec()).add_jobid_callback(gate)
    assert gate.entered.wait(T)
    spec = flux.job.JobspecV1.from_command(["true"])
    spec.setattr("system.exec.test", {})
    fut = ex.submit(spec, urgency=20, debug=True)
    # the thread is held: the job is submitted after this change, which must not reach it
    spec.setattr("system.exec.test", "not an object")
    gate.opened.set()
    assert fut.result(timeout=T) == 0 and first.result(timeout=T) == 0
    log = eventlog(h, fut.jobid())
    assert log[0]["context"]["urgency"] == 20
    # a debug-flagged job gets the job manager's debug events
    assert any(e["name"].startswith("debug") for e in log)


def test_killed_job_result_is_minus_signum(h, ex):
    # test mode finishes a killed job with the signal as its wait status (a
    # real job shell reports a task killed by signal N as exit status 128+N)
    fut = ex.submit(jobspec(run_duration="300s"))
    assert on_event(fut, "start").wait(T)
    flux.job.kill(h, fut.jobid(), signal.SIGUSR1)
    assert fut.result(timeout=T) == -signal.SIGUSR1


def test_canceled_job_sets_job_exception_and_events_continue(h, ex):
    fut = ex.submit(jobspec(), urgency=0)
    clean = on_event(fut, "clean")
    flux.job.cancel(h, fut.jobid(timeout=T), "no longer needed")
    exc = fut.exception(timeout=T)
    assert isinstance(exc, JobException)
    assert (exc.type, exc.severity, exc.note) == ("cancel", 0, "no longer needed")
    with pytest.raises(JobException):
        fut.result()
    # futures receive events after they complete
    assert clean.wait(T)


@pytest.mark.parametrize("spec", ["not json", {"version": 1}])
def test_invalid_jobspec_sets_oserror(ex, spec):
    done: list[FluxExecutorFuture] = []
    fut = ex.submit(spec).add_done_callback(done.append)
    exc = fut.exception(timeout=T)
    assert isinstance(exc, OSError) and exc.errno == errno.EINVAL
    assert done == [fut]
    with pytest.raises(RuntimeError, match="could not be submitted"):
        fut.jobid(timeout=T)


def test_out_of_range_urgency_sets_oserror(ex):
    exc = ex.submit(jobspec(), urgency=99).exception(timeout=T)
    assert isinstance(exc, OSError) and exc.errno == errno.EINVAL


def test_unknown_submit_keyword_raises_type_error_at_once(ex):
    with pytest.raises(TypeError):
        ex.submit(jobspec(), priority=3)


def test_as_completed_over_many_jobs(ex):
    futs = [ex.submit(jobspec()) for _ in range(8)]
    results = [f.result() for f in concurrent.futures.as_completed(futs, timeout=T)]
    assert results == [0] * 8
    assert len({f.jobid() for f in futs}) == 8


def test_map_is_not_supported(ex):
    with pytest.raises(NotImplementedError):
        ex.map(len, [jobspec()])


# -- attach ------------------------------------------------------------------------------------

def test_attach_follows_a_job_submitted_elsewhere(h, ex):
    jobid = flux.job.submit(h, jobspec(), urgency=0)
    fut = ex.attach(jobid)
    assert fut.jobid(timeout=0) == jobid          # known at once
    start = on_event(fut, "start")
    assert not fut.done()
    release(h, jobid)
    assert fut.result(timeout=T) == 0 and start.is_set()


def test_attach_to_an_ended_job_replays_its_events(h, ex):
    jobid = flux.job.submit(h, jobspec())
    flux.job.event_wait(h, jobid, "clean")
    fut = ex.attach(JobID(jobid).f58)
    assert fut.result(timeout=T) == 0
    assert on_event(fut, "clean").wait(T)
    submits: list[str] = []
    fut.add_event_callback("submit", lambda f, e: submits.append(e.name))
    assert submits == ["submit"]


def test_attach_to_an_unknown_job_sets_value_error(ex):
    exc = ex.attach(123456789).exception(timeout=T)
    assert isinstance(exc, ValueError) and "does not match any job" in str(exc)


# -- callbacks ---------------------------------------------------------------------------------

def test_event_callbacks_see_each_event_once_in_eventlog_order(h, ex):
    fut = ex.submit(jobspec(), urgency=0)
    seen: list[EventLogEvent] = []
    lock = threading.Lock()

    def record(f: FluxExecutorFuture, e: EventLogEvent) -> None:
        with lock:
            seen.append(e)

    for name in sorted(EVENTS):
        fut.add_event_callback(name, record)
    clean = on_event(fut, "clean")
    release(h, fut.jobid(timeout=T))
    assert fut.result(timeout=T) == 0 and clean.wait(T)
    expected = [(e["name"], e["timestamp"]) for e in eventlog(h, fut.jobid())
                if e["name"] in EVENTS]
    assert [(e.name, e.timestamp) for e in seen] == expected
    assert [n for n, _ in expected][:1] == ["submit"] and expected[-1][0] == "clean"
    # a callback added now is called at once, in this thread, for the past occurrence
    where: list[str] = []
    fut.add_event_callback("start", lambda f, e: where.append(threading.current_thread().name))
    assert where == [threading.current_thread().name]


def test_jobid_callback_runs_once_in_the_executor_thread(inst):
    with FluxExecutor(thread_name_prefix="jobid-test", handle_args=(inst.uri,)) as ex:
        gate = Gate()
        calls: list[tuple[str, int]] = []
        blocked = ex.submit(jobspec()).add_jobid_callback(gate)
        assert gate.entered.wait(T)
        # the thread is held in the callback: this job is not submitted yet
        fut = ex.submit(jobspec())
        fut.add_jobid_callback(lambda f: calls.append((threading.current_thread().name,
                                                       f.jobid())))
        assert calls == []
        gate.opened.set()
        assert fut.result(timeout=T) == 0 and blocked.result(timeout=T) == 0
        assert calls == [("jobid-test-0", fut.jobid())]
        fut.add_jobid_callback(lambda f: calls.append((threading.current_thread().name,
                                                       f.jobid())))
        assert calls[1] == (threading.current_thread().name, fut.jobid())


def test_waiting_for_the_result_inside_a_callback_raises(ex):
    errors: list[BaseException] = []

    def wait_result(f: FluxExecutorFuture) -> None:
        try:
            f.result()
        except RuntimeError as exc:
            errors.append(exc)

    fut = ex.submit(jobspec()).add_jobid_callback(wait_result)
    assert fut.result(timeout=T) == 0
    assert len(errors) == 1 and "callback in the executor thread" in str(errors[0])


# -- cancel and shutdown -----------------------------------------------------------------------

def test_cancel_only_before_the_executor_starts_the_future(inst):
    with FluxExecutor(handle_args=(inst.uri,)) as ex:
        gate = Gate()
        first = ex.submit(jobspec()).add_jobid_callback(gate)
        assert gate.entered.wait(T)
        queued = ex.submit(jobspec())
        assert queued.cancel() and queued.cancelled()
        with pytest.raises(concurrent.futures.CancelledError):
            queued.jobid(timeout=T)
        gate.opened.set()
        assert not first.cancel()                 # running: too late
        assert first.result(timeout=T) == 0
        done, _ = concurrent.futures.wait([queued, first], timeout=T)
        assert done == {queued, first}


def test_shutdown_cancel_futures_cancels_only_unstarted_ones(inst):
    ex = FluxExecutor(handle_args=(inst.uri,))
    gate = Gate()
    started = ex.submit(jobspec()).add_jobid_callback(gate)
    assert gate.entered.wait(T)
    queued = [ex.submit(jobspec()) for _ in range(3)]
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    done, _ = concurrent.futures.wait(queued, timeout=T)   # the cancellation was announced
    assert done == set(queued)
    gate.opened.set()
    ex.shutdown(wait=True)
    assert started.result(timeout=0) == 0
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(jobspec())
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.attach(started.jobid())
    ex.shutdown()                                  # safe again
    assert not ex._workers[0].is_alive()


def test_shutdown_without_wait_returns_while_jobs_run(h, inst):
    ex = FluxExecutor(handle_args=(inst.uri,))
    fut = ex.submit(jobspec(), urgency=0)          # held: cannot end before we release it
    jobid = fut.jobid(timeout=T)
    ex.shutdown(wait=False)
    assert not fut.done() and ex._workers[0].is_alive()
    release(h, jobid)
    assert fut.result(timeout=T) == 0
    ex.shutdown(wait=True)
    assert not ex._workers[0].is_alive()


def test_shutdown_with_wait_returns_after_jobs_end(inst):
    with FluxExecutor(handle_args=(inst.uri,)) as ex:
        futs = [ex.submit(jobspec(run_duration="0.2s")) for _ in range(3)]
    assert all(f.done() for f in futs)
    assert [f.result() for f in futs] == [0, 0, 0]


def test_two_threads_share_the_jobs(inst):
    names: list[str] = []
    lock = threading.Lock()

    def where(f: FluxExecutorFuture) -> None:
        with lock:
            names.append(threading.current_thread().name)

    with FluxExecutor(threads=2, thread_name_prefix="pair", handle_args=(inst.uri,)) as ex:
        futs = [ex.submit(jobspec()).add_jobid_callback(where) for _ in range(6)]
        assert [f.result(timeout=T) for f in futs] == [0] * 6
    assert sorted(names) == ["pair-0"] * 3 + ["pair-1"] * 3


def test_lost_connection_fails_jobs_and_refuses_new_ones(tmp_path_factory):
    own = start_configured(tmp_path_factory, CONFIG)
    try:
        ex = FluxExecutor(handle_args=(own.uri,))
        fut = ex.submit(jobspec(), urgency=0)      # held: still followed when the broker goes
        fut.jobid(timeout=T)
        assert own.stop() == 0
        # the watch ends with an error (the broker unloads job-info, then goes away)
        assert isinstance(fut.exception(timeout=T), OSError)
        # the thread notices the closed connection when it next reads or writes;
        # a submission that finds it so fails, and from then on none is accepted
        try:
            probe = ex.submit(jobspec())
        except RuntimeError:
            pass
        else:
            exc = probe.exception(timeout=T)
            assert isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.ENOTCONN)
        with pytest.raises(RuntimeError, match="lost its Flux connection"):
            ex.submit(jobspec())
        ex.shutdown(wait=True)
    finally:
        own.kill()


def test_an_executor_dropped_without_shutdown_lets_its_threads_exit(inst):
    ex = FluxExecutor(handle_args=(inst.uri,))
    fut = ex.submit(jobspec())
    worker = ex._workers[0]
    del ex
    gc.collect()
    # the finalizer closed the thread: it finishes the job it had, then exits
    worker.join(T)
    assert not worker.is_alive()
    assert fut.result(timeout=0) == 0
