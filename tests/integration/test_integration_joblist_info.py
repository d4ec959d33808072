"""job-info and job-list on real instances, over job directories written straight to the KVS.

Writing the eventlogs ourselves (as flux-core's own job-info tests do with
``flux kvs put``) pins down exactly when each event lands, which is what
the watch-termination rules are about.  Jobs that go through the real
job manager (and job-list, which follows the job manager's journal) are
tested in test_integration_joblist_jobs.py.
"""
from __future__ import annotations

import base64
import errno
import os
import subprocess
import sys
import threading
import time

import orjson
import pytest

import flux.job
from broker.testing import TestInstance
from flux.constants import FLUX_USERID_UNKNOWN
from flux.job.JobID import JobID

T0 = 1700000000.0
SPEC = {"version": 1,
        "resources": [{"type": "slot", "count": 1, "label": "task",
                       "with": [{"type": "core", "count": 1}]}],
        "tasks": [{"command": ["/bin/hostname"], "slot": "task", "count": {"per_slot": 1}}],
        "attributes": {"system": {"duration": 60, "cwd": "/tmp"}}}
R = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0-1"}}],
                                 "nodelist": ["node0"], "starttime": T0, "expiration": T0 + 60}}


def val(data: bytes) -> dict:
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode()}


def line(name: str, t: float, **ctx) -> bytes:
    entry: dict = {"timestamp": T0 + t, "name": name}
    if ctx:
        entry["context"] = ctx
    return orjson.dumps(entry) + b"\n"


def commit(h, ops: list) -> None:
    h.rpc("kvs.commit", {"ops": ops}).get()


def put(key: str, data: bytes) -> dict:
    return {"key": key, "flags": 0, "dirent": val(data)}


def append(key: str, data: bytes) -> dict:
    return {"key": key, "flags": 32, "dirent": val(data)}


class FakeJob:
    """A job directory written by hand: jobspec, eventlog, R, guest logs."""

    def __init__(self, h, jobid: int, userid: int = os.getuid(), spec: dict = SPEC) -> None:
        self.h = h
        self.id = JobID(jobid)
        self.dir = self.id.kvs
        self.t = 0.0
        commit(h, [put(f"{self.dir}.jobspec", orjson.dumps(spec)),
                   put(f"{self.dir}.eventlog",
                       line("submit", 0, userid=userid, urgency=16, flags=0, version=1))])

    def post(self, *names_ctx, path: str = "eventlog") -> None:
        data = b""
        for item in names_ctx:
            name, ctx = (item, {}) if isinstance(item, str) else item
            self.t += 1
            data += line(name, self.t, **ctx)
        commit(self.h, [append(f"{self.dir}.{path}", data)])

    def run_to_completion(self, status: int = 0) -> None:
        self.post("validate", "depend", ("priority", {"priority": 16}))
        commit(self.h, [put(f"{self.dir}.R", orjson.dumps(R))])
        self.post("alloc", "start", ("finish", {"status": status}),
                  ("release", {"ranks": "all", "final": True}), "free", "clean")


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


_next = [1000]


def new_id() -> int:
    _next[0] += 1
    return ((int(time.time() * 1000) % (1 << 40)) << 24) + _next[0]


# -- job-info.lookup ------------------------------------------------------------------------

def test_lookup_strings_json_and_current(h):
    job = FakeJob(h, new_id())
    job.post("validate", ("jobspec-update", {"attributes.system.duration": 120}))
    resp = h.rpc("job-info.lookup", {"id": job.id, "keys": ["jobspec", "eventlog"],
                                     "flags": 0}).get()
    assert orjson.loads(resp["jobspec"]) == SPEC
    assert resp["eventlog"].count("\n") == 3 and resp["id"] == job.id
    decoded = h.rpc("job-info.lookup", {"id": job.id, "keys": ["jobspec"], "flags": 1}).get()
    assert decoded["jobspec"] == SPEC
    current = h.rpc("job-info.lookup", {"id": job.id, "keys": ["jobspec"], "flags": 3}).get()
    assert current["jobspec"]["attributes"]["system"]["duration"] == 120
    as_text = h.rpc("job-info.lookup", {"id": job.id, "keys": ["jobspec"], "flags": 2}).get()
    assert orjson.loads(as_text["jobspec"])["attributes"]["system"]["duration"] == 120


