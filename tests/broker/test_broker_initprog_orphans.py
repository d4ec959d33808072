"""The initial program's processes end with the broker, however it ends: what the
program started (not just the program) is gone after a SIGKILL of the broker."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from broker.testing import flux_command


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_killed_broker_takes_the_whole_initial_program_with_it(tmp_path):
    pids = tmp_path / "pids"
    script = (f"flux getattr broker.pid > {tmp_path}/broker; "
              f"sleep 300 & echo $! > {pids}; sh -c 'sleep 301' & echo $! >> {pids}; "
              f"sleep 302")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    proc = subprocess.Popen(flux_command() + ["start", "sh", "-c", script], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2
                        and (tmp_path / "broker").exists()
                        and (tmp_path / "broker").read_text().strip())
        started = [int(p) for p in pids.read_text().split()]
        assert all(alive(p) for p in started)
        broker = int((tmp_path / "broker").read_text())
        os.kill(broker, signal.SIGKILL)
        assert wait_for(lambda: not any(alive(p) for p in started), 10), \
            [p for p in started if alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
