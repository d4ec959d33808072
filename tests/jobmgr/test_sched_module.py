"""The sched module (RFC 27) driven in-process through a fake broker context."""
from __future__ import annotations

import asyncio
import errno
import time

import orjson
import pytest

from flux.errors import FluxError
from flux.job.JobID import id_encode
from helpers.module_testing import FakeContext, FakeKvs, settle
from jobmgr.sched.module import (
    ANNOTATE,
    CANCEL,
    DENY,
    SUCCESS,
    Sched,
    parse_queues,
    parse_sched_config,
)


def instance_R(nodes=4, cores="0-3", gpus=None, props=None, host="n"):
    children = {"core": cores}
    if gpus:
        children["gpu"] = gpus
    execution = {"R_lite": [{"rank": f"0-{nodes - 1}", "children": children}],
                 "nodelist": [f"{host}[0-{nodes - 1}]"], "starttime": 0.0, "expiration": 0.0}
    if props:
        execution["properties"] = props
    return {"version": 1, "execution": execution}


def jobspec(nslots=1, cores=1, gpus=0, nnodes=0, duration=0, queue=None, constraints=None):
    slot = {"type": "slot", "count": nslots if not nnodes else nslots // nnodes,
            "label": "task", "with": [{"type": "core", "count": cores}]}
    if gpus:
        slot["with"].append({"type": "gpu", "count": gpus})
    top = {"type": "node", "count": nnodes, "with": [slot]} if nnodes else slot
    system = {"duration": duration}
    if queue:
        system["queue"] = queue
    if constraints:
        system["constraints"] = constraints
    return {"version": 1, "resources": [top],
            "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
            "attributes": {"system": system}}


class Harness:
    """A Sched module with a fake KVS, resource.acquire and job-manager."""

    def __init__(self, R=None, up="0-3", config=None, hello_alloc=()):
        self.ctx = FakeContext(config=config or {})
        self.kvs = FakeKvs().install(self.ctx)
        self.acquire_q: asyncio.Queue = asyncio.Queue()
        self.acquire_q.put_nowait({"resources": R or instance_R(), "up": up})
        self.hello_alloc = list(hello_alloc)
        self.calls: list[str] = []

        async def acquire(payload, nodeid):
            while True:
                item = await self.acquire_q.get()
                if isinstance(item, Exception):
                    raise item
                yield item

        def hello(payload, nodeid):
            self.calls.append("hello")
            return {"alloc": self.hello_alloc}

        def ready(payload, nodeid):
            self.calls.append(f"ready:{payload['mode']}")
            return {"count": 0}

        self.ctx.stream_handlers["resource.acquire"] = acquire
        self.ctx.handlers["job-manager.sched-hello"] = hello
        self.ctx.handlers["job-manager.sched-ready"] = ready
        self.sched = Sched(self.ctx, [])

    async def start(self):
        await self.sched.start()
        await settle(20)
        return self

    def alloc(self, jobid, spec=None, priority=16, t_submit=None):
        return self.ctx.request(self.sched, "sched.alloc", {
            "id": jobid, "priority": priority, "userid": 1000,
            "t_submit": float(jobid) if t_submit is None else t_submit,
            "jobspec": spec if spec is not None else jobspec()})

    def types(self, msg):
        return [r.payload["type"] for r in self.ctx.replies(msg)]

    def last(self, msg):
        return self.ctx.replies(msg)[-1].payload

    def free(self, jobid, R=None, final=True):
        return self.ctx.request(self.sched, "sched.free", {"id": jobid, "R": R, "final": final})

    async def stop(self):
        await self.sched.stop()
        await self.ctx.close()


def run(coro):
    return asyncio.run(coro)


def test_start_acquires_then_hello_then_ready_unlimited():
    async def main():
        h = await Harness().start()
        assert h.calls == ["hello", "ready:unlimited"]
        assert [t for t, _, _ in h.ctx.rpcs][:1] == ["resource.acquire"]
        await h.stop()
    run(main())


