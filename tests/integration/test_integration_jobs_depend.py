"""Dependencies (RFC 26) and priority order, on a real instance."""
from __future__ import annotations

import errno
import time

import pytest

from helpers.jobs import jobspec, names, start_configured, submit, wait_event

CONFIG = """
[resource]
monitor-force-up = true
noverify = true
[[resource.config]]
hosts = "node[0-1]"
cores = "0-3"
"""


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


def cancel(h, jobid):
    h.rpc("job-manager.raise", {"id": jobid, "severity": 0, "type": "cancel"}).get()


def dep(scheme, value):
    return [{"scheme": scheme, "value": str(value)}]


def test_afterany_waits_for_the_antecedent_to_end(h):
    first = submit(h, jobspec(run_duration="60s"))
    wait_event(h, first, "start")
    second = submit(h, jobspec(deps=dep("afterany", first)))
    added = wait_event(h, second, "dependency-add")["context"]
    assert added == {"description": f"afterany={first}"}
    time.sleep(0.2)
    assert names(h, second) == ["submit", "validate", "dependency-add"]
    cancel(h, first)
    removed = wait_event(h, second, "dependency-remove")
    assert removed["context"] == added
    wait_event(h, second, "clean")
    assert names(h, second)[3:6] == ["dependency-remove", "depend", "priority"]


def test_after_is_satisfied_when_the_antecedent_starts(h):
    first = submit(h, jobspec(run_duration="60s"))
    second = submit(h, jobspec(deps=dep("after", first)))
    wait_event(h, second, "clean")
    assert "clean" not in names(h, first)
    cancel(h, first)


def test_afterok_on_a_failure_raises_a_dependency_exception(h):
    bad = submit(h, jobspec(test=False, command=["false"]))
    wait_event(h, bad, "clean")
    dependent = submit(h, jobspec(deps=dep("afterok", bad)))
    exc = wait_event(h, dependent, "exception")["context"]
    assert exc["type"] == "dependency" and exc["severity"] == 0
    assert "did not complete successfully" in exc["note"]
    wait_event(h, dependent, "clean")
    assert "alloc" not in names(h, dependent)


def test_afterok_waiting_then_failing_antecedent(h):
    first = submit(h, jobspec(run_duration="60s"))
    wait_event(h, first, "start")
    dependent = submit(h, jobspec(deps=dep("afterok", first)))
    wait_event(h, dependent, "dependency-add")
    cancel(h, first)
    exc = wait_event(h, dependent, "exception")["context"]
    assert exc["type"] == "dependency"


def test_afternotok(h):
    good = submit(h)
    wait_event(h, good, "clean")
    never = submit(h, jobspec(deps=dep("afternotok", good)))
    assert "completed successfully" in wait_event(h, never, "exception")["context"]["note"]
    bad = submit(h, jobspec(test=False, command=["false"]))
    wait_event(h, bad, "clean")
    runs = submit(h, jobspec(deps=dep("afternotok", bad)))
    wait_event(h, runs, "clean")
    assert "exception" not in names(h, runs)


def test_begin_time_holds_the_job_until_then(h):
    when = time.time() + 0.5
    jobid = submit(h, jobspec(deps=dep("begin-time", when)))
    added = wait_event(h, jobid, "dependency-add")["context"]["description"]
    assert added == f"begin-time={when:.6f}"
    removed = wait_event(h, jobid, "dependency-remove")
    assert removed["timestamp"] >= when
    wait_event(h, jobid, "clean")


def test_dependency_on_an_unknown_job_is_refused_at_submit(h):
    # flux-submit(1): "the submission will be rejected with an error that the
    # dependency job cannot be found"
    for scheme in ("after", "afterany", "afterok", "afternotok"):
        with pytest.raises(OSError) as exc:
            submit(h, jobspec(deps=dep(scheme, 12345)))
        assert exc.value.errno == errno.ENOENT
        assert exc.value.strerror == f"{scheme}: job 12345 not found"
    # the instance goes on: a job that depends on an existing one is accepted
    first = submit(h, jobspec())
    second = submit(h, jobspec(deps=dep("afterany", int(first))))
    wait_event(h, second, "clean")


def test_unknown_scheme_is_refused_at_submit(h):
    with pytest.raises(OSError) as exc:
        submit(h, jobspec(deps=dep("whenever", "now")))
    assert exc.value.errno == errno.EINVAL
    assert "scheme 'whenever' is not supported" in exc.value.strerror


def test_priority_order_hold_and_expedite(h):
    h.rpc("job-manager.queue-start", {"start": False}).get()
    try:
        order = [(16, "a"), (0, "held"), (20, "b"), (31, "x"), (20, "c"), (4, "d")]
        ids = {label: submit(h, jobspec(), urgency=u) for u, label in order}
        for jobid in ids.values():
            wait_event(h, jobid, "priority")
    finally:
        h.rpc("job-manager.queue-start", {"start": True}).get()
    for label, jobid in ids.items():
        if label != "held":
            wait_event(h, jobid, "alloc")
    allocs = sorted((wait_event(h, jobid, "alloc")["timestamp"], label)
                    for label, jobid in ids.items() if label != "held")
    assert [label for _, label in allocs] == ["x", "b", "c", "a", "d"]
    time.sleep(0.1)
    assert "alloc" not in names(h, ids["held"])
    cancel(h, ids["held"])


def test_stopped_queue_keeps_jobs_pending_and_idle_reports_them(h):
    h.rpc("job-manager.queue-start", {"start": False, "reason": "testing"}).get()
    try:
        status = h.rpc("job-manager.queue-status", {}).get()
        assert status == {"enable": True, "start": False, "stop_reason": "testing"}
        jobid = submit(h)
        wait_event(h, jobid, "priority")
        assert h.rpc("job-manager.idle", {}).get()["pending"] >= 1
        time.sleep(0.1)
        assert "alloc" not in names(h, jobid)
    finally:
        h.rpc("job-manager.queue-start", {"start": True}).get()
    wait_event(h, jobid, "clean")
    h.rpc("job-manager.drain", {}).get()


def test_disabled_queue_refuses_submissions_with_the_reason(h):
    h.rpc("job-manager.queue-enable", {"enable": False, "reason": "maintenance"}).get()
    try:
        with pytest.raises(OSError) as exc:
            submit(h)
        assert exc.value.errno == errno.EINVAL
        assert exc.value.strerror == "job submission is disabled: maintenance"
    finally:
        h.rpc("job-manager.queue-enable", {"enable": True}).get()
    submit(h)


def test_drain_waits_for_active_jobs(h):
    jobid = submit(h, jobspec(run_duration=0.3))
    t0 = time.monotonic()
    h.rpc("job-manager.drain", {}).get()
    assert time.monotonic() - t0 >= 0.1
    assert names(h, jobid)[-1] == "clean"
