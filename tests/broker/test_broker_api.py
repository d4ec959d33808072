"""flux.Flux against a real size-1 instance: RPC (RFC 6), events, services, watchers, errors."""
from __future__ import annotations

import errno
import os
import signal
import socket
import struct
import subprocess
import sys

import pytest
from helpers.wait import wait_until

import flux
from broker.testing import TestInstance, stray_brokers
from flux.constants import (
    FLUX_MSGFLAG_PRIVATE,
    FLUX_MSGTYPE_REQUEST,
    FLUX_NODEID_ANY,
    FLUX_POLLIN,
    FLUX_REACTOR_NOWAIT,
    FLUX_RPC_NORESPONSE,
    FLUX_RPC_STREAMING,
    LOG_ERR,
)
from flux.message import Message


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    """After this module, no broker it started may still run."""
    yield
    assert stray_brokers() == []


@pytest.fixture(scope="module")
def inst():
    instance = TestInstance().start()
    h = instance.handle()
    h.rpc("module.load", {"name": "testmod"}).get()
    h.close()
    yield instance
    assert instance.stop() == 0
    assert instance.live_pids() == []


@pytest.fixture
def h(inst):
    handle = inst.handle()
    yield handle
    handle.close()


# -- connecting -------------------------------------------------------------------


def test_no_flux_uri_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("FLUX_URI", raising=False)
    with pytest.raises(OSError) as exc:
        flux.Flux()
    assert exc.value.errno == errno.EINVAL and "FLUX_URI is not set" in str(exc.value)


def test_bad_uris(tmp_path):
    # ssh:// of this host is a local socket; another host cannot be reached yet
    with pytest.raises(OSError, match="cannot connect to host 'host' .only instances on "
                                      "this host can be reached"):
        flux.Flux("ssh://host/path")
    with pytest.raises(OSError, match="unsupported URI scheme"):
        flux.Flux("tcp://host:1234")
    with pytest.raises(OSError) as exc:
        flux.Flux(f"local://{tmp_path}/nosock")
    assert exc.value.errno == errno.ENOENT and "cannot connect to local://" in str(exc.value)


def test_flux_uri_from_environment(inst, monkeypatch):
    monkeypatch.setenv("FLUX_URI", inst.uri)
    with flux.Flux() as h:
        assert h.get_rank() == 0 and h.get_size() == 1


# -- attributes ---------------------------------------------------------------------


def test_attributes(h, inst):
    assert h.attr_get("size") == "1"
    assert h.attr_get("local-uri") == inst.uri
    assert h.attr_get("rundir") == inst.rundir
    assert h.attr_get("tbon.fanout") == "2" and h.attr_get("tbon.maxlevel") == "0"
    assert h.attr_get("content.hash") == "blake3"
    assert h.attr_get("instance-level") == "0"
    assert int(h.attr_get("broker.pid")) == inst.broker_pids[0]
    with pytest.raises(OSError) as exc:
        h.attr_get("no.such.attr")
    assert exc.value.errno == errno.ENOENT and "unknown attribute 'no.such.attr'" in str(exc.value)
    with pytest.raises(OSError) as exc:
        h.attr_set("rank", "5")
    assert exc.value.errno == errno.EPERM
    h.attr_set("log-stderr-level", "2")
    assert h.attr_get("log-stderr-level") == "2"
    with pytest.raises(OSError, match="unknown log severity"):
        h.attr_set("log-level", "loud")


def test_module_attribute(h):
    assert h.attr_get("testmod.greeting") == "hello"
    h.attr_set("testmod.greeting", "hi")
    assert h.attr_get("testmod.greeting") == "hi"
    with pytest.raises(OSError, match="must not be empty"):
        h.attr_set("testmod.greeting", "")


# -- RPC ----------------------------------------------------------------------------


def test_ping_echoes_and_shows_route(h):
    resp = h.rpc("broker.ping", {"seq": 3, "pad": "pp"}).get()
    assert resp["seq"] == 3 and resp["pad"] == "pp"
    assert resp["route"].endswith("!0") and resp["userid"] == os.getuid()
    assert resp["rolemask"] == 5  # owner | local, as Flux stamps a local owner's messages
    assert h.rpc("testmod.ping", {}).get()["route"].count("!") == 2
    assert '"seq":1' in h.rpc("broker.ping", {"seq": 1}).get_str()


