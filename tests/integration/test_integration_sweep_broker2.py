"""Broker admin commands as flux-core documents them, second sweep: flux dmesg
-H (flux-dmesg(1), flux-core's dmesg.c form), the hostlist attribute of a
PMI-bootstrapped instance (flux-broker-attributes(7)), flux uptime's notices
(flux-uptime(1)), flux startlog (flux-startlog(1)) and flux overlay status
(flux-overlay(1))."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from broker.logring import HumanFormatter
from broker.testing import TestInstance


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


# -- flux dmesg -H ----------------------------------------------------------------------


def _entry(ts: float, level: int = 6) -> dict:
    return {"timestamp": ts, "level": level, "rank": 1, "appname": "app", "message": "m"}


def test_dmesg_human_starts_a_new_stamp_when_the_calendar_minute_changes():
    # flux-core compares the calendar minute, not the 60 s elapsed: 1 s across
    # a minute boundary is a new absolute stamp; 59 s within one is an offset.
    fmt = HumanFormatter()
    minute = time.mktime((2024, 3, 5, 10, 20, 0, 0, 0, -1))
    assert fmt.format(_entry(minute - 0.5)).startswith("[Mar05 10:19] ")
    assert fmt.format(_entry(minute + 0.5)).startswith("[Mar05 10:20] ")
    assert fmt.format(_entry(minute + 59.5)) == "[ +59.000000] app.info[1]: m"


def test_dmesg_human_names_the_severity_like_the_iso_form(inst):
    # flux-core prints "app.severity[rank]" whatever the timestamp form.
    ok(inst.flux("logger", "-s", "warning", "-n", "sweep2", "human form"))
    line = ok(inst.flux("dmesg", "-H")).splitlines()[-1]
    assert re.fullmatch(r"\[[^]]+\] sweep2\.warning\[0\]: human form", line), line
    colored = ok(inst.flux("dmesg", "-H", "--color=always")).splitlines()[-1]
    assert "sweep2.warning[0]" in colored


# -- hostlist of a PMI-bootstrapped instance ---------------------------------------------


def test_a_pmi_bootstrapped_instance_sets_hostlist_on_every_rank(inst):
    # flux-broker-attributes(7): hostlist is every broker's; the business
    # cards carry each rank's hostname, so the child has the parent's hosts.
    outer = ok(inst.flux("getattr", "hostlist")).strip()
    out = ok(inst.flux("run", "-N2", "flux", "start", "sh", "-c",
                       "flux getattr hostlist; flux exec -r 1 flux getattr hostlist",
                       timeout=60))
    assert out.splitlines() == [outer, outer]


# -- flux uptime notices ----------------------------------------------------------------


def test_uptime_notes_submission_disabled_and_scheduling_stopped(inst):
    # flux-uptime(1): "A notice if job submission is disabled on all queues",
    # "A notice if scheduling is disabled", on a second line (flux-core's wording).
    assert len(ok(inst.flux("uptime")).splitlines()) == 1
    try:
        ok(inst.flux("queue", "disable", "-m", "sweep"))
        assert ok(inst.flux("uptime")).splitlines()[1:] == ["  submit disabled"]
        ok(inst.flux("queue", "stop"))
        assert ok(inst.flux("uptime")).splitlines()[1:] == [
            "  submit disabled,  scheduler stopped"]
        ok(inst.flux("queue", "enable"))
        assert ok(inst.flux("exec", "-r", "1", "flux", "uptime")).splitlines()[1:] == [
            "  scheduler stopped"]
    finally:
        inst.flux("queue", "enable")
        inst.flux("queue", "start")
    assert len(ok(inst.flux("uptime")).splitlines()) == 1


# -- flux startlog ------------------------------------------------------------------------

GUEST = """
import contextlib, io, os, sys
import flux, flux.core.handle, flux.rpc
import cli.cmd_startlog as cmd
with contextlib.redirect_stdout(io.StringIO()):  # load what click loads lazily
    cmd.command.main(["--help"], prog_name="flux startlog", standalone_mode=False)
