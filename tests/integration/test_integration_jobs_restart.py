"""Restart recovery: flux shutdown / SIGKILL, then flux start on the same statedir."""
from __future__ import annotations

import base64
import os
import signal

import pytest

from flux.job.JobID import JobID
from helpers.cluster import Cluster
from helpers.jobs import eventlog, jobspec, lookup, names, submit, wait_event

# the job manager reads jobs from the in-process KVS engine, or (a kvs elsewhere)
# through lookup requests: both ways restart the same
@pytest.fixture(params=["engine", "rpc"])
def cluster(tmp_path, request):
    c = Cluster(tmp_path, "[job-manager]\nrestart-via-rpc = true\n"
                if request.param == "rpc" else "")
    yield c
    c.kill_if_running()


def test_pending_running_and_inactive_jobs_survive_shutdown(cluster):
    h = cluster.start()
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    done = submit(h)
    wait_event(h, done, "clean")
    running = submit(h, jobspec(run_duration="60s"))
    wait_event(h, running, "start")
    h.rpc("job-manager.queue-start", {"name": "debug", "start": False}).get()
    pending = submit(h, jobspec(queue="debug"))
    held = submit(h, urgency=0)
    wait_event(h, held, "priority")
    wait_event(h, pending, "priority")
    before = {j: len(eventlog(h, j)) for j in (done, pending, held)}
    cluster.stop()

    h = cluster.start()
    stats = h.rpc("job-manager.stats", {}).get()
    assert stats["restart"]["full"] is False          # the checkpoint was used
    assert len(eventlog(h, done)) == before[done]       # inactive jobs are left alone
    # queue states were kept: batch started, debug stopped
    assert h.rpc("job-manager.queue-status", {"name": "batch"}).get()["start"] is True
    assert h.rpc("job-manager.queue-status", {"name": "debug"}).get()["start"] is False
    after = names(h, pending)[before[pending]:]
    assert after == ["flux-restart", "priority"]
    assert names(h, held)[before[held]:] == ["flux-restart", "priority"]
    # the running job was killed at shutdown and is cleaned up after the restart
    wait_event(h, running, "clean")
    run_names = names(h, running)
    exc = wait_event(h, running, "exception")["context"]
    assert exc["type"] == "exec" and exc["severity"] == 0
    assert run_names[run_names.index("exception"):] == \
        ["exception", "finish", "release", "flux-restart", "free", "clean"]
    # pending jobs run once their queue starts; ids keep increasing
    h.rpc("job-manager.queue-start", {"name": "debug", "start": True}).get()
    wait_event(h, pending, "clean")
    newer = submit(h)
    assert newer > max(done, running, pending, held)
    h.rpc("job-manager.raise", {"id": held, "severity": 0, "type": "cancel"}).get()
    cluster.stop()


def test_sigkill_loses_no_acknowledged_job_or_event(cluster):
    h = cluster.start()
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    futures = [h.rpc("job-ingest.submit", {"jobspec": jobspec(), "urgency": 16, "flags": 0})
               for _ in range(50)]
    ids = [f.get()["id"] for f in futures]
    held = submit(h, urgency=0)
    h.rpc("job-manager.urgency", {"id": held, "urgency": 1}).get()   # acknowledged event
    running = submit(h, jobspec(run_duration="60s"))
    wait_event(h, running, "start")
    logs = {j: eventlog(h, j) for j in ids + [held, running]}
    cluster.crash()

    h = cluster.start()
    assert h.rpc("job-manager.stats", {}).get()["restart"]["lost"] == 0
    for jobid, events in logs.items():
        now = eventlog(h, jobid)
        assert now[:len(events)] == events
    assert any(e["name"] == "urgency" for e in eventlog(h, held))
    # the job that was running when the broker died is finished with an exception
    wait_event(h, running, "clean")
    exc = wait_event(h, running, "exception")["context"]
    assert exc["type"] == "exec" and "lost" in exc["note"]
    for jobid in ids:
        wait_event(h, jobid, "clean")
    assert submit(h) > max(logs)
    cluster.stop()


def test_ids_never_go_back_after_a_purge_and_a_crash(cluster):
    # the purge removes the directories a restart finds ids in, and the checkpoint
    # may be older: the purge's own commit keeps the largest id
    h = cluster.start()
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    ids = [submit(h) for _ in range(20)]
    for jobid in ids:
        wait_event(h, jobid, "clean")
    assert h.rpc("job-manager.purge", {"num_limit": 0, "force": True}).get()["count"] >= 20
    cluster.crash()         # before a checkpoint could record them
    h = cluster.start()
    assert submit(h) > max(ids)
    cluster.stop()


def test_an_acknowledged_queue_change_survives_a_crash(cluster):
    h = cluster.start()
    h.rpc("job-manager.queue-enable", {"name": "debug", "enable": False,
                                       "reason": "maintenance"}).get()
    h.rpc("job-manager.queue-start", {"name": "debug", "start": False}).get()
    cluster.crash()         # at once: no periodic checkpoint in between
    h = cluster.start()
    status = h.rpc("job-manager.queue-status", {"name": "debug"}).get()
    assert status["enable"] is False and status["disable_reason"] == "maintenance"
    assert status["start"] is False
    cluster.stop()


