"""Exec starts with the alloc commit: ``job-exec.start`` goes out once the commit
holding ``alloc`` has been handed to the KVS, not once it is durable
(specs/job-manager.md), and never ahead of it."""
from __future__ import annotations

from typing import Any

from flux.message import Message
from helpers.jm_fake import Ctx, Manager, entry, run, turn
from jobmgr.manager.active import ExecPhase, eventlog_key
from jobmgr.manager.perilog import PerilogConfig
from jobmgr.manager.submit import submit
from jobmgr.states import JobState

R = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0"}}],
                                 "starttime": 0.0, "expiration": 0.0, "nodelist": ["n0"]}}


def topics(ctx: Ctx) -> list[str]:
    return [topic for topic, _payload in ctx.sent]


def alloc_commit(ctx: Ctx, jobid: int) -> int:
    """Index in ctx.sent of the kvs.commit appending JOBID's alloc event."""
    for i, (topic, payload) in enumerate(ctx.sent):
        if topic != "kvs.commit":
            continue
        for op in payload["ops"]:
            if op["key"] == eventlog_key(jobid) and b'"alloc"' in b"".join(op["dirent"].chunks):
                return i
    raise AssertionError("no alloc commit")


async def granted(ctx: Ctx, mgr: Manager, jobid: int) -> None:
    """Submit JOBID, answer every commit until it asks for resources, then grant them."""
    submit(mgr, Message(1, "job-manager.submit", {"jobs": [entry(jobid)]}))
    mgr.execs.hello(Message(1, "job-manager.exec-hello", {"service": "job-exec"}))
    mgr.sched.ready_request(Message(1, "job-manager.sched-ready", {"mode": "unlimited"}))
    for _ in range(5):
        await turn()
        while ctx.pending:
            ctx.answer()
    assert "sched.alloc" in topics(ctx)
    ctx.deliver("sched.alloc", {"id": jobid, "type": 0, "R": R})


def test_exec_start_follows_the_alloc_commit_before_it_is_durable():
    async def test(ctx: Ctx, mgr: Manager, published: list[Any]) -> None:
        await granted(ctx, mgr, 7)
        job = mgr.jobs[7]
        await turn()
        starts = [i for i, t in enumerate(topics(ctx)) if t == "job-exec.start"]
        assert len(starts) == 1 and starts[0] > alloc_commit(ctx, 7)
        assert ctx.pending and job.rec.state == JobState.SCHED     # alloc not durable yet
        assert job.exec_phase == ExecPhase.STARTING
        ctx.deliver("job-exec.start", {"id": 7, "type": "start", "data": {}})
        await turn()
        while ctx.pending:
            ctx.answer()
            await turn()
        # the alloc commit's effects do not start exec a second time; start is logged after
        assert topics(ctx).count("job-exec.start") == 1
        assert job.rec.state == JobState.RUN and job.rec.started
        assert [e["name"] for e in job.events][-2:] == ["alloc", "start"]
    run(test)


def test_no_early_start_for_a_job_canceled_in_the_same_turn():
    async def test(ctx: Ctx, mgr: Manager, published: list[Any]) -> None:
        await granted(ctx, mgr, 8)
        mgr.post(mgr.jobs[8], "exception", {"type": "cancel", "severity": 0, "note": ""})
        for _ in range(3):
            await turn()
            while ctx.pending:
                ctx.answer()
        assert "job-exec.start" not in topics(ctx)
    run(test)


def test_a_prolog_runs_first_on_the_committed_state():
    async def test(ctx: Ctx, mgr: Manager, published: list[Any]) -> None:
        mgr.perilog.prolog = PerilogConfig(command=["true"])
        await granted(ctx, mgr, 9)
        await turn()
        assert "job-exec.start" not in topics(ctx) and ctx.pending
    run(test)