os.setgid(65534); os.setuid(65534)
os.environ["FLUX_URI"] = sys.argv[1]
cmd.command.main(sys.argv[2:], prog_name="flux startlog")
"""


def test_startlog_is_not_available_to_guests(tmp_path):
    # flux-startlog(1): "This command is not available to guest users."
    if os.getuid() != 0:
        pytest.skip("needs root to run commands as user nobody")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "access.toml").write_text("[access]\nallow-guest-user = true\n")
    os.chmod(tmp_path, 0o755)
    conf.chmod(0o755)
    guest_inst = TestInstance(config_path=str(conf)).start()
    try:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        r = subprocess.run([sys.executable, "-c", GUEST, guest_inst.uri], capture_output=True,
                           text=True, timeout=60, cwd=root)
        assert (r.returncode, r.stdout) == (1, ""), r.stderr
        assert r.stderr == ("flux-startlog: Error fetching eventlog: "
                            "Request requires owner credentials\n")
        assert ok(guest_inst.flux("startlog")).endswith(")\n")    # the owner may
    finally:
        assert guest_inst.stop() == 0


def test_startlog_show_version_prefixes_the_current_start(inst):
    # flux-startlog(1) -v, --show-version: the version of each start event,
    # right-aligned in 25 columns as flux-core prints it
    from flux import __version__

    for args in (["-v"], ["--show-version"]):
        line = ok(inst.flux("startlog", *args)).splitlines()[-1]
        assert line.startswith(f"{__version__:>25}  "), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d - running \(.*\)", line[27:]), line
    assert re.match(r"\d{4}-\d\d-\d\d ", ok(inst.flux("startlog")))


# -- flux overlay status ------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain():
    """0 - 1 - 2 - 3, named fake0..fake3, so that rank 3 sits behind rank 2."""
    inst = TestInstance(size=4, setattrs=["tbon.fanout=1"],
                        args=["--test-hosts=fake[0-3]"]).start()
    yield inst
    assert inst.stop() == 0


def test_overlay_status_highlight_marks_targets_and_ancestors(chain):
    # flux-overlay(1) -H, --highlight=TARGET (idset or hostlist): "<<...>>"
    # without colour, bold blue with it (flux-core's t3303)
    out = ok(chain.flux("overlay", "status", "--highlight=fake2"))
    assert out.splitlines() == ["<<0 fake0>>: full", "└─ <<1 fake1>>: full",
                                "   └─ <<2 fake2>>: full", "      └─ 3 fake3: full"]
    out = ok(chain.flux("overlay", "status", "-H", "1", "--no-pretty"))
    assert out.splitlines() == ["<<0 fake0>>: full", "<<1 fake1>>: full", "2 fake2: full",
                                "3 fake3: full"]
    lit = [line for line in ok(chain.flux("overlay", "status", "-L", "--highlight=1"))
           .splitlines() if "\033[01;34m" in line]
    assert lit == ["\033[01;34m0 fake0\033[0m: full", "└─ \033[01;34m1 fake1\033[0m: full"]
    assert "<<0" in ok(chain.flux("overlay", "status", "-Lnever", "-H", "0"))
    assert fails(chain.flux("overlay", "status", "--highlight=0-4")) == \
        "flux-overlay: rank 4 is not in host map\n"
    assert fails(chain.flux("overlay", "status", "--highlight=fake9")) == \
        "flux-overlay: host fake9 not found in host map\n"
    fails(chain.flux("overlay", "status", "--color=foo"), 2)


def test_overlay_status_wait_and_no_ghost(chain):
    # -w, --wait=STATE waits for the subtree's status (within --timeout, 0: none);
    # --no-ghost leaves out the presumed nodes behind a lost/offline one
    assert ok(chain.flux("overlay", "status", "--wait=full", "--summary", "--timeout=0"))
    fails(chain.flux("overlay", "status", "--wait=foo"), 2)
    assert fails(chain.flux("overlay", "status", "--wait=partial", "--timeout=0.2s")) == \
        "flux-overlay: Connection timed out\n"
    os.kill(chain.broker_pids[2], signal.SIGSTOP)
    try:
        ok(chain.flux("overlay", "status", "--wait=degraded", "--summary", "--timeout=0",
                      timeout=30))
        out = ok(chain.flux("overlay", "status", "--no-ghost", "--timeout=2s"))
        assert out.splitlines() == ["0 fake0: degraded", "└─ 1 fake1: degraded",
                                    "   └─ 2 fake2: lost"]
        out = ok(chain.flux("overlay", "status", "--color=always", "--timeout=2s"))
        assert out.splitlines()[2:] == ["   └─ 2 fake2: \033[31mlost\033[39m",
                                        "      └─ 3 fake3: \033[90mlost\033[39m"]
        out = ok(chain.flux("overlay", "status", "--no-ghost", "--no-pretty", "--timeout=2s"))
        assert out.splitlines()[-1] == "2 fake2: lost"
    finally:
        os.kill(chain.broker_pids[2], signal.SIGCONT)
    ok(chain.flux("overlay", "status", "--wait=full", "--summary", "--timeout=0", timeout=30))


def test_overlay_errors_names_the_lost_nodes_and_why(chain):
    # flux-overlay(1) errors: "one line per unique error with a hostlist prefix"
    assert ok(chain.flux("overlay", "errors")) == ""
    os.kill(chain.broker_pids[2], signal.SIGSTOP)
    try:
        ok(chain.flux("overlay", "status", "--wait=degraded", "--summary", "--timeout=0",
                      timeout=30))
        assert ok(chain.flux("overlay", "errors", "--timeout=2s")) == \
            "fake2: Connection timed out\n"
    finally:
        os.kill(chain.broker_pids[2], signal.SIGCONT)
    ok(chain.flux("overlay", "status", "--wait=full", "--summary", "--timeout=0", timeout=30))
    assert ok(chain.flux("overlay", "errors")) == ""
