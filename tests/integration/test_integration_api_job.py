"""flux.job as user scripts call it, on a real instance with test-mode jobs
(python-api.md: flux.job functions, JobID/JobInfo/job_list/JobStats, kvslookup, journal,
and the job-list behaviours behind them).  Error paths check type, errno and text."""
from __future__ import annotations

import errno
import math
import os
import re
import time

import pytest

import flux
import flux.job
from flux.constants import FLUX_JOB_STATE_INACTIVE, FLUX_USERID_UNKNOWN
from flux.job import JobException, JobID, JobspecV1
from flux.job.journal import SENTINEL_EVENT, JournalConsumer
from helpers.live import JOBS_CONF, flux as flux_cli, start_instance

T = 30.0
LIST_ATTRS = ("userid urgency priority t_submit t_depend t_priority t_sched t_run t_cleanup "
              "t_inactive state name cwd queue project bank ntasks ncores duration nnodes "
              "ranks nodelist success exception_occurred exception_type exception_severity "
              "exception_note result expiration annotations waitstatus dependencies all").split()


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


def spec(*command: str, run: str | None = None, name: str | None = None,
         duration: float = 0) -> JobspecV1:
    js = JobspecV1.from_command(list(command or ["true"]))
    if run is not None:
        js.setattr("system.exec.test.run_duration", run)
    if name is not None:
        js.setattr("system.job.name", name)
    if duration:
        js.duration = duration
    return js


def done(h, jobid) -> JobID:
    flux.job.event_wait(h, jobid, "clean", raiseJobException=False)
    # job-list follows the journal: wait until it has the job as inactive
    flux.job.job_list_id(h, jobid, ["state"]).get()
    deadline = time.monotonic() + T
    while flux.job.job_list_id(h, jobid, ["state"]).get_job()["state"] != 64:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return JobID(jobid)


# -- submission, waiting, exceptions -----------------------------------------------------

def test_submit_get_id_and_wait_get_status(h):
    future = flux.job.submit_async(h, spec(), waitable=True)
    jobid = flux.job.submit_get_id(future)
    assert isinstance(jobid, JobID) and jobid > 0
    status = flux.job.wait_get_status(flux.job.wait_async(h, jobid))
    assert status == (jobid, True, "") and status.jobid == jobid and status.success
    with pytest.raises(OSError) as info:
        flux.job.wait_get_status(flux.job.wait_async(h, jobid))
    assert info.value.errno in (errno.ECHILD, errno.ENOENT, errno.EINVAL)


def test_submit_refused_is_oserror_with_ingest_text(h):
    with pytest.raises(OSError) as info:
        flux.job.submit_get_id(flux.job.submit_async(h, "{not json"))
    assert info.value.errno == errno.EINVAL and info.value.strerror


def test_job_raise_non_fatal_then_fatal(h):
    jobid = flux.job.submit(h, spec(), urgency=0)        # held: it cannot start meanwhile
    assert flux.job.job_raise(h, jobid, "mytype", 1, "just a note") is None
    event = flux.job.event_wait(h, jobid, "exception")
    assert event.context["type"] == "mytype" and event.context["severity"] == 1
    assert event.context["note"] == "just a note"
    flux.job.job_raise_async(h, jobid, "other", severity=0).get()
    with pytest.raises(JobException) as info:
        flux.job.event_wait(h, jobid, "start")
    exc = info.value
    # a non-fatal exception is skipped; the fatal one is raised
    assert (exc.type, exc.severity) == ("other", 0)
    assert exc.timestamp > 0 and str(exc).startswith("job.exception: type=other")
    with pytest.raises(OSError) as nodata:
        flux.job.event_wait(h, jobid, "start", raiseJobException=False)
    assert nodata.value.errno == errno.ENODATA
    assert nodata.value.strerror == "eventlog ended before event='start'"


def test_job_raise_errors_from_the_job_manager(h):
    with pytest.raises(OSError) as info:
        flux.job.job_raise(h, JobID("ƒ1111111"), "test")
    assert (info.value.errno, info.value.strerror) == (errno.ENOENT, "unknown job id")
    finished = done(h, flux.job.submit(h, spec()))
    with pytest.raises(OSError) as info:
        flux.job.job_raise(h, finished, "test")
    assert (info.value.errno, info.value.strerror) == (errno.EINVAL, "job is inactive")


def test_event_wait_on_unsatisfiable_job_raises_alloc_exception(h):
    js = JobspecV1.from_command(["true"], num_tasks=128)
    try:
        jobid = flux.job.submit(h, js)
    except OSError as exc:
        pytest.fail(f"job-ingest refused an unsatisfiable job at submit: {exc}")
    with pytest.raises(JobException) as info:
        flux.job.event_wait(h, jobid, "start")
    assert (info.value.type, info.value.severity) == ("alloc", 0)
    assert info.value.timestamp > 0


