"""The resource module driven in-process through a fake broker context."""
from __future__ import annotations

import asyncio
import errno

import orjson
import pytest

from flux.errors import FluxError
from helpers.module_testing import FakeContext, FakeKvs, settle
from jobmgr.resource.module import CHECKPOINT_KEY, EVENTLOG_KEY, R_KEY, Resource

CONFIG = {"resource": {"config": [{"hosts": "n[0-3]", "cores": "0-3"}],
                       "monitor-force-up": True}}


def events(kvs):
    out = []
    for line in kvs.data.get(EVENTLOG_KEY, b"").splitlines():
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            out.append({"name": "<garbage>"})
    return out


def names(kvs):
    return [e["name"] for e in events(kvs)]


class Harness:
    def __init__(self, config=CONFIG, size=1, rank=0, kvs=None):
        self.ctx = FakeContext(rank=rank, size=size, config=config)
        self.kvs = (kvs or FakeKvs()).install(self.ctx)
        self.mod = Resource(self.ctx, [])
        # resource.monitor streams to other ranks: a queue of reports/errors per rank
        self.monitor_q: dict[int, asyncio.Queue] = {}
        self.absent: set[int] = set()      # ranks whose module is not loaded (ENOSYS)

        async def monitor(payload, nodeid):
            if nodeid in self.absent:
                raise FluxError(errno.ENOSYS, "Service is not available: resource.monitor")
            q = self.monitor_q.setdefault(nodeid, asyncio.Queue())
            while True:
                item = await q.get()
                if isinstance(item, Exception):
                    raise item
                yield item

        self.ctx.stream_handlers["resource.monitor"] = monitor

    async def start(self):
        await self.mod.start()
        await settle(10)
        return self

    def req(self, topic, payload=None, **kw):
        return self.ctx.request(self.mod, topic, payload, **kw)

    async def call(self, topic, payload=None, **kw):
        msg = self.req(topic, payload, **kw)
        await settle(10)
        return self.ctx.replies(msg)

    def status(self):
        return self.ctx.replies(self.req("resource.status", {}))[0].payload

    def acquire(self):
        return self.req("resource.acquire", None, streaming=True)

    async def stop(self):
        await self.mod.stop()
        await self.ctx.close()


def run(coro):
    return asyncio.run(coro)


def test_config_start_writes_restart_define_online_and_R():
    async def main():
        h = await Harness().start()
        assert names(h.kvs) == ["restart", "resource-define", "online"]
        ev = events(h.kvs)
        assert ev[0]["context"] == {"ranks": "0-3", "online": ""}
        assert ev[1]["context"] == {"method": "config"}
        assert ev[2]["context"] == {"idset": "0-3"}
        R = orjson.loads(h.kvs.data[R_KEY])
        assert R["execution"]["nodelist"] == ["n[0-3]"]
        # one commit for all of it
        assert len(h.kvs.commits) == 1
        st = h.status()
        assert (st["all"], st["online"], st["offline"], st["drain"], st["method"]) == \
            ("0-3", "0-3", "", {}, "config")
        await h.stop()
    run(main())


def test_without_force_up_only_rank0_is_online_and_others_are_watched():
    async def main():
        cfg = {"resource": {"config": [{"hosts": "n[0-3]", "cores": "0-3"}]}}
        h = await Harness(config=cfg, size=2).start()
        st = h.status()
        assert st["online"] == "0" and st["offline"] == "1-3"
        assert [n for t, _, n in h.ctx.rpcs if t == "resource.monitor"] == [1]
        h.monitor_q[1].put_nowait({"rank": 1, "hostname": "n1", "cores": "0-3"})
        await settle(10)
        assert h.status()["online"] == "0-1"
        await h.stop()
    run(main())


def test_acquire_reports_R_and_up_then_changes():
    async def main():
        h = await Harness().start()
        acq = h.acquire()
        first = h.ctx.replies(acq)[0].payload
        assert first["up"] == "0-3" and first["resources"]["execution"]["nodelist"] == ["n[0-3]"]
        replies = await h.call("resource.drain", {"targets": "1-2", "reason": "bad"})
        assert replies[0].payload == {}
        assert h.ctx.replies(acq)[-1].payload == {"down": "1-2"}
        await h.call("resource.undrain", {"targets": "n1"})
        assert h.ctx.replies(acq)[-1].payload == {"up": "1"}
        await h.stop()
    run(main())


