"""flux.queue.QueueList / QueueInfo on real instances (anonymous and named queues).

Virtual queues (``parent``) are not accepted by this project's config yet,
so they are tried against a stand-in handle at the end.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import pytest

import flux
from broker.testing import TestInstance
from flux.queue import QueueInfo, QueueList
from flux.resource import ResourceSet
from helpers.live import JOBS_CONF, start_instance, submit1, wait_for

pytestmark = pytest.mark.slow

NAMED_CONF = """
[exec]
test = true
[resource]
noverify = true
monitor-force-up = true
[[resource.config]]
hosts = "node0"
cores = "0-3"
properties = ["batch", "debug"]
[[resource.config]]
hosts = "node1"
cores = "0-3"
properties = ["batch"]
[[resource.config]]
hosts = "node2"
cores = "0-1"
[policy.jobspec.defaults.system]
queue = "batch"
duration = "1h"
[policy.limits]
duration = "8h"
job-size.max.nnodes = 2
[queues.batch]
requires = ["batch"]
[queues.debug]
requires = ["debug"]
[queues.debug.policy.limits]
duration = "10m"
job-size.max.ncores = 2
job-size.min.ncores = 1
[queues.debug.policy.jobspec.defaults.system]
duration = "5m"
[queues.all]
"""


@pytest.fixture(scope="module")
def anon(tmp_path_factory: Any) -> Iterator[TestInstance]:
    inst = start_instance(tmp_path_factory, JOBS_CONF)
    try:
        yield inst
    finally:
        inst.stop()


@pytest.fixture(scope="module")
def named(tmp_path_factory: Any) -> Iterator[TestInstance]:
    inst = start_instance(tmp_path_factory, NAMED_CONF)
    try:
        yield inst
    finally:
        inst.stop()


@pytest.fixture
def handle(request: pytest.FixtureRequest) -> Iterator[Any]:
    inst = request.getfixturevalue(request.param)
    h = flux.Flux(inst.uri)
    try:
        yield h
    finally:
        h.close()


# -- a single anonymous queue ---------------------------------------------------------


@pytest.mark.parametrize("handle", ["anon"], indirect=True)
def test_anonymous_queue(handle: Any) -> None:
    qlist = QueueList(handle)
    queues = list(qlist)
    assert len(queues) == 1 and len(qlist) == 1
    queue = queues[0]
    assert isinstance(queue, QueueInfo)
    assert qlist[""] is queue and qlist[None] is queue
    assert (queue.name, queue.is_default, queue.enabled, queue.started) == ("", True, True, True)
    assert queue.blocked is False and queue.parent is None
    assert queue.defaults.duration == math.inf and queue.defaults.timelimit == math.inf
    assert queue.limits.duration == math.inf and queue.limits.timelimit == math.inf
    assert (queue.limits.min.nnodes, queue.limits.min.ncores, queue.limits.min.ngpus) == (0, 0, 0)
    assert queue.limits.max.nnodes == math.inf and queue.limits.max.ngpus == math.inf
    assert qlist.default_queue == ""


@pytest.mark.parametrize("handle", ["anon"], indirect=True)
def test_anonymous_queue_resources(handle: Any) -> None:
    res = QueueList(handle)[""].resources
    status = handle.rpc("sched.resource-status").get()
    everything = ResourceSet(status["all"])
    assert isinstance(res.all, ResourceSet)
    assert res.all.ncores == everything.ncores > 0 and res.all.nnodes == 1
    assert res.up.ncores == res.all.ncores and res.down.ncores == 0
    assert res.free.ncores == res.all.ncores and res.allocated.ncores == 0
    assert res.all.state == "all" and res.free.state == "free" and res.up.state == "up"
    assert res["free"].ncores == res.free.ncores


@pytest.mark.parametrize("handle", ["anon"], indirect=True)
def test_anonymous_queue_follows_state_and_jobs(anon: TestInstance, handle: Any) -> None:
    handle.rpc("job-manager.queue-enable", {"enable": False, "reason": "maint"}).get()
    handle.rpc("job-manager.queue-start", {"start": False}).get()
    try:
        queue = QueueList(handle)[""]
        assert (queue.enabled, queue.started) == (False, False)
    finally:
        handle.rpc("job-manager.queue-enable", {"enable": True}).get()
        handle.rpc("job-manager.queue-start", {"start": True}).get()
    assert QueueList(handle)[""].enabled is True
    jobid = submit1(anon, "-n1", "--setattr=system.exec.test.run_duration=60s", "sleep", "60")
    wait_for(anon, jobid, "start")
    try:
        res = QueueList(handle)[""].resources
        assert res.allocated.ncores == 1
        assert res.free.ncores == res.all.ncores - 1
    finally:
        flux.job.cancel(handle, jobid)
        wait_for(anon, jobid)


@pytest.mark.parametrize("handle", ["anon"], indirect=True)
def test_anonymous_errors(handle: Any) -> None:
    with pytest.raises(ValueError, match="^No such queue: batch$"):
        QueueList(handle, queues=["batch"])
    qlist = QueueList(handle)
    with pytest.raises(KeyError, match="No such queue: batch"):
        qlist["batch"]
    with pytest.raises(AttributeError, match="No such queue: batch"):
        qlist.batch  # noqa: B018


# -- named queues --------------------------------------------------------------------


@pytest.mark.parametrize("handle", ["named"], indirect=True)
def test_named_queues(handle: Any) -> None:
    qlist = QueueList(handle)
    assert [q.name for q in qlist] == ["batch", "debug", "all"]
    assert qlist.default_queue == "batch"
    assert qlist.batch is qlist["batch"]
    assert qlist["batch"].is_default and not qlist["debug"].is_default
    # named queues start stopped, enabled
    assert all(q.enabled and not q.started for q in qlist)
    assert not any(q.blocked for q in qlist) and all(q.parent is None for q in qlist)
    with pytest.raises(KeyError, match="No anonymous queue"):
        qlist[None]
    with pytest.raises(KeyError, match="No anonymous queue"):
        qlist[""]


@pytest.mark.parametrize("handle", ["named"], indirect=True)
def test_named_queue_policy(handle: Any) -> None:
    qlist = QueueList(handle)
    batch, debug = qlist["batch"], qlist["debug"]
    assert batch.defaults.duration == 3600.0 and debug.defaults.duration == 300.0
    assert batch.limits.duration == 8 * 3600.0 and debug.limits.duration == 600.0
    assert batch.limits.max.nnodes == 2 and debug.limits.max.nnodes == 2
    assert batch.limits.max.ncores == math.inf and debug.limits.max.ncores == 2
    assert batch.limits.min.ncores == 0 and debug.limits.min.ncores == 1


@pytest.mark.parametrize("handle", ["named"], indirect=True)
def test_named_queue_resources_follow_requires(handle: Any) -> None:
    qlist = QueueList(handle)
    batch, debug, every = (qlist[n].resources for n in ("batch", "debug", "all"))
    assert (batch.all.nnodes, batch.all.ncores) == (2, 8)
    assert str(batch.all.nodelist) == "node[0-1]"
    assert (debug.all.nnodes, debug.all.ncores) == (1, 4)
    assert str(debug.free.nodelist) == "node0"
    assert (every.all.nnodes, every.all.ncores) == (3, 10)


@pytest.mark.parametrize("handle", ["named"], indirect=True)
def test_named_queue_state_and_selection(handle: Any) -> None:
    handle.rpc("job-manager.queue-start", {"name": "debug", "start": True}).get()
    handle.rpc("job-manager.queue-enable", {"name": "all", "enable": False}).get()
    try:
        qlist = QueueList(handle, queues=["debug", "all"])
        assert [q.name for q in qlist] == ["debug", "all"]
        assert qlist["debug"].started and not qlist["all"].enabled
        with pytest.raises(KeyError):
            qlist["batch"]
    finally:
        handle.rpc("job-manager.queue-start", {"name": "debug", "start": False}).get()
        handle.rpc("job-manager.queue-enable", {"name": "all", "enable": True}).get()
    with pytest.raises(ValueError, match="^No such queue: nope$"):
        QueueList(handle, queues=["debug", "nope"])


# -- virtual queues, against a stand-in handle ---------------------------------------


class Stub:
    """Answers config.get, job-manager.queue-status and sched.resource-status."""

    def __init__(self, config: dict, status: dict[str, dict], resources: dict) -> None:
        self.config, self.status, self.resources = config, status, resources
        self.topics: list[tuple[str, Any]] = []

    def rpc(self, topic: str, payload: Any = None) -> Any:
        self.topics.append((topic, payload))

        class Done:
            def __init__(self, value: Any = None, errnum: int = 0) -> None:
                self.value, self.errnum = value, errnum

            def get(self) -> Any:
                if self.errnum:
                    raise OSError(self.errnum, "Function not implemented")
                return self.value

        if topic == "config.get":
            return Done(self.config)
        if topic == "job-manager.queue-status":
            return Done(self.status[payload.get("name", "")])
        if topic == "sched.resource-status":
            return Done(self.resources)
        return Done(errnum=38)


def r_of(ranks: str, cores: str, props: dict[str, str]) -> dict:
    return {"version": 1, "execution": {"R_lite": [{"rank": ranks, "children": {"core": cores}}],
                                        "starttime": 0.0, "expiration": 0.0,
                                        "properties": props}}


def test_virtual_queue_uses_parent_resources_and_policy() -> None:
    config = {
        "policy": {"jobspec": {"defaults": {"system": {"queue": "batch"}}}},
        "queues": {
            "batch": {"requires": ["batch"], "policy": {"limits": {"duration": "8h"}}},
            "expedite": {"parent": "batch", "policy": {"limits": {"duration": "1h"}}},
            "standby": {"parent": "batch"},
            "debug": {"requires": ["debug"]},
        },
    }
    status = {"batch": {"enable": True, "start": False},
              "expedite": {"enable": True, "start": True},
              "standby": {"enable": False, "start": True},
              "debug": {"enable": True, "start": True}}
    resources = {"all": r_of("0-3", "0-1", {"batch": "0-2", "debug": "3"}),
                 "allocated": r_of("1", "0", {"batch": "1"}),
                 "down": {"version": 1, "execution": {"R_lite": []}}}
    stub = Stub(config, status, resources)
    qlist = QueueList(stub, queues=["expedite", "debug"])
    expedite = qlist["expedite"]
    assert expedite.parent == "batch" and qlist["debug"].parent is None
    assert expedite.started and expedite.blocked  # its parent is stopped
    assert not qlist["debug"].blocked
    assert expedite.limits.duration == 3600.0
    assert str(expedite.resources.all.ranks) == "0-2"
    assert expedite.resources.allocated.ncores == 1 and expedite.resources.free.ncores == 5
    assert str(qlist["debug"].resources.all.ranks) == "3"
    # the parent's state was asked for, not listed
    assert [q.name for q in qlist] == ["expedite", "debug"]
    assert ("job-manager.queue-status", {"name": "batch"}) in stub.topics
    standby = QueueList(stub)["standby"]
    assert standby.limits.duration == 8 * 3600.0 and not standby.enabled and standby.blocked


class PlainSet:
    """A resource set without copy_constraint: ranks, a properties dict, copy_ranks, diff."""

    def __init__(self, ranks: str, props: dict[str, str] | None = None) -> None:
        from flux.idset import IDset

        self.ranks = IDset(ranks)
        self.properties = {k: IDset(v) for k, v in (props or {}).items()}

    def copy_ranks(self, ranks: Any) -> "PlainSet":
        kept = self.ranks.intersect(ranks)
        return PlainSet(str(kept), {k: str(v.intersect(kept)) for k, v in self.properties.items()})

    def diff(self, other: "PlainSet") -> "PlainSet":
        return self.copy_ranks(self.ranks.difference(other.ranks))


def test_property_filter_without_copy_constraint() -> None:
    from flux.queue import _ResourceViews

    views = _ResourceViews(PlainSet("0-5", {"a": "0-3", "b": "2-5"}), PlainSet("1"),
                           PlainSet("3", {"a": "3"}))
    only_a = views.copy_constraint({"properties": ["a"]})
    assert str(only_a.all.ranks) == "0-3" and str(only_a.up.ranks) == "0,2-3"
    assert str(only_a.free.ranks) == "0,2"
    both = views.copy_constraint({"properties": ["a", "b"]})
    assert str(both.all.ranks) == "2-3"
    not_b = views.copy_constraint({"properties": ["a", "^b"]})
    assert str(not_b.all.ranks) == "0-1" and str(not_b.down.ranks) == "1"
    assert str(views.copy_constraint({"properties": ["zz"]}).all.ranks) == ""
    with pytest.raises(ValueError, match="unsupported queue constraint operator"):
        views.copy_constraint({"hostlist": ["n1"]})
