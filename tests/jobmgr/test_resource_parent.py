"""A child instance's R and expiration from its parent job: the pure parts
(jobmgr/resource/parent.py) and the resource module driven in-process with a
stand-in for the parent instance."""
from __future__ import annotations

import asyncio
import errno

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jobmgr.resource.module as resource_module
from flux.errors import FluxError
from flux.idset import IDset
from flux.job import JobID
from flux.resource import ResourceSet
from helpers.module_testing import FakeContext, FakeKvs, settle
from jobmgr.resource.module import CHECKPOINT_KEY, EVENTLOG_KEY, R_KEY, Resource
from jobmgr.resource.parent import (
    ParentJob,
    R_from_lookup,
    parent_job,
    renumber_R,
    update_expiration,
)

T0 = 1_700_000_000.0
JOBID = JobID(4982833152)


def job_R(ranks="3,7", cores="2-3", gpus=None, hosts="a,b", props=None, expiration=T0 + 600):
    execution = {"R_lite": [{"rank": ranks, "children": {"core": cores,
                                                         **({"gpu": gpus} if gpus else {})}}],
                 "nodelist": [hosts], "starttime": T0, "expiration": expiration}
    if props:
        execution["properties"] = props
    return {"version": 1, "execution": execution}


# -- renumbering --------------------------------------------------------------------------

def test_renumber_maps_ranks_in_order_and_keeps_everything_else():
    R = {"version": 1, "execution": {
        "R_lite": [{"rank": "3", "children": {"core": "0-1", "gpu": "0"}},
                   {"rank": "7", "children": {"core": "4-7"}}],
        "nodelist": ["fluke[3,7]"], "properties": {"big": "7", "gpuhost": "3"},
        "starttime": T0, "expiration": T0 + 60},
        "scheduling": {"graph": "in the parent's numbering"}}
    out = renumber_R(R)
    assert out["execution"]["R_lite"] == [
        {"rank": "0", "children": {"core": "0-1", "gpu": "0"}},
        {"rank": "1", "children": {"core": "4-7"}}]
    assert out["execution"]["nodelist"] == ["fluke[3,7]"]
    assert out["execution"]["properties"] == {"big": "1", "gpuhost": "0"}
    assert (out["execution"]["starttime"], out["execution"]["expiration"]) == (T0, T0 + 60)
    assert "scheduling" not in out
    rs = ResourceSet(out)
    assert [rs.hostname(r) for r in rs.ranks] == ["fluke3", "fluke7"]
    assert R["execution"]["R_lite"][0]["rank"] == "3"        # the input is left alone


def test_renumber_accepts_json_text_and_rejects_bad_R():
    assert renumber_R(orjson.dumps(job_R()))["execution"]["R_lite"][0]["rank"] == "0-1"
    with pytest.raises(ValueError, match="invalid R"):
        renumber_R({"version": 1, "execution": {"R_lite": [{"rank": "x"}]}})


@st.composite
def resource_sets(draw):
    ranks = sorted(draw(st.sets(st.integers(0, 200), min_size=1, max_size=12)))
    rs = ResourceSet()
    for rank in ranks:
        cores = draw(st.sets(st.integers(0, 31), min_size=1, max_size=6))
        gpus = draw(st.sets(st.integers(0, 7), max_size=3))
        rs.add_rank(rank, f"node{rank}", cores=IDset(cores), gpus=IDset(gpus) if gpus else None)
    for name in draw(st.sets(st.sampled_from(["big", "debug", "ssd"]), max_size=3)):
        rs.set_property(name, IDset(draw(st.sets(st.sampled_from(ranks), min_size=1))))
    rs.starttime = T0
    rs.expiration = draw(st.sampled_from([0.0, T0 + 1, T0 + 3600.5]))
    return rs


@given(resource_sets())
def test_renumbered_rank_i_is_the_ith_parent_rank(old):
    new = ResourceSet(renumber_R(old.to_dict()))
    olds = list(old.ranks)
    assert list(new.ranks) == list(range(len(olds)))
    for i, rank in enumerate(olds):
        assert new.hostname(i) == old.hostname(rank)
        assert {k: v.encode() for k, v in new.children(i).items()} == \
            {k: v.encode() for k, v in old.children(rank).items()}
    assert {n: [olds[i] for i in ids] for n, ids in new.property_ranks().items()} == \
        {n: list(ids) for n, ids in old.property_ranks().items()}
    assert (new.starttime, new.expiration) == (old.starttime, old.expiration)
    # renumbering an R already numbered 0..n-1 changes nothing
    assert renumber_R(new.to_dict()) == new.to_dict()


