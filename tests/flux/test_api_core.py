"""The core of Flux's Python API as a user script calls it, on a real instance:
flux.Flux, flux.core.watchers, flux.rpc / flux.future, flux.message, flux.constants
and the broker behaviours they rely on (specs/python-api.md).

Every error path checks the exception type, errno and text.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import flux
import flux.constants
from broker.testing import TestInstance
from flux.constants import (
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_POLLIN,
    FLUX_REACTOR_NOWAIT,
    FLUX_ROLE_ALL,
    FLUX_ROLE_LOCAL,
    FLUX_ROLE_OWNER,
    FLUX_RPC_STREAMING,
)
from flux.future import Future, FutureExt
from flux.message import Message

ENOENT_TEXT = os.strerror(errno.ENOENT)


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    os.chmod(conf, 0o755)
    (conf / "access.toml").write_text("[access]\nallow-guest-user = true\n"
                                      "[tbon]\ntopo = \"kary:2\"\n")
    instance = TestInstance(config_path=str(conf)).start()
    yield instance
    instance.stop()


@pytest.fixture
def h(inst):
    handle = flux.Flux(inst.uri)
    yield handle
    handle.close()


def serve(h, until, timeout=10.0):
    """Run H's reactor until UNTIL() holds (or fail after TIMEOUT)."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "condition not met in time"
        h.reactor_run(flags=FLUX_REACTOR_NOWAIT)
        time.sleep(0.001)


# -- topics: str or bytes ------------------------------------------------------------------


def test_bytes_topics_everywhere(h):
    assert h.rpc(b"broker.ping", {}).get()["route"]
    assert h.event_subscribe(b"bt.") == 0
    got = []
    w = h.msg_watcher_create(lambda hd, w, msg, a: got.append(msg.topic),
                             FLUX_MSGTYPE_EVENT, topic_glob=b"bt.*").start()
    assert h.event_send(b"bt.one", {"x": 1}) == 0
    serve(h, lambda: got)
    assert got == ["bt.one"] and isinstance(got[0], str)
    w.stop()
    assert h.event_unsubscribe(b"bt.") == 0
    ev = h.event_create(b"bt.two", "text")
    assert ev.topic == "bt.two" and ev.payload_str == "text"
    m = Message()
    m.topic = b"bt.three"
    assert m.topic == "bt.three"


def test_event_calls_return_zero_and_check_arguments(h):
    assert h.event_subscribe("zz.") == 0
    assert h.event_unsubscribe("zz.") == 0
    with pytest.raises(OSError) as exc:
        h.event_unsubscribe("never.subscribed")
    assert exc.value.errno == errno.ENOENT and str(exc.value) == f"[Errno 2] {ENOENT_TEXT}"
    with pytest.raises(EnvironmentError):
        h.event_subscribe(None)
    with pytest.raises(TypeError):
        h.event_subscribe(5)
    assert h.event_send("zz.x") == 0


def test_send_respond_and_respond_error_return_zero(h):
    assert h.service_register("rz").get() is None
    answers = []

    def on_req(hd, w, msg, args):
        if msg.payload["ok"]:
            answers.append(hd.respond(msg, {"fine": True}))
        else:
            answers.append(hd.respond_error(msg, errno.EINVAL, "no good"))

    w = h.msg_watcher_create(on_req, FLUX_MSGTYPE_REQUEST, "rz.*").start()
    ok = h.rpc("rz.a", {"ok": True})
    bad = h.rpc("rz.b", {"ok": False})
    serve(h, lambda: ok.is_ready() and bad.is_ready())
    assert answers == [0, 0]
    assert ok.get() == {"fine": True}
    with pytest.raises(OSError) as exc:
        bad.get()
    assert exc.value.errno == errno.EINVAL and exc.value.strerror == "no good"
    assert h.send(Message.from_event_encode("rz.event")) == 0
    w.stop()


# -- attributes and configuration --------------------------------------------------------


