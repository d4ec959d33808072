"""flux.resource as user scripts call it, on real instances (python-api.md: flux.resource).

resource_list (resource.sched-status, $FLUX_RESOURCE_LIST_RPC, the ENOSYS fallback to
sched.resource-status, then-callbacks), resource_status (resource.status + the allocated
ranks), ResourceJournalConsumer (resource.journal: history, since, sentinel, live events,
callbacks, stop, other ranks), and the services behind them.  Error paths check type,
errno and text."""
from __future__ import annotations

import errno
import json
import os
import time

import pytest

import flux
import flux.job
from broker.testing import TestInstance
from flux.constants import FLUX_RPC_STREAMING
from flux.future import FutureExt
from flux.idset import IDset
from flux.job import JobspecV1
from flux.resource import (
    DrainInfo,
    ResourceJournalConsumer,
    ResourceJournalEvent,
    ResourceSet,
    ResourceStatus,
    SchedResourceList,
    resource_list,
    resource_status,
)
from flux.resource.list import ResourceListRPC
from helpers.live import start_instance

T = 30.0

CONFIG = """
[exec]
test = true
[resource]
monitor-force-up = true
exclude = "fluke6"
[[resource.config]]
hosts = "fluke[6-9]"
cores = "0-3"
properties = ["batch"]
[[resource.config]]
hosts = "fluke[10-11]"
cores = "0-3"
gpus = "0"
properties = ["debug"]
[queues.batch]
requires = ["batch"]
[queues.debug]
requires = ["debug"]
[policy.jobspec.defaults.system]
queue = "batch"
"""


def wait_for(predicate, timeout=T):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, CONFIG, "resource.toml")
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def h(inst):
    handle = flux.Flux(inst.uri)
    # named queues start stopped
    handle.rpc("job-manager.queue-start", {"all": True, "start": True}).get()
    yield handle
    handle.close()


@pytest.fixture
def drained(h):
    """Ranks a test drains are undrained after it."""
    ranks: list[str] = []
    yield ranks
    for target in ranks:
        h.rpc("resource.undrain", {"targets": target, "force": True}, nodeid=0).get()


def run_job(h, nodes: int = 1, queue: str = "batch", run: str = "60s") -> flux.job.JobID:
    """A test-mode job holding NODES whole nodes until it is cancelled."""
    js = JobspecV1.from_command(["sleep", "60"], num_nodes=nodes, num_tasks=nodes,
                                cores_per_task=4)
    js.setattr("system.exec.test.run_duration", run)
    js.setattr("system.queue", queue)
    jobid = flux.job.submit(h, js)
    flux.job.event_wait(h, jobid, "start")
    return jobid


def finish(h, jobid) -> None:
    flux.job.cancel(h, jobid)
    flux.job.event_wait(h, jobid, "clean", raiseJobException=False)


# -- resource_list ----------------------------------------------------------------------------

def test_resource_list_all_down_allocated_up_free(h):
    f = resource_list(h)
    assert isinstance(f, ResourceListRPC) and isinstance(f, FutureExt)
    assert f.topic == "resource.sched-status"
    rl = f.get()
    assert isinstance(rl, SchedResourceList)
    # the excluded rank 0 (fluke6) is not the scheduler's
    assert rl.all.dumps() == "rank[1-3]/core[0-3] rank[4-5]/core[0-3],gpu0"
    assert str(rl.all.nodelist) == "fluke[7-11]"
    assert (rl.down.nnodes, rl.allocated.nnodes) == (0, 0)
    assert rl["up"].dumps() == rl.all.dumps() and rl.free.ncores == 20
    assert [rl[s].state for s in ("all", "down", "allocated", "up", "free")] == \
        ["all", "down", "allocated", "up", "free"]
    assert json.loads(rl.all.get_properties()) == {"batch": "1-3", "debug": "4-5"}


def test_resource_list_sees_jobs_and_drained_nodes(h, drained):
    jobid = run_job(h, nodes=2)
    try:
        h.rpc("resource.drain", {"targets": "fluke11", "reason": "fan"}, nodeid=0).get()
        drained.append("5")
        rl = resource_list(h).get()
        assert rl.allocated.nnodes == 2 and rl.allocated.ncores == 8
        assert rl.allocated.properties == "batch"       # properties of the allocated ranks
        assert rl.down.dumps() == "rank5/core[0-3],gpu0"
        assert rl.up.nnodes == 4
        assert rl.free.dumps() == "rank3/core[0-3] rank4/core[0-3],gpu0"
        rl.filter("fluke[10-11]")
        assert (rl.all.nnodes, rl.free.nnodes, rl.down.nnodes) == (2, 1, 1)
        debug = resource_list(h).get().copy_constraint({"properties": ["debug"]})
        assert (debug.all.nnodes, debug.allocated.nnodes, debug.free.nnodes) == (2, 0, 1)
    finally:
        finish(h, jobid)
    wait_for(lambda: resource_list(h).get().allocated.nnodes == 0)


