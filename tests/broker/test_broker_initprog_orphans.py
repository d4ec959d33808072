"""The initial program's processes end with the broker, however it ends: what the
program started (not just the program) is gone after a SIGKILL of the broker."""
from __future__ import annotations

import os
import signal
import subprocess

from helpers.procs import alive, wait_dead
from helpers.wait import wait_until

from broker.testing import flux_command


def test_a_killed_broker_takes_the_whole_initial_program_with_it(tmp_path):
    pids = tmp_path / "pids"
    script = (f"flux getattr broker.pid > {tmp_path}/broker; "
              f"sleep 300 & echo $! > {pids}; sh -c 'sleep 301' & echo $! >> {pids}; "
              f"sleep 302")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    # the rundir (and store) a SIGKILLed broker leaves behind goes with tmp_path
    proc = subprocess.Popen(flux_command() + ["start", "-s1", f"--rundir={tmp_path}/rundir",
                                              "sh", "-c", script], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 2
                   and (tmp_path / "broker").exists()
                   and (tmp_path / "broker").read_text().strip(), 30, "the program's start")
        started = [int(p) for p in pids.read_text().split()]
        assert all(alive(p) for p in started)
        broker = int((tmp_path / "broker").read_text())
        os.kill(broker, signal.SIGKILL)
        assert wait_dead(started, 10), [p for p in started if alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
