"""Broker and flux start options end to end: a second broker on a running broker's
local-uri, ``[bootstrap] enable_ipv6``, ``-S`` forms, and ``--rundir`` without
``--test-size``."""
from __future__ import annotations

import os
import socket
import subprocess

import pytest

from broker.testing import SystemInstance, flux_command


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    env.update(extra)
    return env


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(flux_command() + argv, env=_env(**env), capture_output=True,
                          text=True, timeout=60, check=False)


# -- a second broker on the same local-uri -------------------------------------------

def test_a_configured_broker_on_a_running_brokers_local_uri_leaves_it_alone(systems):
    s = systems(2, topo="kary:2", restart=False)
    s.start(0)
    s.wait_for(lambda: s.state()["state"] == "run", 30, "rank 0 runs")
    sock = s.uri(0)[len("local://"):]
    # node1 would join rank 0, but its local-uri is rank 0's: it stops before the join
    r = _run(["broker", f"--config-path={s.conf}", "-Sbroker.rc2_none",
              f"-Srundir={s.rundir(1)}", f"-Slocal-uri={s.uri(0)}"],
             FLUX_FAKE_HOSTNAME="node1")
    assert r.returncode == 1, r.stderr
    assert f"local-uri {s.uri(0)}: a broker is already listening there" in r.stderr
    assert os.path.exists(sock)
    up = s.flux("uptime")
    assert up.returncode == 0 and "run" in up.stdout, up.stderr
    assert s.online() == [0]
    assert s.shutdown()[0] == 0


def test_a_broker_whose_start_fails_removes_its_own_socket(tmp_path):
    sock = tmp_path / "own.sock"
    r = _run(["start", f"-Slocal-uri=local://{sock}", "-Scontent.purge-old-entry=soon",
              "true"])
    assert r.returncode == 1 and "rc1 failed" in r.stderr, r.stderr
    assert not sock.exists()


def test_a_stale_socket_at_the_local_uri_is_replaced(tmp_path):
    sock = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(sock))
    s.close()                       # left by a broker that was killed
    r = _run(["start", f"-Slocal-uri=local://{sock}", "flux", "getattr", "local-uri"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"local://{sock}"
    assert not sock.exists()        # ours, removed at exit


# -- [bootstrap] enable_ipv6 -----------------------------------------------------------

def _ipv6_port() -> int:
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"this machine has no IPv6 loopback address (::1): {exc}")
    port = s.getsockname()[1]
    s.close()
    return port


def _ipv6_system(systems, enable: bool) -> tuple[SystemInstance, int]:
    port = _ipv6_port()
    extra = (f"enable_ipv6 = {'true' if enable else 'false'}\n"
             f"default_port = {port}\n"
             'default_bind = "tcp://[::1]:%p"\n'
             'default_connect = "tcp://[::1]:%p"\n')
    # no [tbon] table, so these keys land in [bootstrap]
    return systems(2, topo=None, restart=False, extra_toml=extra,
                   hosts_toml='  { host = "node0" },\n  { host = "node1" },'), port


def test_enable_ipv6_lets_the_overlay_bind_and_connect_on_ipv6(systems):
    s, port = _ipv6_system(systems, True)
    s.start_all()
    try:
        s.wait_full(60)
    except AssertionError:
        raise AssertionError(s.logs()) from None
    assert s.flux("getattr", "tbon.endpoint").stdout.strip() == f"tcp://[::1]:{port}"
    assert s.flux("getattr", "tbon.parent-endpoint", rank=1).stdout.strip() == \
        f"tcp://[::1]:{port}"
    status = s.flux("overlay", "status")
    assert status.stdout.splitlines() == ["0 node0: full", "└─ 1 node1: full"], status.stderr
    assert s.flux("exec", "-r", "1", "true").returncode == 0
    assert s.shutdown() == {0: 0, 1: SystemInstance.NORESTART}


def test_without_enable_ipv6_an_ipv6_bind_is_refused(systems):
    s, port = _ipv6_system(systems, False)
    s.start(0)
    assert s.wait_exit(0, 30) == 1
    assert f"cannot bind tcp://[::1]:{port}" in s.log(0)


# -- -S forms and flux start's --rundir ----------------------------------------------

def test_rank_on_the_broker_command_line_is_a_usage_error():
    r = _run(["broker", "-Srank=3", "flux", "getattr", "rank"])
    assert r.returncode == 2 and r.stdout == ""
    assert "attribute 'rank' is set by the broker and may not be given on the command " \
           "line" in r.stderr


def test_a_bare_setattr_is_a_flag_set_to_1():
    # flux-core accepts -S NAME without a value (its systemd unit passes -Sbroker.rc2_none)
    r = _run(["start", "-o,-Sx.flag", "flux", "getattr", "x.flag"])
    assert (r.returncode, r.stdout) == (0, "1\n"), r.stderr


def test_rundir_without_test_size_is_a_usage_error(tmp_path):
    r = _run(["start", f"--rundir={tmp_path}/x", "true"])
    assert r.returncode == 2
    assert "--rundir only works with --test-size" in r.stderr
    assert not (tmp_path / "x").exists()
    r = _run(["start", "-s1", f"--rundir={tmp_path}/x", "flux", "getattr", "rundir"])
    assert (r.returncode, r.stdout) == (0, f"{tmp_path}/x\n"), r.stderr
