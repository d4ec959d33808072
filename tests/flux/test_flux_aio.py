"""flux.core.aio.AsyncFlux against real instances: rpc, streams, errors, a lost connection."""
from __future__ import annotations

import asyncio
import errno

import orjson
import pytest

from broker.testing import TestInstance
from flux.core.aio import AsyncFlux
from flux.errors import FluxError
from flux.job import JobID
from kvs.constants import FLUX_KVS_WATCH

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance().start()
    yield inst
    inst.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_rpc_returns_the_payload_and_many_may_be_in_flight(inst):
    async def main():
        async with await AsyncFlux.connect(inst.uri) as h:
            one = await h.rpc("attr.get", {"name": "size"})
            many = await asyncio.gather(*(h.rpc("attr.get", {"name": name})
                                          for name in ("rank", "size", "rundir") * 20))
            return one, many

    one, many = run(main())
    assert one["value"] == "1"
    assert [r["value"] for r in many[:3]] == ["0", "1", inst.rundir]
    assert many[3:6] == many[:3]


def test_an_error_response_raises_with_the_brokers_errno_and_text(inst):
    async def main():
        async with await AsyncFlux.connect(inst.uri) as h:
            with pytest.raises(FluxError) as unknown:
                await h.rpc("attr.get", {"name": "no-such-attr"})
            with pytest.raises(FluxError) as nosys:
                await h.rpc("nosuchservice.hello", {})
            # the handle keeps working after errors
            return unknown.value, nosys.value, await h.rpc("attr.get", {"name": "rank"})

    unknown, nosys, after = run(main())
    assert unknown.errno == errno.ENOENT and "no-such-attr" in unknown.strerror
    assert nosys.errno == errno.ENOSYS and "nosuchservice" in str(nosys)
    assert after["value"] == "0"


def test_a_stream_yields_each_response_and_ends_at_enodata(inst):
    r = inst.flux("run", "true", timeout=60)
    assert r.returncode == 0, r.stderr
    jobid = int(JobID(inst.flux("jobs", "-a", "-no", "{id}").stdout.split()[0]))

    async def main():
        async with await AsyncFlux.connect(inst.uri) as h:
            names = []
            async for resp in h.rpc_stream("job-info.eventlog-watch",
                                           {"id": jobid, "path": "eventlog", "flags": 0}):
                names.append(orjson.loads(resp["event"])["name"])
            return names

    names = run(main())
    assert names[0] == "submit" and names[-1] == "clean" and "start" in names


def test_a_stream_error_raises(inst):
    async def main():
        async with await AsyncFlux.connect(inst.uri) as h:
            stream = h.rpc_stream("job-info.eventlog-watch",
                                  {"id": 12345, "path": "eventlog", "flags": 0})
            with pytest.raises(FluxError) as exc:
                async for _ in stream:
                    pass
            return exc.value

    exc = run(main())
    assert exc.errno == errno.ENOENT and "unknown job" in exc.strerror


def test_connect_to_nothing_fails_with_the_reason(tmp_path):
    async def main():
        with pytest.raises(FluxError) as exc:
            await AsyncFlux.connect(f"local://{tmp_path}/nosuch")
        return exc.value

    exc = run(main())
    assert exc.errno == errno.ENOENT and "cannot connect" in exc.strerror


def test_a_lost_connection_fails_every_outstanding_rpc_with_econnreset():
    inst = TestInstance().start()
    try:
        async def main():
            h = await AsyncFlux.connect(inst.uri)
            r = inst.flux("kvs", "put", "aio.key=1")
            assert r.returncode == 0, r.stderr
            stream = h.rpc_stream("kvs-watch.lookup", {"key": "aio.key", "flags": FLUX_KVS_WATCH,
                                                      "namespace": "primary"})
            first = await stream.__anext__()
            # requests the broker does not answer until something changes
            waiting = [asyncio.ensure_future(stream.__anext__()),
                       asyncio.ensure_future(h.rpc("kvs.wait-version",
                                                   {"sequence": 10**9, "namespace": "primary"}))]
            await asyncio.sleep(0.2)
            assert not any(w.done() for w in waiting)
            await asyncio.get_running_loop().run_in_executor(None, inst.kill)
            lost = await asyncio.gather(*waiting, return_exceptions=True)
            with pytest.raises(FluxError) as later:
                await h.rpc("attr.get", {"name": "rank"})
            with pytest.raises(FluxError) as later_stream:
                h.rpc_stream("kvs-watch.lookup", {"key": "aio.key", "flags": FLUX_KVS_WATCH})
            h.close()
            return first, lost, later.value, later_stream.value

        first, lost, later, later_stream = run(main())
        assert "val" in first or "raw" in first
        for exc in lost:
            assert isinstance(exc, FluxError) and exc.errno == errno.ECONNRESET, exc
            assert inst.uri in exc.strerror
        assert later.errno == errno.ECONNRESET and later_stream.errno == errno.ECONNRESET
    finally:
        inst.kill()
    assert inst.live_pids() == []


def test_close_fails_outstanding_rpcs_and_ends_nothing_else(inst):
    async def main():
        h = await AsyncFlux.connect(inst.uri)
        waiting = asyncio.ensure_future(h.rpc("kvs.wait-version",
                                              {"sequence": 10**9, "namespace": "primary"}))
        await asyncio.sleep(0.05)
        h.close()
        with pytest.raises(FluxError) as exc:
            await waiting
        h.close()  # twice is fine
        return exc.value, h.closed

    exc, closed = run(main())
    assert exc.errno == errno.ECONNRESET and closed
    assert inst.flux("getattr", "rank").stdout == "0\n"  # the instance is not bothered