def test_enosys_for_missing_service_and_method(h):
    with pytest.raises(OSError) as exc:
        h.rpc("nosuch.method").get()
    assert exc.value.errno == errno.ENOSYS
    assert exc.value.strerror == "Service is not available: nosuch.method"
    with pytest.raises(OSError) as exc:
        h.rpc("testmod.nosuch").get()
    assert exc.value.errno == errno.ENOSYS
    assert exc.value.strerror == "Method not implemented: testmod.nosuch"


def test_rank_addressing_on_single_broker(h):
    assert h.rpc("broker.ping", nodeid=0).get()["route"].endswith("!0")
    with pytest.raises(OSError) as exc:
        h.rpc("broker.ping", nodeid=3).get()
    assert exc.value.errno == errno.EHOSTUNREACH


def test_handler_errors_become_error_responses(h):
    with pytest.raises(OSError) as exc:
        h.rpc("testmod.fail", {"errno": errno.ENOENT}).get()
    assert exc.value.errno == errno.ENOENT and exc.value.strerror == "testmod failed as asked"
    with pytest.raises(OSError) as exc:
        h.rpc("testmod.fail", {}).get()
    assert exc.value.errno == errno.EPROTO and "missing key 'errno'" in exc.value.strerror
    with pytest.raises(OSError) as exc:
        h.rpc("attr.get", b"not json").get()
    assert exc.value.errno == errno.EPROTO and "payload is not valid JSON" in exc.value.strerror


def test_pipelined_rpcs_match_their_responses(h):
    futures = [h.rpc("testmod.echo", {"i": i}) for i in range(300)]
    for i, f in reversed(list(enumerate(futures))):
        assert f.get() == {"i": i}


def test_matchtags_are_reused(h):
    for _ in range(500):
        h.rpc("broker.ping").get()
    assert h._next_tag < 10


def test_then_callbacks_run_from_reactor(h):
    got = []
    for i in range(5):
        h.rpc("testmod.echo", {"i": i}).then(lambda f, j: got.append((j, f.get()["i"])), i)
    assert got == []
    h.reactor_run()
    assert sorted(got) == [(i, i) for i in range(5)]


def test_then_timeout_and_wait_for(h):
    errors = []

    def cb(f):
        try:
            f.get()
        except OSError as exc:
            errors.append(exc.errno)

    h.rpc("testmod.hold").then(cb, timeout=0.05)
    h.reactor_run()
    assert errors == [errno.ETIMEDOUT]
    f = h.rpc("testmod.hold")
    with pytest.raises(OSError) as exc:
        f.wait_for(0.05)
    assert exc.value.errno == errno.ETIMEDOUT and not f.is_ready()
    with pytest.raises(OSError):
        f.wait_for(0)


def test_exception_in_callback_is_raised_from_reactor_run(h):
    def cb(f):
        raise RuntimeError("boom")

    h.rpc("broker.ping").then(cb)
    with pytest.raises(RuntimeError, match="boom"):
        h.reactor_run()


def test_reactor_stop_error_raises(h):
    w = h.timer_watcher_create(0.0, lambda handle, *a: handle.reactor_stop_error(), repeat=1.0)
    w.start()
    with pytest.raises(OSError):
        h.reactor_run()
    w.stop()


def test_wait_all_future(h):
    from flux.future import WaitAllFuture

    a = h.rpc("testmod.echo", {"a": 1})
    b = h.rpc("testmod.echo", {"b": 2})
    both = WaitAllFuture([a, b])
    both.get()
    assert both.get_child("0").get() == {"a": 1} and both.get_child("1").get() == {"b": 2}
    with pytest.raises(OSError, match="no child future named 'x'"):
        both.get_child("x")
    c = WaitAllFuture()
    c.push(h.rpc("broker.ping"), "p")
    done = []
    c.then(lambda f: done.append(f.get_child("p").get()["route"]))
    h.reactor_run()
    assert done and done[0].endswith("!0")


def test_event_message_construction(h):
    m = h.event_create("t.x", {"k": 1})
    assert m.type_str == "event" and m.topic == "t.x" and m.payload == {"k": 1}
    assert Message.from_event_encode("t.y", "text").payload_str == "text"


def test_noresponse_rpc(h):
    f = h.rpc("testmod.echo", {"x": 1}, flags=FLUX_RPC_NORESPONSE)
    assert f.is_ready() and f.get() is None