def test_resource_list_then_callback(h):
    got = []

    def cb(future, tag, key=None):
        got.append((future.get(), tag, key))
        h.reactor_stop()

    resource_list(h).then(cb, "a", key="b")
    h.reactor_run()
    (rl, tag, key), = got
    assert isinstance(rl, SchedResourceList) and (tag, key) == ("a", "b")
    assert rl.all.nnodes == 5


def test_resource_list_rpc_topic_from_the_environment(h, monkeypatch):
    monkeypatch.setenv("FLUX_RESOURCE_LIST_RPC", "sched.resource-status")
    f = resource_list(h)
    assert f.topic == "sched.resource-status"
    assert f.get().all.nnodes == 5


def test_resource_list_falls_back_to_the_scheduler_on_enosys(h, monkeypatch):
    monkeypatch.setenv("FLUX_RESOURCE_LIST_RPC", "nosuch.sched-status")
    assert resource_list(h).get().all.dumps() == \
        "rank[1-3]/core[0-3] rank[4-5]/core[0-3],gpu0"
    # and the same through a continuation
    got = []
    resource_list(h).then(lambda f: (got.append(f.get()), h.reactor_stop()))
    h.reactor_run()
    assert got[0].free.nnodes == 5


def test_resource_list_error_is_the_services(h, monkeypatch):
    # a service that answers with an error: its errno and text, no fallback
    monkeypatch.setenv("FLUX_RESOURCE_LIST_RPC", "resource.undrain")
    with pytest.raises(OSError) as info:
        resource_list(h).get()
    direct = h.rpc("resource.undrain", nodeid=0)
    with pytest.raises(OSError) as want:
        direct.get()
    assert (info.value.errno, info.value.strerror) == (want.value.errno, want.value.strerror)
    assert info.value.errno != errno.ENOSYS


def test_resource_list_needs_a_handle():
    with pytest.raises(OSError) as info:
        resource_list(None)
    assert info.value.errno == errno.EINVAL


def test_sched_status_service_shape(h, inst):
    resp = h.rpc("resource.sched-status", nodeid=0).get()
    assert set(resp) == {"all", "down", "allocated"}
    for R in resp.values():
        assert R["version"] == 1 and "scheduling" not in R
    assert ResourceSet(resp["all"]).ranks == IDset("1-5")
    assert ResourceSet(resp["allocated"]).nnodes == 0


# -- resource_status ------------------------------------------------------------------------

def test_resource_status_states(h, drained):
    rs = resource_status(h).get()
    assert isinstance(rs, ResourceStatus)
    assert (str(rs.all), str(rs.avail), str(rs.exclude), str(rs.online), str(rs.offline)) == \
        ("0-5", "1-5", "0", "0-5", "")
    assert str(rs.nodelist) == "fluke[6-11]"
    assert rs.drain_info == [] and rs["drained"] == IDset()
    jobid = run_job(h, nodes=1)
    try:
        h.rpc("resource.drain", {"targets": "1-2", "reason": "bad fan"}, nodeid=0).get()
        drained.append("1-2")
        rs = resource_status(h).get()
        busy = rs.allocated
        assert len(busy) == 1 and busy.first() in (1, 2, 3)
        assert rs.draining == busy.intersect("1-2")
        assert rs.drained == IDset("1-2") - busy
        assert rs.avail == IDset("1-5") - IDset("1-2")
        assert rs.get_idset("drained", "draining") == IDset("1-2")
        info = rs.get_drain_info(2)
        assert isinstance(info, DrainInfo) and info.ranks == IDset("1-2")
        assert info.reason == "bad fan" and abs(info.timestamp - time.time()) < 60
        assert rs.get_drain_info(4) is None
        with pytest.raises(ValueError, match="invalid rank 17"):
            rs.get_drain_info(17)
        rs.filter("fluke[8-9]")
        assert (str(rs.all), str(rs.get_idset("drained", "draining")), str(rs.avail)) == \
            ("2-3", "2", "3")
    finally:
        finish(h, jobid)


def test_resource_status_without_a_scheduler_has_nothing_allocated(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "r.toml").write_text('[resource]\nmonitor-force-up = true\n'
                                 '[[resource.config]]\nhosts = "n[0-1]"\ncores = "0"\n')
    inst = TestInstance(config_path=str(conf)).start()
    try:
        h = flux.Flux(inst.uri)
        assert inst.flux("module", "remove", "sched").returncode == 0
        rs = resource_status(h).get()
        assert (str(rs.all), str(rs.allocated), str(rs.avail)) == ("0-1", "", "0-1")
        # resource.sched-status answers without a scheduler: nothing allocated
        rl = resource_list(h).get()
        assert (rl.all.nnodes, rl.allocated.nnodes, rl.free.nnodes) == (2, 0, 2)
        h.close()
    finally:
        inst.stop()