def test_alloc_answers_success_with_R_without_writing_the_kvs():
    async def main():
        h = await Harness().start()
        msgs = [h.alloc(i, jobspec(nslots=2)) for i in range(1, 6)]
        # nothing answered before the pass
        assert all(h.ctx.replies(m) == [] for m in msgs)
        await settle(10)
        # R travels in SUCCESS; the job manager writes it with the alloc event
        assert h.kvs.commits == []
        for i, m in enumerate(msgs, 1):
            reply = h.last(m)
            assert reply["type"] == SUCCESS and reply["id"] == i
            assert reply["R"]["version"] == 1
            assert reply["annotations"] == {"sched": {"resource_summary":
                                                      reply_summary(reply["R"])}}
        # first fit in rank order: two jobs per 4-core node
        assert h.last(msgs[0])["annotations"]["sched"]["resource_summary"] == "rank0/core[0-1]"
        assert h.last(msgs[1])["annotations"]["sched"]["resource_summary"] == "rank0/core[2-3]"
        assert h.last(msgs[4])["annotations"]["sched"]["resource_summary"] == "rank2/core[0-1]"
        await h.stop()
    run(main())


def reply_summary(R):
    from jobmgr.sched.core import resource_summary

    return resource_summary(R)


def test_R_version1_with_starttime_and_expiration_from_duration():
    async def main():
        h = await Harness().start()
        t0 = time.time()
        m1 = h.alloc(1, jobspec(duration=60))
        m2 = h.alloc(2, jobspec())
        await settle(10)
        R1, R2 = h.last(m1)["R"], h.last(m2)["R"]
        assert R1["version"] == 1
        assert t0 <= R1["execution"]["starttime"] <= time.time()
        assert R1["execution"]["expiration"] == pytest.approx(R1["execution"]["starttime"] + 60)
        assert R2["execution"]["expiration"] == 0.0        # no duration, no instance limit
        assert R1["execution"]["nodelist"] == ["n0"]
        await h.stop()
    run(main())


def test_priority_then_submit_order_and_reason_pending_on_the_blocked_head():
    async def main():
        h = await Harness().start()
        whole = jobspec(nslots=16)
        a = h.alloc(1, whole)
        await settle(10)
        assert h.types(a) == [SUCCESS]
        b = h.alloc(2, whole, priority=16, t_submit=20.0)
        c = h.alloc(3, whole, priority=20, t_submit=30.0)
        d = h.alloc(4, whole, priority=16, t_submit=10.0)
        await settle(10)
        # only the head (highest priority) is tried and annotated
        assert h.types(c) == [ANNOTATE]
        assert h.last(c)["annotations"] == {"sched": {"reason_pending": "insufficient resources"}}
        assert h.types(b) == [] and h.types(d) == []
        order = []
        for done in (1, 3, 4):
            assert h.free(done).matchtag
            await settle(10)
            winners = [j for j, m in ((2, b), (3, c), (4, d)) if SUCCESS in h.types(m)
                       and j not in order]
            order += winners
        assert order == [3, 4, 2]
        # a job that was annotated gets reason_pending removed (null) with SUCCESS
        assert h.last(c)["annotations"]["sched"]["reason_pending"] is None
        assert "reason_pending" not in h.last(a)["annotations"]["sched"]
        await h.stop()
    run(main())


def test_blocked_head_blocks_smaller_jobs_without_backfill():
    async def main():
        h = await Harness().start()
        h.alloc(1, jobspec(nslots=12))
        big = h.alloc(2, jobspec(nslots=8))
        small = h.alloc(3, jobspec(nslots=1))
        await settle(10)
        assert h.types(big) == [ANNOTATE] and h.types(small) == []
        passes = h.sched.stats["passes"]
        # more arrivals while the head is blocked: each pass stops at once
        for i in range(4, 20):
            h.alloc(i, jobspec())
        await settle(10)
        assert h.sched.stats["passes"] == passes + 1
        assert h.ctx.request(h.sched, "sched.stats", {}).matchtag
        await h.stop()
    run(main())


def test_backfill_steps_over_a_blocked_head():
    async def main():
        h = await Harness(config={"sched": {"backfill": 1}}).start()
        h.alloc(1, jobspec(nslots=12))
        big = h.alloc(2, jobspec(nslots=8))
        small = h.alloc(3, jobspec(nslots=2))
        other = h.alloc(4, jobspec(nslots=8))
        after = h.alloc(5, jobspec(nslots=1))
        await settle(10)
        assert h.types(big) == [ANNOTATE]
        assert h.types(small) == [SUCCESS]
        # the budget of one stepped-over job is spent on job 2: job 4 is tried and
        # blocked, which ends the pass before job 5
        assert h.types(other) == [ANNOTATE] and h.types(after) == []
        h.free(1)
        await settle(10)
        assert SUCCESS in h.types(big)
        await h.stop()
    run(main())