def test_streaming_rpc_ends_with_enodata(h):
    f = h.rpc("testmod.stream", {"count": 3}, flags=FLUX_RPC_STREAMING)
    seen = []
    while True:
        try:
            seen.append(f.get()["seq"])
        except OSError as exc:
            assert exc.errno == errno.ENODATA
            break
        f.reset()
    assert seen == [0, 1, 2]
    assert [r["seq"] for r in h.rpc("testmod.stream", {"count": 4},
                                    flags=FLUX_RPC_STREAMING)] == [0, 1, 2, 3]
    assert list(h.rpc("testmod.stream", {"count": 0}, flags=FLUX_RPC_STREAMING)) == []


def test_streaming_then_is_called_per_response(h):
    seen = []

    def cb(f):
        try:
            seen.append(f.get()["seq"])
        except OSError as exc:
            seen.append(exc.errno)
        f.reset()

    h.rpc("testmod.stream", {"count": 2}, flags=FLUX_RPC_STREAMING).then(cb)
    h.reactor_run()
    assert seen == [0, 1, errno.ENODATA]


def test_streaming_service_rejects_plain_request(h):
    with pytest.raises(OSError) as exc:
        h.rpc("testmod.stream", {"count": 1}).get()
    assert exc.value.errno == errno.EPROTO and "requires the streaming flag" in exc.value.strerror


def test_disconnect_cancels_streams(inst, h):
    before = h.rpc("testmod.info").get()
    other = inst.handle()
    f = other.rpc("testmod.stream", {"forever": True, "interval": 0.01}, flags=FLUX_RPC_STREAMING)
    assert f.get()["seq"] == 0
    other.close()
    wait_until(lambda: h.rpc("testmod.info").get()["cancelled"] == before["cancelled"] + 1)
    # the streaming handler notices the cancel and finishes
    wait_until(lambda: h.rpc("testmod.info").get()["open"] == 0)
    assert h.rpc("testmod.info").get()["disconnects"] > before["disconnects"]


def test_cancel_ends_stream_with_enodata(h):
    f = h.rpc("testmod.stream", {"forever": True, "interval": 0.01}, flags=FLUX_RPC_STREAMING)
    assert f.get()["seq"] == 0
    h.rpc("testmod.cancel", {"matchtag": f.matchtag}, flags=FLUX_RPC_NORESPONSE)
    assert all(isinstance(p["seq"], int) for p in f)   # ends cleanly


def test_module_to_module_rpc(h):
    assert h.rpc("testmod.relay", {"topic": "attr.get", "payload": {"name": "size"}}).get() == \
        {"result": {"value": "1", "immutable": True}}
    with pytest.raises(OSError) as exc:
        h.rpc("testmod.relay", {"topic": "nosuch.x"}).get()
    assert exc.value.errno == errno.ENOSYS


# -- events ---------------------------------------------------------------------------


def test_event_prefix_subscription(inst, h):
    h.event_subscribe("alpha.b")
    pub = inst.handle()
    seqs = [pub.event_publish(t, {"t": t}).get()["seq"]
            for t in ("alpha.x", "alpha.b.c", "alpha.bc", "beta")]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    m1 = h.event_recv()
    m2 = h.event_recv()
    assert [m1.topic, m2.topic] == ["alpha.b.c", "alpha.bc"]
    assert m1.payload == {"t": "alpha.b.c"} and m2.seq == seqs[2]
    h.event_unsubscribe("alpha.b")
    pub.event_publish("alpha.b.d").get()
    h.event_subscribe("zz")
    pub.event_send("zz.now", "raw text")
    msg = h.event_recv()
    assert msg.topic == "zz.now" and msg.payload_str == "raw text"
    pub.close()


def test_duplicate_subscriptions_deliver_once(inst, h):
    h.event_subscribe("dup")
    h.event_subscribe("dup")
    h.event_subscribe("")
    inst.handle().event_publish("dup.x").get()
    inst.handle().event_publish("other").get()
    topics = []
    while len(topics) < 2:
        topic = h.event_recv().topic
        if not topic.startswith("heartbeat."):      # the heartbeat may come between
            topics.append(topic)
    assert topics == ["dup.x", "other"]


def test_event_subscribe_argument_checks(h):
    with pytest.raises(EnvironmentError):
        h.event_subscribe(None)
    with pytest.raises(TypeError):
        h.event_subscribe(5)
    with pytest.raises(OSError) as exc:
        h.event_unsubscribe("never")
    assert exc.value.errno == errno.ENOENT


def test_modules_publish_and_receive_events(h):
    seq = h.rpc("testmod.publish", {"topic": "testmod.hello", "payload": {"a": 1}}).get()["seq"]
    assert seq > 0
    h.event_publish("testmod.again").get()
    wait_until(lambda: "testmod.again" in h.rpc("testmod.events").get()["topics"])
    assert "testmod.hello" in h.rpc("testmod.events").get()["topics"]