def test_resource_status_error_is_resource_status_s(tmp_path):
    inst = TestInstance().start()
    try:
        h = flux.Flux(inst.uri)
        assert inst.flux("module", "remove", "resource").returncode == 0
        with pytest.raises(OSError) as info:
            resource_status(h).get()
        assert info.value.errno == errno.ENOSYS
        h.close()
    finally:
        inst.stop()


# -- ResourceJournalConsumer ---------------------------------------------------------------

def history(h, **kwargs) -> list[ResourceJournalEvent]:
    consumer = ResourceJournalConsumer(h, include_sentinel=True, **kwargs).start()
    events = []
    while True:
        event = consumer.poll(timeout=T)
        if event.is_empty():
            break
        events.append(event)
    consumer.stop()
    assert consumer.poll(timeout=T) is None
    return events


def test_journal_history_in_order_with_R_on_resource_define(h):
    events = history(h)
    names = [e.name for e in events]
    assert names[:3] == ["restart", "resource-define", "resource-update"] or \
        names[:2] == ["restart", "resource-define"]
    assert "exclude" in names and "online" in names
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    define = next(e for e in events if e.name == "resource-define")
    assert define.context["method"] == "config"
    assert ResourceSet(define.R).nnodes == 6 and str(ResourceSet(define.R).nodelist) == \
        "fluke[6-11]"
    assert all(e.R is None for e in events if e.name != "resource-define")
    assert isinstance(str(events[-1]), str) and f"{events[0].timestamp:<0.5f}" in str(events[0])


def test_journal_since_resumes_after_an_event(h):
    events = history(h)
    assert len(events) >= 3
    later = history(h, since=events[1].timestamp)
    assert later[:len(events) - 2] == events[2:]


def test_journal_live_events_after_history(h):
    consumer = ResourceJournalConsumer(h).start()
    while True:     # no sentinel: the history ends when poll would wait
        try:
            consumer.poll(timeout=0.5)
        except TimeoutError:
            break
    h.rpc("resource.drain", {"targets": "4", "reason": "live"}, nodeid=0).get()
    h.rpc("resource.undrain", {"targets": "4"}, nodeid=0).get()
    drain = consumer.poll(timeout=T)
    undrain = consumer.poll(timeout=T)
    assert (drain.name, drain.context["idset"], drain.context["reason"]) == ("drain", "4", "live")
    assert undrain.name == "undrain" and undrain.timestamp > drain.timestamp
    consumer.stop()
    assert consumer.poll(timeout=T) is None


def test_journal_callback_with_args_and_sentinel(h):
    seen = []

    def cb(event, arg, kw=None):
        seen.append((event, arg, kw))
        if event is None:
            h.reactor_stop()
        elif event.is_empty():
            consumer.stop()

    consumer = ResourceJournalConsumer(h, include_sentinel=True)
    consumer.set_callback(cb, 42, kw="foo")       # before start
    consumer.start()
    h.reactor_run()
    assert seen[-1] == (None, 42, "foo")
    assert seen[-2][0] == ResourceJournalConsumer.SENTINEL_EVENT and seen[-2][0].is_empty()
    assert seen[0][0].name == "restart"
    assert str(ResourceJournalConsumer.SENTINEL_EVENT).endswith("End of historical data stream")


def test_journal_event_after_history_via_callback(h):
    names = []

    def cb(event):
        if event is None:
            h.reactor_stop()
            return
        if event.is_empty():
            h.rpc("resource.drain", {"targets": "3", "reason": "history-test"}, nodeid=0).get()
        elif event.name == "drain" and event.context.get("reason") == "history-test":
            names.append("drain")
            h.rpc("resource.undrain", {"targets": "3"}, nodeid=0).get()
        elif names and event.name == "undrain":
            names.append("undrain")
            consumer.stop()

    consumer = ResourceJournalConsumer(h, include_sentinel=True).set_callback(cb).start()
    h.reactor_run()
    assert names == ["drain", "undrain"]


def test_journal_poll_errors(h):
    with pytest.raises(RuntimeError, match="poll\\(\\) called before start\\(\\)"):
        ResourceJournalConsumer(h).poll(5.0)
    consumer = ResourceJournalConsumer(h).start()
    with pytest.raises(TimeoutError):
        while True:
            consumer.poll(timeout=0.2)
    consumer.stop()
    assert consumer.poll(timeout=T) is None
    with pytest.raises(OSError) as info:
        ResourceJournalConsumer(None)
    assert info.value.errno == errno.EINVAL