def test_deny_for_requests_that_can_never_be_met_and_bad_jobspecs():
    async def main():
        h = await Harness().start()
        too_big = h.alloc(1, jobspec(nslots=17))
        gpu = h.alloc(2, jobspec(gpus=1))
        bad = h.alloc(3, {"version": 1, "resources": []})
        queue = h.alloc(4, jobspec(queue="nosuch"))
        await settle(10)
        assert h.types(too_big) == [DENY]
        assert h.last(too_big)["note"] == ("unsatisfiable request: 17 slot(s) of 1 core(s) "
                                           "requested, the instance has room for 16")
        assert "1 gpu(s)" in h.last(gpu)["note"]
        assert h.last(bad)["note"].startswith("invalid jobspec: resources:")
        # no queues configured: the queue name is not a constraint
        assert h.types(queue) == [SUCCESS]
        await h.stop()
    run(main())


def test_malformed_alloc_and_duplicate_ids():
    async def main():
        h = await Harness().start()
        m = h.ctx.request(h.sched, "sched.alloc", {"jobspec": jobspec()})
        assert h.ctx.replies(m)[0].errnum == errno.EPROTO
        assert "'id' must be an integer" in h.ctx.replies(m)[0].errstr
        h.alloc(7)
        dup = h.alloc(7)
        await settle(10)
        assert h.types(dup) == [DENY] and "already has an alloc request" in h.last(dup)["note"]
        await h.stop()
    run(main())


def test_cancel_pending_job_gets_cancel_response():
    async def main():
        h = await Harness().start()
        h.alloc(1, jobspec(nslots=16))
        waiting = h.alloc(2, jobspec(nslots=4))
        await settle(10)
        c = h.ctx.request(h.sched, "sched.cancel", {"id": 2}, noresponse=True)
        assert h.ctx.replies(c) == []
        assert h.types(waiting) == [ANNOTATE, CANCEL]
        assert h.last(waiting) == {"id": 2, "type": CANCEL}
        # cancel of a job that is not pending is ignored
        h.ctx.request(h.sched, "sched.cancel", {"id": 1}, noresponse=True)
        h.free(1)
        await settle(10)
        assert h.types(waiting) == [ANNOTATE, CANCEL]
        await h.stop()
    run(main())


def test_prioritize_reorders_the_queue():
    async def main():
        h = await Harness().start()
        h.alloc(1, jobspec(nslots=16))
        low = h.alloc(2, jobspec(nslots=16), priority=10)
        high = h.alloc(3, jobspec(nslots=16), priority=11)
        await settle(10)
        h.ctx.request(h.sched, "sched.prioritize", {"jobs": [[2, 30]]}, noresponse=True)
        h.free(1)
        await settle(10)
        assert SUCCESS in h.types(low) and SUCCESS not in h.types(high)
        bad = h.ctx.request(h.sched, "sched.prioritize", {"jobs": 3})
        assert h.ctx.replies(bad)[0].errnum == errno.EPROTO
        await h.stop()
    run(main())


def test_down_ranks_are_excluded_and_come_back():
    async def main():
        h = await Harness().start()
        h.acquire_q.put_nowait({"down": "0-2"})
        await settle(5)
        two_nodes = h.alloc(1, jobspec(nslots=2, nnodes=2))
        one = h.alloc(2, jobspec(nslots=1), priority=1)
        await settle(10)
        assert h.types(two_nodes) == [ANNOTATE]
        h.acquire_q.put_nowait({"up": "1"})
        await settle(10)
        assert h.types(two_nodes)[-1] == SUCCESS
        assert h.last(two_nodes)["annotations"]["sched"]["resource_summary"] == \
            "rank[1,3]/core0"
        assert h.types(one)[-1] == SUCCESS
        status = h.ctx.request(h.sched, "sched.resource-status", {})
        body = h.ctx.replies(status)[0].payload
        assert [e["rank"] for e in body["down"]["execution"]["R_lite"]] == ["0,2"]
        assert set(body) == {"all", "allocated", "free", "down", "queues"}
        await h.stop()
    run(main())


