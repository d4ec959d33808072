"""A failed commit of job events loses nothing: it is sent again, in order, until durable;
only never-acknowledged submissions are refused, and a job whose eventlog refuses its
events is let go without holding up the others."""
from __future__ import annotations

import asyncio
import errno
from typing import Any

import orjson

from flux.message import Message
from helpers.jm_fake import Ctx, Manager, entry, run, turn
from jobmgr.manager.active import eventlog_key
from jobmgr.states import JobState


def appended(commit: dict[str, Any]) -> dict[str, list[str]]:
    """Event names appended per eventlog key in one kvs.commit payload."""
    out = {}
    for op in commit["ops"]:
        if op["key"].endswith(".eventlog"):
            out[op["key"]] = [orjson.loads(line)["name"]
                              for chunk in op["dirent"].chunks for line in chunk.splitlines()]
    return out


async def submitted(ctx: Ctx, mgr: Manager, *ids: int) -> None:
    from jobmgr.manager.submit import submit

    submit(mgr, Message(1, "job-manager.submit", {"jobs": [entry(i) for i in ids]}))
    await turn()
    ctx.answer()
    await turn()


async def settle(ctx: Ctx, seconds: float = 0.0) -> None:
    await asyncio.sleep(seconds)
    await turn()


def test_a_failed_commit_is_sent_again_until_durable():
    async def test(ctx: Ctx, mgr: Manager, published: list) -> None:
        await submitted(ctx, mgr, 7)
        job = mgr.jobs[7]
        mgr.post(job, "memo", {"a": 1})
        await turn()
        first = len(ctx.commits)
        ctx.answer(errno.EIO, "input/output error")
        await turn()
        assert job.rec.memo is None and len(ctx.commits) == first     # not yet resent
        await settle(ctx, 0.08)
        assert len(ctx.commits) == first + 1                          # the same events again
        assert appended(ctx.commits[-1]) == {eventlog_key(7): ["memo"]}
        ctx.answer(errno.ENOSPC)
        await settle(ctx, 0.15)
        ctx.answer()
        await turn()
        assert job.rec.memo == {"a": 1} and job.inflight == 0 and job.sent == 0
        assert mgr.poster.retries == 2
        assert any("sending it again" in m for lvl, m in ctx.log.records if lvl == "error")
    run(test)


def test_a_jobs_later_events_wait_for_its_unanswered_commit():
    async def test(ctx: Ctx, mgr: Manager, published: list) -> None:
        await submitted(ctx, mgr, 7, 8)
        a, b = mgr.jobs[7], mgr.jobs[8]
        mgr.post(a, "memo", {"step": 1})
        await turn()                                   # commit 1 (job 7) is out
        mgr.post(a, "memo", {"step": 2})               # held: commit 1 is unanswered
        mgr.post(b, "memo", {"other": 1})
        await turn()                                   # commit 2 has only job 8
        assert appended(ctx.commits[-1]) == {eventlog_key(8): ["memo"]}
        assert a.held and a.sent == 1
        ctx.answer(errno.EIO)                          # commit 1 fails ...
        ctx.answer()                                   # ... commit 2 is durable but waits
        await turn()
        assert b.rec.memo is None
        await settle(ctx, 0.08)
        assert appended(ctx.commits[-1]) == {eventlog_key(7): ["memo"]}   # commit 1 again
        ctx.answer()
        await turn()
        # step 1, then job 8's events, then the held step 2 in the next commit
        assert a.rec.memo == {"step": 1} and b.rec.memo == {"other": 1}
        assert appended(ctx.commits[-1]) == {eventlog_key(7): ["memo"]}
        ctx.answer()
        await turn()
        assert a.rec.memo == {"step": 2} and a.held is None and a.inflight == 0
    run(test)


def test_a_failed_submission_is_refused_but_other_events_in_its_commit_are_kept():
    async def test(ctx: Ctx, mgr: Manager, published: list) -> None:
        from jobmgr.manager.submit import submit

        await submitted(ctx, mgr, 7)
        old = mgr.jobs[7]
        mgr.post(old, "urgency", {"urgency": 20, "userid": 1000})
        mgr.progress(old)
        msg = Message(1, "job-manager.submit", {"jobs": [entry(9)]})
        submit(mgr, msg)
        await turn()
        assert set(appended(ctx.commits[-1])) == {eventlog_key(7), eventlog_key(9)}
        ctx.answer(errno.ENOSPC)
        await turn()
        # the new job was never acknowledged: refused now, and gone
        assert ctx.responses[-1] == (msg, {"errors": [
            [9, errno.ENOSPC, "job commit failed: no space"]]})
        assert 9 not in mgr.jobs
        await settle(ctx, 0.08)
        resent = ctx.commits[-1]
        assert set(appended(resent)) == {eventlog_key(7)}
        assert not any(".jobspec" in op["key"] or op["key"].endswith(".J")
                       for op in resent["ops"])
        ctx.answer()
        await turn()
        assert old.rec.urgency == 20
    run(test)


def test_a_job_whose_eventlog_refuses_events_is_let_go_alone():
    async def test(ctx: Ctx, mgr: Manager, published: list) -> None:
        await submitted(ctx, mgr, 7, 8)
        bad, good = mgr.jobs[7], mgr.jobs[8]
        active = mgr.drain_idle.active
        mgr.post(bad, "memo", {"x": 1})
        mgr.post(good, "memo", {"y": 1})
        await turn()
        ctx.answer(errno.EINVAL, "job.7.eventlog: not a value")
        await turn()
        # split: one commit per job, then the rest
        assert [appended(c) for c in ctx.commits[-2:]] == [{eventlog_key(7): ["memo"]},
                                                           {eventlog_key(8): ["memo"]}]
        ctx.answer(errno.EINVAL, "job.7.eventlog: not a value")
        ctx.answer()
        await turn()
        if ctx.pending:                                # the (empty) rest of the commit
            ctx.answer()
            await turn()
        assert good.rec.memo == {"y": 1}
        assert 7 not in mgr.jobs and mgr.drain_idle.active == active - 1
        assert mgr.poster.abandoned == 1
        assert any("job abandoned" in m for lvl, m in ctx.log.records if lvl == "error")
        assert bad.rec.state == JobState.SCHED        # nothing more was recorded for it
    run(test)
