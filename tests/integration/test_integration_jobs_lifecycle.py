"""The job write path on a real instance: ingest, job manager, test-mode exec, scheduler.

One instance for the module (16 fake cores, jobs opt into test mode with
``attributes.system.exec.test``).  Eventlogs are read straight from the KVS.
"""
from __future__ import annotations

import binascii
import errno
import os
import signal
import time

import orjson
import pytest

from flux.constants import FLUX_RPC_STREAMING
from flux.job.JobID import JobID
from helpers.jobs import eventlog, jobspec, names, start_configured, submit, wait_event

CONFIG = """
[resource]
monitor-force-up = true
noverify = true
[[resource.config]]
hosts = "node[0-3]"
cores = "0-3"
"""

WAITABLE = 4
NOVALIDATE = 8


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


def rpc_error(h, topic, payload):
    with pytest.raises(OSError) as exc:
        h.rpc(topic, payload).get()
    return exc.value


FULL_RUN = ["submit", "validate", "depend", "priority", "alloc", "start", "finish", "release",
            "free", "clean"]


def test_test_mode_job_logs_the_whole_run_in_order(h):
    jobid = submit(h)
    wait_event(h, jobid, "clean")
    events = eventlog(h, jobid)
    assert [e["name"] for e in events] == FULL_RUN
    ctx = {e["name"]: e.get("context") for e in events}
    assert ctx["submit"] == {"userid": os.getuid(), "urgency": 16, "flags": 0, "version": 1}
    assert ctx["priority"] == {"priority": 16}
    assert ctx["finish"] == {"status": 0}
    assert ctx["release"] == {"ranks": "all", "final": True}
    assert "sched" in ctx["alloc"]["annotations"]
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)


def test_debug_flag_logs_each_request_to_the_scheduler(h):
    DEBUG = 2   # submit-request flag; the submit event records it as job flag 1
    jobid = submit(h, flags=DEBUG)
    wait_event(h, jobid, "clean")
    events = eventlog(h, jobid)
    assert events[0]["context"]["flags"] == 1
    seen = [e["name"] for e in events]
    assert seen == (FULL_RUN[:4] + ["debug.alloc-request"] + FULL_RUN[4:8]
                    + ["debug.free-request"] + FULL_RUN[8:])
    plain = submit(h)
    wait_event(h, plain, "clean")
    assert not [n for n in names(h, plain) if n.startswith("debug.")]


def test_R_is_committed_with_the_alloc_event(h):
    from kvs.constants import FLUX_KVS_READDIR, FLUX_KVS_WATCH, FLUX_KVS_WATCH_FULL

    jobid = submit(h, urgency=0)
    wait_event(h, jobid, "priority")
    key = JobID(jobid).kvs
    # one response per root that changed the job's directory
    watch = h.rpc("kvs-watch.lookup", {"key": key, "flags": FLUX_KVS_WATCH | FLUX_KVS_WATCH_FULL
                                       | FLUX_KVS_READDIR}, flags=FLUX_RPC_STREAMING)
    watch.get()
    watch.reset()
    h.rpc("job-manager.urgency", {"id": jobid, "urgency": 16}).get()
    seen = []
    while "clean" not in seen:
        entries = watch.get()["val"]["data"]
        watch.reset()
        log = binascii.a2b_base64(entries["eventlog"]["data"])
        seen = [orjson.loads(line)["name"] for line in log.splitlines()]
        # never R without alloc (or alloc without R): one commit writes both
        assert ("R" in entries) == ("alloc" in seen), seen
    R = orjson.loads(binascii.a2b_base64(entries["R"]["data"]))
    assert R["version"] == 1 and R["execution"]["R_lite"]


def test_submit_writes_jobspec_and_unsigned_J(h):
    spec = jobspec()
    jobid = submit(h, spec)
    key = JobID(jobid).kvs
    stored = orjson.loads(binascii.a2b_base64(
        h.rpc("kvs.lookup", {"key": key + ".jobspec", "flags": 0}).get()["val"]["data"]))
    J = orjson.loads(binascii.a2b_base64(
        h.rpc("kvs.lookup", {"key": key + ".J", "flags": 0}).get()["val"]["data"]))
    assert stored == spec
    assert J["mech"] == "none" and J["version"] == 1 and J["jobspec"] == spec
    assert J["userid"] == eventlog(h, jobid)[0]["context"]["userid"]


