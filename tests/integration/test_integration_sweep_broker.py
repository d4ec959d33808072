"""The broker and its admin commands as flux-core documents them: the heartbeat
module and flux top's heart (flux-top(1)), content.backing-module
(flux-broker-attributes(7)), flux dmesg --color and --delta (flux-dmesg(1)),
flux shutdown --verbose=LEVEL (flux-shutdown(1))."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from broker.testing import TestInstance, flux_command


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=2).start()
    yield inst
    assert inst.stop() == 0


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc.stdout


def fails(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc.stderr


# -- heartbeat -------------------------------------------------------------------------


def test_the_heartbeat_module_runs_on_every_rank_and_publishes_pulses(inst):
    assert json.loads(ok(inst.flux("module", "stats", "heartbeat"))) == {"period": 2.0}
    assert json.loads(ok(inst.flux("exec", "-r", "1", "flux", "module", "stats",
                                   "heartbeat"))) == {"period": 2.0}
    out = ok(inst.flux("event", "sub", "-c", "1", "heartbeat.pulse", timeout=10))
    assert out == "heartbeat.pulse\n"


def test_the_heartbeat_period_is_a_module_option(inst):
    try:
        ok(inst.flux("module", "reload", "heartbeat", "period=0.1s"))
        assert json.loads(ok(inst.flux("module", "stats", "heartbeat"))) == {"period": 0.1}
        start = time.monotonic()
        ok(inst.flux("event", "sub", "-c", "4", "heartbeat.pulse", timeout=10))
        assert time.monotonic() - start < 5
        assert fails(inst.flux("module", "reload", "heartbeat", "beat=1")) == \
            "flux-module: heartbeat: unknown option: beat=1\n"
        assert fails(inst.flux("module", "load", "heartbeat", "period=soon")) == \
            "flux-module: heartbeat: invalid period value: 'soon'\n"
    finally:
        inst.flux("module", "load", "heartbeat")
    assert "heartbeat" in ok(inst.flux("module", "list"))


def test_flux_top_counts_heartbeats_of_the_instance_shown(inst):
    from cli.top.source import Instance

    top = Instance.open(inst.uri)
    try:
        deadline = time.monotonic() + 6
        seen = 0
        while not seen and time.monotonic() < deadline:
            seen = top.pulses()
            time.sleep(0.1)
        assert seen >= 1
    finally:
        top.close()


def test_the_summary_pane_shows_the_heart_where_flux_top_does():
    from cli.top.view import Summary, summary_canvas

    lit = summary_canvas(Summary(), 0.0, heart=True)
    assert lit.cells[3][77][0] == "\u2661"
    assert summary_canvas(Summary(), 0.0).cells[3][77][0] == " "


def test_flux_top_draws_the_heart_on_the_terminal(inst):
    pexpect = pytest.importorskip("pexpect")
    pyte = pytest.importorskip("pyte")
    env = inst.env
    env["TERM"] = "xterm-256color"
    cmd = flux_command() + ["top"]
    child = pexpect.spawn(cmd[0], cmd[1:], env=env, dimensions=(24, 80))

    class Screen(pyte.Screen):
        def write_process_input(self, data: str) -> None:
            # answer the terminal queries (cursor position) as a terminal does
            if child.isalive():
                child.send(data)

    screen = Screen(80, 24)
    stream = pyte.ByteStream(screen)
    try:
        deadline = time.monotonic() + 15
        seen = False
        while time.monotonic() < deadline and not seen:
            try:
                stream.feed(child.read_nonblocking(1 << 16, timeout=0.2))
            except pexpect.TIMEOUT:
                pass
            seen = screen.buffer[3][77].data == "\u2661"
        assert seen, "\n".join(screen.display)
    finally:
        child.terminate(force=True)


# -- content.backing-module --------------------------------------------------------------


def test_content_backing_module_names_the_module_serving_the_store(inst):
    assert ok(inst.flux("getattr", "content.backing-module")) == "content\n"
    # the module it names is the one that serves content-backing
    listing = ok(inst.flux("module", "list"))
    line = next(ln for ln in listing.splitlines() if ln.startswith("content "))
    assert "content-backing" in line
    assert fails(inst.flux("setattr", "content.backing-module", "x")) == \
        "flux-setattr: attribute 'content.backing-module' is immutable\n"
    # "Only set on rank 0"
    assert "unknown attribute" in fails(inst.flux("exec", "-r", "1", "flux", "getattr",
                                                  "content.backing-module"))


# -- flux dmesg ---------------------------------------------------------------------------


def test_dmesg_color_without_when_means_always(inst):
    ok(inst.flux("logger", "-s", "err", "--appname=sweep", "colored error"))
    line = ok(inst.flux("dmesg", "-L")).splitlines()[-1]
    assert line.startswith("\033[32m") and "\033[33msweep.err[0]\033[0m: " in line
    assert line.endswith("\033[31mcolored error\033[0m")
    assert ok(inst.flux("dmesg", "--color")).splitlines()[-1] == line
    human = ok(inst.flux("dmesg", "-HL")).splitlines()
    assert human[0].startswith("\033[1m\033[32m[")
    plain = ok(inst.flux("dmesg", "-Lnever")).splitlines()[-1]
    assert "\033" not in plain and plain.endswith(" sweep.err[0]: colored error")
    # not a terminal: auto means none
    assert "\033" not in ok(inst.flux("dmesg"))


def test_dmesg_delta_needs_human(inst):
    assert fails(inst.flux("dmesg", "-d")) == "flux-dmesg: --delta can only be used with --human\n"
    ok(inst.flux("dmesg", "-H", "-d"))


# -- flux shutdown ----------------------------------------------------------------------------


def test_shutdown_verbose_takes_a_level():
    inst = TestInstance(size=1).start()
    try:
        r = inst.flux("shutdown", "--verbose=1")
        assert r.returncode == 0, r.stderr
        # level 1 shows all messages, debug ones too
        assert ".debug[0]: " in r.stderr
    finally:
        inst.stop()


# -- the hostlist attribute and flux overlay lookup ------------------------------------------


def test_every_broker_of_a_test_instance_has_the_hostlist(inst):
    import socket

    host = os.environ.get("FLUX_FAKE_HOSTNAME") or socket.gethostname()
    assert ok(inst.flux("getattr", "hostlist")) == f"{host},{host}\n"
    assert ok(inst.flux("exec", "-r", "1", "flux", "getattr", "hostlist")) == f"{host},{host}\n"
    single = TestInstance(size=1).start()
    try:
        assert ok(single.flux("getattr", "hostlist")) == host + "\n"
    finally:
        assert single.stop() == 0


def test_overlay_lookup_translates_ranks_and_hosts():
    named = TestInstance(size=3, args=("--test-hosts=n[0-2]",)).start()
    try:
        assert ok(named.flux("getattr", "hostlist")) == "n[0-2]\n"
        assert ok(named.flux("overlay", "lookup", "2")) == "n2\n"
        assert ok(named.flux("overlay", "lookup", "0-2")) == "n[0-2]\n"
        assert ok(named.flux("overlay", "lookup", "n1")) == "1\n"
        assert ok(named.flux("overlay", "lookup", "n[0,2]")) == "0,2\n"
        assert fails(named.flux("overlay", "lookup", "5")) == \
            "flux-overlay: rank 5 is not in host map\n"
        assert fails(named.flux("overlay", "lookup", "zz")) == \
            "flux-overlay: host zz not found in host map\n"
        assert fails(named.flux("overlay", "lookup", "x[")) == \
            "flux-overlay: target must be a valid idset or hostlist\n"
    finally:
        assert named.stop() == 0


# -- flux uptime ------------------------------------------------------------------------------


def test_uptime_counts_drained_nodes(inst):
    assert "drained" not in ok(inst.flux("uptime"))
    ok(inst.flux("resource", "drain", "1", "sweep test"))
    try:
        line = ok(inst.flux("uptime"))
        assert line.rstrip().endswith(",  size 2,  1 drained"), line
        assert ok(inst.flux("exec", "-r", "1", "flux", "uptime")).rstrip().endswith(
            "1 drained")
    finally:
        ok(inst.flux("resource", "undrain", "1"))
    assert "drained" not in ok(inst.flux("uptime"))