def test_result_and_get_job(h):
    jobid = flux.job.submit(h, spec(name="resulted"))
    info = flux.job.result(h, jobid)
    assert (info.id, info.result, info.returncode) == (jobid, "COMPLETED", 0)
    done(h, jobid)
    meta = flux.job.get_job(h, jobid)
    assert meta["id"] == jobid and meta["name"] == "resulted" and meta["state"] == "INACTIVE"
    assert meta["result"] == "COMPLETED" and meta["returncode"] == 0
    assert meta["t_run"] > 0 and meta["exception"]["occurred"] is False
    assert flux.job.get_job(h, JobID("ƒ1111111")) is None


# -- job-list through flux.job ----------------------------------------------------------

def test_list_attrs_is_flux_list(h):
    assert h.rpc("job-list.list-attrs").get() == {"attrs": LIST_ATTRS}


def test_job_list_functions_default_to_all_attributes(h):
    jobid = done(h, flux.job.submit(h, spec(name="allattrs")))
    listed = {j["id"]: j for j in flux.job.job_list(h).get_jobs()}
    assert listed[jobid]["t_inactive"] > 0 and listed[jobid]["state"] == 64
    assert listed[jobid]["name"] == "allattrs"
    inactive = {j["id"]: j for j in flux.job.job_list_inactive(h).get_jobs()}
    assert inactive[jobid]["result"] == 1 and "t_run" in inactive[jobid]
    one = flux.job.job_list_id(h, jobid).get_job()
    assert one["name"] == "allattrs" and one["waitstatus"] == 0
    infos = {j.id: j for j in flux.job.JobList(h, filters=["inactive"]).jobs()}
    assert infos[jobid].t_inactive > 0 and infos[jobid].status == "COMPLETED"
    by_id = flux.job.JobList(h, ids=[jobid]).jobs()
    assert [j.name for j in by_id] == ["allattrs"]


def test_job_list_constraint_is_anded_with_filters(h):
    a = done(h, flux.job.submit(h, spec(name="cons-a")))
    held = flux.job.submit(h, spec(name="cons-a"), urgency=0)
    done(h, flux.job.submit(h, spec(name="cons-b")))
    named = {"name": ["cons-a"]}

    def ids(**kw):
        return sorted(j["id"] for j in flux.job.job_list(h, attrs=[], **kw).get_jobs())

    assert ids(constraint=named) == sorted([a, held])
    assert ids(constraint=named, states=FLUX_JOB_STATE_INACTIVE) == [a]
    assert ids(constraint=named, states=8) == [held]
    assert ids(constraint={"or": [{"name": ["cons-a"]}, {"name": ["cons-b"]}]},
               name="cons-b") != []
    assert ids(constraint=named, userid=os.getuid() + 1) == []
    assert ids(constraint=named, userid=FLUX_USERID_UNKNOWN) == sorted([a, held])
    # queue: a name or an iterable of names (no job here has a queue)
    assert ids(constraint=named, queue=["nope", "other"]) == []
    assert ids(constraint=named, queue="nope") == []
    jl = flux.job.JobList(h, constraint=named, filters=["pending"], user="all")
    assert [j.id for j in jl.jobs()] == [held]
    inactive = flux.job.job_list_inactive(h, attrs=[], constraint=named).get_jobs()
    assert [j["id"] for j in inactive] == [a]
    with pytest.raises(OSError) as info:
        flux.job.job_list(h, constraint={"bogus": [1]}).get()
    assert info.value.errno == errno.EINVAL and "bogus" in info.value.strerror
    flux.job.cancel(h, held)


def test_job_list_id_unknown_job_is_file_not_found(h):
    with pytest.raises(FileNotFoundError):
        flux.job.job_list_id(h, JobID("ƒ1111111")).get_job()
    jl = flux.job.JobList(h, ids=[JobID("ƒ1111111")])
    assert jl.jobs() == [] and jl.errors == ["JobID ƒ1111111 unknown"]


def test_jobinfo_status_and_flux_jobs_st_column(inst, h):
    held = flux.job.submit(h, spec(name="heldjob"), urgency=0)
    info = flux.job.job_list_id(h, held).get_jobinfo()
    assert (info.status, info.status_abbrev) == ("PENDING", "P")
    r = flux_cli(inst, "jobs", "-n", "-o", "{status_abbrev} {status}", held.f58)
    assert r.exit_code == 0 and r.stdout == "P PENDING\n"
    r = flux_cli(inst, "jobs", "-n", held.f58)
    assert r.stdout.split()[3] == "P"
    flux.job.cancel(h, held)
    done(h, held)
    r = flux_cli(inst, "jobs", "-n", "-o", "{status_abbrev} {returncode}", held.f58)
    assert r.stdout == "CA -128\n"


