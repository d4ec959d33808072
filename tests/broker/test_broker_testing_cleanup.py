"""broker.testing leaves nothing in /tmp: not for an instance whose start
failed, nor for one a test made and never started or stopped."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from broker.testing import TestInstance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_failed_start_removes_its_directory(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "bad.toml").write_text("[resource\n")        # not TOML: flux start fails
    inst = TestInstance(config_path=str(conf))
    with pytest.raises(RuntimeError) as err:
        inst.start(timeout=60)
    assert "flux start exited" in str(err.value)
    # the error still carries what the instance said
    assert "bad.toml" in str(err.value)
    assert not os.path.exists(inst.root)


def test_instances_left_behind_are_removed_at_exit():
    script = textwrap.dedent("""
        import sys
        from broker.testing import TestInstance
        never_started = TestInstance()
        running = TestInstance().start(timeout=60)
        print(never_started.root, running.root, running.broker_pids[0], flush=True)
        sys.exit(0)          # neither is stopped
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    never_started, running, broker = out[0], out[1], int(out[2])
    assert not os.path.exists(never_started)
    assert not os.path.exists(running)
    assert not _alive(broker, within=5.0)


def _alive(pid: int, within: float) -> bool:
    """Whether PID still runs after WITHIN seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.05)
    return True