def test_attr_get_set_remove(h):
    assert h.attr_get("rank") == "0" and isinstance(h.attr_get("size"), str)
    with pytest.raises(OSError) as exc:
        h.attr_get("no-such-attr")
    assert exc.value.errno == errno.ENOENT
    assert h.attr_set("api-test.attr", "v1") is None
    assert h.attr_get("api-test.attr") == "v1"
    for name, value in (("api-test.attr", 1), (1, "v"), (b"api-test.attr", "v")):
        with pytest.raises(ValueError):
            h.attr_set(name, value)
    assert h.attr_get("api-test.attr") == "v1"
    with pytest.raises(OSError) as exc:
        h.attr_set("rank", "7")
    assert exc.value.errno == errno.EPERM
    h.attr_remove("api-test.attr")
    with pytest.raises(OSError) as exc:
        h.attr_get("api-test.attr")
    assert exc.value.errno == errno.ENOENT
    with pytest.raises(ValueError):
        h.attr_remove(5)
    with pytest.raises(OSError) as exc:
        h.attr_remove("local-uri")
    assert exc.value.errno == errno.EPERM
    assert h.attr_get("local-uri").startswith("local://")


def test_empty_responses_have_no_payload(h):
    assert h.rpc("attr.set", {"name": "api-test.empty", "value": "x"}).get() is None
    assert h.rpc("attr.set", {"name": "api-test.empty", "value": "y"}).get_str() is None
    assert h.rpc("service.add", {"service": "emptysvc"}).get() is None
    assert h.rpc("service.remove", {"service": "emptysvc"}).get() is None
    assert h.service_register("emptysvc2").get() is None
    assert h.service_unregister("emptysvc2").get() is None


def test_conf_get(h):
    assert h.rpc("config.get").get() == {"access": {"allow-guest-user": True},
                                         "tbon": {"topo": "kary:2"}}
    assert h.conf_get() == {"access": {"allow-guest-user": True}, "tbon": {"topo": "kary:2"}}
    assert h.conf_get("tbon.topo") == "kary:2"
    assert h.conf_get("tbon.nope", default="kary:32") == "kary:32"
    assert h.conf_get("a.b.c") is None


def test_config_load_replaces_config_and_conf_get_caches(inst, h):
    assert h.conf_get("tbon.topo") == "kary:2"
    other = flux.Flux(inst.uri)
    new = {"access": {"allow-guest-user": True}, "tbon": {"topo": "binary"}, "x": {"y": 1}}
    assert other.rpc("config.load", new).get() is None
    assert other.rpc("config.get").get() == new
    # the first handle keeps its cached copy until asked to refetch
    assert h.conf_get("tbon.topo") == "kary:2"
    assert h.conf_get("tbon.topo", update=True) == "binary"
    assert h.conf_get("x") == {"y": 1}
    with pytest.raises(OSError) as exc:
        other.rpc("config.load", ["not", "an", "object"]).get()
    assert exc.value.errno == errno.EINVAL
    assert other.rpc("config.load", {"access": {"allow-guest-user": True},
                                     "tbon": {"topo": "kary:2"}}).get() is None
    other.close()


# -- services: own-service routing and roles ---------------------------------------------


def test_handle_calls_its_own_service(h):
    assert h.service_register("ownsvc").get() is None
    seen = []

    def on_req(hd, w, msg, args):
        seen.append(msg)
        hd.respond(msg, {"echo": msg.payload})

    w = h.msg_watcher_create(on_req, FLUX_MSGTYPE_REQUEST, "ownsvc.*").start()
    f = h.rpc("ownsvc.echo", {"n": 1})
    serve(h, f.is_ready)
    assert f.get() == {"echo": {"n": 1}}
    # a raw send on the same connection is delivered to it as well
    req = Message(FLUX_MSGTYPE_REQUEST)
    req.topic = "ownsvc.sent"
    req.payload = {"n": 2}
    assert h.send(req) == 0
    serve(h, lambda: len(seen) == 2)
    assert seen[1].topic == "ownsvc.sent"
    assert seen[0].rolemask == FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL
    assert seen[0].userid == os.getuid()
    w.stop()
    assert h.service_unregister("ownsvc").get() is None
    with pytest.raises(OSError) as exc:
        h.rpc("ownsvc.echo", {}).get()
    assert exc.value.errno == errno.ENOSYS


