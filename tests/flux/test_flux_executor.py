"""flux.job.executor without an instance: exit codes, the future's jobid and event callbacks.

The executor's threads against real instances are in
tests/integration/test_integration_executor.py.
"""
from __future__ import annotations

import concurrent.futures
import errno
import logging
import os
import signal
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.eventlog import EventLogEvent
from flux.job.event import JobException
from flux.job.executor import EVENTS, FluxExecutor, FluxExecutorFuture, _exit_code
from flux.job.JobID import JobID


def ev(name: str, ts: float = 1.0, **context: object) -> EventLogEvent:
    return EventLogEvent({"timestamp": ts, "name": name, "context": context})


# -- exit codes from wait statuses ------------------------------------------------------------

@given(st.integers(0, 255))
def test_exit_code_of_exited_status_is_the_exit_status(code: int) -> None:
    assert _exit_code(code << 8) == code


@given(st.integers(1, 126))
def test_exit_code_of_signaled_status_is_minus_signum(signum: int) -> None:
    assert _exit_code(signum) == -signum
    assert _exit_code(signum | 0x80) == -signum        # with the core dump flag


def test_exit_code_examples() -> None:
    assert _exit_code(0) == 0
    assert _exit_code(int(signal.SIGKILL)) == -9
    # a shell reporting a task killed by SIGKILL exits 128+9: that is an exit code
    assert _exit_code(137 << 8) == 137
    assert os.WIFEXITED(137 << 8)


def test_exit_code_rejects_stopped_status_and_non_integers() -> None:
    with pytest.raises(ValueError, match="neither"):
        _exit_code(0x137f)                                # WIFSTOPPED
    for bad in ("0", None, 1.5, True):
        with pytest.raises(TypeError):
            _exit_code(bad)                               # type: ignore[arg-type]


def test_events_are_flux_main_events() -> None:
    assert EVENTS == frozenset({"submit", "depend", "priority", "flux-restart", "urgency",
                                "alloc", "free", "start", "release", "finish", "clean",
                                "debug", "exception"})
    assert FluxExecutor.EVENTS is EVENTS and FluxExecutorFuture.EVENTS is EVENTS


# -- completion from job events ---------------------------------------------------------------

@pytest.mark.parametrize("status, result", [(0, 0), (3 << 8, 3), (int(signal.SIGTERM), -15)])
def test_finish_event_sets_the_result(status: int, result: int) -> None:
    fut = FluxExecutorFuture(None)
    fut._job_event(ev("start"))
    assert not fut.done()
    fut._job_event(ev("finish", status=status))
    assert fut.result(0) == result


def test_fatal_exception_sets_job_exception_and_later_finish_is_ignored() -> None:
    fut = FluxExecutorFuture(None)
    fut._job_event(ev("exception", type="oops", severity=1, note="minor"))
    assert not fut.done()
    fut._job_event(ev("exception", type="cancel", severity=0, note="bye"))
    exc = fut.exception(0)
    assert isinstance(exc, JobException)
    assert (exc.type, exc.severity, exc.note) == ("cancel", 0, "bye")
    fut._job_event(ev("finish", status=9))
    assert fut.exception(0) is exc


def test_events_after_completion_still_reach_callbacks() -> None:
    fut = FluxExecutorFuture(None)
    fut._job_event(ev("finish", status=0))
    seen: list[str] = []
    fut.add_event_callback("clean", lambda f, e: seen.append(e.name))
    fut._job_event(ev("clean"))
    assert seen == ["clean"] and fut.result(0) == 0


def test_finish_without_status_sets_eproto() -> None:
    fut = FluxExecutorFuture(None)
    fut._job_event(ev("finish"))
    exc = fut.exception(0)
    assert isinstance(exc, OSError) and exc.errno == errno.EPROTO