def test_flux_jobs_stats_line_ends_with_inactive_purged(inst, h):
    purged_job = done(h, flux.job.submit(h, spec()))
    h.rpc("job-manager.purge", {"ids": [int(purged_job)], "force": True}).get()
    deadline = time.monotonic() + T
    while flux.job.get_job(h, purged_job) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stats = flux.job.JobStats(h).update_sync()
    assert stats.inactive_purged >= 1
    for option in ("--stats", "--stats-only"):
        r = flux_cli(inst, "jobs", option, "-n", "-o", "{id}")
        first = r.stdout.splitlines()[0]
        m = re.fullmatch(r"(\d+) running, (\d+) completed, (\d+) failed, (\d+) pending, "
                         r"(\d+) inactive purged", first)
        assert m, first
        assert int(m.group(5)) == stats.inactive_purged
        assert int(m.group(2)) == stats.successful


def test_jobstats_update_and_queues(h):
    stats = flux.job.JobStats(h)
    assert stats.total == -1
    got = []
    stats.update(callback=lambda st, **kw: (got.append(kw), h.reactor_stop()), word="hi")
    h.reactor_run()
    assert got == [{"word": "hi"}]
    assert stats.total >= stats.inactive >= 0 and stats.active == stats.total - stats.inactive
    assert stats.failed >= stats.canceled + stats.timeout
    with pytest.raises(ValueError, match="no stats available for queue nope"):
        flux.job.JobStats(h, queue="nope").update_sync()


# -- timeleft ---------------------------------------------------------------------------

def test_timeleft(h, monkeypatch):
    monkeypatch.delenv("FLUX_JOB_ID", raising=False)
    with pytest.raises(OSError, match="unable to associate this process with a Flux jobid"):
        flux.job.timeleft(h)
    held = flux.job.submit(h, spec(), urgency=0)
    monkeypatch.setenv("FLUX_JOB_ID", held.f58)
    with pytest.raises(OSError, match=f"job {held.f58} has not started"):
        flux.job.timeleft(h)
    flux.job.cancel(h, held)
    unlimited = flux.job.submit(h, spec(run="60s"))
    limited = flux.job.submit(h, spec(run="60s", duration=100))
    for jobid in (unlimited, limited):
        flux.job.event_wait(h, jobid, "start")
        flux.job.job_list_id(h, jobid, ["state"]).get()
    monkeypatch.setenv("FLUX_JOB_ID", unlimited.f58)
    deadline = time.monotonic() + T
    while flux.job.job_list_id(h, limited, ["state"]).get_job()["state"] != 16:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert flux.job.timeleft(h) == math.inf
    monkeypatch.setenv("FLUX_JOB_ID", str(int(limited)))
    assert 90 < flux.job.timeleft(h) <= 100
    for jobid in (unlimited, limited):
        flux.job.cancel(h, jobid)
        done(h, jobid)
    assert flux.job.timeleft(h) == 0.0
    monkeypatch.setenv("FLUX_JOB_ID", "ƒ1111111")
    with pytest.raises(OSError, match="ƒ1111111: no such jobid"):
        flux.job.timeleft(h)


# -- kvslookup ----------------------------------------------------------------------------

def test_kvslookup(h):
    jobid = done(h, flux.job.submit(h, spec(name="looked")))
    rpc = flux.job.job_info_lookup(h, jobid, keys=["jobspec", "R"])
    raw = rpc.get()
    assert raw["id"] == jobid and isinstance(raw["jobspec"], str) and isinstance(raw["R"], str)
    decoded = rpc.get_decode()
    assert decoded["jobspec"]["attributes"]["system"]["job"]["name"] == "looked"
    assert decoded["R"]["version"] == 1
    with pytest.raises(FileNotFoundError):
        flux.job.job_info_lookup(h, JobID("ƒ1111111")).get()
    with pytest.raises(FileNotFoundError):
        flux.job.job_info_lookup(h, jobid, keys=["nosuchkey"]).get()
    found = flux.job.job_kvs_lookup(h, jobid, keys=["jobspec"])
    assert found["jobspec"]["tasks"][0]["command"] == ["true"]
    assert flux.job.job_kvs_lookup(h, JobID("ƒ1111111")) is None
    lookup = flux.job.JobKVSLookup(h, ids=[jobid, JobID("ƒ1111111")], keys=["R"])
    data = lookup.data()
    assert [d["id"] for d in data] == [jobid] and data[0]["R"]["version"] == 1
    assert lookup.errors == ["JobID ƒ1111111 unknown"]
    future = flux.job.JobKVSLookup(h, ids=[jobid], decode=False).fetch_data()
    assert isinstance(future.get()[0]["jobspec"], str) and future.errors == []


