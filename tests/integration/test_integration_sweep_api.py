"""The flux package as scripts written for Flux's bindings use it, on a real
instance with test-mode jobs: behaviours found wrong by a sweep of the API
against flux-core's documented and tested behaviour (python-api.md)."""
from __future__ import annotations

import concurrent.futures

import pytest

import flux
from flux.job import FluxExecutor
from helpers.live import JOBS_CONF, start_instance

T = 30.0


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, JOBS_CONF)
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def h(inst):
    handle = flux.Flux(inst.uri)
    yield handle
    handle.close()


# -- FluxExecutor.attach -------------------------------------------------------------------

def test_executor_attach_of_a_bad_id_fails_the_future_not_the_call(inst):
    # flux-core's t0023-executor: attach(None) and attach(-1) return futures
    # whose jobid() gives the id back and whose result raises TypeError /
    # OverflowError; attach(0) (a valid id, no such job) sets ValueError.
    with FluxExecutor(handle_args=(inst.uri,)) as ex:
        none_fut = ex.attach(None)
        neg_fut = ex.attach(-1)
        zero_fut = ex.attach(0)
    assert none_fut.jobid(timeout=0) is None
    with pytest.raises(TypeError):
        none_fut.result(timeout=0)
    assert neg_fut.jobid(timeout=0) == -1
    with pytest.raises(OverflowError):
        neg_fut.result(timeout=0)
    assert zero_fut.jobid(timeout=0) == 0
    with pytest.raises(ValueError, match="does not match any job"):
        zero_fut.result(timeout=T)


def test_executor_attach_after_shutdown_is_runtime_error_even_for_a_bad_id(inst):
    ex = FluxExecutor(handle_args=(inst.uri,))
    ex.shutdown(wait=True)
    for jobid in (None, 5):
        with pytest.raises(RuntimeError):
            ex.attach(jobid)


def test_executor_bad_attach_future_is_done_and_usable_with_as_completed(inst):
    with FluxExecutor(handle_args=(inst.uri,)) as ex:
        futs = [ex.attach(None), ex.attach(2**64)]
        done = list(concurrent.futures.as_completed(futs, timeout=T))
    assert len(done) == 2
    assert isinstance(futs[0].exception(), TypeError)
    assert isinstance(futs[1].exception(), OverflowError)
    assert futs[1].jobid() == 2**64


# -- flux.job.kvslookup ------------------------------------------------------------------

def _done_job(h) -> flux.job.JobID:
    jobid = flux.job.submit(h, flux.job.JobspecV1.from_command(["hostname"]))
    flux.job.event_wait(h, jobid, "clean")
    return jobid


def test_lookup_decode_leaves_J_as_text_that_can_be_submitted_again(h):
    # Flux's get_decode() parses jobspec and R only: J is the signed text
    jobid = _done_job(h)
    data = flux.job.job_info_lookup(h, jobid, keys=["R", "J"]).get_decode()
    assert isinstance(data["R"], dict) and isinstance(data["J"], str)
    J = flux.job.job_kvs_lookup(h, jobid, keys=["J"])["J"]
    assert isinstance(J, str)
    assert flux.job.submit(h, J, pre_signed=True) > 0


def test_lookup_original_keeps_J_when_it_is_asked_for(h):
    # flux-core t0014: keys=["jobspec", "J"] with original=True has both
    jobid = _done_job(h)
    for decode in (True, False):
        data = flux.job.job_kvs_lookup(h, jobid, keys=["jobspec", "J"], original=True,
                                       decode=decode)
        assert sorted(data) == ["J", "id", "jobspec"] and isinstance(data["J"], str)
    (data,) = flux.job.JobKVSLookup(h, [jobid], keys=["jobspec", "J"], original=True).data()
    assert "J" in data and data["jobspec"]["tasks"][0]["command"] == ["hostname"]
    # without "J" among the keys it is not in the result
    assert "J" not in flux.job.job_kvs_lookup(h, jobid, original=True)