def test_free_partial_and_final_return_resources():
    async def main():
        h = await Harness().start()
        m = h.alloc(1, jobspec(nslots=16))
        await settle(10)
        R = h.last(m)["R"]
        part = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0-3"}}]}}
        f = h.free(1, part, final=False)
        assert h.ctx.replies(f)[0].payload == {"id": 1}
        assert h.sched.core.free_cores == 4
        h.free(1, R, final=True)
        assert h.sched.core.free_cores == 16
        # a free for a job holding nothing is logged and answered
        g = h.free(1)
        assert h.ctx.replies(g)[0].payload == {"id": 1}
        assert "holds no resources" in h.ctx.log.text("warning")
        await h.stop()
    run(main())


def test_expiration_updates_need_an_allocation_and_a_valid_time():
    async def main():
        h = await Harness().start()
        h.alloc(1)
        await settle(10)
        ok = h.ctx.request(h.sched, "sched.expiration", {"id": 1, "expiration": 1e10})
        assert h.ctx.replies(ok)[0].payload == {}
        nojob = h.ctx.request(h.sched, "sched.expiration", {"id": 9, "expiration": 5.0})
        assert h.ctx.replies(nojob)[0].errnum == errno.ENOENT
        bad = h.ctx.request(h.sched, "sched.expiration", {"id": 1, "expiration": "soon"})
        assert h.ctx.replies(bad)[0].errnum == errno.EINVAL
        assert "expiration must be a number" in h.ctx.replies(bad)[0].errstr
        await h.stop()
    run(main())


def test_feasibility_check():
    async def main():
        h = await Harness(R=instance_R(gpus="0")).start()
        ok = h.ctx.request(h.sched, "feasibility.check", {"jobspec": jobspec(nslots=4, gpus=1)})
        assert h.ctx.replies(ok)[0].payload == {}
        no = h.ctx.request(h.sched, "feasibility.check", {"jobspec": jobspec(nslots=5, gpus=1)})
        reply = h.ctx.replies(no)[0]
        assert reply.errnum == errno.EINVAL
        assert reply.errstr.startswith("unsatisfiable request: 5 slot(s) of 1 core(s) and 1 gpu")
        as_text = h.ctx.request(h.sched, "feasibility.check",
                                {"jobspec": orjson.dumps(jobspec(nnodes=5, nslots=5)).decode()})
        assert "5 node(s)" in h.ctx.replies(as_text)[0].errstr
        bad = h.ctx.request(h.sched, "feasibility.check", {"jobspec": {"resources": 1}})
        assert h.ctx.replies(bad)[0].errstr.startswith("invalid jobspec: resources:")
        missing = h.ctx.request(h.sched, "feasibility.check", {})
        assert h.ctx.replies(missing)[0].errnum == errno.EPROTO
        await h.stop()
    run(main())


def test_feasibility_check_waits_for_resources():
    async def main():
        h = Harness()
        h.acquire_q = asyncio.Queue()          # nothing acquired yet
        await h.sched.start()
        await settle(5)
        m = h.ctx.request(h.sched, "feasibility.check", {"jobspec": jobspec()})
        early = h.alloc(1)
        await settle(5)
        assert h.ctx.replies(m) == [] and h.ctx.replies(early) == []
        h.acquire_q.put_nowait({"resources": instance_R(), "up": "0-3"})
        await settle(20)
        assert h.ctx.replies(m)[0].payload == {}
        assert h.types(early) == [SUCCESS]
        await h.stop()
    run(main())


def test_views_give_up_when_resources_never_come():
    async def main():
        h = Harness()
        h.acquire_q = asyncio.Queue()
        await h.sched.start()
        h.sched.ready_timeout = 0.05
        m = h.ctx.request(h.sched, "sched.resource-status", {})
        f = h.ctx.request(h.sched, "feasibility.check", {"jobspec": jobspec()})
        await asyncio.sleep(0.1)
        for msg in (m, f):
            reply = h.ctx.replies(msg)[0]
            assert reply.errnum == errno.EAGAIN and "no resources yet" in reply.errstr
        await h.stop()
    run(main())


