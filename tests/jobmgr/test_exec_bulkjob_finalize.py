"""A job that ends before its guest namespace exists still has it moved, before ``finish``.

A one-shell job does not wait for its namespace (no barrier round trip),
so its shell can exit while the namespace's first commit is in flight.
The link that moves the namespace into the job directory (and removes
it) must then wait for that commit, and ``finish`` must follow the link.
"""
from __future__ import annotations

import asyncio
from typing import Any

import structlog

from flux.message import Message
from jobmgr.exec.bulkexec import BulkJob
from jobmgr.exec.job import ExecSettings


class _Ctx:
    """Records the requests a job sends; their responses are given by the test."""

    rank = 0

    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log
        self.callbacks: list[tuple[dict[str, Any], Any]] = []

    def request_callback(self, topic: str, payload: Any, callback: Any, **_kw: Any) -> int:
        self.log.append((topic, payload))
        self.callbacks.append((payload, callback))
        return len(self.callbacks)


class _Mod:
    links = None
    pmi_token = "t"

    def __init__(self, ctx: _Ctx) -> None:
        self.ctx = ctx
        self.log = structlog.get_logger()
        self.started: Any = None
        self.exited: Any = None
        self.barrier: Any = None

    def launch_local(self, _payload: Any, _jobid: int, _userid: int, started: Any,
                     exited: Any, _failed: Any, barrier: Any, _f58: str) -> None:
        self.started, self.exited, self.barrier = started, exited, barrier


def _ok(callback: Any) -> None:
    msg = Message()
    msg.errnum = 0
    callback(msg)


def test_a_job_that_ends_before_its_namespace_is_made_is_finalized_once_it_is() -> None:
    async def main() -> None:
        log: list[tuple[str, Any]] = []
        ctx = _Ctx(log)
        mod = _Mod(ctx)
        job = BulkJob(mod, 42, 1000, {}, {"execution": {}}, [0], 1, ExecSettings(),
                      lambda kind, data: log.append(("respond", kind)), "job.0000.0000.0000.002a")
        job.run()
        creates = list(ctx.callbacks)
        assert [p.get("create") is not None for p, _cb in creates] == [True, False]
        mod.started(1234)
        for name in ("init", "start"):      # one shell: its barriers are not waited for
            mod.barrier(name, {}, lambda _reply: None)
        mod.exited(0, b"")                  # the shell is done; nothing is durable yet
        await asyncio.sleep(0)
        assert not any(p.get("link") for _t, p in log if isinstance(p, dict))
        assert ("respond", "finish") not in log
        for _p, cb in creates:              # the namespace and its symlink are made
            _ok(cb)
        for _ in range(3):
            await asyncio.sleep(0)
        links = [i for i, (t, p) in enumerate(log)
                 if t == "kvs.commit" and p.get("link") is not None]
        assert len(links) == 1
        assert log[links[0]][1]["link"]["namespace"] == "job-42"
        finish = log.index(("respond", "finish"))
        assert finish > links[0]
        assert job.done.done()

    asyncio.run(main())