def test_drain_is_durable_before_the_reply_and_names_nodes():
    async def main():
        h = await Harness().start()
        msg = h.req("resource.drain", {"targets": "n[1-2]", "reason": "node is fubar"})
        assert h.ctx.replies(msg) == []          # waits for the commit
        await settle(10)
        assert h.ctx.replies(msg)[0].payload == {}
        drain = events(h.kvs)[-1]
        assert drain["name"] == "drain"
        assert drain["context"] == {"idset": "1-2", "nodelist": "n[1-2]",
                                    "reason": "node is fubar", "overwrite": 0}
        st = h.status()
        assert list(st["drain"]) == ["1-2"]
        assert st["drain"]["1-2"]["reason"] == "node is fubar"
        assert st["drain"]["1-2"]["timestamp"] == drain["timestamp"]
        await h.stop()
    run(main())


def test_drain_modes_and_errors():
    async def main():
        h = await Harness().start()
        await h.call("resource.drain", {"targets": "1", "reason": "first"})
        again = await h.call("resource.drain", {"targets": "0-1", "reason": "second"})
        assert again[0].errnum == errno.EEXIST
        assert again[0].errstr.startswith("drain: rank 1 already drained")
        # update: drains only rank 0, keeps rank 1's reason
        assert (await h.call("resource.drain", {"targets": "0-1", "reason": "upd",
                                                "mode": "update"}))[0].payload == {}
        st = h.status()["drain"]
        assert {k: v["reason"] for k, v in st.items()} == {"0": "upd", "1": "first"}
        # overwrite replaces the reason
        await h.call("resource.drain", {"targets": "1", "reason": "forced", "mode": "overwrite"})
        assert {v["reason"] for v in h.status()["drain"].values()} == {"upd", "forced"}
        assert events(h.kvs)[-1]["context"]["overwrite"] == 1
        # update of drained ranks only: nothing to do, nothing written
        before = len(events(h.kvs))
        assert (await h.call("resource.drain", {"targets": "1", "mode": "update"}))[0].payload \
            == {}
        assert len(events(h.kvs)) == before
        bad = await h.call("resource.drain", {"targets": "9"})
        assert bad[0].errnum == errno.EINVAL and "rank 9 not in the instance" in bad[0].errstr
        bad = await h.call("resource.drain", {"targets": "n9"})
        assert bad[0].errstr == "targets: unknown host n9"
        bad = await h.call("resource.drain", {"targets": "2", "mode": "nope"})
        assert "mode must be 'update' or 'overwrite'" in bad[0].errstr
        bad = await h.call("resource.drain", {"targets": "2", "reason": 5})
        assert bad[0].errstr == "drain: reason must be a string"
        bad = await h.call("resource.drain", [1])
        assert bad[0].errnum == errno.EPROTO
        await h.stop()
    run(main())


def test_undrain_errors_and_force():
    async def main():
        h = await Harness().start()
        await h.call("resource.drain", {"targets": "1"})
        bad = await h.call("resource.undrain", {"targets": "1-2"})
        assert bad[0].errnum == errno.EINVAL and bad[0].errstr == "undrain: rank 2 not drained"
        ok = await h.call("resource.undrain", {"targets": "1-2", "force": True,
                                               "reason": "fixed"})
        assert ok[0].payload == {}
        assert events(h.kvs)[-1]["context"] == {"idset": "1", "nodelist": "n1",
                                                "reason": "fixed"}
        assert h.status()["drain"] == {}
        bad = await h.call("resource.undrain", {"targets": "n[0-1]"})
        assert bad[0].errstr == "undrain: ranks 0-1 not drained"
        await h.stop()
    run(main())


def test_guests_may_read_status_but_not_drain():
    async def main():
        h = await Harness().start()
        assert (await h.call("resource.status", {}, guest=True))[0].payload["all"] == "0-3"
        for topic in ("resource.drain", "resource.undrain"):
            reply = (await h.call(topic, {"targets": "1"}, guest=True))[0]
            assert reply.errnum == errno.EPERM
        await h.stop()
    run(main())