def test_job_ids_increase(h):
    ids = [submit(h) for _ in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert h.rpc("job-manager.getinfo", {}).get()["max_jobid"] >= ids[-1]


def test_submissions_in_one_burst_are_all_accepted(h):
    futures = [h.rpc("job-ingest.submit", {"jobspec": jobspec(), "urgency": 16, "flags": 0})
               for _ in range(200)]
    ids = [f.get()["id"] for f in futures]
    assert len(set(ids)) == 200
    wait_event(h, ids[-1], "clean")


def test_bad_jobspec_is_refused_naming_the_problem(h):
    spec = jobspec()
    spec["tasks"][0]["count"] = {"per_slot": 2}
    err = rpc_error(h, "job-ingest.submit", {"jobspec": spec})
    assert err.errno == errno.EINVAL and "invalid jobspec" in err.strerror
    err = rpc_error(h, "job-ingest.submit", {"jobspec": "{oops"})
    assert err.errno == errno.EINVAL and "not valid JSON" in err.strerror
    err = rpc_error(h, "job-ingest.submit", {"urgency": 3})
    assert err.errno == errno.EPROTO


def test_impossible_request_is_accepted_then_fails_alloc(h):
    # as Flux: ingest does not ask the scheduler (unless configured to); the job fails later
    jobid = submit(h, jobspec(ntasks=1000))
    exc = wait_event(h, jobid, "exception")["context"]
    assert exc["type"] == "alloc" and exc["severity"] == 0 and "unsatisfiable" in exc["note"]


def test_novalidate_flag_skips_validation(h):
    spec = jobspec()
    spec["tasks"][0]["count"] = {"per_slot": 2}
    assert rpc_error(h, "job-ingest.submit", {"jobspec": spec}).errno == errno.EINVAL
    jobid = submit(h, spec, flags=NOVALIDATE)
    assert eventlog(h, jobid)[0]["context"]["flags"] == 4


def test_bad_test_mode_settings_get_an_exec_exception(h):
    jobid = submit(h, jobspec(run_duration="soon"))
    wait_event(h, jobid, "clean")
    assert names(h, jobid) == ["submit", "validate", "depend", "priority", "alloc", "exception",
                               "release", "free", "clean"]
    exc = wait_event(h, jobid, "exception")["context"]
    assert exc["type"] == "exec" and exc["severity"] == 0
    assert "attributes.system.exec.test.run_duration" in exc["note"]


def test_run_duration_keeps_the_job_running_until_killed(h):
    jobid = submit(h, jobspec(run_duration="60s"))
    wait_event(h, jobid, "start")
    time.sleep(0.2)
    assert "finish" not in names(h, jobid)
    h.rpc("job-manager.kill", {"id": jobid, "signum": int(signal.SIGUSR1)}).get()
    assert wait_event(h, jobid, "finish")["context"] == {"status": int(signal.SIGUSR1)}
    wait_event(h, jobid, "clean")


def test_short_run_duration_finishes_by_itself(h):
    jobid = submit(h, jobspec(run_duration=0.3))
    start = wait_event(h, jobid, "start")["timestamp"]
    finish = wait_event(h, jobid, "finish")
    assert finish["context"] == {"status": 0}
    assert finish["timestamp"] - start >= 0.25


def test_time_limit_gives_a_timeout_exception(h):
    jobid = submit(h, jobspec(run_duration="60s", duration=0.3))
    exc = wait_event(h, jobid, "exception")["context"]
    assert exc == {"type": "timeout", "severity": 0, "note": "resource allocation expired"}
    assert wait_event(h, jobid, "finish")["context"] == {"status": 9}
    wait_event(h, jobid, "clean")


def test_cancel_running_job_sends_sigterm(h):
    jobid = submit(h, jobspec(run_duration="60s"))
    wait_event(h, jobid, "start")
    h.rpc("job-manager.raise", {"id": jobid, "severity": 0, "type": "cancel",
                                "note": "bye"}).get()
    exc = wait_event(h, jobid, "exception")["context"]
    assert exc["type"] == "cancel" and exc["note"] == "bye" and "userid" in exc
    assert wait_event(h, jobid, "finish")["context"] == {"status": 15}
    wait_event(h, jobid, "clean")


def test_cancel_pending_job_never_allocates(h):
    jobid = submit(h, urgency=0)
    wait_event(h, jobid, "priority")
    h.rpc("job-manager.raise", {"id": jobid, "severity": 0, "type": "cancel"}).get()
    wait_event(h, jobid, "clean")
    assert names(h, jobid) == ["submit", "validate", "depend", "priority", "exception", "clean"]


def test_nonfatal_exception_does_not_stop_the_job(h):
    jobid = submit(h, jobspec(run_duration="60s"))
    wait_event(h, jobid, "start")
    h.rpc("job-manager.raise", {"id": jobid, "severity": 3, "type": "test",
                                "note": "just saying"}).get()
    time.sleep(0.2)
    assert "finish" not in names(h, jobid)
    h.rpc("job-manager.raise", {"id": jobid, "severity": 0, "type": "cancel"}).get()
    wait_event(h, jobid, "clean")


def test_control_of_inactive_and_unknown_jobs_fails(h):
    jobid = submit(h)
    wait_event(h, jobid, "clean")
    for topic, extra in (("job-manager.raise", {"type": "cancel", "severity": 0}),
                         ("job-manager.kill", {"signum": 15}),
                         ("job-manager.urgency", {"urgency": 3})):
        err = rpc_error(h, topic, {"id": jobid, **extra})
        assert (err.errno, err.strerror) == (errno.EINVAL, "job is inactive")
        err = rpc_error(h, topic, {"id": 12345, **extra})
        assert (err.errno, err.strerror) == (errno.ENOENT, "unknown job id")


@pytest.mark.parametrize("topic, payload, errnum, text", [
    ("job-manager.raise", {"id": "x"}, errno.EPROTO, "'id' must be a job id"),
    ("job-manager.raise", {"id": 1, "severity": 9}, errno.EPROTO, "'severity' must be"),
    ("job-manager.raise", {"id": 1, "type": "two words"}, errno.EPROTO, "'type' must be"),
    ("job-manager.raise", {"id": 1, "note": 5}, errno.EPROTO, "'note' must be a string"),
    ("job-manager.kill", {"id": 1, "signum": 99}, errno.EINVAL, "invalid signal number"),
    ("job-manager.urgency", {"id": 1, "urgency": "high"}, errno.EPROTO, "'urgency' must be"),
    ("job-manager.urgency", {"id": 1, "urgency": 40}, errno.EINVAL, "urgency range is [0:31]"),
    ("job-manager.wait", {"id": None}, errno.EPROTO, "'id' must be a job id"),
    ("job-manager.purge", {"num_limit": "many"}, errno.EPROTO, "'num_limit' must be"),
    ("job-manager.purge", {"ids": [-1]}, errno.EPROTO, "'ids' must be an array"),
    ("job-manager.queue-start", {"start": "yes"}, errno.EPROTO, "'start' must be a boolean"),
    ("job-manager.queue-enable", {"enable": True, "name": 3}, errno.EPROTO, "'name' must be"),
    ("job-manager.queue-status", {"name": "nope"}, errno.EINVAL, "no queues are configured"),
    ("job-manager.sched-ready", {"mode": "eager"}, errno.EPROTO, "unknown mode"),
    ("job-manager.submit", {"jobs": [{"id": 1}]}, errno.EPROTO, "jobs[0].userid"),
    ("job-manager.raiseall", {"states": "all"}, errno.EPROTO, "'states' must be"),
])
def test_bad_requests_name_the_problem(h, topic, payload, errnum, text):
    err = rpc_error(h, topic, payload)
    assert err.errno == errnum and text in err.strerror


def test_urgency_hold_then_release(h):
    jobid = submit(h, urgency=0)
    assert wait_event(h, jobid, "priority")["context"] == {"priority": 0}
    time.sleep(0.1)
    assert "alloc" not in names(h, jobid)
    reply = h.rpc("job-manager.urgency", {"id": jobid, "urgency": 31}).get()
    assert reply == {"old_urgency": 0}
    urg = wait_event(h, jobid, "urgency")["context"]
    assert urg["urgency"] == 31
    assert wait_event(h, jobid, "priority", count=2)["context"] == {"priority": 4294967295}
    wait_event(h, jobid, "clean")
    err = rpc_error(h, "job-manager.urgency", {"id": jobid, "urgency": 5})
    assert err.errno == errno.EINVAL


def test_urgency_of_a_running_job_is_refused(h):
    jobid = submit(h, jobspec(run_duration="60s"))
    wait_event(h, jobid, "start")
    err = rpc_error(h, "job-manager.urgency", {"id": jobid, "urgency": 5})
    assert err.errno == errno.EINVAL and "resources are allocated" in err.strerror
    h.rpc("job-manager.raise", {"id": jobid, "severity": 0, "type": "cancel"}).get()
    wait_event(h, jobid, "clean")


def test_wait_for_waitable_jobs(h):
    ok = submit(h, flags=WAITABLE)
    bad = submit(h, jobspec(test=False, command=["/nonexistent/command"]), flags=WAITABLE)
    first = h.rpc("job-manager.wait", {"id": ok}).get()
    assert first == {"id": ok, "success": True, "errstr": ""}
    second = h.rpc("job-manager.wait", {"id": 0xFFFFFFFFFFFFFFFF}).get()
    assert second["id"] == bad and not second["success"]
    assert second["errstr"].startswith("Fatal exception type=exec")
    err = rpc_error(h, "job-manager.wait", {"id": 0xFFFFFFFFFFFFFFFF})
    assert err.errno == errno.ECHILD
    plain = submit(h, jobspec(run_duration="60s"))
    err = rpc_error(h, "job-manager.wait", {"id": plain})
    assert err.errno == errno.EINVAL and "not waitable" in err.strerror
    h.rpc("job-manager.raise", {"id": plain, "severity": 0, "type": "cancel"}).get()


def test_raiseall_and_killall(h):
    held = [submit(h, urgency=0) for _ in range(3)]
    for jobid in held:
        wait_event(h, jobid, "priority")
    dry = h.rpc("job-manager.raiseall", {"dry_run": True, "userid": 0xFFFFFFFF,
                                         "states": 8, "type": "cancel", "severity": 0}).get()
    assert dry["count"] >= 3 and dry["errors"] == 0
    assert "exception" not in names(h, held[0])
    running = submit(h, jobspec(run_duration="60s"))
    wait_event(h, running, "start")
    killed = h.rpc("job-manager.killall", {"userid": 0xFFFFFFFF, "signum": 9}).get()
    assert killed["count"] >= 1
    assert wait_event(h, running, "finish")["context"] == {"status": 9}
    done = h.rpc("job-manager.raiseall", {"userid": 0xFFFFFFFF, "states": 8, "type": "cancel",
                                          "severity": 0, "note": "all of them"}).get()
    assert done["count"] >= 3
    for jobid in held:
        assert wait_event(h, jobid, "exception")["context"]["note"] == "all of them"


def test_journal_backlog_sentinel_and_live_events(h):
    pending = submit(h, urgency=0)
    wait_event(h, pending, "priority")
    journal = h.rpc("job-manager.events-journal", {"full": True}, flags=FLUX_RPC_STREAMING)
    backlog = {}
    while True:
        reply = journal.get()
        journal.reset()
        if reply.get("sentinel"):
            break
        for item in reply["batch"]:
            backlog[item["id"]] = item
    assert [e["name"] for e in backlog[pending]["events"]] == \
        ["submit", "validate", "depend", "priority"]
    assert "jobspec" in backlog[pending]
    jobid = submit(h)
    seen = []
    deadline = time.monotonic() + 10
    while "clean" not in seen and time.monotonic() < deadline:
        for item in journal.get()["batch"]:
            if item["id"] == jobid:
                seen += [e["name"] for e in item["events"]]
                if "alloc" in [e["name"] for e in item["events"]]:
                    assert "R" in item
        journal.reset()
    assert seen == FULL_RUN
    h.rpc("job-manager.raise", {"id": pending, "severity": 0, "type": "cancel"}).get()


def test_purge_removes_inactive_job_directories(h):
    ids = [submit(h) for _ in range(3)]
    for jobid in ids:
        wait_event(h, jobid, "clean")
    assert h.rpc("job-manager.purge", {"ids": ids[:2]}).get() == {"count": 2}
    assert h.rpc("job-manager.purge", {"ids": ids[:2], "force": True}).get() == {"count": 2}
    with pytest.raises(FileNotFoundError):
        eventlog(h, ids[0])
    assert names(h, ids[2])[-1] == "clean"
    err = rpc_error(h, "job-manager.purge", {"ids": [ids[0]], "force": True})
    assert err.errno == errno.ENOENT
    assert err.strerror == f"job {JobID(ids[0]).f58}: id not found"      # flux-core's words
    active = submit(h, urgency=0)
    err = rpc_error(h, "job-manager.purge", {"ids": [active]})
    assert err.errno == errno.EINVAL
    assert err.strerror == f"cannot purge active job {JobID(active).f58}"
    h.rpc("job-manager.raise", {"id": active, "severity": 0, "type": "cancel"}).get()
    wait_event(h, active, "clean")
    count = h.rpc("job-manager.purge", {"num_limit": 0}).get()["count"]
    assert count >= 2
    assert h.rpc("job-manager.purge", {"num_limit": 0, "force": True}).get()["count"] == count
    assert h.rpc("job-manager.stats", {}).get()["inactive"] == 0


def test_job_manager_refuses_jobs_for_a_queue_disabled_after_ingest(h):
    jobid = 98765
    entry = {"id": jobid, "userid": os.getuid(), "urgency": 16, "flags": 0,
             "t_submit": time.time(), "jobspec": jobspec()}
    h.rpc("job-manager.queue-enable", {"enable": False, "reason": "closing"}).get()
    try:
        reply = h.rpc("job-manager.submit", {"jobs": [entry]}).get()
    finally:
        h.rpc("job-manager.queue-enable", {"enable": True}).get()
    assert reply == {"errors": [[jobid, errno.EINVAL, "job submission is disabled: closing"]]}
    with pytest.raises(FileNotFoundError):        # nothing of it was written
        eventlog(h, jobid)
    live = submit(h, urgency=0)
    dup = dict(entry, id=live)
    reply = h.rpc("job-manager.submit", {"jobs": [dup]}).get()
    assert reply["errors"][0][:2] == [live, errno.EEXIST]
    assert names(h, live)[0] == "submit"            # an existing job is left alone
    h.rpc("job-manager.raise", {"id": live, "severity": 0, "type": "cancel"}).get()


def test_job_manager_writes_the_jobs_it_accepts(h):
    # a client that is not ingest (no encodings in the entry): the job manager
    # writes jobspec, J and the eventlog from submit on, and answers once durable
    jobid = 98766
    spec = jobspec()
    entry = {"id": jobid, "userid": os.getuid(), "urgency": 0, "flags": 0,
             "t_submit": time.time(), "jobspec": spec}
    assert h.rpc("job-manager.submit", {"jobs": [entry]}).get() == {}
    assert names(h, jobid) == ["submit", "validate", "depend", "priority"]
    key = JobID(jobid).kvs
    J = orjson.loads(binascii.a2b_base64(
        h.rpc("kvs.lookup", {"key": key + ".J", "flags": 0}).get()["val"]["data"]))
    assert J == {"version": 1, "mech": "none", "userid": os.getuid(), "jobspec": spec}
    h.rpc("job-manager.raise", {"id": jobid, "severity": 0, "type": "cancel"}).get()
    wait_event(h, jobid, "clean")
    # an inactive job's id is taken too
    reply = h.rpc("job-manager.submit", {"jobs": [entry]}).get()
    assert reply["errors"][0][:2] == [jobid, errno.EEXIST]
    assert names(h, jobid)[-1] == "clean"
