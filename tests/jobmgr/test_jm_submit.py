"""job-manager.submit writes new jobs itself: submit and what follows in one commit,
answered (and journaled) only once that commit is durable."""
from __future__ import annotations

import errno

import orjson

from flux.message import Message
from helpers.jm_fake import Ctx, Manager, entry, run, turn
from kvs.txn import RawValue


def test_one_commit_writes_the_job_and_the_answer_waits_for_it():
    async def test(ctx: Ctx, mgr: Manager, published: list) -> None:
        from jobmgr.manager.submit import submit

        J = (b'{"version":1,"mech":"none","userid":1000,"jobspec":', b"{}", b"}")
        msg = Message(1, "job-manager.submit",
                      {"jobs": [entry(7, jobspec_json=b'{"x":1}', J_chunks=J)]})
        submit(mgr, msg)
        await turn()
        assert len(ctx.commits) == 1 and ctx.responses == [] and published == []
        ops = {op["key"]: op for op in ctx.commits[0]["ops"]}
        log = ops["job.0000.0000.0000.0007.eventlog"]
        assert log["flags"] == 32
        lines = [orjson.loads(x) for x in log["dirent"].chunks[0].splitlines()]
        assert [e["name"] for e in lines] == ["submit", "validate", "depend", "priority"]
        assert lines[0] == {"timestamp": 100.0, "name": "submit",
                            "context": {"userid": 1000, "urgency": 16, "flags": 0,
                                        "version": 1}}
        spec_put = ops["job.0000.0000.0000.0007.jobspec"]["dirent"]
        assert isinstance(spec_put, RawValue) and spec_put.chunks == (b'{"x":1}',)
        assert ops["job.0000.0000.0000.0007.J"]["dirent"].chunks == J
        ctx.answer()
        assert ctx.responses == [(msg, {})]
        # journaled with its jobspec only now, every event of the commit at once
        item = published[0][0]
        assert [e["name"] for e in item["events"]] == ["submit", "validate", "depend",
                                                       "priority"]
        assert item["jobspec"] == entry(7)["jobspec"]
        assert mgr.jobs[7].rec.state.name == "SCHED"
    run(test)


def test_a_failed_commit_refuses_every_accepted_job_and_forgets_it():
    async def test(ctx: Ctx, mgr: Manager, published: list) -> None:
        from jobmgr.manager.submit import submit

        mgr.queues.set_enable(mgr.queues.select(None, True), False, "closed", False)
        refused = Message(1, "job-manager.submit", {"jobs": [entry(5)]})
        submit(mgr, refused)
        mgr.queues.set_enable(mgr.queues.select(None, True), True, None, False)
        msg = Message(1, "job-manager.submit", {"jobs": [entry(8, flags=4), entry(9)]})
        submit(mgr, msg)
        await turn()
        assert set(mgr.jobs) == {8, 9} and mgr.drain_idle.active == 2
        ctx.answer(errno.ENOSPC)
        assert ctx.responses[0] == (refused, {"errors": [[5, errno.EINVAL,
                                                          "job submission is disabled: closed"]]})
        assert ctx.responses[1] == (msg, {"errors": [
            [8, errno.ENOSPC, "job commit failed: no space"],
            [9, errno.ENOSPC, "job commit failed: no space"]]})
        assert mgr.jobs == {} and mgr.drain_idle.active == 0 and published == []
        assert mgr.waits.active_waitable == 0
    run(test)