def test_event_msg_watcher(inst, h):
    h.event_subscribe("watch")
    got = []

    def cb(handle, watcher, msg, args):
        got.append(msg.topic)
        watcher.stop()

    h.msg_watcher_create(cb, topic_glob="watch.*").start()
    inst.handle().event_publish("watch.me").get()
    h.reactor_run()
    assert got == ["watch.me"]


# -- services from clients --------------------------------------------------------------


def test_client_service_register_and_disconnect(inst, h):
    server = inst.handle()
    server.service_register("mysvc").get()
    with pytest.raises(OSError) as exc:
        inst.handle().service_register("mysvc").get()
    assert exc.value.errno == errno.EEXIST
    f = h.rpc("mysvc.hello", {"n": 1})
    g = h.rpc("mysvc.other", {})

    def on_hello(handle, watcher, msg, args):
        handle.respond(msg, {"n": msg.payload["n"] + 1})

    w = server.msg_watcher_create(on_hello, FLUX_MSGTYPE_REQUEST, "mysvc.hello").start()
    # the two requests may arrive in separate reads: serve until both are answered
    for _ in range(1000):
        server.reactor_run(flags=FLUX_REACTOR_NOWAIT)
        try:
            f.wait_for(0.01)
            g.wait_for(0.01)
            break
        except OSError:
            continue
    w.stop()
    assert f.get() == {"n": 2}
    with pytest.raises(OSError) as exc:
        g.get()
    assert exc.value.errno == errno.ENOSYS
    server.close()
    wait_until(lambda: _enosys(h, "mysvc.hello"))


def test_forged_response_is_dropped(inst, h):
    """A client may only answer requests it was given, even knowing the victim's identity."""
    from flux.constants import FLUX_MSGTYPE_RESPONSE

    f = h.rpc("testmod.hold")
    wait_until(lambda: len(h.rpc("testmod.senders").get()["senders"]) > 0)
    victim = h.rpc("testmod.senders").get()["senders"][-1]
    forger = inst.handle()
    forger.send(Message(FLUX_MSGTYPE_RESPONSE, "testmod.hold", {"forged": True},
                        matchtag=f.matchtag, route=[victim]))
    forger.rpc("broker.ping").get()    # the forged message was processed before this
    with pytest.raises(OSError) as exc:
        f.wait_for(0.2)
    assert exc.value.errno == errno.ETIMEDOUT
    forger.close()


def _enosys(h, topic):
    try:
        h.rpc(topic).get()
    except OSError as exc:
        return exc.errno == errno.ENOSYS
    return False


# -- watchers -----------------------------------------------------------------------------


def test_timer_fd_signal_watchers(h):
    fired = []
    t = h.timer_watcher_create(0.01, lambda handle, w, rev, args: fired.append(("timer", args)),
                               args="a")
    t.start()
    h.reactor_run()
    assert fired == [("timer", "a")] and not t.is_active()

    count = []

    def tick(handle, w, rev, args):
        count.append(1)
        if len(count) == 3:
            w.stop()

    h.timer_watcher_create(0.0, tick, repeat=0.005).start()
    h.reactor_run()
    assert len(count) == 3

    r, w = os.pipe()
    data = []

    def on_fd(handle, watcher, fd, revents, args):
        data.append((os.read(fd, 10), revents))
        watcher.stop()

    h.fd_watcher_create(r, on_fd, FLUX_POLLIN).start()
    os.write(w, b"hey")
    h.reactor_run()
    assert data == [(b"hey", FLUX_POLLIN)]
    os.close(r)
    os.close(w)

    sigs = []

    def on_sig(handle, watcher, signum, args):
        sigs.append(signum)
        watcher.stop()

    h.signal_watcher_create(signal.SIGUSR1, on_sig).start()
    h.timer_watcher_create(0.01, lambda *a: os.kill(os.getpid(), signal.SIGUSR1)).start()
    h.reactor_run()
    assert sigs == [signal.SIGUSR1]


def test_reactor_stop(h):
    w = h.timer_watcher_create(0.0, lambda handle, *a: handle.reactor_stop(), repeat=10.0)
    w.start()
    h.reactor_run()
    w.stop()


def test_log_reaches_dmesg(h):
    h.log(LOG_ERR, "api log line", appname="apitest")
    entries = list(h.rpc("log.dmesg", {}, flags=FLUX_RPC_STREAMING))
    match = [e for e in entries if e["message"] == "api log line"]
    assert match and match[0]["appname"] == "apitest" and match[0]["level"] == LOG_ERR