def test_streaming_rpc_to_own_service(h):
    h.service_register("ownstream").get()

    def on_req(hd, w, msg, args):
        for i in range(3):
            hd.respond(msg, {"i": i})
        hd.respond_error(msg, errno.ENODATA)

    w = h.msg_watcher_create(on_req, FLUX_MSGTYPE_REQUEST, "ownstream.go").start()
    got = []

    def on_resp(f):
        try:
            got.append(f.get()["i"])
        except OSError as exc:
            got.append(exc.errno)
            return
        f.reset()

    h.rpc("ownstream.go", {}, flags=FLUX_RPC_STREAMING).then(on_resp)
    serve(h, lambda: len(got) == 4)
    assert got == [0, 1, 2, errno.ENODATA]
    w.stop()
    h.service_unregister("ownstream").get()


def test_owner_message_roles(h):
    resp = h.rpc("broker.ping", {}).get_message()
    assert resp.rolemask == FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL


GUEST_RPC = """
import os, sys
import flux, flux.core.handle, flux.rpc
os.setgid(65534); os.setuid(65534)
h = flux.Flux(sys.argv[1])
for topic in sys.argv[2:]:
    try:
        print(topic, "ok", h.rpc(topic, {}).get(), flush=True)
    except OSError as e:
        print(topic, "err", e.errno, e.strerror, flush=True)
"""


