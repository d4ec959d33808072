"""flux overlay status --summary, flux overlay disconnect TARGET (rank or hostname),
presumed nodes below a lost node, and flux startlog -v versions of past runs, as
flux-core's flux-overlay(1), flux-startlog(1) and their sharness tests have them."""
from __future__ import annotations

import os
import signal
import subprocess

import orjson
import pytest

from broker.overlay_status import ghost, render
from broker.testing import TestInstance, flux_command, stray_brokers
from eventstore.startlog import decode_record
from eventstore.store import Store
from flux import __version__


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    """After this module, no broker it started may still run."""
    yield
    assert stray_brokers() == []


@pytest.fixture(scope="module")
def chain():
    """0 - 1 - 2, named fake0..fake2, so that rank 2 sits behind rank 1."""
    inst = TestInstance(size=3, setattrs=["tbon.fanout=1"],
                        args=["--test-hosts=fake[0-2]"]).start()
    yield inst
    assert inst.stop() == 0
    assert inst.live_pids() == []


def test_overlay_status_summary_prints_only_the_status(chain):
    # flux-core t3303: test "$(flux overlay status --timeout=0 --summary)" = "full"
    r = chain.flux("overlay", "status", "--timeout=0", "--summary")
    assert (r.returncode, r.stdout) == (0, "full\n")


def test_overlay_disconnect_target_errors(chain):
    # flux-overlay(1) disconnect TARGET: a rank or a hostname
    r = chain.flux("overlay", "disconnect", "42")
    assert (r.returncode, r.stderr) == \
        (1, "flux-overlay: 42 is not a valid rank in this instance\n")
    for bad in ("42xxx", "fake2[", "fake9"):
        r = chain.flux("overlay", "disconnect", bad)
        assert (r.returncode, r.stderr) == \
            (1, "flux-overlay: TARGET must be a valid rank or hostname\n")
    r = chain.flux("overlay", "disconnect", "fake0")
    assert (r.returncode, r.stderr) == (1, "flux-overlay: 0 has no parent\n")


def test_presumed_nodes_below_a_lost_node_share_its_status(chain):
    # flux-overlay(1): nodes behind a lost/offline one are shown with its status
    assert ghost(1, 1, 4, "lost", "h")["children"][0]["children"][0]["status"] == "lost"
    tree = {"rank": 0, "host": "h", "status": "partial",
            "children": [ghost(1, 1, 3, "offline", "h")]}
    assert render(tree) == ["0 h: partial", "└─ 1 h: offline", "   └─ 2 h: offline"]
    os.kill(chain.broker_pids[1], signal.SIGSTOP)
    try:
        chain.flux("overlay", "status", "--wait=degraded", "--timeout=0", timeout=30)
        r = chain.flux("overlay", "status", "--timeout=1s")
        assert r.stdout.splitlines() == ["0 fake0: degraded", "└─ 1 fake1: lost",
                                         "   └─ 2 fake2: lost"], r.stderr
    finally:
        os.kill(chain.broker_pids[1], signal.SIGCONT)
    r = chain.flux("overlay", "status", "--wait=full", "--summary", "--timeout=0", timeout=30)
    assert r.stdout == "full\n"


def test_overlay_disconnect_by_hostname():
    inst = TestInstance(size=3, setattrs=["tbon.fanout=1"],
                        args=["--test-hosts=fake[0-2]"]).start()
    try:
        r = inst.flux("overlay", "disconnect", "fake2")
        assert r.returncode == 0, r.stderr
        assert "flux-overlay: asking fake1 (rank 1) to disconnect child fake2 (rank 2)\n" \
            in r.stderr
    finally:
        inst.stop()
    assert inst.live_pids() == []


def test_startlog_records_keep_the_version_of_their_run(tmp_path):
    # an old record (no version) still loads; a new one keeps the version it was opened with
    assert decode_record(0, orjson.dumps({"start": 1.0, "finish": 2.0, "pid": 3})).version is None
    store = Store(tmp_path / "s", durability="none")
    store.close()
    store = Store(tmp_path / "s", durability="none", version="9.9.9")
    store.close()
    assert [r.version for r in Store(tmp_path / "s", readonly=True).startlog()[:2]] == \
        [None, "9.9.9"]


def test_startlog_show_version_for_past_runs(tmp_path):
    # flux-startlog(1) -v: the version of each start, not only the current one
    start = flux_command() + ["start", f"-Sstatedir={tmp_path}"]
    subprocess.run(start + ["true"], check=True, timeout=60, capture_output=True)
    r = subprocess.run(start + ["flux", "startlog", "-v"], timeout=60, capture_output=True,
                       text=True)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 2, (r.stdout, r.stderr)
    assert all(line.startswith(f"{__version__:>25}  ") for line in lines), lines
