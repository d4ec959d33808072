"""The PMI-1 client and ``flux start`` bootstrapped over PMI (one broker per task)."""
from __future__ import annotations

import errno
import os
import socket
import sys
import threading

import orjson
import pytest
import zmq
import zmq.utils.z85

from broker.boot_pmi import PmiBoot, card_key, instance_level
from broker.pmi_client import PmiClient, PmiError, PmiRefused, clean_environ
from broker.testing import flux_command
from flux.errors import FluxError
from helpers.pmi_launcher import launch
from shell.pmi.server import PmiServer

FLUX = flux_command()


# -- the client, against the real server in a thread -------------------------------------

class ServedClient:
    """A PmiClient whose other end is a PmiServer fed by a reader thread."""

    def __init__(self, exchange=None, keys=None) -> None:
        ours, theirs = socket.socketpair()
        self.sock = theirs
        self.aborts: list[tuple[int, int, str]] = []
        self.closed: list[str] = []
        self.server = PmiServer(1, [0], "job1", keys=keys or {},
                                exchange=exchange or (lambda puts, done: done(puts)),
                                abort=lambda *a: self.aborts.append(a))
        self.conn = self.server.connect(0, theirs.sendall, self._close)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.client = PmiClient(os.dup(ours.fileno()), 0, 1)
        ours.close()

    def _close(self, reason: str) -> None:
        self.closed.append(reason)
        self.sock.shutdown(socket.SHUT_RDWR)

    def _serve(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            if not data:
                self.conn.hangup()
                return
            try:
                self.conn.feed(data)
            except (BrokenPipeError, ConnectionResetError):
                # the client hung up before all its answers went out (a test that
                # expects it to give up early): nothing more to serve
                return

    def stop(self) -> None:
        self.client.close()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def served():
    s = ServedClient()
    yield s
    s.stop()


def test_client_put_barrier_get_finalize(served):
    c = served.client
    c.init()
    assert c.get_kvsname() == "job1"
    c.put("card", 'text with spaces \\ and "quotes"')
    c.barrier()
    assert c.get("card") == 'text with spaces \\ and "quotes"'
    assert served.server.get("card") == 'text\\ with\\ spaces\\ \\\\\\ and\\ "quotes"'
    c.finalize()
    assert c.fd == -1 and served.conn.finalized


def test_client_missing_key_is_refused(served):
    c = served.client
    c.init()
    with pytest.raises(PmiRefused, match="key nope not found"):
        c.get("nope")
    assert c.get_optional("nope") is None


def test_client_abort_sends_code_and_message(served):
    served.client.init()
    served.client.abort(5, "out of\nluck")
    served.client.close()
    served.thread.join(5)
    assert served.aborts == [(0, 5, "out of luck")]


def test_client_refuses_bad_keys_and_newlines(served):
    with pytest.raises(PmiError, match="bad PMI key"):
        served.client.put("a b", "1")
    with pytest.raises(PmiError, match="newline"):
        served.client.put("k", "a\nb")


def test_client_reports_a_closed_connection():
    s = ServedClient()
    s.client._send("cmd=bogus")  # the server closes protocol offenders
    with pytest.raises(PmiError, match="closed the connection"):
        s.client._recv()
    assert s.closed and "unknown command 'bogus'" in s.closed[0]
    s.stop()


def test_client_checks_the_answer_is_the_one_it_asked_for(served):
    served.client._send("cmd=get_appnum")
    with pytest.raises(PmiError, match="expected cmd=my_kvsname"):
        served.client._rpc("cmd=get_my_kvsname", "my_kvsname")


@pytest.mark.parametrize("env,why", [
    ({}, "PMI_FD is not set: this process was not started by a PMI-1 process manager"),
    ({"PMI_FD": "0", "PMI_SIZE": "2"}, "PMI_RANK is not set"),
    ({"PMI_FD": "x", "PMI_RANK": "0", "PMI_SIZE": "1"}, "PMI_FD='x' is not an integer"),
    ({"PMI_FD": "0", "PMI_RANK": "2", "PMI_SIZE": "2"}, "PMI_RANK=2 is out of range"),
    ({"PMI_FD": "999", "PMI_RANK": "0", "PMI_SIZE": "1"}, "PMI_FD=999 is not an open"),
])
def test_client_environment_errors_are_clear(env, why):
    with pytest.raises(PmiError, match=why):
        PmiClient.from_environ(env)


def test_clean_environ_removes_the_pmi_variables():
    env = {"PMI_FD": "3", "PMI_RANK": "0", "PMI_SIZE": "1", "PMI_SPAWNED": "1", "HOME": "/"}
    clean_environ(env)
    assert env == {"HOME": "/"}


# -- the overlay bootstrap over PMI, with a fake client -------------------------------------

class FakeClient:
    def __init__(self, kvs: dict[str, str]) -> None:
        self.kvs = kvs
        self.calls: list[str] = []

    def put(self, key, value):
        self.calls.append("put")
        self.kvs[key] = value

    def barrier(self):
        self.calls.append("barrier")

    def get(self, key):
        if key not in self.kvs:
            raise PmiRefused(f"get result: key {key} not found")
        return self.kvs[key]

    def finalize(self):
        self.calls.append("finalize")

    def close(self):
        self.calls.append("close")


def card(uri: str = "") -> tuple[str, bytes]:
    public, _secret = zmq.curve_keypair()
    return orjson.dumps({"hostname": "h", "pubkey": public.decode(), "uri": uri}).decode(), public


def test_pmi_boot_learns_parent_and_children():
    parent_card, parent_key = card("ipc:///tmp/p/tbon")
    child_card, child_key = card()
    kvs = {card_key(0): parent_card, card_key(3): child_card}
    client = FakeClient(kvs)
    boot = PmiBoot(client, "myhost")  # type: ignore[arg-type]
    boot._exchange(1, "ipc:///tmp/me/tbon", 0, [3])
    mine = orjson.loads(kvs[card_key(1)])
    assert mine == {"hostname": "myhost", "pubkey": boot.public.decode(),
                    "uri": "ipc:///tmp/me/tbon"}
    assert client.calls == ["put", "barrier", "finalize", "close"]
    assert boot._parent == ("ipc:///tmp/p/tbon", parent_key)
    assert boot.child_key_ok(zmq.utils.z85.decode(child_key))
    assert not boot.child_key_ok(zmq.utils.z85.decode(parent_key))


@pytest.mark.parametrize("bad,why", [
    ("not json", "business card of rank 0 is not JSON"),
    ('{"hostname":"h","uri":"x"}', "lacks hostname, pubkey or uri"),
    ('{"hostname":"h","uri":"x","pubkey":"short"}', "has a bad pubkey"),
])
def test_pmi_boot_refuses_bad_cards(bad, why):
    boot = PmiBoot(FakeClient({card_key(0): bad}), "h")  # type: ignore[arg-type]
    with pytest.raises(FluxError, match=why):
        boot._exchange(1, None, 0, [])


def test_pmi_boot_needs_the_parents_endpoint():
    boot = PmiBoot(FakeClient({card_key(0): card("")[0]}), "h")  # type: ignore[arg-type]
    with pytest.raises(FluxError, match="parent rank 0 published no endpoint"):
        boot._exchange(1, None, 0, [])


def test_pmi_boot_turns_pmi_errors_into_flux_errors():
    boot = PmiBoot(FakeClient({}), "h")  # type: ignore[arg-type]
    with pytest.raises(FluxError, match="PMI bootstrap failed: .*key flux.overlay.0 not found") \
            as info:
        boot._exchange(1, None, 0, [])
    assert info.value.errno == errno.EPROTO


@pytest.mark.parametrize("value,level", [(None, None), ("0", 1), ("2", 3), ("x", None),
                                         ("-1", None)])
def test_instance_level_is_one_more_than_the_enclosing(value, level):
    assert instance_level(value) == level


# -- flux start as the tasks of a job -------------------------------------------------------

def task_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("FLUX_URI", "PMI_FD", "PMI_RANK", "PMI_SIZE"):
        env.pop(name, None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def flux_start(size: int, *args: str, shells: int = 1, **kw):
    return launch([*FLUX, "start", *args], size=size, shells=shells, env=task_env(),
                  timeout=90, **kw)


def test_two_tasks_make_one_instance_of_size_2():
    r = flux_start(2, "flux", "getattr", "size")
    assert r.codes == [0, 0], r.describe()
    assert r.stdout(0) == "2\n" and r.stdout(1) == ""  # rank 0 alone runs the program


def test_exit_code_is_the_initial_programs():
    r = flux_start(2, "sh", "-c", "exit 3")
    assert r.codes == [3, 0], r.describe()


def test_size_1_is_a_plain_broker():
    r = flux_start(1, "sh", "-c", "flux getattr size; flux getattr rank")
    assert r.codes == [0] and r.stdout(0) == "1\n0\n", r.describe()


def test_tree_over_two_shells_with_instance_level_and_clean_environment():
    prog = ("flux getattr size; flux getattr instance-level; echo pmi=${PMI_FD:-none};"
            "flux ping -c1 3 >/dev/null && echo ping-ok; flux overlay status")
    r = flux_start(4, "-o,-Stbon.fanout=2", "sh", "-c", prog, shells=2,
                   keys={"flux.instance-level": "1"})
    assert r.codes == [0, 0, 0, 0], r.describe()
    lines = r.stdout(0).splitlines()
    assert lines[:4] == ["4", "2", "pmi=none", "ping-ok"]
    status = "\n".join(lines[4:])
    for rank in range(4):
        assert f"{rank} " in status and status.count(": full") == 4, status


def test_setattr_instance_level_wins_over_pmi():
    r = flux_start(1, "-Sinstance-level=7", "flux", "getattr", "instance-level",
                   keys={"flux.instance-level": "1"})
    assert r.stdout(0) == "7\n", r.describe()


def test_rundir_options_need_test_size():
    r = flux_start(1, "--rundir=/tmp/nowhere-pmi", "true")
    assert r.codes == [2] and "need --test-size" in r.stderr(0), r.describe()


def test_test_size_still_wins_over_pmi():
    r = flux_start(1, "-s2", "sh", "-c", "flux getattr size; echo ${PMI_FD:-none}")
    assert r.codes == [0] and r.stdout(0) == "2\nnone\n", r.describe()


def test_incomplete_pmi_environment_is_a_clear_error():
    import subprocess

    r = subprocess.run([*FLUX, "start", "true"], capture_output=True, text=True, timeout=60,
                       env=task_env(PMI_FD="0", PMI_SIZE="2"))
    assert r.returncode == 1 and "PMI_RANK is not set" in r.stderr


# -- the overlay's use of its bootstrap ---------------------------------------------------

class RecordingBoot:
    refusal = "for the test"

    def __init__(self) -> None:
        self.public, self.secret = zmq.curve_keypair()
        self.published: list[tuple[int, str | None, int | None, list[int]]] = []

    async def publish(self, rank, endpoint, parent, children):
        self.published.append((rank, endpoint, parent, children))

    async def parent(self, rank, parent):
        raise AssertionError("not used")

    def child_key_ok(self, key):
        return False


class FakeAttrs:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name):
        return self.values[name]

    def get_default(self, name, default=None):
        return self.values.get(name, default)

    def add(self, name, value, **kw):
        self.values[name] = value


def fake_broker(rank: int, size: int, rundir: str):
    from types import SimpleNamespace

    b = SimpleNamespace(rank=rank, size=size, fanout=2, opts=SimpleNamespace(boot_dir=None),
                        attrs=FakeAttrs({"rundir": rundir}), endpoints={}, log=None)
    b.add_endpoint = lambda ep: b.endpoints.__setitem__(ep.uuid, ep)
    b.overlay_boot = RecordingBoot()
    return b


def test_overlay_publishes_its_endpoint_through_the_boot(tmp_path):
    import asyncio

    from broker.overlay import Overlay

    async def main():
        b = fake_broker(1, 4, str(tmp_path))
        ov = Overlay(b)
        await ov.start()
        await ov.stop()
        return b

    b = asyncio.run(main())
    endpoint = f"ipc://{tmp_path}/tbon"
    assert b.overlay_boot.published == [(1, endpoint, 0, [3])]
    assert b.attrs.values["tbon.endpoint"] == endpoint


def test_overlay_leaf_publishes_no_endpoint(tmp_path):
    import asyncio

    from broker.overlay import Overlay

    async def main():
        b = fake_broker(3, 4, str(tmp_path))
        ov = Overlay(b)
        await ov.start()
        await ov.stop()
        return b

    assert asyncio.run(main()).overlay_boot.published == [(3, None, 1, [])]


def test_overlay_that_cannot_bind_still_publishes_then_fails(tmp_path):
    import asyncio

    from broker.overlay import Overlay

    async def main():
        b = fake_broker(0, 2, str(tmp_path / "missing"))
        ov = Overlay(b)
        try:
            with pytest.raises(FluxError, match="overlay: cannot bind ipc://"):
                await ov.start()
        finally:
            await ov.stop()
        return b

    # peers waiting in the PMI barrier learn there is no endpoint instead of hanging
    assert asyncio.run(main()).overlay_boot.published == [(0, None, None, [1])]
