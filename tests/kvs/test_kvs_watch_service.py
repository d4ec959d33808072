"""kvs-watch over a real instance: watch, uniq, append, full, waitcreate, and how streams end."""
from __future__ import annotations

import base64
import errno
import time

import pytest

from broker.testing import TestInstance
from flux.constants import FLUX_RPC_STREAMING
from kvs.constants import (
    FLUX_KVS_APPEND,
    FLUX_KVS_WAITCREATE,
    FLUX_KVS_WATCH,
    FLUX_KVS_WATCH_APPEND,
    FLUX_KVS_WATCH_FULL,
    FLUX_KVS_WATCH_UNIQ,
)

TIMEOUT = 5.0


def val(data: bytes) -> dict:
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode()}


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=1).start()
    yield inst
    assert inst.stop() == 0


@pytest.fixture
def h(inst):
    h = inst.handle()
    yield h
    h.close()


def put(h, key, data: bytes, flags=0, namespace=None):
    body = {"ops": [{"key": key, "flags": flags, "dirent": val(data)}]}
    if namespace:
        body["namespace"] = namespace
    return h.rpc("kvs.commit", body).get()


def unlink(h, key):
    return h.rpc("kvs.commit", {"ops": [{"key": key, "flags": 0, "dirent": None}]}).get()


def watch(h, key, flags, namespace=None):
    body = {"key": key, "flags": flags}
    if namespace:
        body["namespace"] = namespace
    return h.rpc("kvs-watch.lookup", body, flags=FLUX_RPC_STREAMING)


def nxt(f, timeout=TIMEOUT) -> bytes:
    """Data of the stream's next response."""
    f.wait_for(timeout)
    resp = f.get()
    f.reset()
    return base64.b64decode(resp["val"]["data"])


def ends_with(f, errnum, timeout=TIMEOUT) -> str:
    f.wait_for(timeout)
    with pytest.raises(OSError) as e:
        f.get()
    assert e.value.errno == errnum, e.value
    return e.value.strerror or ""


def silent(f, wait=0.2) -> bool:
    try:
        f.wait_for(wait)
    except OSError as e:
        return e.errno == errno.ETIMEDOUT
    return False


def test_watch_sends_initial_then_every_write(h):
    put(h, "w1.k", b"a")
    f = watch(h, "w1.k", FLUX_KVS_WATCH)
    assert nxt(f) == b"a"
    put(h, "w1.k", b"b")
    assert nxt(f) == b"b"
    put(h, "w1.k", b"b")  # named again, same value: still reported
    assert nxt(f) == b"b"
    put(h, "w1.other", b"x")  # not named: nothing
    assert silent(f)


def test_watch_uniq_skips_unchanged_writes(h):
    put(h, "w2.k", b"a")
    f = watch(h, "w2.k", FLUX_KVS_WATCH | FLUX_KVS_WATCH_UNIQ)
    assert nxt(f) == b"a"
    put(h, "w2.k", b"a")
    assert silent(f)
    put(h, "w2.k", b"c")
    assert nxt(f) == b"c"


def test_watch_missing_key_without_waitcreate_is_enoent(h):
    f = watch(h, "w3.never", FLUX_KVS_WATCH)
    assert "w3.never" in ends_with(f, errno.ENOENT)


def test_waitcreate_watch_starts_when_key_appears(h):
    f = watch(h, "w4.k", FLUX_KVS_WATCH | FLUX_KVS_WAITCREATE)
    assert silent(f)
    put(h, "w4.k", b"born")
    assert nxt(f) == b"born"
    put(h, "w4.k", b"again")
    assert nxt(f) == b"again"


def test_waitcreate_without_watch_is_one_response(h):
    single = h.rpc("kvs-watch.lookup", {"key": "w5.k", "flags": FLUX_KVS_WAITCREATE})
    streamed = watch(h, "w5.k", FLUX_KVS_WAITCREATE)
    assert silent(single) and silent(streamed)
    put(h, "w5.k", b"v")
    single.wait_for(TIMEOUT)
    assert base64.b64decode(single.get()["val"]["data"]) == b"v"
    assert nxt(streamed) == b"v"
    ends_with(streamed, errno.ENODATA)


def test_watch_append_sends_only_new_bytes(h):
    f = watch(h, "w6.log", FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND | FLUX_KVS_WAITCREATE)
    put(h, "w6.log", b"first\n", FLUX_KVS_APPEND)
    assert nxt(f) == b"first\n"
    # past merge_after appends the engine compacts old and new chunks together
    expect = []
    for i in range(40):
        line = f"line {i}\n".encode()
        put(h, "w6.log", line, FLUX_KVS_APPEND)
        expect.append(line)
    got = [nxt(f) for _ in expect]
    assert got == expect


def test_watch_append_rewrite_ends_with_einval(h):
    put(h, "w7.log", b"aaaa\n", FLUX_KVS_APPEND)
    f = watch(h, "w7.log", FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND)
    assert nxt(f) == b"aaaa\n"
    put(h, "w7.log", b"b")
    assert "w7.log" in ends_with(f, errno.EINVAL)