def test_events_outside_events_are_not_passed_on() -> None:
    fut = FluxExecutorFuture(None)
    fut._job_event(ev("validate"))                       # ours, not in Flux's list
    with pytest.raises(ValueError):
        fut._set_event(ev("validate"))
    with pytest.raises(ValueError, match="unknown job event 'validate'"):
        fut.add_event_callback("validate", lambda f, e: None)


# -- jobid ----------------------------------------------------------------------------------------

def test_jobid_times_out_until_set() -> None:
    fut = FluxExecutorFuture(None)
    with pytest.raises(concurrent.futures.TimeoutError):
        fut.jobid(timeout=0)
    fut._set_jobid(1234)
    assert fut.jobid() == 1234 and isinstance(fut.jobid(), JobID)
    with pytest.raises(concurrent.futures.InvalidStateError):
        fut._set_jobid(5)


def test_jobid_waiter_wakes_when_set_from_another_thread() -> None:
    fut = FluxExecutorFuture(None)
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(fut.jobid(timeout=30)))
    waiter.start()
    fut._set_jobid(77)
    waiter.join(30)
    assert got == [77]


def test_jobid_callbacks_in_order_once_and_immediate_when_known() -> None:
    fut = FluxExecutorFuture(None)
    calls: list[tuple[str, int]] = []
    fut.add_jobid_callback(lambda f: calls.append(("a", f.jobid())))
    assert fut.add_jobid_callback(lambda f: calls.append(("b", f.jobid()))) is fut
    assert calls == []
    fut._set_jobid(42)
    assert calls == [("a", 42), ("b", 42)]
    fut.add_jobid_callback(lambda f: calls.append(("c", f.jobid())))
    assert calls == [("a", 42), ("b", 42), ("c", 42)]


def test_callback_exceptions_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    fut = FluxExecutorFuture(None)
    calls: list[str] = []

    def bad(*_args: object) -> None:
        raise KeyError("boom")

    fut.add_jobid_callback(bad)
    fut.add_jobid_callback(lambda f: calls.append("jobid"))
    fut.add_event_callback("start", bad)
    fut.add_event_callback("start", lambda f, e: calls.append(e.name))
    with caplog.at_level(logging.ERROR, logger="flux.job.executor"):
        fut._set_jobid(1)
        fut._job_event(ev("start"))
    assert calls == ["jobid", "start"]
    assert sum("exception calling callback" in r.message for r in caplog.records) == 2


def test_failed_submission_makes_jobid_raise_runtime_error() -> None:
    fut = FluxExecutorFuture(None)
    fut.set_running_or_notify_cancel()
    fut.set_exception(OSError(errno.EINVAL, "bad jobspec"))
    with pytest.raises(RuntimeError, match="could not be submitted.*bad jobspec"):
        fut.jobid()
    with pytest.raises(OSError, match="bad jobspec"):
        fut.result()


def test_cancel_while_pending_wakes_jobid_waiters_with_cancelled_error() -> None:
    fut = FluxExecutorFuture(None)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            fut.jobid(timeout=30)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert fut.cancel() and fut.cancel()                 # again: still True
    waiter.join(30)
    assert [type(e) for e in errors] == [concurrent.futures.CancelledError]
    assert not fut.set_running_or_notify_cancel()


def test_cancel_fails_once_running() -> None:
    fut = FluxExecutorFuture(None)
    assert fut.set_running_or_notify_cancel()
    assert not fut.cancel() and not fut.cancelled()


def test_add_done_callback_returns_the_future() -> None:
    fut = FluxExecutorFuture(None)
    done: list[FluxExecutorFuture] = []
    assert fut.add_done_callback(done.append) is fut
    fut.set_result(0)
    assert done == [fut]


def test_waiting_in_the_owning_thread_raises_instead_of_deadlocking() -> None:
    fut = FluxExecutorFuture(threading.get_ident())
    for wait in (fut.result, fut.exception, fut.jobid):
        with pytest.raises(RuntimeError, match="callback in the executor thread"):
            wait()
    fut._set_jobid(3)
    fut.set_result(0)
    assert fut.jobid() == 3 and fut.result() == 0 and fut.exception() is None