# -- the lookup response, the eventlog watch, the attributes -----------------------------

def test_R_from_lookup_takes_a_string_or_an_object_and_counts_the_eventlog():
    R = job_R()
    log = '{"timestamp":1,"name":"submit","context":{}}\n{"timestamp":2,"name":"alloc"}\n'
    assert R_from_lookup({"id": 1, "R": orjson.dumps(R).decode(), "eventlog": log}) == (R, 2)
    assert R_from_lookup({"id": 1, "R": R}) == (R, 0)
    for bad, text in (({"id": 1}, "no R"), ({"R": "{nope"}, "not JSON"),
                      ({"R": "[1]"}, "must be an object")):
        with pytest.raises(ValueError, match=text):
            R_from_lookup(bad)


def test_update_expiration_reads_resource_update_entries_only():
    line = '{"timestamp":5.0,"name":"resource-update","context":{"expiration":1234.5}}\n'
    assert update_expiration({"event": line}) == 1234.5
    assert update_expiration({"event": orjson.loads(line)}) == 1234.5
    for resp in ({"event": '{"timestamp":5.0,"name":"alloc","context":{}}\n'},
                 {"event": '{"timestamp":5.0,"name":"resource-update","context":{}}\n'},
                 {"event": '{"name":"resource-update","context":{"expiration":"soon"}}'},
                 {"event": '{"name":"resource-update","context":{"expiration":-1}}'},
                 {"event": "garbage"}, {}, None):
        assert update_expiration(resp) is None


def test_parent_job_needs_both_attributes_and_reads_any_jobid_encoding():
    jobid = JOBID
    attrs = {"parent-uri": "local:///tmp/x/local", "jobid": jobid.f58}
    assert parent_job(attrs.get) == ParentJob("local:///tmp/x/local", int(jobid))
    assert parent_job({**attrs, "jobid": str(int(jobid))}.get).jobid == int(jobid)
    assert parent_job({"jobid": jobid.f58}.get) is None
    assert parent_job({"parent-uri": "local:///x"}.get) is None
    with pytest.raises(ValueError, match="jobid attribute 'bogus'"):
        parent_job({**attrs, "jobid": "bogus"}.get)


# -- the module, with a stand-in parent ---------------------------------------------------

class ParentInstance:
    """A parent instance's job-info, as the module's AsyncFlux sees it."""

    def __init__(self, R, jobid=JOBID):
        self.R = R
        self.jobid = int(jobid)
        self.f58 = JobID(jobid).f58
        self.log = ['{"timestamp":1.0,"name":"submit","context":{"userid":1}}\n',
                    '{"timestamp":2.0,"name":"alloc","context":{}}\n']
        self.new: asyncio.Queue = asyncio.Queue()
        self.requests: list[tuple[str, dict]] = []
        self.refuse: OSError | None = None
        self.closed = 0
        self.watching = asyncio.Event()

    # what the module imports as AsyncFlux
    async def connect(self, uri):
        if self.refuse is not None:
            raise self.refuse
        return self

    async def rpc(self, topic, payload=None, nodeid=None):
        self.requests.append((topic, payload))
        assert topic == "job-info.lookup" and payload["id"] == self.jobid
        return {"id": self.jobid, "R": orjson.dumps(self.R).decode(),
                "eventlog": "".join(self.log)}

    async def _watch(self):
        for line in list(self.log):
            yield {"event": line}
        self.watching.set()
        while True:
            item = await self.new.get()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            self.log.append(item)
            yield {"event": item}

    def rpc_stream(self, topic, payload=None, nodeid=None):
        self.requests.append((topic, payload))
        return self._watch()

    def close(self):
        self.closed += 1

    def post_update(self, expiration):
        self.new.put_nowait(orjson.dumps({"timestamp": 9.0, "name": "resource-update",
                                          "context": {"expiration": expiration}}).decode()
                            + "\n")