def _guest(inst, *topics):
    if os.getuid() != 0:
        pytest.skip("needs root to run as user nobody")
    return subprocess.Popen([sys.executable, "-c", GUEST_RPC, inst.uri, *topics],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_msg_watcher_rolemask(inst, h):
    h.service_register("roles").get()
    served = []

    def cb(hd, w, msg, args):
        served.append(msg.topic)
        hd.respond(msg, {"by": "owner-only" if args is None else args})

    w1 = h.msg_watcher_create(cb, FLUX_MSGTYPE_REQUEST, "roles.owner").start()
    w2 = h.msg_watcher_create(cb, FLUX_MSGTYPE_REQUEST, "roles.all", args="all",
                              rolemask=FLUX_ROLE_ALL).start()
    proc = _guest(inst, "roles.owner", "roles.all")
    lines = []

    def done():
        if proc.poll() is not None:
            lines.extend(proc.stdout.read().splitlines())
            return True
        return False

    serve(h, done, timeout=30)
    assert proc.returncode == 0, proc.stderr.read()
    assert lines == [f"roles.owner err {errno.EPERM} Request requires owner credentials",
                     "roles.all ok {'by': 'all'}"]
    assert served == ["roles.all"]
    w1.stop()
    w2.stop()
    h.service_unregister("roles").get()


# -- watchers -------------------------------------------------------------------------------


def test_watchers_start_stop_ref_unref_return_self(h):
    t = h.timer_watcher_create(10.0, lambda *a: None)
    assert t.start() is t and t.unref() is t and t.ref() is t and t.stop() is t
    t.destroy()
    with h.timer_watcher_create(0.01, lambda hd, w, rev, args: args.append(1), args=[]) as w:
        assert w.is_active()
        hd = h.reactor_run()
        assert w.args == [1] and hd == 0
    assert not w.is_active()


def test_unrefd_watcher_does_not_keep_reactor_alive(h):
    fired = []
    long = h.timer_watcher_create(30.0, lambda *a: fired.append("long")).start().unref()
    h.timer_watcher_create(0.01, lambda *a: fired.append("short")).start()
    t0 = time.monotonic()
    h.reactor_run()
    assert fired == ["short"] and time.monotonic() - t0 < 5
    long.stop()


def test_timer_reset_rearms(h):
    fired = []
    t = h.timer_watcher_create(30.0, lambda hd, w, rev, args: fired.append(time.monotonic()))
    t.start()
    t0 = time.monotonic()
    t.reset(after=0.05)
    h.reactor_run()
    assert fired and 0.04 <= fired[0] - t0 < 5
    # reset keeps unspecified values: repeat stays 0, after stays 0.05
    t.reset()
    t.start()
    h.reactor_run()
    assert len(fired) == 2


def test_watcher_argument_errors(h):
    with pytest.raises(OSError) as exc:
        h.timer_watcher_create(-1.0, lambda *a: None)
    assert exc.value.errno == errno.EINVAL and exc.value.strerror == os.strerror(errno.EINVAL)
    for signum in (0, -1, 100000):
        with pytest.raises(OSError) as exc:
            h.signal_watcher_create(signum, lambda *a: None)
        assert exc.value.errno == errno.EINVAL


def test_signal_watcher(h):
    got = []

    def on_sig(hd, w, signum, args):
        got.append(signum)
        w.stop()

    h.signal_watcher_create(signal.SIGUSR2, on_sig).start()
    os.kill(os.getpid(), signal.SIGUSR2)
    h.reactor_run()
    assert got == [signal.SIGUSR2]


def test_fd_watcher_default_events(h):
    r, w = os.pipe()
    got = []

    def on_fd(hd, watcher, fd, revents, args):
        got.append((os.read(fd, 10), revents & FLUX_POLLIN))
        watcher.stop()

    with h.fd_watcher_create(r, on_fd):
        os.write(w, b"x")
        h.reactor_run()
    assert got == [(b"x", FLUX_POLLIN)]
    os.close(r)
    os.close(w)


def test_prepare_check_idle_watchers(h):
    order = []
    p = h.prepare_watcher_create(lambda hd, w, rev, args: order.append("prepare"))
    c = h.check_watcher_create(lambda hd, w, rev, args: order.append("check"))
    p.start()
    c.start()

    def on_idle(hd, w, rev, args):
        order.append("idle")
        if order.count("idle") == 3:
            w.stop()
            p.stop()
            c.stop()

    i = h.idle_watcher_create(on_idle).start()
    h.reactor_run()
    assert order.count("idle") == 3
    assert order.index("prepare") < order.index("check") < order.index("idle")
    assert not i.is_active()
    # an idle watcher without a callback just keeps the loop turning
    spins = h.idle_watcher_create()
    assert spins.start() is spins
    spins.stop()


def test_add_del_watcher_and_reactor_context(h):
    w = h.timer_watcher_create(1.0, lambda *a: None)
    assert h.add_watcher(w) is w
    h.del_watcher(w)
    h.del_watcher(w)  # not held: no error
    assert flux.Flux.reactor_running() is False
    with h.in_reactor():
        assert flux.Flux.reactor_running() is True
    assert flux.Flux.reactor_running() is False
    seen = []
    h.timer_watcher_create(0.0, lambda *a: seen.append(flux.Flux.reactor_running())).start()
    h.reactor_run()
    assert seen == [True]


def test_handle_and_future_context_managers(inst):
    with flux.Flux(inst.uri) as hd:
        with hd.rpc("broker.ping", {}) as f:
            assert f.get()["route"]


# -- rpc / future ---------------------------------------------------------------------------


def test_response_without_payload(h):
    h.service_register("nopay").get()
    w = h.msg_watcher_create(lambda hd, w, msg, a: hd.respond(msg), FLUX_MSGTYPE_REQUEST,
                             "nopay.*").start()
    f = h.rpc("nopay.x")
    serve(h, f.is_ready)
    assert f.get() is None and f.get_str() is None
    w.stop()
    h.service_unregister("nopay").get()


def test_future_wraps_future(h):
    inner = h.rpc("broker.ping", {"pad": "x"})
    outer = Future(inner)
    assert outer.get_flux() is h
    assert outer.wait_for(10) is outer and outer.is_ready()
    assert outer.error_string() is None
    called = []
    outer.then(lambda f, tag: called.append((tag, f is outer, f.is_ready())), "t")
    h.reactor_run()
    assert called == [("t", True, True)]
    err = Future(h.rpc("no-such-service.x"))
    with pytest.raises(OSError) as exc:
        err.get()
    assert exc.value.errno == errno.ENOSYS
    assert err.error_string() == "Service is not available: no-such-service.x"
    # a handle is not a future: refused, rather than a future that never resolves
    for bad in (h, None):
        with pytest.raises(TypeError, match="wraps another future"):
            Future(bad)


def test_future_errors_read_like_flux(h):
    f = h.rpc("broker.ping", {}).then(lambda fut: None)
    with pytest.raises(OSError) as exc:
        f.then(lambda fut: None)
    assert exc.value.errno == errno.EEXIST
    assert exc.value.strerror == "then callback already exists for this future"
    with pytest.raises(ValueError, match="Callback cannot be None"):
        h.rpc("broker.ping", {}).then(None)
    h.reactor_run()
    h.service_register("slow").get()
    g = h.rpc("slow.never", {})
    with pytest.raises(OSError) as exc:
        g.wait_for(0.05)
    assert exc.value.errno == errno.ETIMEDOUT
    assert exc.value.strerror == os.strerror(errno.ETIMEDOUT)
    h.service_unregister("slow").get()


def test_future_stop_and_set_flux(h):
    calls = []
    f = h.rpc("broker.ping", {}).then(lambda fut: calls.append(1))
    f.stop()
    h.reactor_run()
    assert calls == []
    fx = FutureExt(lambda fut: fut.fulfill(42))
    assert fx.get_flux() is None
    fx.set_flux(h)
    assert fx.get_flux() is h and fx.get() == 42


def test_future_ext(h):
    inits = []

    def init(fut, a, b=None):
        inits.append((a, b))
        assert fut.get_flux() is h
        fut.get_flux().rpc("broker.ping", {}).then(lambda rpc: fut.fulfill({"route": "ok"}))

    fx = FutureExt(init, 1, b=2, flux_handle=h)
    assert fx.get() == {"route": "ok"} and inits == [(1, 2)]
    assert fx.get() == {"route": "ok"} and inits == [(1, 2)]  # init runs once

    # then() runs init too, and the continuation from the reactor
    got = []
    fy = FutureExt(lambda fut: fut.fulfill((1, 2)), flux_handle=h)
    fy.then(lambda fut: got.append(fut.get()))
    h.reactor_run()
    assert got == [[1, 2]]  # JSON: a tuple comes back as a list

    # errors
    fe = FutureExt(lambda fut: fut.fulfill_error(), flux_handle=h)
    with pytest.raises(OSError) as exc:
        fe.get()
    assert exc.value.errno == errno.ENOENT and exc.value.strerror == ENOENT_TEXT
    fe2 = FutureExt(lambda fut: fut.fulfill_error(errno.EPERM, "go away"), flux_handle=h)
    with pytest.raises(OSError) as exc:
        fe2.get()
    assert (exc.value.errno, exc.value.strerror) == (errno.EPERM, "go away")
    with pytest.raises(OSError) as exc:
        FutureExt(lambda fut: fut.fulfill(1)).get()
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        FutureExt(lambda fut: fut.fulfill(object()), flux_handle=h).get()

    class Sub(FutureExt):
        def __init__(self, handle, value):
            super().__init__(self._init, flux_handle=handle)
            self.value = value

        def _init(self, fut):
            fut.fulfill(self.value * 2)

    assert Sub(h, 21).get() == 42


def test_raise_if_handle_exception(h):
    def bad(f):
        raise RuntimeError("callback failed")

    f = h.rpc("broker.ping", {}).then(bad)
    with pytest.raises(RuntimeError, match="callback failed"):
        h.reactor_run()
    f.raise_if_handle_exception()  # nothing pending any more
    flux.Flux.set_exception(ValueError("pending"))
    with pytest.raises(ValueError, match="pending"):
        f.raise_if_handle_exception()


# -- messages -----------------------------------------------------------------------------


def test_message_construction_and_properties():
    m = Message()
    assert m.type == FLUX_MSGTYPE_REQUEST and m.type_str == "request"
    r = Message(type_id=FLUX_MSGTYPE_RESPONSE)
    assert r.type_str == "response"
    m.topic = "a.b"
    m.payload = {"b": [1, 2], "a": "x"}
    assert m.payload_str == json.dumps({"b": [1, 2], "a": "x"})
    assert m.payload == {"b": [1, 2], "a": "x"}
    m.payload_str = '{"raw":  true}'
    assert m.payload_str == '{"raw":  true}' and m.payload == {"raw": True}
    m.rolemask = FLUX_ROLE_OWNER
    m.userid = 42
    assert (m.rolemask, m.userid) == (FLUX_ROLE_OWNER, 42)
    assert m.decode() == (FLUX_MSGTYPE_REQUEST, "a.b", '{"raw":  true}')
    e = Message.from_event_encode("ev.t", {"k": 1})
    assert e.decode() == (FLUX_MSGTYPE_EVENT, "ev.t", '{"k": 1}')
    assert Message.from_event_encode("ev.t").decode() == (FLUX_MSGTYPE_EVENT, "ev.t", None)


def test_message_decode_of_error_response(h):
    h.service_register("decerr").get()
    w = h.msg_watcher_create(lambda hd, w, m, a: hd.respond_error(m, errno.EBUSY, "busy"),
                             FLUX_MSGTYPE_REQUEST, "decerr.*").start()
    got = []
    rw = h.msg_watcher_create(lambda hd, w, m, a: got.append(m), FLUX_MSGTYPE_RESPONSE,
                              "decerr.*").start()
    req = Message(FLUX_MSGTYPE_REQUEST)
    req.topic = "decerr.x"
    req.matchtag = 999999
    h.send(req)
    serve(h, lambda: got)
    with pytest.raises(OSError) as exc:
        got[0].decode()
    assert exc.value.errno == errno.EBUSY
    w.stop()
    rw.stop()
    h.service_unregister("decerr").get()


# -- constants ----------------------------------------------------------------------------


def test_constants_have_libflux_values():
    c = flux.constants
    expect = {
        "FLUX_KVS_READDIR": 1, "FLUX_KVS_READLINK": 2, "FLUX_KVS_WATCH": 4,
        "FLUX_KVS_WAITCREATE": 8, "FLUX_KVS_TREEOBJ": 16, "FLUX_KVS_APPEND": 32,
        "FLUX_KVS_WATCH_FULL": 64, "FLUX_KVS_WATCH_UNIQ": 128, "FLUX_KVS_WATCH_APPEND": 256,
        "FLUX_KVS_NO_MERGE": 1, "FLUX_KVS_TXN_COMPACT": 2, "FLUX_KVS_SYNC": 4,
        "FLUX_MSGTYPE_REQUEST": 1, "FLUX_MSGTYPE_RESPONSE": 2, "FLUX_MSGTYPE_EVENT": 4,
        "FLUX_MSGTYPE_CONTROL": 8, "FLUX_MSGTYPE_ANY": 15, "FLUX_MSGFLAG_STREAMING": 0x40,
        "FLUX_NODEID_ANY": 0xFFFFFFFF, "FLUX_NODEID_UPSTREAM": 0xFFFFFFFE,
        "FLUX_MATCHTAG_NONE": 0, "FLUX_USERID_UNKNOWN": 0xFFFFFFFF,
        "FLUX_ROLE_NONE": 0, "FLUX_ROLE_OWNER": 1, "FLUX_ROLE_USER": 2, "FLUX_ROLE_LOCAL": 4,
        "FLUX_ROLE_ALL": 0xFFFFFFFF, "FLUX_RPC_NORESPONSE": 1, "FLUX_RPC_STREAMING": 2,
        "FLUX_O_TRACE": 1, "FLUX_O_CLONE": 2, "FLUX_O_NONBLOCK": 4, "FLUX_O_MATCHDEBUG": 8,
        "FLUX_O_TEST_NOSUB": 16, "FLUX_O_RPCTRACK": 32, "FLUX_RQ_HEAD": 1, "FLUX_RQ_TAIL": 2,
        "FLUX_POLLIN": 1, "FLUX_POLLOUT": 2, "FLUX_POLLERR": 4, "FLUX_REACTOR_NOWAIT": 1,
        "FLUX_REACTOR_ONCE": 2, "FLUX_REACTOR_SIGCHLD": 1, "FLUX_EVENT_PRIVATE": 1,
        "FLUX_JOB_PRE_SIGNED": 1, "FLUX_JOB_DEBUG": 2, "FLUX_JOB_WAITABLE": 4,
        "FLUX_JOB_NOVALIDATE": 8, "FLUX_JOB_URGENCY_DEFAULT": 16, "FLUX_JOB_URGENCY_MAX": 31,
        "FLUX_JOB_PRIORITY_MAX": 4294967295, "FLUX_JOB_STATE_INACTIVE": 64,
        "FLUX_JOB_STATE_ACTIVE": 62, "FLUX_JOB_RESULT_TIMEOUT": 8,
        "FLUX_MODSTATE_RUNNING": 1, "FLUX_MODSTATE_EXITED": 3, "FLUX_CONF_AUTO": 2,
        "FLUX_SUBPROCESS_RUNNING": 2, "FLUX_SUBPROCESS_STOPPED": 5,
        "FLUX_PLUGIN_RTLD_NOW": 2, "FLUX_PLUGIN_ARG_REPLACE": 2,
    }
    got = {name: getattr(c, name, None) for name in expect}
    assert got == expect
    assert all(name.startswith("FLUX_") for name in c.__all__)
    assert set(expect) <= set(c.__all__)


def test_barrier_releases_all_entrants_together(inst):
    # Flux.barrier(name, nprocs): a future per client, fulfilled once nprocs entered
    code = "import flux; flux.Flux().barrier('b-test', 3).get(); print('through')"
    others = [subprocess.Popen([sys.executable, "-c", code], env=inst.env,
                               stdout=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.5)
    assert all(p.poll() is None for p in others)      # waiting for the third
    h = flux.Flux(inst.uri)
    assert h.barrier("b-test", 3).get() is None
    assert [p.communicate(timeout=30)[0] for p in others] == ["through\n"] * 2
    with pytest.raises(OSError) as exc:
        h.barrier("b-bad", 0).get()
    assert exc.value.errno == errno.EPROTO
    # a participant that goes away fails the barrier for those still waiting
    waiter = h.barrier("b-lost", 3)
    gone = subprocess.Popen([sys.executable, "-c",
                             "import flux; flux.Flux().barrier('b-lost', 3).get()"],
                            env=inst.env)
    time.sleep(0.5)
    gone.kill()
    gone.wait()
    with pytest.raises(OSError) as exc:
        waiter.get()
    assert exc.value.errno == errno.ECONNRESET
    h.close()


def test_topic_none_and_bad_payloads_read_as_flux_bindings_raise(h):
    for call in (lambda: h.rpc(None), lambda: h.event_send(None)):
        with pytest.raises(OSError) as exc:
            call()
        assert exc.value.errno == errno.EINVAL and "Topic must not be None" in str(exc.value)
    # a payload that is not JSON: OSError(EPROTO), and a ValueError as json.loads
    # raises in Flux's bindings (a ported ``except ValueError`` still catches it)
    msg = Message(flux.constants.FLUX_MSGTYPE_RESPONSE, "svc.x", b"plain text")
    with pytest.raises(ValueError) as exc:
        _ = msg.payload
    assert isinstance(exc.value, OSError) and exc.value.errno == errno.EPROTO


def test_small_names_of_the_reference():
    from flux.idset import IDset
    from flux.job.info import JobInfoFormat

    assert IDset.arg_to_set("1-3", "union") == IDset("1-3")
    assert IDset.arg_to_set(5, "union") == IDset("5")
    with pytest.raises(TypeError, match="IDset.union"):
        IDset.arg_to_set(object(), "union")
    assert JobInfoFormat.JobFormatter().format("{0!F}", 90.0) == "1.5m"
    assert issubclass(JobInfoFormat.HeaderFormatter, JobInfoFormat.JobFormatter)