def test_drained_state_is_replayed_and_a_bad_line_is_skipped():
    async def main():
        kvs = FakeKvs()
        h = await Harness(kvs=kvs).start()
        await h.call("resource.drain", {"targets": "2", "reason": "disk"})
        await h.stop()
        stamp = events(kvs)[-1]["timestamp"]
        kvs.data.pop(CHECKPOINT_KEY)                # force a full replay
        kvs.data[EVENTLOG_KEY] += b'{"timestamp": 1, "name": "drain"}\n{not json\n'
        h2 = await Harness(kvs=kvs).start()
        st = h2.status()
        assert st["drain"] == {"2": {"timestamp": stamp, "reason": "disk"}}
        errors = h2.ctx.log.text("error")
        assert f"{EVENTLOG_KEY} line 5: skipped: drain: context is missing required key " \
               "'idset'" in errors
        assert f"{EVENTLOG_KEY} line 6: skipped" in errors
        # a second restart event follows the first start's events
        assert names(kvs).count("restart") == 2
        await h2.stop()
    run(main())


def test_checkpoint_lets_a_restart_skip_the_replayed_head():
    async def main():
        kvs = FakeKvs()
        h = await Harness(kvs=kvs).start()
        await h.call("resource.drain", {"targets": "1", "reason": "one"})
        await h.stop()
        cp = orjson.loads(kvs.data[CHECKPOINT_KEY])
        assert cp["eventlog_bytes"] == len(kvs.data[EVENTLOG_KEY])
        assert cp["state"]["drain"]["1"]["reason"] == "one"
        # the head covered by the checkpoint is not parsed again: garbage there is unseen
        size = cp["eventlog_bytes"]
        kvs.data[EVENTLOG_KEY] = b"x" * (size - 1) + b"\n"
        h2 = await Harness(kvs=kvs).start()
        assert h2.status()["drain"]["1"]["reason"] == "one"
        assert h2.ctx.log.text("error") == ""
        await h2.call("resource.drain", {"targets": "3", "reason": "three"})
        await h2.stop()
        # a checkpoint that does not fit the log is ignored (full replay)
        cp = orjson.loads(kvs.data[CHECKPOINT_KEY])
        cp["eventlog_bytes"] += 1000
        kvs.data[CHECKPOINT_KEY] = orjson.dumps(cp)
        h3 = await Harness(kvs=kvs).start()
        assert "checkpoint.resource ignored" in h3.ctx.log.text("warning")
        await h3.stop()
    run(main())


def test_exclude_by_host_is_recorded_and_left_out_of_acquire():
    async def main():
        cfg = {"resource": {**CONFIG["resource"], "exclude": "n[0,3]"}}
        kvs = FakeKvs()
        h = await Harness(config=cfg, kvs=kvs).start()
        assert h.status()["exclude"] == "0,3"
        assert {"name": "exclude", "ctx": {"idset": "0,3"}} == \
            {"name": events(kvs)[2]["name"], "ctx": events(kvs)[2]["context"]}
        first = h.ctx.replies(h.acquire())[0].payload
        assert first["up"] == "1-2"
        assert [e["rank"] for e in first["resources"]["execution"]["R_lite"]] == ["1-2"]
        await h.stop()
        # the next start without the exclusion undoes it
        h2 = await Harness(kvs=kvs).start()
        assert "unexclude" in names(kvs) and h2.status()["exclude"] == ""
        await h2.stop()
    run(main())


def test_bad_exclude_fails_start():
    async def main():
        cfg = {"resource": {**CONFIG["resource"], "exclude": "n9"}}
        h = Harness(config=cfg)
        with pytest.raises(FluxError, match="resource.exclude: unknown host n9"):
            await h.mod.start()
        await h.ctx.close()
    run(main())