class ChildContext(FakeContext):
    def __init__(self, attrs, **kw):
        super().__init__(**kw)
        self.attrs = attrs

    def attr_get_default(self, name, default=None):
        return self.attrs.get(name, default)


class Child:
    """Rank 0's resource module of an instance of SIZE brokers that is PARENT's job."""

    def __init__(self, monkeypatch, parent, size=2, kvs=None, config=None):
        monkeypatch.setattr(resource_module, "AsyncFlux", parent)
        self.parent = parent
        attrs = {"parent-uri": "local:///parent/local", "jobid": parent.f58}
        self.ctx = ChildContext(attrs, rank=0, size=size,
                                config=config if config is not None else {})
        self.kvs = (kvs or FakeKvs()).install(self.ctx)

        async def monitor(payload, nodeid):
            yield {"rank": nodeid, "hostname": "ignored", "cores": "0-63"}
            await asyncio.Event().wait()

        self.ctx.stream_handlers["resource.monitor"] = monitor
        self.mod = Resource(self.ctx, [])

    async def start(self):
        await self.mod.start()
        await settle(10)
        return self

    async def stop(self):
        await self.mod.stop()
        await self.ctx.close()

    def events(self):
        return [orjson.loads(line) for line in self.kvs.data[EVENTLOG_KEY].splitlines()]

    def R(self):
        return orjson.loads(self.kvs.data[R_KEY])

    def status(self):
        return self.ctx.replies(self.ctx.request(self.mod, "resource.status", {}))[0].payload


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_a_child_takes_the_jobs_R_renumbered_with_method_job_info(monkeypatch):
    async def main():
        parent = ParentInstance(job_R(gpus="0", props={"big": "7"}))
        child = await Child(monkeypatch, parent).start()
        lookup = parent.requests[0]
        assert lookup == ("job-info.lookup", {"id": parent.jobid, "keys": ["R", "eventlog"],
                                              "flags": 2})
        R = child.R()
        assert R["execution"]["R_lite"] == [{"rank": "0-1",
                                             "children": {"core": "2-3", "gpu": "0"}}]
        assert R["execution"]["properties"] == {"big": "1"}
        assert R["execution"]["expiration"] == T0 + 600
        names = [e["name"] for e in child.events()]
        assert names == ["restart", "resource-define", "resource-update", "online", "online"]
        ev = child.events()
        assert ev[1]["context"] == {"method": "job-info"}
        assert ev[2]["context"] == {"expiration": T0 + 600}
        st = child.status()
        assert (st["method"], st["expiration"], st["all"], st["online"]) == \
            ("job-info", T0 + 600, "0-1", "0-1")
        # the scheduler gets R with the expiration
        acq = child.ctx.request(child.mod, "resource.acquire", None, streaming=True)
        first = child.ctx.replies(acq)[0].payload
        assert first["resources"]["execution"]["expiration"] == T0 + 600
        assert first["resources"]["execution"]["nodelist"] == ["a,b"]
        await child.stop()
        assert parent.closed == 1
    run(main())


def test_a_resource_update_in_the_jobs_eventlog_moves_the_expiration(monkeypatch):
    async def main():
        parent = ParentInstance(job_R())
        child = await Child(monkeypatch, parent).start()
        acq = child.ctx.request(child.mod, "resource.acquire", None, streaming=True)
        await asyncio.wait_for(parent.watching.wait(), 5)
        assert ("job-info.eventlog-watch", {"id": parent.jobid, "path": "eventlog",
                                            "flags": 0}) in parent.requests
        commits = len(child.kvs.commits)
        parent.post_update(T0 + 900)
        await settle(20)
        ev = child.events()[-1]
        assert (ev["name"], ev["context"]) == ("resource-update", {"expiration": T0 + 900})
        assert child.R()["execution"]["expiration"] == T0 + 900
        assert child.status()["expiration"] == T0 + 900
        assert child.ctx.replies(acq)[-1].payload == {"expiration": T0 + 900}
        assert len(child.kvs.commits) > commits
        # the same expiration again changes nothing
        n = len(child.events())
        parent.post_update(T0 + 900)
        await settle(20)
        assert len(child.events()) == n
        # the job's eventlog ends: the watch ends quietly, the instance goes on
        parent.new.put_nowait(None)
        await settle(10)
        assert child.status()["expiration"] == T0 + 900
        await child.stop()
    run(main())