def test_named_queue_uses_its_nodes_only():
    async def main():
        R = instance_R(props={"debug": "0-1", "batch": "2-3"})
        cfg = {"queues": {"debug": {"requires": ["debug"]}, "batch": {"requires": ["batch"]}}}
        h = await Harness(R=R, config=cfg).start()
        m = h.alloc(1, jobspec(nslots=5, queue="batch"))
        n = h.alloc(2, jobspec(nslots=9, queue="debug"))
        u = h.alloc(3, jobspec(queue="gpu"))
        await settle(10)
        assert h.last(m)["annotations"]["sched"]["resource_summary"] == \
            "rank2/core[0-3] rank3/core0"
        assert h.last(n)["note"] == ("unsatisfiable request: 9 slot(s) of 1 core(s) requested, "
                                     "the instance has room for 8")
        assert h.last(u)["note"] == "unsatisfiable request: unknown queue 'gpu'"
        status = h.ctx.request(h.sched, "sched.resource-status", {})
        assert h.ctx.replies(status)[0].payload["queues"] == {"debug": ["debug"],
                                                              "batch": ["batch"]}
        await h.stop()
    run(main())


def test_hello_restores_running_jobs_and_raises_on_bad_R():
    running = {"version": 1, "execution": {"R_lite": [{"rank": "0-1", "children":
                                                        {"core": "0-3"}}]}}
    bogus = {"version": 1, "execution": {"R_lite": [{"rank": "9", "children": {"core": "0"}}]}}

    async def main():
        h = await Harness(hello_alloc=[
            {"id": 11, "priority": 16, "userid": 1, "t_submit": 1.0, "R": running},
            {"id": 12, "priority": 16, "userid": 1, "t_submit": 1.0, "R": bogus}]).start()
        assert h.sched.core.free_cores == 8 and 11 in h.sched.core
        raised = [p for t, p, _ in h.ctx.sent if t == "job-manager.raise"]
        assert raised and raised[0]["id"] == 12 and raised[0]["severity"] == 0
        assert raised[0]["note"].startswith("failed to reallocate R: job 12: rank 9")
        await h.stop()
    run(main())


def test_stop_answers_pending_allocs_with_an_error():
    async def main():
        h = await Harness().start()
        h.alloc(1, jobspec(nslots=16))
        waiting = h.alloc(2, jobspec(nslots=16))
        await settle(10)
        await h.stop()
        assert h.ctx.replies(waiting)[-1].errnum == errno.ENOSYS
    run(main())


def test_the_scheduler_needs_no_kvs_service():
    async def main():
        h = Harness()
        del h.ctx.handlers["kvs.commit"]
        await h.start()
        m = h.alloc(1)
        await settle(10)
        assert h.types(m) == [SUCCESS]
        assert h.ctx.log.text("warning") == ""
        await h.stop()
    run(main())


def test_config_parsers_name_the_bad_key():
    assert parse_queues(None) == {}
    assert parse_queues({"a": {"requires": ["x", "^y"]}, "b": {}}) == {"a": ("x", "^y"),
                                                                       "b": ()}
    with pytest.raises(FluxError, match=r"queues\.a\.requires: expected an array"):
        parse_queues({"a": {"requires": "x"}})
    with pytest.raises(FluxError, match=r"queues\.a: expected a table"):
        parse_queues({"a": 1})
    assert parse_sched_config({"backfill": 3}) == 3
    with pytest.raises(FluxError, match=r"sched\.backfill: expected an integer >= 0"):
        parse_sched_config({"backfill": -1})
    with pytest.raises(FluxError, match=r"sched\.policy: unknown key"):
        parse_sched_config({"policy": "easy"})


def test_alloc_rate_in_process():
    """1,000+ allocations per second is the target; the core path must be far above it."""
    async def main():
        R = instance_R(nodes=1024, cores="0-31")
        h = await Harness(R=R, up="0-1023").start()
        n = 5000
        spec = jobspec()
        t0 = time.perf_counter()
        msgs = [h.alloc(i, spec) for i in range(1, n + 1)]
        while not all(h.ctx.replies(m) for m in msgs[-1:]):
            await asyncio.sleep(0)
        elapsed = time.perf_counter() - t0
        assert all(h.types(m) == [SUCCESS] for m in msgs)
        assert n / elapsed > 2000, f"{n / elapsed:.0f} allocations/s"
        await h.stop()
    run(main())
