"""flux.job / flux.taskmap as scripts written for Flux's bindings use them, on a real
instance: gaps found by a second sweep of the API against flux-core's Python tests
(t/python/t0030-journal.py) and its job-info services (python-api.md)."""
from __future__ import annotations

import errno

import pytest

import flux
import flux.job
from flux.job import JobspecV1
from flux.job.journal import JournalConsumer
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


def spec(run: str = "0s", duration: float = 0) -> JobspecV1:
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test.run_duration", run)
    if duration:
        js.duration = duration
    return js


def test_journal_event_str_shows_jobspec_on_submit_and_R_on_alloc(h):
    # t0030 test_jobspec_R_placement: "jobspec=" in str(submit), "R=" in str(alloc)
    jobid = flux.job.submit(h, spec(), waitable=True)
    flux.job.wait(h, jobid)
    consumer = JournalConsumer(h).start()
    submit = alloc = None
    while submit is None or alloc is None:
        event = consumer.poll(timeout=T)
        if event.jobid != jobid:
            continue
        if event.name == "submit":
            submit = event
        elif event.name == "alloc":
            alloc = event
        elif event.name not in ("submit", "alloc"):
            assert event.jobspec is None and event.R is None
            assert "jobspec=" not in str(event) and " R=" not in str(event)
    consumer.stop()
    assert submit.R is None and alloc.jobspec is None
    assert "jobspec=" in str(submit) and '"tasks":' in str(submit).split("jobspec=", 1)[1]
    assert " R=" in str(alloc) and '"R_lite"' in str(alloc).split(" R=", 1)[1]
    assert "environment" not in str(submit)     # the journal's jobspec is redacted


def test_update_lookup_gives_jobspec_with_its_updates(inst, h):
    jobid = flux.job.submit(h, spec(duration=100), urgency=0)
    try:
        r = inst.flux("update", str(jobid), "duration=200")
        assert r.returncode == 0, r.stderr
        got = flux.job.job_info_update_lookup(h, jobid, key="jobspec").get()
        assert list(got) == ["jobspec"]
        assert got["jobspec"]["attributes"]["system"]["duration"] == 200.0
        base = flux.job.job_info_lookup(h, jobid, ["jobspec"]).get_decode()["jobspec"]
        assert base["attributes"]["system"]["duration"] == 100.0
    finally:
        flux.job.cancel(h, jobid)


def test_update_lookup_gives_R_with_its_updates(inst, h):
    jobid = flux.job.submit(h, spec(run="60s", duration=100))
    try:
        flux.job.event_wait(h, jobid, "start")
        before = flux.job.job_info_update_lookup(h, jobid).get_decode()["execution"]
        r = inst.flux("update", str(jobid), "duration=+100")
        assert r.returncode == 0, r.stderr
        flux.job.event_wait(h, jobid, "resource-update")
        after = flux.job.job_info_update_lookup(h, jobid, "R").get_decode()["execution"]
        assert after["expiration"] == pytest.approx(before["expiration"] + 100)
    finally:
        flux.job.cancel(h, jobid)


def test_update_lookup_errors(h):
    jobid = flux.job.submit(h, spec(), waitable=True)
    flux.job.wait(h, jobid)
    with pytest.raises(OSError) as info:
        flux.job.job_info_update_lookup(h, jobid, "eventlog").get()
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == "update-lookup unsupported key specified"
    with pytest.raises(OSError) as info:
        h.rpc("job-info.update-lookup", {"id": int(jobid), "key": "R", "flags": 1}).get()
    assert info.value.errno == errno.EPROTO
    with pytest.raises(OSError) as info:
        flux.job.job_info_update_lookup(h, 1 << 40, "R").get()
    assert info.value.errno == errno.ENOENT


def test_taskmap_of_a_job_matches_flux_job_taskmap(inst, h):
    from flux.taskmap import TaskMap

    js = JobspecV1.from_command(["true"], num_tasks=2)
    js.setattr("system.exec.test.run_duration", "0s")
    jobid = flux.job.submit(h, js, waitable=True)
    flux.job.wait(h, jobid)
    r = inst.flux("job", "taskmap", str(jobid))
    assert r.returncode == 0, r.stderr
    taskmap = TaskMap.decode(r.stdout)
    assert taskmap.total_ntasks == 2 and taskmap.nnodes == 1
    assert str(taskmap) == r.stdout.strip()
    raw = inst.flux("job", "taskmap", "--to=raw", str(jobid)).stdout.strip()
    assert taskmap.encode("raw") == raw and TaskMap.decode(raw) == taskmap


def test_update_watch_streams_R_after_each_update_until_the_job_ends(inst, h):
    jobid = flux.job.submit(h, spec(run="60s", duration=100))
    flux.job.event_wait(h, jobid, "start")
    watch = flux.job.job_info_update_watch(h, jobid, "R")
    first = watch.get_decode()["execution"]["expiration"]
    watch.reset()
    assert inst.flux("update", str(jobid), "duration=+100").returncode == 0
    assert watch.get_decode()["execution"]["expiration"] == pytest.approx(first + 100)
    watch.reset()
    flux.job.cancel(h, jobid)
    with pytest.raises(OSError) as info:
        watch.get()
    assert info.value.errno == errno.ENODATA


def test_update_watch_of_jobspec_and_its_cancel(inst, h):
    jobid = flux.job.submit(h, spec(duration=50), waitable=True)
    flux.job.wait(h, jobid)
    specs = list(flux.job.job_info_update_watch(h, jobid, "jobspec"))
    assert [js["attributes"]["system"]["duration"] for js in specs] == [50.0]
    pending = flux.job.submit(h, spec(duration=50), urgency=0)
    watch = flux.job.job_info_update_watch(h, pending, "jobspec")
    assert watch.get_decode()["attributes"]["system"]["duration"] == 50.0
    watch.reset()
    assert inst.flux("update", str(pending), "duration=70").returncode == 0
    assert watch.get_decode()["attributes"]["system"]["duration"] == 70.0
    watch.reset()
    watch.cancel()
    with pytest.raises(OSError) as info:
        watch.get()
    assert info.value.errno == errno.ENODATA
    flux.job.cancel(h, pending)
    with pytest.raises(OSError) as info:
        flux.job.job_info_update_watch(h, pending, "J").get()
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == "update-watch unsupported key specified"
