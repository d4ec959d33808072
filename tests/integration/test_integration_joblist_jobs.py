"""The flux.job API, job-list and job-info with real jobs (ingest, job manager, test-mode exec)."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers.wait import wait_until

import flux.job
from broker.testing import TestInstance
from flux.constants import (
    FLUX_JOB_STATE_INACTIVE,
    FLUX_JOB_STATE_RUN,
    FLUX_USERID_UNKNOWN,
)
from flux.job import JobspecV1
from flux.job.JobID import JobID
from flux.job.kill import cancel, kill
from flux.job.list import JobList, job_list, job_list_id
from flux.job.stats import JobStats
from flux.job.submit import submit, submit_async
from flux.job.wait import result, result_async
from flux.job.wait import wait as job_wait

# The functions are imported from their submodules: flux.job.submit, .kill
# and .wait are also module names, and until flux/job/__init__.py binds the
# functions eagerly an earlier import of the module can hide the function
# (test_flux_job_api_units.py::test_functions_named_like_their_modules).


def spec(run: float = 0.0, duration: float = 0, name: str | None = None,
         test: bool = True, command: list[str] | None = None) -> JobspecV1:
    js = JobspecV1.from_command(command or ["true"])
    if test:
        js.setattr("system.exec.test", {"run_duration": run})
    if duration:
        js.duration = duration
    if name:
        js.setattr("system.job.name", name)
    return js


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance().start()
    yield inst
    inst.stop()


@pytest.fixture
def h(inst):
    handle = inst.handle()
    yield handle
    handle.close()


def listed(h, jobid, attrs=("all",)):
    return job_list_id(h, jobid, list(attrs)).get_job()


def inactive_record(h, jobid):
    """The job-list record once the job is inactive (list-id waits for the state)."""
    return h.rpc("job-list.list-id", {"id": int(jobid), "attrs": ["all"],
                                      "state": FLUX_JOB_STATE_INACTIVE}).get()["job"]


# -- results ------------------------------------------------------------------------------

def test_completed_job(h):
    jobid = submit(h, spec(name="ok"), waitable=True)
    assert isinstance(jobid, JobID)
    res = result(h, jobid)
    assert (res.result, res.returncode, res.waitstatus) == ("COMPLETED", 0, 0)
    assert res.t_submit <= res.t_run <= res.t_cleanup
    assert job_wait(h, jobid) == (jobid, True, "")
    info = flux.job.JobInfo(inactive_record(h, jobid))
    assert (info.state, info.status, info.result, info.returncode) == \
        ("INACTIVE", "COMPLETED", "COMPLETED", 0)
    assert (info.name, info.ntasks, info.ncores, info.nnodes, info.ranks) == ("ok", 1, 1, 1, "0")
    assert info.success is True and info.nodelist
    assert info.t_submit <= info.t_depend <= info.t_run <= info.t_cleanup <= info.t_inactive
    assert info.annotations.sched.resource_summary
    names = [e.name for e in flux.job.event_watch(h, jobid)]
    assert names[0] == "submit" and names[-1] == "clean" and "start" in names


def test_canceled_before_running_has_returncode_minus_128(h):
    jobid = submit(h, spec(), urgency=0)          # held: never runs
    cancel(h, jobid, "changed my mind")
    res = result(h, jobid)
    assert (res.result, res.returncode) == ("CANCELED", -128)
    info = flux.job.JobInfo(inactive_record(h, jobid))
    assert (info.result, info.returncode, info.t_run) == ("CANCELED", -128, 0.0)
    assert (info.exception.type, info.exception.severity, info.exception.note) == \
        ("cancel", 0, "changed my mind")
    with pytest.raises(flux.job.JobException, match="type=cancel: changed my mind"):
        flux.job.event_wait(h, jobid, "start")


def test_canceled_while_running(h):
    jobid = submit(h, spec(run=60))
    assert flux.job.event_wait(h, jobid, "start").name == "start"
    running = listed(h, jobid, ["state", "t_run"])
    assert running["state"] == FLUX_JOB_STATE_RUN and running["t_run"] > 0
    cancel(h, jobid)
    res = result(h, jobid)
    assert res.result == "CANCELED" and res.returncode < 0


def test_killed_job_fails_with_the_signal(h):
    jobid = submit(h, spec(run=60))
    flux.job.event_wait(h, jobid, "start")
    kill(h, jobid, signal.SIGUSR1)
    res = result(h, jobid)
    assert (res.result, res.returncode) == ("FAILED", -signal.SIGUSR1)
    info = flux.job.JobInfo(inactive_record(h, jobid))
    assert (info.result, info.returncode, info.waitstatus) == \
        ("FAILED", -signal.SIGUSR1, int(signal.SIGUSR1))


def test_timeout(h):
    jobid = submit(h, spec(run=30, duration=0.3))
    res = result(h, jobid)
    assert res.result == "TIMEOUT" and res.exception.type == "timeout"
    info = flux.job.JobInfo(inactive_record(h, jobid))
    assert (info.result, info.result_abbrev, info.status_abbrev) == ("TIMEOUT", "TO", "TO")
    assert info.duration == 0.3 and info.expiration > 0
    timeouts = JobList(h, filters=["timeout"]).jobs()
    assert jobid in [j.id for j in timeouts]
    assert all(j.result == "TIMEOUT" for j in timeouts)


def test_job_that_cannot_run_fails(h):
    jobid = submit(h, spec(test=False, command=["/nonexistent/command"]))
    res = result(h, jobid)
    assert res.result == "FAILED" and res.exception.type == "exec"
    info = flux.job.JobInfo(inactive_record(h, jobid))
    assert info.result == "FAILED" and info.exception.occurred is True


def test_submit_async_burst_and_results_from_the_reactor(h):
    futures = [submit_async(h, spec()) for _ in range(50)]
    ids = [f.get_id() for f in futures]
    assert len(set(ids)) == 50 and ids == sorted(ids)
    got = []
    for jobid in ids:
        result_async(h, jobid).then(lambda f: got.append(f.get_info().result))
    h.reactor_run()
    assert got == ["COMPLETED"] * 50


def test_submit_errors(h):
    with pytest.raises(OSError) as info:
        submit(h, '{"version": 1}')
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError, match=r"urgency range is \[0:31\]"):
        submit(h, spec(), urgency=40)


# -- job-list queries --------------------------------------------------------------------

def test_list_id_waits_for_a_job_just_submitted_and_for_a_state(h):
    fut = submit_async(h, spec(run=0.3))
    jobid = fut.get_id()
    # asked at once: job-list may not have it yet, and waits for it
    assert listed(h, jobid, ["userid"]) == {"id": jobid, "userid": os.getuid()}
    t0 = time.monotonic()
    rec = inactive_record(h, jobid)
    assert rec["state"] == FLUX_JOB_STATE_INACTIVE and time.monotonic() - t0 > 0.1
    with pytest.raises(FileNotFoundError, match="unknown job"):
        listed(h, 424242)
    assert flux.job.get_job(h, 424242) is None
    got = flux.job.get_job(h, jobid)
    assert (got["id"], got["state"], got["result"], got["returncode"]) == \
        (jobid, "INACTIVE", "COMPLETED", 0)
    assert got["exception"]["occurred"] is False


def test_list_filters(h):
    done = submit(h, spec(name="filtered"))
    result(h, done)
    held = submit(h, spec(name="filtered"), urgency=0)
    running = submit(h, spec(run=60, name="filtered"))
    flux.job.event_wait(h, running, "start")
    try:
        def ids(**kw):
            return [j.id for j in JobList(h, **kw).jobs()]

        pending = ids(filters=["pending"])
        assert held in pending and running not in pending and done not in pending
        assert running in ids(filters=["running"])
        inactive = ids(filters=["inactive"])
        assert done in inactive and held not in inactive
        both = ids(filters=["pending,completed"])
        assert held in both and done in both and running not in both
        assert done in ids(filters=["completed"]) and done not in ids(filters=["failed"])
        # order: pending, then running, then inactive
        everything = ids(filters=["active", "inactive"])
        assert everything.index(held) < everything.index(running) < everything.index(done)
        assert ids(user=str(os.getuid()), name="filtered")[:3] == [held, running, done]
        assert ids(user="12345") == []
        t_done = listed(h, done, ["t_inactive"])["t_inactive"]
        assert done not in ids(filters=["inactive"], since=t_done)
        assert done in ids(filters=["inactive"], since=t_done - 0.001)
        assert len(ids(max_entries=2)) == 2
        jl = JobList(h, ids=[done, 999999])
        assert [j.id for j in jl.jobs()] == [done]
        assert jl.errors == [f"JobID 999999 unknown"]
        inactive_only = [j["id"] for j in
                         flux.job.job_list_inactive(h, attrs=["state"]).get_jobs()]
        assert done in inactive_only and held not in inactive_only
        assert all(j["state"] == 64 for j in
                   flux.job.job_list_inactive(h, attrs=["state"]).get_jobs())
        rpc = job_list(h, 0, ["name"], userid=FLUX_USERID_UNKNOWN,
                       states=int(flux.constants.FLUX_JOB_STATE_PENDING))
        assert all(j["name"] == "filtered" for j in rpc.get_jobs() if j["id"] == held)
    finally:
        cancel(h, held)
        cancel(h, running)


def test_list_errors_name_the_problem(h):
    with pytest.raises(OSError, match="unknown job attribute 'colour'") as info:
        job_list(h, 10, ["colour"]).get()
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError, match="'max_entries' must be an integer >= 0"):
        h.rpc("job-list.list", {"max_entries": -1, "attrs": []}).get()
    with pytest.raises(OSError, match="states: unknown name 'bogus'"):
        h.rpc("job-list.list", {"max_entries": 1, "attrs": [], "states": ["bogus"]}).get()
    with pytest.raises(OSError, match="unknown constraint operator 'colour'"):
        h.rpc("job-list.list", {"max_entries": 1, "attrs": [],
                                "constraint": {"colour": ["red"]}}).get()
    assert "nodelist" in h.rpc("job-list.list-attrs").get()["attrs"]


def test_list_streaming_request_splits_and_ends(h):
    rpc = h.rpc("job-list.list", {"max_entries": 0, "attrs": []}, flags=2)
    chunks = list(rpc)
    assert chunks[0]["version"] == 1
    assert sum(len(c["jobs"]) for c in chunks) == \
        len(job_list(h, 0, [], userid=FLUX_USERID_UNKNOWN).get_jobs())


def test_job_stats_follow_the_jobs(h):
    before = JobStats(h).update_sync()
    jobid = submit(h, spec())
    result(h, jobid)
    inactive_record(h, jobid)
    after = JobStats(h).update_sync()
    assert after.inactive == before.inactive + 1
    assert after.successful == before.successful + 1
    stats = JobStats(h)
    seen = []
    # Flux's JobStats calls callback(stats, **kwargs)
    stats.update(callback=lambda st, tag: seen.append((st, tag)), tag="x")
    h.reactor_run()
    assert seen == [(stats, "x")] and stats.inactive == after.inactive


def test_purge_removes_jobs_from_the_list_and_the_kvs(h):
    jobid = submit(h, spec())
    result(h, jobid)
    inactive_record(h, jobid)
    purged_before = JobStats(h).update_sync().inactive_purged
    assert h.rpc("job-manager.purge", {"ids": [int(jobid)], "force": True}).get() == \
        {"count": 1}
    wait_until(lambda: flux.job.get_job(h, jobid) is None)
    assert JobStats(h).update_sync().inactive_purged == purged_before + 1
    with pytest.raises(FileNotFoundError):
        flux.job.event_wait(h, jobid, "clean")


# -- guests -------------------------------------------------------------------------------

GUEST = """
import os, sys, errno
import flux, flux.core.handle, flux.rpc, flux.constants
import flux.job, flux.job.event, flux.job.list, flux.job.wait, flux.job.info, flux.job.submit
import flux.job.kill, flux.eventlog, flux.job.Jobspec, pwd
os.setgid(65534); os.setuid(65534)
h = flux.Flux(sys.argv[1])
other = int(sys.argv[2])
js = flux.job.JobspecV1.from_command(["true"])
js.setattr("system.exec.test", {})
mine = flux.job.submit_async(h, js).get_id()
print("result", flux.job.result_async(h, mine).get_info().result)
rows = flux.job.job_list(h, 0, ["userid"], userid=flux.constants.FLUX_USERID_UNKNOWN).get_jobs()
print("sees", sorted({r["userid"] for r in rows}))
try:
    flux.job.event_watch_async(h, other).get_event()