def test_lookup_errors_name_the_problem(h):
    job = FakeJob(h, new_id())
    with pytest.raises(FileNotFoundError, match=r"job ƒ\w+: unknown job"):
        h.rpc("job-info.lookup", {"id": 12345, "keys": ["jobspec"], "flags": 0}).get()
    with pytest.raises(FileNotFoundError, match="key 'R' not found"):
        h.rpc("job-info.lookup", {"id": job.id, "keys": ["R"], "flags": 0}).get()
    with pytest.raises(OSError, match="'keys' must be a non-empty array") as info:
        h.rpc("job-info.lookup", {"id": job.id, "keys": [], "flags": 0}).get()
    assert info.value.errno == errno.EPROTO
    with pytest.raises(OSError, match="unknown flags 8"):
        h.rpc("job-info.lookup", {"id": job.id, "keys": ["R"], "flags": 8}).get()
    with pytest.raises(OSError, match="'id' must be a job id"):
        h.rpc("job-info.lookup", {"id": "x", "keys": ["R"], "flags": 0}).get()


# -- eventlog-watch ---------------------------------------------------------------------------

def watch_names(h, jobid, path="eventlog", timeout=10.0):
    """Names of every event until the stream ends (fails the test if it never ends)."""
    fut = flux.job.event_watch_async(h, jobid, path)
    names = []
    deadline = time.monotonic() + timeout
    while True:
        fut.wait_for(max(0.0, deadline - time.monotonic()))
        event = fut.get_event()
        if event is None:
            return names
        names.append(event.name)