def test_journal_service_needs_the_streaming_flag(h):
    with pytest.raises(OSError) as info:
        h.rpc("resource.journal", {}, nodeid=0).get()
    assert info.value.errno == errno.EPROTO


def test_journal_raw_protocol_and_cancel(h):
    rpc = h.rpc("resource.journal", {}, nodeid=0, flags=FLUX_RPC_STREAMING)
    sizes = []
    while True:
        resp = rpc.get()
        rpc.reset()
        sizes.append(len(resp["events"]))
        if "R" in resp:
            assert resp["events"][0]["name"] == "resource-define"
        if not resp["events"]:
            break
    assert set(sizes[:-1]) == {1}
    h.rpc("resource.journal-cancel", {"matchtag": rpc.matchtag}, nodeid=0,
          flags=flux.constants.FLUX_RPC_NORESPONSE)
    with pytest.raises(OSError) as info:
        rpc.get()
    assert info.value.errno == errno.ENODATA


def test_journal_and_sched_status_from_another_rank(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    os.chmod(tmp_path, 0o755)
    (conf / "x.toml").write_text("[exec]\ntest = true\n")
    inst = TestInstance(size=2, config_path=str(conf)).start()
    try:
        h0 = flux.Flux(inst.uri)
        wait_for(lambda: h0.rpc("resource.status", {}).get()["online"] == "0-1")
        h1 = flux.Flux("local://" + os.path.join(inst.rundir, "1", "local"))
        assert h1.get_rank() == 1
        consumer = ResourceJournalConsumer(h1, include_sentinel=True).start()
        names = []
        while not (event := consumer.poll(timeout=T)).is_empty():
            names.append(event.name)
        assert names[0] == "restart" and "resource-define" in names
        h0.rpc("resource.drain", {"targets": "1", "reason": "r1"}).get()
        event = consumer.poll(timeout=T)
        assert (event.name, event.context["reason"]) == ("drain", "r1")
        consumer.stop()         # resource.journal-cancel to rank 1, which ends its relay
        assert consumer.poll(timeout=T) is None
        rl = resource_list(h1).get()
        assert (rl.all.nnodes, rl.down.nnodes) == (2, 1)
        rs = resource_status(h1).get()
        assert str(rs.drained) == "1"
        h1.close()
        h0.close()
    finally:
        inst.stop()


def test_journal_history_after_a_restart(tmp_path):
    statedir = tmp_path / "state"
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "r.toml").write_text('[resource]\nmonitor-force-up = true\n'
                                 '[[resource.config]]\nhosts = "n[0-1]"\ncores = "0"\n')
    inst = TestInstance(config_path=str(conf), setattrs=[f"statedir={statedir}"]).start()
    try:
        h = flux.Flux(inst.uri)
        h.rpc("resource.drain", {"targets": "1", "reason": "before"}).get()
        h.close()
    finally:
        assert inst.stop() == 0
    inst = TestInstance(config_path=str(conf), setattrs=[f"statedir={statedir}"]).start()
    try:
        h = flux.Flux(inst.uri)
        events = history(h)
        names = [e.name for e in events]
        # the first run's events come too, but only this run's resource-define (with R)
        assert names.count("restart") == 2 and names.count("resource-define") == 1
        assert names.index("drain") < names.index("resource-define")
        assert [e for e in events if e.name == "drain"][0].context["reason"] == "before"
        assert ResourceSet(events[names.index("resource-define")].R).nnodes == 2
        h.close()
    finally:
        inst.stop()


def test_R_file_keeps_its_scheduling_key(tmp_path):
    R = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0-1"}}],
                                     "nodelist": ["n0"]},
         "scheduling": {"writer": "test", "graph": {"nodes": []}}}
    path = tmp_path / "R.json"
    path.write_text(json.dumps(R))
    conf = tmp_path / "conf"
    conf.mkdir()
    os.chmod(tmp_path, 0o755)
    (conf / "r.toml").write_text(f'[resource]\npath = "{path}"\nmonitor-force-up = true\n')
    inst = TestInstance(config_path=str(conf)).start()
    try:
        h = flux.Flux(inst.uri)
        stored = json.loads(inst.flux("kvs", "get", "resource.R").stdout)
        assert stored["scheduling"] == R["scheduling"]
        assert ResourceSet(stored, keep_scheduling=True).impl.scheduling == R["scheduling"]
        assert "scheduling" not in h.rpc("resource.sched-status").get()["all"]
        h.close()
    finally:
        inst.stop()
