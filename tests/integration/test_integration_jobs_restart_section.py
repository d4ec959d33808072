"""The job manager's active section: after a clean shutdown, active jobs come
from the checkpoint instead of their eventlogs; a section that is stale,
unreadable or contradicted by the store is not used, and nothing is lost."""
from __future__ import annotations

import orjson
import pytest
from helpers.cluster import Cluster
from helpers.jobs import eventlog, jobspec, names, submit, wait_event

from flux.job.JobID import JobID
from jobmgr.manager.restart import ACTIVE_KEY


@pytest.fixture
def c(tmp_path):
    cluster = Cluster(tmp_path)
    yield cluster
    cluster.kill_if_running()


def _active_jobs(h):
    """A running job (left in CLEANUP, holding R, by the shutdown), a pending
    job in a stopped queue whose urgency changed, a held job and a held job
    whose name and duration were updated."""
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    running = submit(h, jobspec(run_duration="60s"))
    wait_event(h, running, "start")
    h.rpc("job-manager.queue-start", {"name": "debug", "start": False}).get()
    pending = submit(h, jobspec(queue="debug"))
    h.rpc("job-manager.urgency", {"id": pending, "urgency": 20}).get()
    held = submit(h, urgency=0)
    updated = submit(h, urgency=0)
    h.rpc("job-manager.update", {"id": updated, "updates": {
        "attributes.system.job.name": "renamed", "attributes.system.duration": 300.0}}).get()
    for jobid in (pending, held, updated):
        wait_event(h, jobid, "priority")
    return running, pending, held, updated


def _finish(h, running, pending, held, updated):
    """Every job still runs to its end after the restart."""
    wait_event(h, running, "clean")
    h.rpc("job-manager.queue-start", {"name": "debug", "start": True}).get()
    wait_event(h, pending, "clean")
    for jobid in (held, updated):
        h.rpc("job-manager.urgency", {"id": jobid, "urgency": 16}).get()
        wait_event(h, jobid, "clean")
    assert "exception" not in names(h, updated) and "exception" not in names(h, held)


def _history_kept(h, before):
    """Every job's eventlog still begins with what it had before the restart."""
    for jobid, events in before.items():
        assert eventlog(h, jobid)[:len(events)] == events


def _finish_with(h, jobs, newer):
    """_finish, plus the held job submitted after the section was written."""
    h.rpc("job-manager.urgency", {"id": newer, "urgency": 16}).get()
    _finish(h, *jobs)
    wait_event(h, newer, "clean")


def test_clean_restart_takes_active_jobs_from_the_section(c):
    h = c.start()
    jobs = _active_jobs(h)
    before = {j: eventlog(h, j) for j in jobs}
    c.stop()

    h = c.start()
    stats = c.restart_stats()
    assert stats["full"] is False and stats["lost"] == 0
    assert stats["from_section"] == len(jobs)
    _running, pending, held, updated = jobs
    _history_kept(h, before)
    # flux-restart semantics are those of a replay from the eventlogs
    for jobid in (pending, held, updated):
        wait_event(h, jobid, "priority", after=len(before[jobid]))
        assert names(h, jobid)[len(before[jobid]):] == ["flux-restart", "priority"]
    # the update is the job manager's, once: the name in the listing, the
    # duration in what it asks the scheduler for
    listed = h.rpc("job-list.list-id", {"id": updated, "attrs": ["name", "duration"]}).get()
    assert listed["job"]["name"] == "renamed" and listed["job"]["duration"] == 300.0
    _finish(h, *jobs)
    c.stop()


def test_section_is_rewritten_at_each_clean_shutdown(c):
    h = c.start()
    jobs = _active_jobs(h)
    c.stop()
    h = c.start()
    # a restart's own events (flux-restart, priority) are in the next section
    assert c.restart_stats()["from_section"] == len(jobs)
    newer = submit(h, urgency=0)
    wait_event(h, newer, "priority")
    wait_event(h, jobs[0], "clean")     # the killed job is inactive now
    before = {j: eventlog(h, j) for j in (*jobs, newer)}
    c.stop()
    h = c.start()
    stats = c.restart_stats()
    assert stats["from_section"] == len(jobs) - 1 + 1 and stats["lost"] == 0
    _history_kept(h, before)
    _finish_with(h, jobs, newer)
    c.stop()


def test_stale_section_after_a_crash_is_not_used(c):
    h = c.start()
    jobs = _active_jobs(h)
    c.stop()
    h = c.start()
    # the jobs change after the section was written, then the broker dies:
    # no checkpoint describes them now
    pending = jobs[1]
    h.rpc("job-manager.urgency", {"id": pending, "urgency": 2}).get()
    newer = submit(h, urgency=0)
    before = {j: eventlog(h, j) for j in (*jobs, newer)}
    c.crash()

    h = c.start()
    stats = c.restart_stats()
    assert stats["lost"] == 0 and stats["from_section"] == 0
    _history_kept(h, before)
    assert [e["context"]["urgency"] for e in eventlog(h, pending)
            if e["name"] == "urgency"][-1] == 2
    _finish_with(h, jobs, newer)
    c.stop()


def test_unreadable_section_falls_back_to_the_eventlogs(c):
    h = c.start()
    jobs = _active_jobs(h)
    before = {j: eventlog(h, j) for j in jobs}
    c.stop()
    c.write_offline(lambda txn: txn.put_raw(ACTIVE_KEY, b'{"version": 1, "jobs": 7'))

    h = c.start()
    stats = c.restart_stats()
    assert stats["from_section"] == 0 and stats["lost"] == 0 and stats["full"] is False
    assert "active section is unreadable" in c.dmesg()
    for jobid, events in before.items():
        assert eventlog(h, jobid)[:len(events)] == events
        assert names(h, jobid)[len(events):].count("flux-restart") == 1
    _finish(h, *jobs)
    c.stop()


def test_job_changed_behind_the_section_is_read_from_the_store(c):
    # the store is the authority: a job whose directory differs from the
    # checkpoint's root is replayed from its eventlog, the others come from
    # the section
    h = c.start()
    running, pending, held, updated = jobs = _active_jobs(h)
    c.stop()
    line = orjson.dumps({"timestamp": 2e9, "name": "exception", "context": {
        "type": "cancel", "severity": 0, "note": "behind the job manager's back"}}) + b"\n"
    c.write_offline(lambda txn: txn.append(JobID(held).kvs + ".eventlog", line))

    h = c.start()
    stats = c.restart_stats()
    assert stats["lost"] == 0 and stats["from_section"] == len(jobs) - 1
    wait_event(h, held, "clean")
    assert "behind the job manager's back" in str(eventlog(h, held))
    wait_event(h, running, "clean")
    h.rpc("job-manager.queue-start", {"name": "debug", "start": True}).get()
    wait_event(h, pending, "clean")
    h.rpc("job-manager.urgency", {"id": updated, "urgency": 16}).get()
    wait_event(h, updated, "clean")
    c.stop()