except OSError as e:
    print("watch", errno.errorcode[e.errno])
try:
    flux.job.cancel_async(h, other).get()
except OSError as e:
    print("cancel", errno.errorcode[e.errno])
"""


def test_guests_use_the_api_on_their_own_jobs(tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    (tmp_path / "access.toml").write_text("[access]\nallow-guest-user = true\n")
    os.chmod(tmp_path, 0o755)
    inst = TestInstance(config_path=str(tmp_path)).start()
    try:
        h = inst.handle()
        other = submit(h, spec(run=60))
        out = subprocess.run([sys.executable, "-c", GUEST, inst.uri, str(int(other))],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == ["result COMPLETED", f"sees [0, 65534]",
                                           "watch EPERM", "cancel EPERM"]
        cancel(h, other)
        h.close()
    finally:
        inst.stop()


# -- restart ------------------------------------------------------------------------------

def all_records(h):
    return {j["id"]: j for j in job_list(h, 0, ["all"], userid=FLUX_USERID_UNKNOWN).get_jobs()}


def test_restart_lists_inactive_jobs_with_the_same_fields(tmp_path):
    statedir = tmp_path / "state"
    inst = TestInstance(setattrs=[f"statedir={statedir}"]).start()
    try:
        h = inst.handle()
        finished = [submit(h, spec()) for _ in range(5)]
        finished.append(submit(h, spec(run=30, duration=0.2)))    # timeout
        held = submit(h, spec(), urgency=0)
        cancel(h, submit(h, spec(), urgency=0))            # canceled
        for jobid in finished:
            result(h, jobid)
        inactive_before = {k: v for k, v in all_records(h).items() if v["state"] == 64}
        wait_until(lambda: len([v for v in all_records(h).values() if v["state"] == 64]) == 7)
        inactive_before = {k: v for k, v in all_records(h).items() if v["state"] == 64}
        h.close()
    finally:
        assert inst.stop() == 0
    inst = TestInstance(setattrs=[f"statedir={statedir}"]).start()
    try:
        h = inst.handle()
        after = all_records(h)
        for jobid, rec in inactive_before.items():
            assert after[jobid] == rec
        assert after[held]["state"] != 64          # still pending
        stats = h.rpc("job-list.stats", {}).get()
        assert stats["load"]["source"] == "snapshot" and stats["journal"] is True
        # where the load's time went, CPU time included (a busy machine's wall time lies)
        assert {"wait_s", "kvs_s", "reconcile_s", "cpu_s"} <= stats["load"].keys()
        assert JobStats(h).update_sync().inactive == 7
        cancel(h, held)
        h.close()
    finally:
        assert inst.stop() == 0


def test_restart_after_a_crash_replays_the_eventlogs(tmp_path):
    statedir = tmp_path / "state"
    inst = TestInstance(setattrs=[f"statedir={statedir}"]).start()
    try:
        h = inst.handle()
        jobs = [submit(h, spec()) for _ in range(4)]
        for jobid in jobs:
            inactive_record(h, jobid)
        before = all_records(h)
        h.close()
    finally:
        inst.kill()            # no rc3: no snapshot
    inst = TestInstance(setattrs=[f"statedir={statedir}"]).start()
    try:
        h = inst.handle()
        after = all_records(h)
        assert {k: after[k] for k in before} == before
        assert h.rpc("job-list.stats", {}).get()["load"]["source"] == "replay"
        h.close()
    finally:
        assert inst.stop() == 0


def test_replay_through_kvs_requests_and_an_explicit_snapshot(tmp_path):
    # the replay path used when the kvs engine is not in-process
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "joblist.toml").write_text("[job-list]\nreplay-via-rpc = true\n")
    statedir = tmp_path / "state"
    args = {"setattrs": [f"statedir={statedir}"], "config_path": str(conf)}
    inst = TestInstance(**args).start()
    try:
        h = inst.handle()
        jobs = [submit(h, spec()) for _ in range(3)]
        for jobid in jobs:
            inactive_record(h, jobid)
        before = all_records(h)
        h.close()
    finally:
        inst.kill()
    inst = TestInstance(**args).start()
    try:
        h = inst.handle()
        after = all_records(h)
        assert {k: after[k] for k in before} == before
        assert h.rpc("job-list.stats", {}).get()["load"]["source"] == "replay"
        snap = h.rpc("job-list.snapshot", {}).get()
        assert snap["jobs"] == len(after) and snap["bytes"] > 0
        pins = h.rpc("content.pins", {}).get()["pins"]
        assert pins["job-list"]["kind"] == "tree"
        h.close()
    finally:
        inst.kill()
    # the snapshot written on request is what the next start loads
    inst = TestInstance(**args).start()
    try:
        h = inst.handle()
        assert all_records(h) == after
        assert h.rpc("job-list.stats", {}).get()["load"]["source"] == "snapshot"
        h.close()
    finally:
        assert inst.stop() == 0


def test_job_kvs_directories(h):
    jobid = submit(h, spec())
    result(h, jobid)
    jobdir = flux.job.job_kvs(h, jobid)
    assert {"eventlog", "jobspec", "J", "R"} <= set(jobdir)
    assert jobdir["jobspec"]["tasks"][0]["command"] == ["true"]
    with pytest.raises(OSError):
        flux.job.job_kvs(h, 99)
    # test-mode jobs write no guest data: the guest directory is absent
    with pytest.raises(OSError):
        flux.job.job_kvs_guest(h, jobid)