def in_background(fn, *args):
    out: dict = {}

    def run():
        try:
            out["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_watch_main_log_ends_at_clean(inst, h):
    job = FakeJob(h, new_id())
    h2 = inst.handle()
    thread, out = in_background(watch_names, h2, job.id)
    time.sleep(0.2)
    job.run_to_completion()
    thread.join(10)
    assert out.get("value") == ["submit", "validate", "depend", "priority", "alloc", "start",
                                "finish", "release", "free", "clean"], out
    h2.close()
    # an inactive job's log is replayed and ends
    assert watch_names(h, job.id)[-1] == "clean"


def test_watch_exec_log_ends_at_done_not_clean(h):
    job = FakeJob(h, new_id())
    job.post("validate", "depend", ("priority", {"priority": 16}), "alloc")
    job.post("init", "starting", ("complete", {"status": 0}), "done",
             path="guest.exec.eventlog")
    assert watch_names(h, job.id, "guest.exec.eventlog") == \
        ["init", "starting", "complete", "done"]


def test_watch_guest_log_of_a_job_that_never_ran_ends_with_the_job(inst, h):
    job = FakeJob(h, new_id())
    h2 = inst.handle()
    thread, out = in_background(watch_names, h2, job.id, "guest.exec.eventlog")
    time.sleep(0.3)
    assert thread.is_alive()   # waits for the log to be created
    job.post("validate", ("exception", {"type": "cancel", "severity": 0, "note": ""}), "clean")
    thread.join(10)
    assert out.get("value") == [], out
    h2.close()


def test_watch_output_ends_at_all_eof_and_sends_the_tail_at_clean(h):
    job = FakeJob(h, new_id())
    job.post("validate", "depend", ("priority", {"priority": 16}), "alloc", "start")
    job.post(("header", {"version": 1, "count": {"stdout": 2, "stderr": 2},
                         "encoding": {"stdout": "UTF-8", "stderr": "UTF-8"}, "options": {}}),
             ("data", {"stream": "stdout", "rank": "0-1", "data": "hi\n"}),
             ("data", {"stream": "stdout", "rank": "0-1", "eof": True}),
             ("data", {"stream": "stderr", "rank": "0", "eof": True}),
             ("data", {"stream": "stderr", "rank": "1", "eof": True}),
             ("log", {"level": 6, "message": "after the end"}),
             path="guest.output")
    assert watch_names(h, job.id, "guest.output") == ["header", "data", "data", "data", "data"]
    # a log with no terminal entry (header counts never reached) ends with the job
    other = FakeJob(h, new_id())
    other.post("validate", "depend", ("priority", {"priority": 16}), "alloc", "start")
    other.post(("header", {"version": 1, "count": {"stdout": 1}, "encoding": {},
                           "options": {}}), path="guest.output")
    other.post(("finish", {"status": 0}), "free")
    other.post(("data", {"stream": "stdout", "rank": "0", "data": "late"}),
               path="guest.output")
    other.post("clean")
    assert watch_names(h, other.id, "guest.output") == ["header", "data"]


def test_watch_input_ends_at_eof(h):
    job = FakeJob(h, new_id())
    job.post(("header", {"version": 1, "count": {"stdin": 1}, "encoding": {}, "options": {}}),
             ("data", {"stream": "stdin", "rank": "all", "data": "eA=="}),
             ("data", {"stream": "stdin", "rank": "all", "eof": True}),
             path="guest.input")
    assert watch_names(h, job.id, "guest.input") == ["header", "data", "data"]


def test_watch_cancel_ends_the_stream(h):
    job = FakeJob(h, new_id())
    fut = flux.job.event_watch_async(h, job.id)
    assert fut.get_event().name == "submit"
    fut.cancel()
    fut.wait_for(5)
    assert fut.get_event() is None
    # the generic <service>.cancel works too
    fut2 = flux.job.event_watch_async(h, job.id)
    assert fut2.get_event().name == "submit"
    h.rpc("job-info.cancel", {"matchtag": fut2.matchtag}, flags=1)
    fut2.wait_for(5)
    assert fut2.get_event() is None


def test_watch_ends_when_the_job_is_purged(inst, h):
    job = FakeJob(h, new_id())
    h2 = inst.handle()
    thread, out = in_background(watch_names, h2, job.id)
    time.sleep(0.2)
    commit(h, [{"key": job.dir, "flags": 0, "dirent": None}])
    thread.join(10)
    assert out.get("value") == ["submit"], out
    h2.close()


def test_watch_errors(h):
    with pytest.raises(FileNotFoundError, match="unknown job"):
        flux.job.event_watch_async(h, 4242).get_event()
    with pytest.raises(FileNotFoundError, match="unknown job"):
        flux.job.event_watch_async(h, 4242, "guest.output").get_event()
    job = FakeJob(h, new_id())
    with pytest.raises(FileNotFoundError, match="mylog: no such eventlog"):
        flux.job.event_watch_async(h, job.id, "mylog").get_event()
    with pytest.raises(OSError, match="invalid path 'a..b'"):
        flux.job.event_watch_async(h, job.id, "a..b").get_event()
    with pytest.raises(OSError, match="requires the streaming flag"):
        h.rpc("job-info.eventlog-watch", {"id": job.id, "path": "eventlog", "flags": 0}).get()


def test_watch_waitcreate_for_a_job_not_yet_written(inst, h):
    jobid = new_id()
    fut = flux.job.JobEventWatchFuture(h, jobid, "eventlog", flags=1)
    time.sleep(0.2)
    assert not fut.is_ready()
    job = FakeJob(h, jobid)
    assert fut.get_event().name == "submit"
    job.post("validate", "clean")
    assert [fut.get_event().name, fut.get_event().name, fut.get_event()] == \
        ["validate", "clean", None]


def test_watch_disconnect_cleans_up(inst, h):
    job = FakeJob(h, new_id())
    before = h.rpc("kvs-watch.stats", {}).get()["watchers"]
    h2 = inst.handle()
    fut = flux.job.event_watch_async(h2, job.id, "guest.output")
    time.sleep(0.2)
    assert h.rpc("kvs-watch.stats", {}).get()["watchers"] > before
    h2.close()
    deadline = time.monotonic() + 5
    while h.rpc("kvs-watch.stats", {}).get()["watchers"] > before:
        assert time.monotonic() < deadline, "kvs-watch streams left behind"
        time.sleep(0.05)
    del fut


# -- the flux.job API over these ------------------------------------------------------------

def test_event_wait_and_result(h):
    job = FakeJob(h, new_id())
    job.run_to_completion(status=256)
    assert flux.job.event_wait(h, job.id, "start").name == "start"
    with pytest.raises(OSError) as info:
        flux.job.event_wait(h, job.id, "nope")
    assert info.value.errno == errno.ENODATA
    assert "eventlog ended before event='nope'" in str(info.value)
    res = flux.job.result(h, job.id)
    assert (res.result, res.returncode, res.waitstatus) == ("FAILED", 1, 256)
    assert res.t_run == T0 + 4 and res.t_cleanup == T0 + 6
    assert flux.job.result_async(h, job.id).get_dict()["result"] == 2


def test_event_wait_raises_job_exception_unless_told_not_to(h):
    job = FakeJob(h, new_id())
    job.post(("exception", {"type": "test", "severity": 3, "note": "soft"}),
             ("exception", {"type": "cancel", "severity": 0, "note": "stop"}), "clean")
    with pytest.raises(flux.job.JobException) as info:
        flux.job.event_wait(h, job.id, "start")
    assert (info.value.type, info.value.severity, info.value.note) == ("cancel", 0, "stop")
    assert str(info.value) == "job.exception: type=cancel: stop"
    assert flux.job.event_wait(h, job.id, "clean", raiseJobException=False).name == "clean"
    res = flux.job.result(h, job.id)
    assert (res.result, res.returncode) == ("CANCELED", -128)


def test_result_async_then_from_the_reactor(h):
    jobs = [FakeJob(h, new_id()) for _ in range(3)]
    for job in jobs:
        job.run_to_completion()
    got = []

    def done(fut):
        got.append((fut.jobid, fut.get_info().result))

    for job in jobs:
        flux.job.result_async(h, job.id).then(done)
    h.reactor_run()
    assert sorted(got) == sorted((job.id, "COMPLETED") for job in jobs)


def test_event_watch_generator_stops_early_and_cancels(h):
    job = FakeJob(h, new_id())
    job.post("validate", "depend")
    before = h.rpc("kvs-watch.stats", {}).get()["watchers"]
    for event in flux.job.event_watch(h, job.id):
        if event.name == "validate":
            break
    deadline = time.monotonic() + 5
    while h.rpc("kvs-watch.stats", {}).get()["watchers"] > before:
        assert time.monotonic() < deadline
        time.sleep(0.05)


# -- guests -----------------------------------------------------------------------------------

GUEST = """
import os, sys, errno
import flux, flux.core.handle, flux.rpc, flux.constants
import flux.job, flux.job.event, flux.job.list, flux.job.wait, flux.job.info, flux.eventlog
# everything is imported before dropping privileges (root's files may be unreadable)
os.setgid(65534); os.setuid(65534)
h = flux.Flux(sys.argv[1])
mine, other = int(sys.argv[2]), int(sys.argv[3])
print("own", [e.name for e in flux.job.event_watch(h, mine)][-1])
print("lookup", sorted(h.rpc("job-info.lookup", {"id": mine, "keys": ["jobspec"], "flags": 1}).get()))
for what, call in (("watch", lambda: flux.job.event_wait(h, other, "clean")),
                   ("lookup", lambda: h.rpc("job-info.lookup", {"id": other, "keys": ["R"],
                                                              "flags": 0}).get())):
    try:
        call()
        print(what, "allowed")
    except OSError as e:
        print(what, errno.errorcode[e.errno], e.strerror)
# job-list is open to guests (these hand-written jobs are not in its list)
print("list", len(flux.job.job_list(h, 0, [], userid=flux.constants.FLUX_USERID_UNKNOWN).get_jobs()))
"""


def test_guests_see_only_their_own_jobs(tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    (tmp_path / "access.toml").write_text("[access]\nallow-guest-user = true\n")
    os.chmod(tmp_path, 0o755)
    inst = TestInstance(config_path=str(tmp_path)).start()
    try:
        h = inst.handle()
        mine = FakeJob(h, new_id(), userid=65534)
        mine.run_to_completion()
        other = FakeJob(h, new_id(), userid=os.getuid())
        other.run_to_completion()
        out = subprocess.run([sys.executable, "-c", GUEST, inst.uri, str(int(mine.id)),
                              str(int(other.id))], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == "own clean"
        assert lines[1] == "lookup ['id', 'jobspec']"
        assert lines[2].startswith("watch EPERM") and "not your job" in lines[2]
        assert lines[3].startswith("lookup EPERM")
        assert lines[4] == "list 0"
        h.close()
    finally:
        inst.stop()


def test_list_id_of_a_job_dir_that_disappears_ends_with_enoent(h):
    # a directory the job manager never announces (written by hand here):
    # list-id waits for the job, and gives up once the directory is gone
    job = FakeJob(h, new_id())
    fut = flux.job.job_list_id(h, job.id, ["state"])
    time.sleep(0.3)
    assert not fut.is_ready()
    commit(h, [{"key": job.dir, "flags": 0, "dirent": None}])
    with pytest.raises(FileNotFoundError, match="unknown job"):
        fut.wait_for(10)
        fut.get_job()