def test_watch_full_sees_parent_replacement(h):
    put(h, "w8.dir.k", b"1")
    plain = watch(h, "w8.dir.k", FLUX_KVS_WATCH)
    full = watch(h, "w8.dir.k", FLUX_KVS_WATCH | FLUX_KVS_WATCH_FULL)
    assert nxt(plain) == b"1" and nxt(full) == b"1"
    h.rpc("kvs.commit", {"ops": [{"key": "w8.dir", "flags": 0, "dirent": {
        "ver": 1, "type": "dir", "data": {"k": val(b"2")}}}]}).get()
    assert nxt(full) == b"2"
    assert silent(plain)


def test_key_removed_ends_watch_with_enoent(h):
    put(h, "w9.k", b"1")
    f = watch(h, "w9.k", FLUX_KVS_WATCH)
    assert nxt(f) == b"1"
    unlink(h, "w9.k")
    assert "w9.k" in ends_with(f, errno.ENOENT)


def test_cancel_ends_stream_with_enodata(h):
    put(h, "w10.k", b"1")
    f = watch(h, "w10.k", FLUX_KVS_WATCH)
    assert nxt(f) == b"1"
    h.rpc("kvs-watch.cancel", {"matchtag": f.matchtag}, flags=1)  # no response wanted
    ends_with(f, errno.ENODATA)
    pending = h.rpc("kvs-watch.lookup", {"key": "w10.none", "flags": FLUX_KVS_WAITCREATE})
    assert silent(pending)
    h.rpc("kvs-watch.cancel", {"matchtag": pending.matchtag}, flags=1)
    ends_with(pending, errno.ENODATA)


def test_namespace_removal_ends_watches(h):
    h.rpc("kvs.namespace-create", {"namespace": "wns", "owner": -1, "flags": 0}).get()
    put(h, "k", b"1", namespace="wns")
    f = watch(h, "k", FLUX_KVS_WATCH, namespace="wns")
    waiting = watch(h, "later", FLUX_KVS_WATCH | FLUX_KVS_WAITCREATE, namespace="wns")
    assert nxt(f) == b"1"
    h.rpc("kvs.namespace-remove", {"namespace": "wns"}).get()
    ends_with(f, errno.ENODATA)
    ends_with(waiting, errno.ENODATA)


def test_watch_needs_streaming_flag(h):
    with pytest.raises(OSError) as e:
        h.rpc("kvs-watch.lookup", {"key": "x", "flags": FLUX_KVS_WATCH}).get()
    assert e.value.errno == errno.EPROTO


def test_bad_key_and_flags(h):
    with pytest.raises(OSError) as e:
        watch(h, "a\x02", FLUX_KVS_WATCH).get()
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        watch(h, "a", 1 << 20).get()
    assert e.value.errno == errno.EINVAL and "flags" in e.value.strerror


def test_disconnect_drops_watchers(inst, h):
    def count():
        return h.rpc("kvs-watch.stats", {}).get()["watchers"]

    base = count()
    other = inst.handle()
    watch(other, "w11.k", FLUX_KVS_WATCH | FLUX_KVS_WAITCREATE)
    other.rpc("kvs-watch.lookup", {"key": "w11.j", "flags": FLUX_KVS_WAITCREATE})
    deadline = time.monotonic() + TIMEOUT
    while count() < base + 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    other.close()
    while count() > base:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_many_watchers_each_get_their_key(h):
    fs = {i: watch(h, f"w12.k{i}", FLUX_KVS_WATCH | FLUX_KVS_WAITCREATE) for i in range(50)}
    futures = [h.rpc("kvs.commit", {"ops": [{"key": f"w12.k{i}", "flags": 0,
                                             "dirent": val(str(i).encode())}]}) for i in fs]
    for c in futures:
        c.get()
    for i, f in fs.items():
        assert nxt(f) == str(i).encode()


def test_commit_resolves_only_watched_keys_it_names(h):
    for i in range(100):
        put(h, f"w13.k{i}", b"0")
    fs = [watch(h, f"w13.k{i}", FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND) for i in range(100)]
    for f in fs:
        nxt(f)
    before = h.rpc("kvs-watch.stats", {}).get()["resolved"]
    for i in range(20):
        put(h, f"w13.unwatched{i}", b"x")
    assert h.rpc("kvs-watch.stats", {}).get()["resolved"] == before
    put(h, "w13.k7", b"1", FLUX_KVS_APPEND)
    assert nxt(fs[7]) == b"1"
    assert h.rpc("kvs-watch.stats", {}).get()["resolved"] == before + 1
    assert all(silent(f, 0.01) for i, f in enumerate(fs) if i != 7)


def test_raw_values_are_for_modules_only(h):
    # a client asking for raw bytes still gets RFC 11 val objects (bytes cannot travel as JSON)
    h.rpc("kvs.commit", {"ops": [{"key": "rawtest", "flags": 0,
                                  "dirent": {"ver": 1, "type": "val", "data": "aGk="}}]}).get()
    resp = h.rpc("kvs-watch.lookup", {"key": "rawtest", "flags": 0, "raw": True}).get()
    assert "raw" not in resp and resp["val"]["data"] == "aGk="