def test_past_resource_updates_are_in_R_already_and_not_posted_again(monkeypatch):
    async def main():
        parent = ParentInstance(job_R(expiration=T0 + 2000))
        parent.log.append('{"timestamp":3.0,"name":"resource-update",'
                          f'"context":{{"expiration":{T0 + 1000}}}}}\n')
        parent.log.append('{"timestamp":4.0,"name":"resource-update",'
                          f'"context":{{"expiration":{T0 + 2000}}}}}\n')
        child = await Child(monkeypatch, parent).start()
        await asyncio.wait_for(parent.watching.wait(), 5)
        await settle(10)
        updates = [e["context"] for e in child.events() if e["name"] == "resource-update"]
        assert updates == [{"expiration": T0 + 2000}]
        await child.stop()
    run(main())


def test_a_restarted_child_replays_its_expiration(monkeypatch):
    async def main():
        parent = ParentInstance(job_R())
        kvs = FakeKvs()
        child = await Child(monkeypatch, parent, kvs=kvs).start()
        await asyncio.wait_for(parent.watching.wait(), 5)
        parent.post_update(T0 + 900)
        await settle(20)
        await child.stop()
        assert orjson.loads(kvs.data[CHECKPOINT_KEY])["expiration"] == T0 + 900
        before = len(child.events())
        # the parent's R is current (resource-update applied), as job-info gives it
        parent.R = job_R(expiration=T0 + 900)
        parent.new = asyncio.Queue()
        parent.watching.clear()
        again = await Child(monkeypatch, parent, kvs=kvs).start()
        assert again.mod.state.expiration == T0 + 900          # replayed
        new = [e["name"] for e in again.events()[before:]]
        assert new[:2] == ["restart", "resource-define"] and "resource-update" not in new
        assert again.status()["expiration"] == T0 + 900
        await again.stop()
        # replay without a checkpoint folds the whole log to the same expiration
        del kvs.data[CHECKPOINT_KEY]
        third = Child(monkeypatch, parent, kvs=kvs)
        await third.mod._replay()
        assert third.mod.state.expiration == T0 + 900
    run(main())


def test_a_job_R_of_another_size_falls_back_to_discovery(monkeypatch):
    async def main():
        parent = ParentInstance(job_R(ranks="3", hosts="a"))      # one node, two brokers
        child = await Child(monkeypatch, parent, size=2).start()
        await settle(20)
        assert "has 1 ranks but this instance has 2 brokers" in child.ctx.log.text("warning")
        assert child.status()["method"] == "dynamic-discovery"
        assert parent.closed == 1
        assert not [r for r in parent.requests if r[0] == "job-info.eventlog-watch"]
        await child.stop()
    run(main())


def test_an_unreachable_parent_falls_back_to_discovery(monkeypatch):
    async def main():
        parent = ParentInstance(job_R())
        parent.refuse = FluxError(errno.ENOENT, "cannot connect to local:///parent/local")
        child = await Child(monkeypatch, parent, size=1).start()
        assert "cannot connect to local:///parent/local" in child.ctx.log.text("warning")
        st = child.status()
        assert (st["method"], st["expiration"]) == ("dynamic-discovery", 0.0)
        await child.stop()
    run(main())


def test_configured_resources_win_over_the_parent(monkeypatch):
    async def main():
        parent = ParentInstance(job_R())
        cfg = {"resource": {"config": [{"hosts": "n[0-1]", "cores": "0"}],
                            "monitor-force-up": True}}
        child = await Child(monkeypatch, parent, config=cfg).start()
        assert child.status()["method"] == "config"
        assert parent.requests == []
        await child.stop()
    run(main())


def test_a_lost_parent_ends_the_watch_quietly(monkeypatch):
    async def main():
        parent = ParentInstance(job_R())
        child = await Child(monkeypatch, parent).start()
        await asyncio.wait_for(parent.watching.wait(), 5)
        parent.new.put_nowait(FluxError(errno.ECONNRESET, "parent gone"))
        await settle(10)
        assert "parent gone" in child.ctx.log.text("info")
        assert child.status()["expiration"] == T0 + 600
        await child.stop()
    run(main())
