"""A broker removes the rundirs of brokers that were killed (broker/rundir.py)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from broker.rundir import candidates, remove_stale
from broker.testing import flux_command


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leftover(tmp, pid: int, suffix: str, listen: bool = False) -> tuple[str, socket.socket | None]:
    path = tmp / f"flux-{pid}-{suffix}"
    path.mkdir()
    (path / "content.lmdb").write_bytes(b"x" * 100)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path / "local"))
    if listen:
        sock.listen(1)
        return str(path), sock
    sock.close()            # the socket file stays, with no one behind it
    return str(path), None


def test_candidates_are_the_names_a_broker_gives_its_rundir():
    names = ["flux-123-abc_9", "flux-abc", "flux-12-", "flux-1-a-b", "xflux-1-a", "flux-7-q"]
    assert candidates(names) == [("flux-123-abc_9", 123), ("flux-7-q", 7)]


def test_only_dead_unlistened_rundirs_go(tmp_path):
    dead = dead_pid()
    gone, _ = leftover(tmp_path, dead, "gone1")
    mine, _ = leftover(tmp_path, os.getpid(), "live1")          # a live broker's pid
    served, sock = leftover(tmp_path, dead, "other1", listen=True)  # another pid namespace
    (tmp_path / f"flux-{dead}-file").write_text("not a directory")
    try:
        assert remove_stale(str(tmp_path)) == [gone]
    finally:
        assert sock is not None
        sock.close()
    assert not os.path.exists(gone)
    assert os.path.isdir(mine) and os.path.isdir(served)
    assert os.path.isfile(tmp_path / f"flux-{dead}-file")


@pytest.mark.slow
def test_flux_start_removes_what_a_killed_broker_left(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    # a real broker, killed with SIGKILL: its rundir stays behind
    proc = subprocess.Popen(flux_command() + ["start", "sleep", "300"], env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    rundirs: list[str] = []
    while time.monotonic() < deadline and not rundirs:
        rundirs = [p for p in os.listdir(tmp_path) if p.startswith(f"flux-{proc.pid}-")]
        time.sleep(0.05)
    assert rundirs, "the broker made no rundir"
    while time.monotonic() < deadline and not os.path.exists(tmp_path / rundirs[0] / "local"):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert os.path.isdir(tmp_path / rundirs[0])
    out = subprocess.run(flux_command() + ["start", "flux", "getattr", "rundir"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert not os.path.exists(tmp_path / rundirs[0])
