"""Brokers between two others forward messages as bytes (broker.wire), over real ZeroMQ.

A chain 0 - 1 - 2 - 3 (tbon.fanout=1): everything between rank 0 and rank 3
crosses ranks 1 and 2, which forward requests, responses and events without
decoding them.  Then a fake rank 3 (a DEALER holding the instance key that
rejoins after the real one is killed) sends rank 2 malformed frames and
checks, byte by byte, what comes back through the forward path.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import time

import pytest
import zmq
from helpers.wait import wait_until

import flux
from broker import overlay, wire
from broker.testing import TestInstance, stray_brokers
from flux import __version__
from flux.constants import (
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_ROLE_OWNER,
    FLUX_RPC_STREAMING,
)
from flux.message import Message, decode, encode


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    yield
    assert stray_brokers() == []


@pytest.fixture(scope="module")
def chain():
    inst = TestInstance(size=4, setattrs=["tbon.fanout=1"]).start()
    h = inst.handle()
    h.rpc("module.load", {"name": "testmod"}, nodeid=3).get()
    h.close()
    yield inst
    inst.stop()
    assert inst.live_pids() == []


def rank_handle(inst, rank):
    return flux.Flux(f"local://{os.path.join(inst.rundir, str(rank), 'local')}")


def test_requests_and_responses_cross_two_forwarding_brokers(chain):
    h = chain.handle()
    resp = h.rpc("broker.ping", {"seq": 4}, nodeid=3).get()
    assert resp["route"].endswith("!0!1!2!3") and resp["seq"] == 4
    assert resp["rolemask"] == FLUX_ROLE_OWNER           # LOCAL dropped on the way
    body = {"b": [1, 2.5], "a": "\u00e9", "n": None}
    assert h.rpc("testmod.echo", body, nodeid=3).get() == body
    # from the far end back up: rank 3 to rank 0 crosses 2 and 1 upward
    h3 = rank_handle(chain, 3)
    assert h3.rpc("broker.ping", nodeid=0).get()["route"].endswith("!3!2!1!0")
    # errors made at the far end come back through the forward path too
    with pytest.raises(OSError) as exc:
        h.rpc("testmod.fail", nodeid=3).get()
    assert exc.value.errno != 0
    with pytest.raises(OSError) as exc:
        h.rpc("nosuch.service", nodeid=3).get()
    assert exc.value.errno == errno.ENOSYS


def test_streaming_responses_cross_forwarding_brokers(chain):
    h = chain.handle()
    got = [r["seq"] for r in h.rpc("testmod.stream", {"count": 20}, nodeid=3,
                                   flags=FLUX_RPC_STREAMING)]
    assert got == list(range(20))


def test_many_requests_in_flight_through_the_forward_path(chain):
    h = chain.handle()
    futures = [h.rpc("testmod.echo", {"i": i}, nodeid=3) for i in range(200)]
    assert [f.get()["i"] for f in futures] == list(range(200))


def test_events_reach_the_end_of_the_chain_unchanged(chain):
    subs = [rank_handle(chain, r) for r in range(4)]
    for s in subs:
        s.event_subscribe("fwd.")
    seq = chain.handle().event_publish("fwd.test", {"x": [1, 2]}).get()["seq"]
    for s in subs:
        msg = s.event_recv()
        assert (msg.topic, msg.seq, msg.payload) == ("fwd.test", seq, {"x": [1, 2]})


class FakeChild:
    """A DEALER that joins RANK's parent as RANK, with the instance key (as a restart would)."""

    def __init__(self, inst: TestInstance, parent: int, rank: int) -> None:
        keys = json.load(open(os.path.join(inst.rundir, "curve.json")))
        endpoint = rank_handle(inst, parent).attr_get("tbon.endpoint")
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.routing_id = str(rank).encode()
        self.sock.curve_serverkey = keys["public"].encode()
        self.sock.curve_publickey = keys["public"].encode()
        self.sock.curve_secretkey = keys["secret"].encode()
        self.sock.connect(endpoint)
        self.rank = rank

    def send(self, data: bytes) -> None:
        self.sock.send(data)

    def recv(self, timeout: float = 5.0) -> bytes:
        assert self.sock.poll(int(timeout * 1000)), "nothing came back"
        return self.sock.recv()

    def response(self, matchtag: int, timeout: float = 5.0) -> bytes:
        """The next response frame with MATCHTAG within TIMEOUT (the instance may send
        this rank requests and events, e.g. the heartbeat's, meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.recv(max(0.0, deadline - time.monotonic()))
            msg = decode(data)
            if msg.type == FLUX_MSGTYPE_RESPONSE and msg.matchtag == matchtag:
                return data

    def join(self) -> None:
        self.send(encode(overlay.control(overlay.HELLO, {"rank": self.rank, "hostname": "fake",
                                                         "version": __version__, "pid": 1})))
        while True:
            msg = decode(self.recv())
            if msg.control_type == overlay.HELLO_ACK:
                break
        self.send(encode(overlay.control(overlay.ONLINE, {"rank": self.rank})))

    def close(self) -> None:
        self.send(encode(overlay.control(overlay.GOODBYE, {"rank": self.rank})))
        time.sleep(0.1)
        self.sock.close()
        self.ctx.term()


def dmesg(h) -> list[str]:
    return [e["message"] for e in h.rpc("log.dmesg", {}, flags=FLUX_RPC_STREAMING)]


def test_forwarded_bytes_and_malformed_frames_from_a_child():
    """Run last in its own instance: it kills rank 3 and stands in for it."""
    inst = TestInstance(size=4, setattrs=["tbon.fanout=1"]).start()
    fake = None
    try:
        h = inst.handle()
        os.kill(inst.broker_pids[3], signal.SIGKILL)
        wait_until(lambda: 3 in h.rpc("broker.state").get()["lost"])
        fake = FakeChild(inst, parent=2, rank=3)
        fake.join()
        wait_until(lambda: 3 in h.rpc("broker.state").get()["online"])

        # garbage, a broken header, a route stack running past the end: dropped at rank 2
        good = encode(Message(FLUX_MSGTYPE_REQUEST, "broker.ping", '{"n":1}', nodeid=0,
                              matchtag=41, userid=os.getuid(), rolemask=FLUX_ROLE_OWNER,
                              route=["fake-client"]))
        fake.send(b"garbage that is no message at all")
        fake.send(good[:4] + b"\x00" + good[5:])                      # bad magic
        fake.send(good[:26] + b"\x00\x07" + good[28:])                # 7 hops, 1 present
        # well formed but for its topic's UTF-8: rank 2 forwards it, rank 0 refuses it
        bad_topic = encode(Message(FLUX_MSGTYPE_REQUEST, "broker.pinX", nodeid=0, matchtag=42,
                                   route=["fake-client"])).replace(b"pinX", b"pin\xff")
        fake.send(bad_topic)

        # a good request still goes up through ranks 2 and 1 and is answered
        fake.send(good)
        resp = decode(data := fake.response(41))
        assert (resp.type, resp.matchtag, resp.errnum) == (FLUX_MSGTYPE_RESPONSE, 41, 0)
        assert resp.route == ["fake-client"]      # the hops pushed on the way up are popped
        assert resp.payload["route"] == "FAKE-!3!2!1!0" and resp.payload["n"] == 1
        # byte for byte what rank 0 encoded, with the two forwarding hops popped
        p = wire.peek(data)
        assert wire.route_of(data, p) == wire.route_stack(["fake-client"])
        with pytest.raises(AssertionError):       # nothing for the dropped frames
            fake.response(42)

        logs = dmesg(rank_handle(inst, 2))
        assert sum("overlay: bad message from rank 3" in m for m in logs) == 3
        assert any("bad message magic" in m for m in logs)
        assert any("truncated message: route" in m or "do not fill the frame" in m
                   for m in logs), logs
        wait_until(lambda: any("overlay: bad message from rank 1" in m and "UTF-8" in m
                               for m in dmesg(h)))
        # the brokers on the way still serve
        assert h.rpc("broker.ping", nodeid=2).get()["route"].endswith("!0!1!2")
        state = h.rpc("broker.state").get()    # and nobody took the sender for lost
        assert state["online"] == [0, 1, 2, 3] and state["lost"] == []
    finally:
        if fake is not None:
            fake.close()
        code = inst.stop()
    assert code == 128 + signal.SIGKILL
    assert inst.live_pids() == []