# -- event callbacks --------------------------------------------------------------------------

def test_past_events_replayed_at_once_in_order_then_live_ones() -> None:
    fut = FluxExecutorFuture(None)
    first, second = ev("priority", 1.0, priority=1), ev("priority", 2.0, priority=2)
    fut._set_event(first)
    fut._set_event(second)
    seen: list[EventLogEvent] = []
    assert fut.add_event_callback("priority", lambda f, e: seen.append(e)) is fut
    assert seen == [first, second]
    third = ev("priority", 3.0, priority=3)
    fut._set_event(third)
    assert seen == [first, second, third]


def test_callbacks_of_one_event_run_in_the_order_added() -> None:
    fut = FluxExecutorFuture(None)
    order: list[int] = []
    for i in range(4):
        fut.add_event_callback("alloc", lambda f, e, i=i: order.append(i))
    fut._set_event(ev("alloc"))
    assert order == [0, 1, 2, 3]


def test_callback_added_from_a_callback_sees_the_event_once() -> None:
    fut = FluxExecutorFuture(None)
    seen: list[str] = []

    def outer(f: FluxExecutorFuture, e: EventLogEvent) -> None:
        seen.append("outer")
        f.add_event_callback("start", lambda f2, e2: seen.append("inner"))

    fut.add_event_callback("start", outer)
    fut._set_event(ev("start"))
    # inner is replayed the start that has happened, once
    assert seen == ["outer", "inner"]


def test_concurrent_events_and_callbacks_each_occurrence_once_in_order() -> None:
    fut = FluxExecutorFuture(None)
    n_events, n_callbacks = 300, 20
    seen: list[list[int]] = [[] for _ in range(n_callbacks)]
    go = threading.Barrier(2)

    def produce() -> None:
        go.wait()
        for i in range(n_events):
            fut._set_event(ev("urgency", float(i + 1), urgency=i))

    def add_callbacks() -> None:
        go.wait()
        for k in range(n_callbacks):
            fut.add_event_callback("urgency",
                                   lambda f, e, k=k: seen[k].append(e.context["urgency"]))

    threads = [threading.Thread(target=produce), threading.Thread(target=add_callbacks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for k in range(n_callbacks):
        assert seen[k] == list(range(n_events)), k


def test_event_callback_may_wait_for_the_result_completed_by_another_thread() -> None:
    # A callback replayed in the caller's thread waits for the result, which
    # the "executor" thread sets after delivering an event: that thread must
    # not block on the callback (no lock is held while callbacks run).
    fut = FluxExecutorFuture(None)
    fut._set_event(ev("start"))
    fut.add_event_callback("finish", lambda f, e: None)
    in_callback = threading.Event()
    results: list[int] = []

    def executor_thread() -> None:
        in_callback.wait(30)
        fut._job_event(ev("finish", status=0))

    thread = threading.Thread(target=executor_thread)
    thread.start()

    def waits_for_result(f: FluxExecutorFuture, e: EventLogEvent) -> None:
        in_callback.set()
        results.append(f.result(timeout=30))

    fut.add_event_callback("start", waits_for_result)
    thread.join(30)
    assert results == [0]


# -- executor arguments -------------------------------------------------------------------------

@pytest.mark.parametrize("threads, error", [(0, ValueError), (-1, ValueError),
                                            (True, TypeError), (1.5, TypeError)])
def test_executor_rejects_bad_thread_counts(threads: object, error: type) -> None:
    with pytest.raises(error):
        FluxExecutor(threads=threads)                    # type: ignore[arg-type]


def test_executor_connection_error_raises_and_leaves_no_thread(tmp_path) -> None:
    before = threading.active_count()
    with pytest.raises(OSError):
        FluxExecutor(threads=2, handle_args=(f"local://{tmp_path}/no-such-socket",))
    assert threading.active_count() == before
