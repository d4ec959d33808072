"""A broker's start-up does not harm another broker, and refuses what it cannot honour.

- The local connector removes a socket file only when nothing answers on it
  (a stale one), and unlinks only the file it bound itself.
- ``-S`` refuses attributes the broker sets itself (rank, size, ...).
- The content cache attributes of flux-content(1) exist, are validated, and
  ``content.purge-target-size`` really bounds the KVS cache.
"""
from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
from types import SimpleNamespace

import pytest

from broker.attrs import BROKER_OWNED, check_cmdline
from broker.connector_local import LocalConnector
from broker.main import build_parser, parse_setattr
from broker.testing import TestInstance, flux_command
from flux.errors import FluxError
from kvs.cache import ObjectCache


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str, **_kw: object) -> None:
        self.lines.append(text)

    warning = debug = error = info


def _connector(path: str) -> LocalConnector:
    return LocalConnector(SimpleNamespace(log=_Log()), path)  # type: ignore[arg-type]


def _listener(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    return s


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        try:
            c.connect(path)
        except OSError:
            return False
    return True


# -- the local connector ---------------------------------------------------------------

def test_a_socket_another_broker_listens_on_is_refused_and_left_alone(tmp_path):
    path = str(tmp_path / "r0.sock")
    other = _listener(path)
    try:
        conn = _connector(path)

        async def go() -> None:
            with pytest.raises(FluxError) as info:
                await conn.start()
            assert info.value.errno == errno.EADDRINUSE
            assert str(info.value) == (f"local-uri local://{path}: a broker is already "
                                       "listening there")
            await conn.stop()        # the failure path: nothing of ours to remove

        asyncio.run(go())
        assert os.path.exists(path) and _answers(path)
    finally:
        other.close()


def test_a_stale_socket_is_replaced_and_ours_removed_at_stop(tmp_path):
    path = str(tmp_path / "r0.sock")
    _listener(path).close()            # a broker killed without cleaning up
    assert not _answers(path)
    conn = _connector(path)

    async def go() -> None:
        await conn.start()
        assert _answers(path)
        assert os.stat(path).st_mode & 0o777 == 0o777
        await conn.stop()

    asyncio.run(go())
    assert not os.path.exists(path)
    assert any("removed a stale socket" in line for line in conn.broker.log.lines)


def test_stop_leaves_a_socket_file_that_is_no_longer_ours(tmp_path):
    path = str(tmp_path / "r0.sock")
    conn = _connector(path)
    other = None

    async def go() -> None:
        nonlocal other
        await conn.start()
        os.unlink(path)                # someone else took the path meanwhile
        other = _listener(path)
        await conn.stop()
        await conn.stop()              # twice: still nothing removed

    try:
        asyncio.run(go())
        assert os.path.exists(path) and _answers(path)
    finally:
        if other is not None:
            other.close()


def test_a_path_that_is_not_a_socket_is_refused_and_kept(tmp_path):
    path = tmp_path / "r0.sock"
    path.write_text("data")
    conn = _connector(str(path))
    with pytest.raises(FluxError, match="exists and is not a socket"):
        asyncio.run(conn.start())
    assert path.read_text() == "data"


def test_a_second_flux_start_on_the_same_local_uri_fails_and_keeps_the_first():
    # the first instance listens in its rundir; a second is pointed at that very socket
    first = TestInstance().start()
    try:
        env = dict(os.environ)
        env.pop("FLUX_URI", None)
        r = subprocess.run(flux_command() + ["start", f"-Slocal-uri={first.uri}", "true"],
                           env=env, capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 1, r.stderr
        assert f"local-uri {first.uri}: a broker is already listening there" in r.stderr
        assert os.path.exists(first.socket_path)
        up = first.flux("uptime")
        assert up.returncode == 0, up.stderr
    finally:
        assert first.stop() == 0


# -- attributes the broker sets itself ---------------------------------------------------

@pytest.mark.parametrize("name", sorted(BROKER_OWNED))
def test_broker_owned_attributes_are_refused_on_the_command_line(name):
    with pytest.raises(FluxError) as info:
        check_cmdline(name)
    assert info.value.errno == errno.EINVAL
    assert str(info.value) == (f"attribute '{name}' is set by the broker and may not be "
                               "given on the command line")


def test_setattr_parsing_refuses_rank_and_accepts_a_bare_flag():
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["-Srank=3", "true"])
    assert info.value.code == 2
    # flux-core's systemd unit passes -Sbroker.rc2_none without a value
    assert parse_setattr("broker.rc2_none") == ("broker.rc2_none", "1")
    assert parse_setattr("instance-level=3") == ("instance-level", "3")


@pytest.mark.parametrize("argv", [
    ["broker", "-Srank=3", "flux", "getattr", "rank"],
    ["broker", "-Ssize=2", "true"],
    ["start", "-Srank=3", "true"],
    ["start", "-o,-Stbon.level=1", "true"],
])
def test_flux_broker_and_start_refuse_broker_owned_attributes(argv):
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    r = subprocess.run(flux_command() + argv, env=env, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "is set by the broker and may not be given on the command line" in r.stderr
    assert r.stdout == ""


# -- the content cache attributes ----------------------------------------------------

def test_set_max_bytes_purges_now_and_bounds_later_puts():
    c = ObjectCache(100, 1000)
    for i in range(10):
        c.put(f"r{i}", i, 100)
    assert (len(c), c.nbytes) == (10, 1000)
    c.set_max_bytes(250)
    assert (len(c), c.nbytes) == (2, 200) and "r9" in c and "r8" in c
    c.put("r10", 10, 100)
    assert (len(c), c.nbytes) == (2, 200) and "r8" not in c
    c.set_max_bytes(0)
    assert len(c) == 1                 # the newest entry stays, as at insertion
    with pytest.raises(ValueError):
        c.set_max_bytes(-1)


@pytest.fixture(scope="module")
def inst():
    i = TestInstance(setattrs=["content.purge-target-size=4096"]).start()
    yield i
    i.stop()


def _attr(h, name: str) -> str:
    return h.rpc("attr.get", {"name": name}).get()["value"]


def test_content_cache_attributes_report_the_kvs_cache(inst):
    h = inst.handle()
    try:
        assert _attr(h, "content.purge-target-size") == "4096"     # -S applied
        assert _attr(h, "content.purge-old-entry") == "10"
        for i in range(40):
            r = inst.flux("kvs", "put", f"dir{i}.key=" + "x" * 200)
            assert r.returncode == 0, r.stderr
        entries = int(_attr(h, "content.acct-entries"))
        size = int(_attr(h, "content.acct-size"))
        assert entries >= 1 and 0 < size <= 4096 + 2048
        assert _attr(h, "content.acct-valid") == str(entries)
        assert _attr(h, "content.acct-dirty") == "0"
        # a smaller target purges at once
        h.rpc("attr.set", {"name": "content.purge-target-size", "value": "1"}).get()
        assert _attr(h, "content.acct-entries") == "1"
        assert _attr(h, "content.purge-target-size") == "1"
        h.rpc("attr.set", {"name": "content.purge-target-size", "value": "4096"}).get()
        h.rpc("attr.set", {"name": "content.purge-old-entry", "value": "30"}).get()
        assert _attr(h, "content.purge-old-entry") == "30"
    finally:
        h.close()


@pytest.mark.parametrize("name, value, errnum, text", [
    ("content.purge-old-entry", "abc", errno.EINVAL,
     "content.purge-old-entry: 'abc' is not a non-negative integer"),
    ("content.purge-target-size", "-5", errno.EINVAL,
     "content.purge-target-size: '-5' is not a non-negative integer"),
    ("content.purge-target-size", "1.5", errno.EINVAL,
     "content.purge-target-size: '1.5' is not a non-negative integer"),
    ("content.acct-size", "3", errno.EPERM, "attribute 'content.acct-size' is read-only"),
    ("content.acct-entries", "3", errno.EPERM,
     "attribute 'content.acct-entries' is read-only"),
])
def test_bad_content_cache_settings_are_refused(inst, name, value, errnum, text):
    h = inst.handle()
    try:
        before = _attr(h, name)
        with pytest.raises(OSError) as info:
            h.rpc("attr.set", {"name": name, "value": value}).get()
        assert info.value.errno == errnum and text in str(info.value)
        assert _attr(h, name) == before
    finally:
        h.close()
    r = inst.flux("setattr", "--", name, value)
    assert r.returncode != 0 and text in r.stderr


def test_a_bad_content_cache_setting_on_the_command_line_fails_the_start():
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    r = subprocess.run(flux_command() + ["start", "-Scontent.purge-old-entry=soon", "true"],
                       env=env, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1
    assert "content.purge-old-entry: 'soon' is not a non-negative integer" in r.stderr
