"""A size-3 instance: routing over the ZeroMQ overlay, events, streams, lost brokers."""
from __future__ import annotations

import errno
import os
import signal

import pytest
from helpers.wait import wait_until

import flux
from broker.testing import TestInstance, stray_brokers
from flux.constants import FLUX_RPC_STREAMING


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    """After this module, no broker it started may still run."""
    yield
    assert stray_brokers() == []


@pytest.fixture(scope="module")
def inst():
    instance = TestInstance(size=3).start()
    h = instance.handle()
    h.rpc("module.load", {"name": "testmod"}, nodeid=2).get()
    h.close()
    yield instance
    assert instance.stop() == 0
    assert instance.live_pids() == []


def rank_handle(inst, rank):
    return flux.Flux(f"local://{os.path.join(inst.rundir, str(rank), 'local')}")


def test_topology_attributes(inst):
    h = inst.handle()
    assert h.attr_get("size") == "3" and h.attr_get("tbon.maxlevel") == "1"
    assert h.attr_get("tbon.descendants") == "2"
    assert h.attr_get("tbon.endpoint").startswith("ipc://")
    h2 = rank_handle(inst, 2)
    assert h2.get_rank() == 2 and h2.attr_get("tbon.level") == "1"
    assert h2.attr_get("tbon.parent-endpoint") == h.attr_get("tbon.endpoint")
    with pytest.raises(OSError) as exc:
        h.attr_get("tbon.parent-endpoint")
    assert exc.value.errno == errno.ENOENT


def test_rank_addressed_requests(inst):
    h = inst.handle()
    resp = h.rpc("broker.ping", {"seq": 1}, nodeid=2).get()
    assert resp["route"].endswith("!0!2")       # client, rank 0, then served at rank 2
    assert h.rpc("attr.get", {"name": "rank"}, nodeid=1).get()["value"] == "1"
    h1 = rank_handle(inst, 1)
    # rank 1 -> rank 2 goes up to 0 and down again
    assert h1.rpc("broker.ping", nodeid=2).get()["route"].endswith("!1!0!2")
    with pytest.raises(OSError) as exc:
        h.rpc("broker.ping", nodeid=7).get()
    assert exc.value.errno == errno.EHOSTUNREACH
    with pytest.raises(OSError) as exc:
        h.rpc("testmod.echo", nodeid=1).get()
    assert exc.value.errno == errno.ENOSYS


def test_requests_from_other_brokers_lose_the_local_role(inst):
    h = inst.handle()
    assert h.rpc("broker.ping").get()["rolemask"] == 5           # owner | local
    assert h.rpc("broker.ping", nodeid=2).get()["rolemask"] == 1  # owner, via the overlay


def test_any_requests_go_upstream(inst):
    h0 = inst.handle()
    h0.rpc("module.load", {"name": "testmod"}).get()
    try:
        h2 = rank_handle(inst, 2)
        # testmod is on rank 2 itself: served locally
        assert h2.rpc("testmod.info").get()["rank"] == 2
        h1 = rank_handle(inst, 1)
        # not on rank 1: the request goes upstream to rank 0
        assert h1.rpc("testmod.info").get()["rank"] == 0
        # upstream flag from rank 2 skips the local module
        from flux.constants import FLUX_NODEID_UPSTREAM

        assert h2.rpc("testmod.info", nodeid=FLUX_NODEID_UPSTREAM).get()["rank"] == 0
    finally:
        h0.rpc("module.remove", {"name": "testmod"}).get()
    with pytest.raises(OSError) as exc:
        rank_handle(inst, 1).rpc("testmod.info").get()
    assert exc.value.errno == errno.ENOSYS


def test_streaming_across_the_overlay(inst):
    h = inst.handle()
    got = [r["seq"] for r in h.rpc("testmod.stream", {"count": 5}, nodeid=2,
                                   flags=FLUX_RPC_STREAMING)]
    assert got == [0, 1, 2, 3, 4]


def test_module_streaming_rpc_across_overlay(inst):
    h = inst.handle()
    h.rpc("module.load", {"name": "testmod"}).get()
    try:
        got = h.rpc("testmod.collect", {"topic": "testmod.stream", "payload": {"count": 3},
                                        "nodeid": 2}).get()
        assert got == {"items": [{"seq": 0}, {"seq": 1}, {"seq": 2}]}
        before = h.rpc("testmod.info", nodeid=2).get()["cancelled"]
        got = h.rpc("testmod.collect", {"topic": "testmod.stream", "nodeid": 2, "limit": 2,
                                        "payload": {"forever": True, "interval": 0.01}}).get()
        assert got == {"items": [{"seq": 0}, {"seq": 1}]}
        # leaving the loop early cancelled the remote stream
        wait_until(lambda: h.rpc("testmod.info", nodeid=2).get()["cancelled"] == before + 1)
        with pytest.raises(OSError) as exc:
            h.rpc("testmod.collect", {"topic": "testmod.stream", "payload": {"count": 1},
                                      "nodeid": 1}).get()
        assert exc.value.errno == errno.ENOSYS
    finally:
        h.rpc("module.remove", {"name": "testmod"}).get()


def test_disconnect_reaches_remote_service(inst):
    h = inst.handle()
    before = h.rpc("testmod.info", nodeid=2).get()
    other = inst.handle()
    f = other.rpc("testmod.stream", {"forever": True, "interval": 0.01}, nodeid=2,
                  flags=FLUX_RPC_STREAMING)
    assert f.get()["seq"] == 0
    other.close()
    wait_until(lambda: h.rpc("testmod.info", nodeid=2).get()["cancelled"]
               == before["cancelled"] + 1)


