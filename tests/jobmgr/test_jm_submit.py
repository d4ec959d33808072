"""job-manager.submit writes new jobs itself: submit and what follows in one commit,
answered (and journaled) only once that commit is durable."""
from __future__ import annotations

import asyncio
import errno
from typing import Any

import orjson

from flux.message import Message
from jobmgr.policy import parse_job_policy
from jobmgr.manager.core import Manager
from jobmgr.manager.purge import PurgeLimits
from helpers.module_testing import FakeLog
from kvs.txn import RawValue


class Ctx:
    """The module context the Manager uses, with a kvs.commit that can be held or failed."""

    owner = 1000

    def __init__(self) -> None:
        self.log = FakeLog()
        self.commits: list[dict[str, Any]] = []
        self.pending: list[Any] = []      # commit callbacks not answered yet
        self.responses: list[tuple[Message, Any]] = []

    def new_matchtag(self) -> int:
        return 1

    def on_response(self, tag: int, cb: Any, persistent: bool = False) -> None:
        pass

    def drop_response(self, tag: int) -> None:
        pass

    def send_tagged(self, *args: Any, **kw: Any) -> None:
        pass

    def send_request(self, *args: Any, **kw: Any) -> None:
        pass

    def respond(self, msg: Message, payload: Any = None) -> None:
        self.responses.append((msg, payload))

    def respond_error(self, msg: Message, errnum: int, text: str | None = None) -> None:
        self.responses.append((msg, (errnum, text)))

    def request_callback(self, topic: str, payload: Any, cb: Any) -> None:
        assert topic == "kvs.commit"
        self.commits.append(payload)
        self.pending.append(cb)

    def answer(self, errnum: int = 0) -> None:
        cb = self.pending.pop(0)
        reply = Message(2, "kvs.commit", "no space" if errnum else
                        {"rootref": "blake3-" + "0" * 64, "sequence": len(self.commits)},
                        errnum=errnum)
        cb(reply)


def entry(jobid: int, **extra: Any) -> dict[str, Any]:
    spec = {"version": 1, "resources": [{"type": "slot", "count": 1, "label": "task",
                                         "with": [{"type": "core", "count": 1}]}],
            "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
            "attributes": {"system": {"duration": 0}}}
    return {"id": jobid, "userid": 1000, "urgency": 16, "flags": 0, "t_submit": 100.0,
            "jobspec": spec, **extra}


def run(test: Any) -> None:
    async def main() -> None:
        ctx = Ctx()
        mgr = Manager(ctx, parse_job_policy({}), PurgeLimits())
        published: list[list[dict[str, Any]]] = []
        mgr.journal.publish = published.append  # type: ignore[method-assign]
        await test(ctx, mgr, published)
    asyncio.run(main())


async def turn() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


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