def test_unreplayable_job_is_moved_to_lost_and_found(cluster):
    h = cluster.start()
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    good = submit(h)
    bad = submit(h, urgency=0)
    wait_event(h, good, "clean")
    wait_event(h, bad, "priority")
    junk = base64.b64encode(b'{"timestamp":1.0,"name":"alloc"}\nnot json\n').decode()
    h.rpc("kvs.commit", {"namespace": "primary", "flags": 0, "ops": [
        {"key": JobID(bad).kvs + ".eventlog", "flags": 0,
         "dirent": {"ver": 1, "type": "val", "data": junk}}]}).get()
    cluster.stop()

    h = cluster.start()
    assert h.rpc("job-manager.stats", {}).get()["restart"]["lost"] == 1
    moved = f"job-lost+found.job.{JobID(bad).f58plain}"
    assert lookup(h, moved + ".eventlog").startswith(b'{"timestamp":1.0,"name":"alloc"}')
    with pytest.raises(FileNotFoundError):
        eventlog(h, bad)
    assert "moved aside" in cluster.dmesg()
    assert names(h, good)[-1] == "clean"
    assert submit(h) > bad
    cluster.stop()


def test_full_replay_without_a_checkpoint(cluster):
    h = cluster.start()
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    done = submit(h)
    wait_event(h, done, "clean")
    pending = submit(h, urgency=0)
    wait_event(h, pending, "priority")
    cluster.stop()
    h = cluster.start()
    h.rpc("kvs.commit", {"namespace": "primary", "flags": 0, "ops": [
        {"key": "checkpoint.job-manager", "flags": 0, "dirent": None}]}).get()
    cluster.crash()          # so no new checkpoint is written at unload

    h = cluster.start()
    stats = h.rpc("job-manager.stats", {}).get()
    assert stats["restart"]["full"] is True
    assert stats["inactive"] == 1 and stats["active"] == 1
    # the purge index was rebuilt: the inactive job can be purged
    assert h.rpc("job-manager.purge", {"ids": [done], "force": True}).get() == {"count": 1}
    # a dependency on an inactive job from before the restart is judged from the KVS
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    other = submit(h)
    wait_event(h, other, "clean")
    cluster.stop()
    h = cluster.start()
    dependent = submit(h, jobspec(deps=[{"scheme": "afterok", "value": str(other)}]))
    wait_event(h, dependent, "clean")
    assert "exception" not in names(h, dependent)
    h.rpc("job-manager.raise", {"id": pending, "severity": 0, "type": "cancel"}).get()
    cluster.stop()


def test_waitable_zombie_survives_a_restart(cluster):
    h = cluster.start()
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    jobid = submit(h, flags=4)
    wait_event(h, jobid, "clean")
    cluster.stop()
    h = cluster.start()
    assert h.rpc("job-manager.wait", {"id": jobid}).get() == \
        {"id": jobid, "success": True, "errstr": ""}
    cluster.stop()


def test_waitable_job_survives_a_crash_before_any_checkpoint(cluster):
    h = cluster.start()
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    jobid = submit(h, flags=4)
    wait_event(h, jobid, "clean")
    # as if no checkpoint had been written yet (a crash in the first seconds)
    h.rpc("kvs.commit", {"namespace": "primary", "flags": 0, "ops": [
        {"key": "checkpoint.job-manager", "flags": 0, "dirent": None}]}).get()
    cluster.crash()
    h = cluster.start()
    assert h.rpc("job-manager.wait", {"id": jobid}).get() == \
        {"id": jobid, "success": True, "errstr": ""}
    cluster.stop()


def test_checkpoint_is_written_periodically_enough_to_skip_old_jobs(cluster):
    h = cluster.start()
    h.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    ids = [submit(h) for _ in range(5)]
    for jobid in ids:
        wait_event(h, jobid, "clean")
    cluster.stop()
    h = cluster.start()
    stats = h.rpc("job-manager.stats", {}).get()
    assert stats["restart"]["replayed"] == 0 and stats["inactive"] == 5
    os.kill(cluster.inst.broker_pids[0], signal.SIGTERM)
    assert cluster.inst.wait() == 0


def test_restart_with_more_jobs_than_the_lookup_window(cluster):
    # in-process lookups are answered inside the call that sends them: the
    # pipelined replay must not recurse once per job
    h = cluster.start()
    futures = [h.rpc("job-ingest.submit", {"jobspec": jobspec(), "urgency": 0, "flags": 0})
               for _ in range(1200)]
    ids = [f.get()["id"] for f in futures]
    cluster.crash()
    h = cluster.start()
    stats = h.rpc("job-manager.stats", {}).get()
    assert stats["restart"]["full"] is True and stats["restart"]["lost"] == 0
    assert stats["active"] == len(ids) and stats["restart"]["replayed"] == len(ids)
    cluster.stop()