def test_events_reach_every_rank(inst):
    subs = [rank_handle(inst, r) for r in range(3)]
    for s in subs:
        s.event_subscribe("ov.")
    pub = rank_handle(inst, 2)
    seq = pub.event_publish("ov.test", {"from": 2}).get()["seq"]
    for s in subs:
        msg = s.event_recv()
        assert (msg.topic, msg.seq, msg.payload) == ("ov.test", seq, {"from": 2})
    seq2 = rank_handle(inst, 1).event_publish("ov.next").get()["seq"]
    assert seq2 > seq            # (the heartbeat may have published in between)


def test_logs_of_other_ranks_reach_rank0(inst):
    rank_handle(inst, 2).log(3, "hello from two", appname="ovtest")
    h = inst.handle()

    def found():
        entries = list(h.rpc("log.dmesg", {}, flags=FLUX_RPC_STREAMING))
        return [e for e in entries if e["message"] == "hello from two"]

    wait_until(found)
    assert found()[0]["rank"] == 2
    entries = list(h.rpc("log.dmesg", {}, flags=FLUX_RPC_STREAMING))
    assert any(e["rank"] == 1 and "parent-ready: join->init" in e["message"] for e in entries)


def test_overlay_refuses_peer_without_instance_key(inst):
    import zmq

    h = inst.handle()
    endpoint = h.attr_get("tbon.endpoint")
    public, secret = zmq.curve_keypair()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.routing_id = b"1"
    # it knows the server's public key, but holds its own keypair
    with open(os.path.join(inst.rundir, "curve.json")) as fh:
        import json

        server_public = json.load(fh)["public"].encode()
    sock.curve_serverkey = server_public
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.connect(endpoint)
    sock.send(b"intruder")
    try:
        def refused():
            log = [e["message"] for e in h.rpc("log.dmesg", {}, flags=FLUX_RPC_STREAMING)]
            return any("refused a peer without the instance key" in m for m in log)

        wait_until(refused)
        assert sock.poll(100) == 0          # nothing comes back
        assert h.rpc("broker.ping", nodeid=1).get()   # the real rank 1 is unaffected
    finally:
        sock.close()
        ctx.term()


def test_shutdown_only_on_rank0(inst):
    h = inst.handle()
    with pytest.raises(OSError) as exc:
        h.rpc("broker.shutdown", {}, nodeid=1).get()
    assert exc.value.errno == errno.EINVAL and "only the rank 0 broker" in exc.value.strerror


def test_overlay_status_full_and_parentof(inst):
    h = inst.handle()
    tree = h.rpc("overlay.status", {}).get()
    assert [tree["status"]] + [c["status"] for c in tree["children"]] == ["full"] * 3
    assert [c["rank"] for c in tree["children"]] == [1, 2]
    assert h.rpc("overlay.parentof", {"rank": 2}).get() == {"parent": 0}
    with pytest.raises(OSError, match="rank 0 has no parent"):
        h.rpc("overlay.parentof", {"rank": 0}).get()
    state = h.rpc("broker.state").get()
    assert state["online"] == [0, 1, 2] and state["lost"] == []


def test_lost_broker_instance_keeps_running():
    inst = TestInstance(size=3).start()
    try:
        h = inst.handle()
        h.rpc("module.load", {"name": "testmod"}, nodeid=2).get()
        held = h.rpc("testmod.hold", nodeid=2)
        stream = h.rpc("testmod.stream", {"forever": True, "interval": 0.05}, nodeid=2,
                       flags=FLUX_RPC_STREAMING)
        assert stream.get()["seq"] == 0
        os.kill(inst.broker_pids[2], signal.SIGKILL)
        # outstanding requests through the lost broker fail instead of hanging
        with pytest.raises(OSError) as exc:
            held.wait_for(10).get()
        assert exc.value.errno == errno.EHOSTUNREACH
        with pytest.raises(OSError) as exc:
            while True:
                stream.wait_for(10).get()
                stream.reset()
        assert exc.value.errno == errno.EHOSTUNREACH
        with pytest.raises(OSError) as exc:
            h.rpc("broker.ping", nodeid=2).get()
        assert exc.value.errno == errno.EHOSTUNREACH and "lost" in exc.value.strerror
        # the rest still serves
        assert h.rpc("broker.ping", nodeid=1).get()["route"].endswith("!0!1")
        tree = h.rpc("overlay.status", {}).get()
        assert tree["status"] == "degraded"
        assert {c["rank"]: c["status"] for c in tree["children"]} == {1: "full", 2: "lost"}
        state = h.rpc("broker.state").get()
        assert state["online"] == [0, 1] and state["lost"] == [2]
        h.close()
    finally:
        code = inst.stop()
    assert code == 128 + signal.SIGKILL      # --test-exit-mode=any: the highest exit code
    assert inst.live_pids() == []


def test_losing_a_parent_takes_its_subtree_down():
    inst = TestInstance(size=3, setattrs=["tbon.fanout=1"]).start()   # a chain 0 - 1 - 2
    try:
        h = inst.handle()
        os.kill(inst.broker_pids[1], signal.SIGKILL)

        def gone(pid):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    return fh.read().split(") ", 1)[1].startswith("Z")
            except FileNotFoundError:
                return True

        # rank 2 notices its parent is gone and shuts itself down
        wait_until(lambda: gone(inst.broker_pids[2]))
        state = h.rpc("broker.state").get()
        assert state["online"] == [0] and state["lost"] == [1, 2]
        tree = h.rpc("overlay.status", {}).get()
        assert tree["status"] == "degraded"
        child = tree["children"][0]
        assert (child["rank"], child["status"]) == (1, "lost")
        assert (child["children"][0]["rank"], child["children"][0]["status"]) == (2, "lost")
        h.close()
    finally:
        inst.stop()
    assert inst.live_pids() == []
