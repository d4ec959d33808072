"""The guest namespace's KVS traffic: symlinks of jobs starting together share a commit."""
from __future__ import annotations

import asyncio
import errno
from types import SimpleNamespace
from typing import Any

import pytest

from jobmgr.exec.guest import GuestNamespace, LinkBatcher


class FakeCtx:
    """Records ``kvs.commit`` requests; the test answers them."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], Any]] = []

    def request_callback(self, topic: str, payload: dict[str, Any], callback: Any) -> int:
        assert topic == "kvs.commit"
        self.sent.append((payload, callback))
        return len(self.sent)

    def answer(self, index: int, errnum: int = 0) -> None:
        _payload, callback = self.sent[index]
        callback(SimpleNamespace(errnum=errnum, errstr="refused" if errnum else None))

    def primary(self) -> list[int]:
        return [i for i, (p, _cb) in enumerate(self.sent) if p["namespace"] == "primary"]


def _guests(ctx: FakeCtx, links: LinkBatcher, n: int) -> list[GuestNamespace]:
    return [GuestNamespace(ctx, 100 + i, 0, f"job.0000.0000.0000.{100 + i:04x}", links)
            for i in range(n)]


def test_symlinks_of_jobs_starting_together_go_in_one_commit() -> None:
    async def main() -> None:
        ctx = FakeCtx()
        links = LinkBatcher(ctx)
        guests = _guests(ctx, links, 3)
        creates = [asyncio.ensure_future(g.create(1, [("init", {})])) for g in guests]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        # one namespace-creating commit per job, one primary commit for the three symlinks
        made = [p for p, _cb in ctx.sent if p["namespace"] != "primary"]
        assert sorted(p["namespace"] for p in made) == ["job-100", "job-101", "job-102"]
        assert all(p["create"] == {"owner": 0} for p in made)
        (prim,) = ctx.primary()
        ops = ctx.sent[prim][0]["ops"]
        assert [op["key"] for op in ops] == [f"{g.job_key}.guest" for g in guests]
        assert all(op["dirent"]["type"] == "symlink" for op in ops)
        for i in range(len(ctx.sent)):
            ctx.answer(i)
        await asyncio.gather(*creates)
        assert all(g.created for g in guests)
        assert links.commits == 1

    asyncio.run(main())


def test_a_refused_symlink_fails_only_its_own_job() -> None:
    async def main() -> None:
        ctx = FakeCtx()
        links = LinkBatcher(ctx)
        guests = _guests(ctx, links, 3)
        creates = [asyncio.ensure_future(g.create(1, [("init", {})])) for g in guests]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        (batch,) = ctx.primary()
        for i in range(len(ctx.sent)):
            if i != batch:
                ctx.answer(i)
        ctx.answer(batch, errno.EINVAL)
        # the refused batch is sent again, one commit per symlink
        again = [i for i in ctx.primary() if i != batch]
        assert [len(ctx.sent[i][0]["ops"]) for i in again] == [1, 1, 1]
        ctx.answer(again[0])
        ctx.answer(again[1], errno.EINVAL)
        ctx.answer(again[2])
        results = await asyncio.gather(*creates, return_exceptions=True)
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], OSError) and results[1].errno == errno.EINVAL
        assert [g.created for g in guests] == [True, False, True]

    asyncio.run(main())


def test_namespace_entries_queued_before_creation_follow_it() -> None:
    async def main() -> None:
        ctx = FakeCtx()
        guest = _guests(ctx, LinkBatcher(ctx), 1)[0]
        create = asyncio.ensure_future(guest.create(1, [("init", {})]))
        await asyncio.sleep(0)
        guest.append("shell.init")              # before the namespace exists: queued
        await asyncio.sleep(0)
        assert len(ctx.sent) == 2
        ctx.answer(0)
        ctx.answer(1)
        await create
        # sent once the namespace exists, after the commit that made it
        assert len(ctx.sent) == 3 and ctx.sent[2][0]["namespace"] == "job-100"
        assert ctx.sent[2][0]["ops"][0]["key"] == "exec.eventlog"

    asyncio.run(main())


@pytest.mark.parametrize("errnum", [errno.ENOSPC])
def test_a_namespace_that_cannot_be_made_fails_create(errnum: int) -> None:
    async def main() -> None:
        ctx = FakeCtx()
        guest = _guests(ctx, LinkBatcher(ctx), 1)[0]
        create = asyncio.ensure_future(guest.create(1, [("init", {})]))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        ctx.answer(0, errnum)
        ctx.answer(1)
        with pytest.raises(OSError) as info:
            await create
        assert info.value.errno == errnum and not guest.created

    asyncio.run(main())


def _bytes_at(ops: list[dict[str, Any]], tmp_path: Any) -> dict[str, bytes]:
    from eventstore.store import Store
    from kvs.engine import KVS
    from kvs.txn import Txn

    store = Store(tmp_path, durability="none")
    try:
        engine = KVS(store, owner=0)
        engine.commit_one(Txn(ops, "job-1", create=0))
        return {key: engine.lookup(key, "job-1").value for key in ("exec.eventlog", "output")}
    finally:
        store.close()


def test_coalesced_appends_store_the_same_bytes(tmp_path: Any) -> None:
    from jobmgr.exec.guest import _op, coalesce

    ops = [_op("exec.eventlog", b"a\n", False), _op("output", b"h\n", False),
           _op("exec.eventlog", b"b\n", True), _op("exec.eventlog", b"c\n", True),
           _op("output", b"o\n", True), _op("exec.eventlog", b"d\n", True),
           _op("exec.eventlog", b"e" * 2000 + b"\n", True), _op("output", b"p\n", False),
           _op("output", b"q\n", True)]
    merged = coalesce(ops)
    # each key's appends become one op, in their order; a put starts afresh
    assert [(op["key"], op["flags"]) for op in merged] == [
        ("exec.eventlog", 0), ("output", 0), ("exec.eventlog", 32), ("output", 32),
        ("output", 0), ("output", 32)]
    assert _bytes_at(merged, tmp_path / "a") == _bytes_at(ops, tmp_path / "b") == {
        "exec.eventlog": b"a\nb\nc\nd\n" + b"e" * 2000 + b"\n", "output": b"p\nq\n"}


def test_a_jobs_last_entries_go_in_one_commit_with_one_op_per_key() -> None:
    async def main() -> None:
        ctx = FakeCtx()
        guest = _guests(ctx, LinkBatcher(ctx), 1)[0]
        create = asyncio.ensure_future(guest.create(1, [("init", {})]))
        await asyncio.sleep(0)
        ctx.answer(0)
        ctx.answer(1)
        await create
        guest.append("shell.init", hold=True)
        guest.append_output(b'{"x":1}\n')
        guest.append("complete", {"status": 0})
        guest.append("done")
        guest.finalize()
        ops = ctx.sent[2][0]["ops"]
        assert [op["key"] for op in ops] == ["exec.eventlog", "output"]
        assert [line.split(b'"name":"')[1].split(b'"')[0]
                for line in ops[0]["dirent"].chunks[0].splitlines()] == [
                    b"shell.init", b"complete", b"done"]
        assert ctx.sent[3][0]["link"] == {"key": f"{guest.job_key}.guest",
                                          "namespace": "job-100"}

    asyncio.run(main())