def test_send_and_recv_raw_messages(h):
    msg = Message(FLUX_MSGTYPE_REQUEST, "testmod.echo", {"raw": True}, matchtag=999999,
                  nodeid=FLUX_NODEID_ANY)
    h.send(msg)
    resp = h.recv(match_tag=999999)
    assert resp.payload == {"raw": True}


# -- bad input on the socket ---------------------------------------------------------


def _raw_client(inst):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(inst.socket_path)
    assert s.recv(1) == b"\0"
    return s


def test_bad_framing_drops_client_not_broker(inst, h):
    s = _raw_client(inst)
    s.sendall(b"\x00\x00\x00\x40" + b"\x12" * 60)
    s.settimeout(5)
    assert s.recv(100) == b""          # dropped
    s.close()
    s = _raw_client(inst)
    s.sendall(struct.pack("!I", 1 << 31) + b"\x8e\x01\x01" + b"\0" * 25)
    s.settimeout(5)
    assert s.recv(100) == b""
    s.close()
    assert h.rpc("broker.ping").get()["route"]
    log = [e["message"] for e in h.rpc("log.dmesg", {}, flags=FLUX_RPC_STREAMING)]
    assert any("bad message magic 0x12" in m for m in log)
    assert any("exceeds limit" in m for m in log)


def test_truncated_message_then_hangup(inst, h):
    s = _raw_client(inst)
    s.sendall(b"\x00\x00\x00\x30\x8e\x01")   # half a header
    s.close()
    assert h.rpc("broker.ping").get()


# -- access -----------------------------------------------------------------------------

GUEST = """
import os, sys, errno
import flux
import flux.core.handle, flux.rpc  # import before dropping privileges
os.setgid(65534); os.setuid(65534)
try:
    h = flux.Flux(sys.argv[1])
except OSError as e:
    print("refused", e.errno, e.strerror); sys.exit(0)
print("ping", h.rpc("broker.ping").get()["rolemask"], h.rpc("broker.ping").get()["userid"])
try:
    h.rpc("testmod.owner").get()
except OSError as e:
    print("owner", e.errno, e.strerror)
print("echo", h.rpc("testmod.echo", {"g": 1}).get())
"""


GUEST_EVENTS = """
import os, sys
import flux
import flux.core.handle, flux.rpc
from flux.constants import FLUX_MSGFLAG_PRIVATE
os.setgid(65534); os.setuid(65534)
h = flux.Flux(sys.argv[1])
h.event_subscribe("priv.")
print("ready", flush=True)
print(h.event_recv().topic, flush=True)
h.event_publish("priv.mine", None, FLUX_MSGFLAG_PRIVATE).get()
print(h.event_recv().topic, flush=True)
"""


def run_as_nobody(uri):
    if os.getuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    return subprocess.run([sys.executable, "-c", GUEST, uri], capture_output=True, text=True,
                          timeout=30)


def test_guest_is_refused_by_default(inst):
    out = run_as_nobody(inst.uri)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"refused {errno.EPERM} ")
    assert "connection refused by broker" in out.stdout


def test_guest_allowed_by_config(tmp_path):
    (tmp_path / "access.toml").write_text("[access]\nallow-guest-user = true\n")
    os.chmod(tmp_path, 0o755)
    guest_inst = TestInstance(config_path=str(tmp_path)).start()
    try:
        h = guest_inst.handle()
        h.rpc("module.load", {"name": "testmod"}).get()
        assert h.rpc("config.get").get()["access"] == {"allow-guest-user": True}
        out = run_as_nobody(guest_inst.uri)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == "ping 2 65534"
        assert lines[1] == f"owner {errno.EPERM} Request requires owner credentials"
        assert lines[2] == "echo {'g': 1}"
        # private events: not seen by other users, seen by the publisher and the owner
        owner_sub = guest_inst.handle()
        owner_sub.event_subscribe("priv.")
        proc = subprocess.Popen([sys.executable, "-c", GUEST_EVENTS, guest_inst.uri],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline() == "ready\n"
            h.event_publish("priv.secret", None, FLUX_MSGFLAG_PRIVATE).get()
            h.event_publish("priv.public").get()
            assert proc.stdout.readline() == "priv.public\n"
            assert proc.stdout.readline() == "priv.mine\n"
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert [owner_sub.event_recv().topic for _ in range(3)] == \
            ["priv.secret", "priv.public", "priv.mine"]
        h.close()
    finally:
        assert guest_inst.stop() == 0
