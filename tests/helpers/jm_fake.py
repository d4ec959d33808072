"""A fake module context for the job manager: kvs.commit answered (or failed) by the test.

``run(test)`` builds a Manager on it and runs ``await test(ctx, mgr, published)``
(``published`` collects the journal items); ``ctx.answer(errnum)`` answers the
oldest commit; ``turn()`` lets the loop run a few times.
"""
from __future__ import annotations

import asyncio
from typing import Any

from flux.message import Message
from helpers.module_testing import FakeLog
from jobmgr.manager.core import Manager
from jobmgr.manager.purge import PurgeLimits
from jobmgr.policy import parse_job_policy


class Ctx:
    """The module context the Manager uses, with a kvs.commit that can be held or failed."""

    owner = 1000

    def __init__(self) -> None:
        self.log = FakeLog()
        self.commits: list[dict[str, Any]] = []
        self.pending: list[Any] = []      # commit callbacks not answered yet
        self.responses: list[tuple[Message, Any]] = []
        self.requests: list[tuple[str, Any]] = []     # send_request calls
        #: streaming requests (sched.alloc, job-exec.start, ...) and kvs.commit payloads,
        #: in the order they were sent: (topic, payload)
        self.sent: list[tuple[str, Any]] = []
        self.handlers: dict[int, Any] = {}              # matchtag -> response callback
        self._tags = 0

    def new_matchtag(self) -> int:
        self._tags += 1
        return self._tags

    def on_response(self, tag: int, cb: Any, persistent: bool = False) -> None:
        self.handlers[tag] = cb

    def drop_response(self, tag: int) -> None:
        self.handlers.pop(tag, None)

    def send_tagged(self, topic: str, payload: Any, tag: int, *args: Any, **kw: Any) -> None:
        self.sent.append((topic, payload))

    def deliver(self, topic: str, payload: Any) -> None:
        """A response to the streaming requests of TOPIC (every one shares its matchtag)."""
        tag = 0 if topic.startswith("sched.") else next(t for t in self.handlers if t)
        self.handlers[tag](Message(2, topic, payload))

    def send_request(self, topic: str, payload: Any = None, *args: Any, **kw: Any) -> None:
        self.requests.append((topic, payload))

    def respond(self, msg: Message, payload: Any = None) -> None:
        self.responses.append((msg, payload))

    def respond_error(self, msg: Message, errnum: int, text: str | None = None) -> None:
        self.responses.append((msg, (errnum, text)))

    def request_callback(self, topic: str, payload: Any, cb: Any) -> None:
        assert topic == "kvs.commit"
        self.commits.append(payload)
        self.sent.append((topic, payload))
        self.pending.append(cb)

    def answer(self, errnum: int = 0, text: str = "no space") -> None:
        cb = self.pending.pop(0)
        reply = Message(2, "kvs.commit", text if errnum else
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