def test_discovery_waits_for_every_rank_then_tracks_offline():
    async def main():
        h = await Harness(config={}, size=3).start()
        acq = h.acquire()
        assert h.ctx.replies(acq) == []            # R is not known yet
        assert h.status()["R"] is None and h.status()["online"] == "0"
        h.monitor_q[1].put_nowait({"rank": 1, "hostname": "h1", "cores": "0-1"})
        await settle(10)
        assert h.ctx.replies(acq) == [] and h.status()["online"] == "0-1"
        h.monitor_q[2].put_nowait({"rank": 2, "hostname": "h2", "cores": "0-3", "gpus": "0"})
        await settle(10)
        first = h.ctx.replies(acq)[0].payload
        assert first["up"] == "0-2"
        R = first["resources"]
        from flux.resource import ResourceSet

        rset = ResourceSet(R)
        assert rset.ranks.encode() == "0-2" and rset.hostname(2) == "h2"
        assert {k: v.encode() for k, v in rset.children(2).items()} == {"core": "0-3", "gpu": "0"}
        assert h.status()["method"] == "dynamic-discovery"
        assert "resource-define" in names(h.kvs)
        # the overlay loses rank 2: offline, and the scheduler hears "down"
        h.monitor_q[2].put_nowait(FluxError(errno.EHOSTUNREACH, "No route to rank 2"))
        await settle(10)
        assert h.status()["offline"] == "2"
        assert h.ctx.replies(acq)[-1].payload == {"down": "2"}
        assert events(h.kvs)[-1]["name"] == "offline"
        # it comes back (the watcher retries)
        await asyncio.sleep(0.05)
        h.monitor_q[2].put_nowait({"rank": 2, "hostname": "h2", "cores": "0-3", "gpus": "0"})
        await settle(10)
        assert h.status()["online"] == "0-2"
        assert h.ctx.replies(acq)[-1].payload == {"up": "2"}
        await h.stop()
    run(main())


def test_hello_from_a_starting_rank_cuts_the_retry_short():
    async def main():
        h = Harness(config={}, size=2)
        h.absent.add(1)         # the rank's module is not there yet: backoff grows
        await h.start()
        await asyncio.sleep(0.7)
        tries = sum(1 for t, _, _ in h.ctx.rpcs if t == "resource.monitor")
        assert tries >= 4
        h.absent.discard(1)
        h.monitor_q.setdefault(1, asyncio.Queue()).put_nowait(
            {"rank": 1, "hostname": "h1", "cores": "0"})
        h.req("resource.hello", {"rank": 1}, noresponse=True)
        await asyncio.sleep(0.05)
        assert sum(1 for t, _, _ in h.ctx.rpcs if t == "resource.monitor") == tries + 1
        assert h.status()["online"] == "0-1"
        await h.stop()
    run(main())


def test_followers_say_hello_to_rank0():
    async def main():
        h = await Harness(config={}, rank=2, size=3).start()
        assert h.ctx.sent == [("resource.hello", {"rank": 2}, 0)]
        await h.stop()
    run(main())


def test_monitor_stream_reports_this_rank_and_stays_open():
    async def main():
        h = await Harness(config={}, rank=1, size=2).start()
        msg = h.req("resource.monitor", {}, streaming=True)
        replies = h.ctx.replies(msg)
        assert len(replies) == 1 and replies[0].payload["rank"] == 1
        assert replies[0].payload["cores"]
        await h.stop()
    run(main())


def test_followers_forward_to_rank0():
    async def main():
        h = await Harness(config={}, rank=1, size=2).start()
        seen = []
        h.ctx.handlers["resource.drain"] = lambda p, n: seen.append((p, n)) or {}
        reply = await h.call("resource.drain", {"targets": "1"})
        assert reply[0].payload == {} and seen == [({"targets": "1"}, 0)]
        acq = await h.call("resource.acquire", None, streaming=True)
        assert acq[0].errnum == errno.EINVAL
        await h.stop()
    run(main())


def test_failed_append_fails_the_drain_and_changes_nothing():
    async def main():
        h = await Harness().start()
        h.kvs.fail = FluxError(errno.ENOSPC, "no space")
        reply = await h.call("resource.drain", {"targets": "1"})
        assert reply[0].errnum == errno.ENOSPC and "no space" in reply[0].errstr
        assert h.status()["drain"] == {}
        await h.stop()
    run(main())
