"""flux.Flux and helpers as scripts written for Flux's bindings call them, on a
real instance: behaviours found wrong by a sweep of the API against
flux-core's documented and tested behaviour (python-api.md)."""
from __future__ import annotations

import concurrent.futures
import errno
import io
import syslog
import threading

import pytest

import flux
from broker.testing import TestInstance
from flux.job.executor import FluxExecutorFuture
from flux.job.watcher import JobWatcher


@pytest.fixture(scope="module")
def inst():
    instance = TestInstance().start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def h(inst):
    handle = flux.Flux(inst.uri)
    yield handle
    handle.close()


def _dmesg(inst: TestInstance) -> str:
    r = inst.flux("dmesg")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_log_of_bytes_logs_the_text(inst, h):
    # flux-core t0001-handle: h.log(LOG_INFO, b"world") logs "world"
    h.log(syslog.LOG_INFO, b"sweep bytes message \xc6\x92")
    h.log(syslog.LOG_INFO, "sweep str message")
    # a synchronous request after the (no-response) appends: they are in the ring
    h.rpc("broker.ping", {}).get()
    text = _dmesg(inst)
    assert "sweep bytes message ƒ" in text and "b'sweep" not in text
    assert "sweep str message" in text


# -- FluxExecutorFuture (flux-core t0023-executor's unit facts) -----------------------------

@pytest.mark.parametrize("jobid", [21, 594240, None, -1, "foobar"])
def test_executor_future_set_jobid_keeps_the_value_given(jobid):
    fut = FluxExecutorFuture(threading.get_ident())
    # timeout=0 only polls, even in the thread that completes the future
    with pytest.raises(concurrent.futures.TimeoutError):
        fut.jobid(timeout=0)
    fut._set_jobid(jobid)
    got = fut.jobid(timeout=0)
    assert got == jobid
    with pytest.raises(RuntimeError):
        fut._set_jobid(jobid)


def test_executor_future_zero_timeout_polls_in_the_owner_thread():
    fut = FluxExecutorFuture(threading.get_ident())
    with pytest.raises(concurrent.futures.TimeoutError):
        fut.result(timeout=0)
    with pytest.raises(concurrent.futures.TimeoutError):
        fut.exception(timeout=0)
    # without a timeout it would wait forever: refused
    with pytest.raises(RuntimeError, match="executor thread that completes it"):
        fut.result()
    fut._set_jobid(None, exc=OverflowError("foobar"))
    with pytest.raises(OverflowError, match="foobar"):
        fut.jobid(0)
    with pytest.raises(RuntimeError):
        fut._set_jobid(1)


# -- flux.job.watcher ----------------------------------------------------------------------

def test_job_watcher_output_callback_takes_the_output(inst, h):
    # flux-core t0046-job-watcher: output_callback(jobid, stream, data) gets each job's
    # output (then None, None at its end), and nothing goes to the watcher's streams
    env = {"PATH": inst.env["PATH"]}

    def submit(cmd: str) -> flux.job.JobID:
        return flux.job.submit(h, flux.job.JobspecV1.from_command(["sh", "-c", cmd],
                                                                  environment=env))

    jobid1 = submit("echo job1")
    jobid2 = submit("echo out2; echo err2 >&2")
    got: dict[int, list] = {}

    def callback(jobid, stream, data):
        got.setdefault(int(jobid), []).append((stream, data))

    out, err = io.StringIO(), io.StringIO()
    watcher = JobWatcher(h, output_callback=callback, stdout=out, stderr=err)
    watcher.start()
    watcher.add_jobid(jobid1)
    watcher.add_jobid(jobid2)
    h.reactor_run()
    assert got[jobid1] == [("stdout", "job1\n"), (None, None)]
    assert sorted(got[jobid2], key=str) == [("stderr", "err2\n"), ("stdout", "out2\n"),
                                            (None, None)]
    assert out.getvalue() == "" and err.getvalue() == ""
    assert watcher.exitcode == 0


# -- flux.future ---------------------------------------------------------------------------

def test_wait_for_timeout_reads_like_flux(inst, h):
    # Flux's bindings raise OSError(ETIMEDOUT, strerror): a TimeoutError whose
    # str() carries the errno, like every other error of a request
    with flux.Flux(inst.uri) as silent:
        # a service whose handle never reads its requests: they are never answered
        silent.service_register("sweepsilent").get()
        future = h.rpc("sweepsilent.x", {})
        for timeout in (0, 0.05):
            with pytest.raises(TimeoutError) as info:
                future.wait_for(timeout)
            assert info.value.errno == errno.ETIMEDOUT
            assert str(info.value) == "[Errno 110] Connection timed out"