# -- the job manager's journal -----------------------------------------------------------

def history(consumer: JournalConsumer) -> list:
    events = []
    while (event := consumer.poll(T)) != SENTINEL_EVENT:
        events.append(event)
    return events


def test_journal_history_then_live_events(h):
    t0 = time.time()
    finished = done(h, flux.job.submit(h, spec(name="journal-done")))
    held = flux.job.submit(h, spec(name="journal-held"), urgency=0)
    flux.job.event_wait(h, held, "priority")
    consumer = JournalConsumer(h, include_sentinel=True).start()
    past = history(consumer)
    stamps = [e.timestamp for e in past]
    assert stamps == sorted(stamps)
    names = {jobid: [e.name for e in past if e.jobid == jobid] for jobid in (finished, held)}
    # the inactive job's whole history and the active one's so far
    assert names[finished][0] == "submit" and names[finished][-1] == "clean"
    assert "alloc" in names[finished] and "finish" in names[finished]
    assert names[held][:1] == ["submit"] and "clean" not in names[held]
    for event in past:
        assert (event.jobspec is not None) == (event.name == "submit")
        assert (event.R is not None) == (event.name == "alloc")
        if event.jobspec is not None:
            assert "environment" not in event.jobspec["attributes"]["system"]
    submit = next(e for e in past if e.jobid == finished and e.name == "submit")
    assert submit.jobspec["attributes"]["system"]["job"]["name"] == "journal-done"
    assert next(e for e in past if e.jobid == finished and e.name == "alloc").R["version"] == 1
    # live: the held job's cancel and clean
    flux.job.cancel(h, held)
    live = []
    while not live or live[-1].name != "clean":
        event = consumer.poll(T)
        if event.jobid == held:
            live.append(event)
    assert [e.name for e in live][0] == "exception" and live[-1].name == "clean"
    consumer.stop()
    while consumer.poll(T) is not None:
        pass
    assert consumer.poll(T) is None
    # since: only newer events; without the sentinel by default
    since = JournalConsumer(h, since=submit.timestamp).start()
    first = since.poll(T)
    assert first.timestamp > submit.timestamp >= t0
    since.stop()


def test_journal_without_history_and_timeout(h):
    consumer = JournalConsumer(h, full=False).start()
    with pytest.raises(TimeoutError):
        consumer.poll(timeout=0.1)
    jobid = flux.job.submit(h, spec())
    event = consumer.poll(T)
    assert event.jobid == jobid and event.name == "submit" and event.jobspec is not None
    consumer.stop()


def test_journal_callback_mode(h):
    jobid = flux.job.submit(h, spec(name="cb"), urgency=0)
    seen = []

    def cb(event, tag):
        seen.append((event, tag))
        if event is None:
            return
        if event.is_empty():
            flux.job.cancel(h, jobid)
        elif event.jobid == jobid and event.name == "clean":
            consumer.stop()

    consumer = JournalConsumer(h, include_sentinel=True).set_callback(cb, tag="t")
    consumer.start()
    h.reactor_run()
    assert seen[-1] == (None, "t")
    events = [e for e, _ in seen[:-1]]
    sentinel = next(i for i, e in enumerate(events) if e.is_empty())
    mine = [e.name for e in events if not e.is_empty() and e.jobid == jobid]
    assert mine[0] == "submit" and mine[-1] == "clean"
    assert all(e.timestamp <= events[sentinel - 1].timestamp for e in events[:sentinel])


def test_events_journal_cancel_ends_the_stream(h):
    from flux.constants import FLUX_RPC_STREAMING

    rpc = h.rpc("job-manager.events-journal", {"full": False}, flags=FLUX_RPC_STREAMING)
    h.rpc("job-manager.events-journal-cancel", {"matchtag": rpc.matchtag},
          flags=flux.constants.FLUX_RPC_NORESPONSE)
    with pytest.raises(OSError) as exc:
        for _ in range(1000):     # whatever history comes first, then the end
            rpc.wait_for(10)
            rpc.get()
            rpc.reset()
    assert exc.value.errno == errno.ENODATA


def test_stats_get_answers_flux_shape(h):
    stats = h.rpc("job-manager.stats-get", {}).get()
    assert stats["housekeeping"] == {"running": {}}
    assert stats["active_jobs"] == stats["active"] and stats["inactive_jobs"] >= 0
