"""A host's sweep for leftovers (shell/host.py) and the servers it must spare."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_exit_sweep_spares_the_servers_we_forked() -> None:
    # run in a process of its own: an exit sweep kills every other child of its process
    script = (
        "import os, subprocess, time\n"
        "from shell.host import Host\n"
        "host = Host(reactor=None)\n"
        "spared = subprocess.Popen(['sleep', '30'], start_new_session=True)\n"
        "other = subprocess.Popen(['sleep', '30'], start_new_session=True)\n"
        "host.spared.add(spared.pid)\n"
        "host.sweep(everything=True)\n"
        "time.sleep(0.2)\n"
        "print(spared.poll(), other.poll())\n"
        "spared.kill()\n")
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=60, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr
    # a forked server lives on to end its own jobs; anything else is killed
    assert r.stdout.split() == ["None", "-9"]
