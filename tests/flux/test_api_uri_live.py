"""flux.uri.FluxURIResolver against real instances: pid: of a broker, jobid: of real jobs.

No job here is a Flux instance yet (nested instances do not record their
URI), so a running job resolves to "URI not found for job X", as Flux says
for a job that is not an instance.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

import flux
from broker.testing import TestInstance
from flux.job import JobID
from flux.uri import FluxURIResolver, JobURI, hostname
from helpers.live import JOBS_CONF, start_instance, submit1, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inst(tmp_path_factory: Any) -> Iterator[TestInstance]:
    instance = start_instance(tmp_path_factory, JOBS_CONF)
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def resolver(inst: TestInstance, monkeypatch: pytest.MonkeyPatch) -> FluxURIResolver:
    monkeypatch.setenv("FLUX_URI", inst.uri)
    monkeypatch.delenv("FLUX_URI_RESOLVE_LOCAL", raising=False)
    return FluxURIResolver()


def test_pid_of_a_broker_is_its_uri(inst: TestInstance, resolver: FluxURIResolver) -> None:
    result = resolver.resolve(f"pid:{inst.broker_pids[0]}")
    assert isinstance(result, JobURI)
    assert os.path.realpath(result.path) == os.path.realpath(inst.socket_path)
    assert result.remote == f"ssh://{hostname()}{result.path}"
    h = flux.Flux(str(result))
    try:
        assert h.attr_get("size") == "1"
    finally:
        h.close()


def test_pid_of_each_rank_of_a_bigger_instance() -> None:
    inst = TestInstance(size=2).start()
    try:
        uris = [str(FluxURIResolver().resolve(f"pid:{pid}")) for pid in inst.broker_pids]
        for rank, uri in enumerate(uris):
            h = flux.Flux(uri)
            try:
                assert h.get_rank() == rank
            finally:
                h.close()
    finally:
        inst.stop()


def test_unknown_job(resolver: FluxURIResolver) -> None:
    missing = JobID(123456789).f58
    with pytest.raises(ValueError, match=f"^jobid {missing} not found$"):
        resolver.resolve(missing)
    with pytest.raises(ValueError, match=f"^jobid {missing} not found$"):
        resolver.resolve(f"jobid:{missing}?local")


def test_invalid_jobid(resolver: FluxURIResolver) -> None:
    with pytest.raises(ValueError, match="^xyz!! is not a valid jobid$"):
        resolver.resolve("xyz!!")


def test_finished_job_is_not_running(inst: TestInstance, resolver: FluxURIResolver) -> None:
    jobid = submit1(inst, "true")
    wait_for(inst, jobid)
    with pytest.raises(ValueError, match=f"^jobid {jobid.f58} is not running$"):
        resolver.resolve(jobid.f58)
    with pytest.raises(ValueError, match=f"^jobid {jobid} is not running$"):
        resolver.resolve(f"jobid:{jobid}")


def test_running_job_that_is_not_an_instance(inst: TestInstance,
                                             resolver: FluxURIResolver) -> None:
    jobid = submit1(inst, "--setattr=system.exec.test.run_duration=60s", "sleep", "60")
    wait_for(inst, jobid, "start")
    try:
        with pytest.raises(ValueError, match=f"^URI not found for job {jobid.f58}$"):
            resolver.resolve(jobid.f58)
        with pytest.raises(ValueError, match=f"^URI not found for job {jobid.f58}$"):
            resolver.resolve(f"{jobid.f58}/{jobid.f58}")
    finally:
        h = flux.Flux(inst.uri)
        try:
            flux.job.cancel(h, jobid)
        finally:
            h.close()
