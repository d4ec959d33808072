"""Where resources come from, rank liveness, restart, and bad configuration, on real instances."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from broker.testing import TestInstance
from flux.resource import ResourceSet


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def config_dir(tmp_path, text, name="conf"):
    conf = tmp_path / name
    conf.mkdir()
    (conf / "resource.toml").write_text(text)
    os.chmod(tmp_path, 0o755)
    conf.chmod(0o755)
    return str(conf)


def status_lines(inst, *args):
    r = inst.flux("resource", "status", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_discovery_on_three_ranks_and_a_lost_rank_goes_offline():
    inst = TestInstance(size=3).start()
    try:
        h = inst.handle()
        host = socket.gethostname()
        ncpu = len(os.sched_getaffinity(0))
        wait_for(lambda: h.rpc("resource.status", {}).get()["online"] == "0-2")
        st = h.rpc("resource.status", {}).get()
        assert st["method"] == "dynamic-discovery"
        rset = ResourceSet(st["R"])
        assert rset.nnodes == 3 and rset.ncores == 3 * ncpu
        assert list(rset.nodelist) == [host] * 3
        assert status_lines(inst, "-no", "{state} {up} {nnodes} {ranks}") == ["avail \u2714 3 0-2"]
        r = inst.flux("resource", "list", "-no", "{state} {nnodes} {ncores} {nodelist}")
        assert r.stdout.splitlines()[0] == f"free 3 {3 * ncpu} {host},{host},{host}"
        os.kill(inst.broker_pids[2], signal.SIGKILL)
        wait_for(lambda: h.rpc("resource.status", {}).get()["offline"] == "2")
        assert status_lines(inst, "-no", "{state} {up} {ranks}") == ["avail \u2714 0-1",
                                                                     "avail* \u2717 2"]
        wait_for(lambda: "down 1" in inst.flux("resource", "list", "-no",
                                               "{state} {nnodes}").stdout)
        h.close()
    finally:
        inst.kill()


def test_R_file_resources(tmp_path):
    R = {"version": 1, "execution": {
        "R_lite": [{"rank": "0", "children": {"core": "0-7", "gpu": "0-1"}},
                   {"rank": "1", "children": {"core": "0-3"}}],
        "nodelist": ["big,small"], "properties": {"gpu": "0"}, "starttime": 0,
        "expiration": 0}}
    path = tmp_path / "R.json"
    path.write_text(json.dumps(R))
    path.chmod(0o644)
    conf = config_dir(tmp_path, f'[resource]\npath = "{path}"\nmonitor-force-up = true\n')
    inst = TestInstance(config_path=conf).start()
    try:
        r = inst.flux("resource", "list")
        assert r.stdout.splitlines() == [
            "     STATE PROPERTIES NNODES   NCORES    NGPUS NODELIST",
            "      free                 1        4        0 small",
            "      free gpu             1        8        2 big",
            " allocated                 0        0        0",
            "      down                 0        0        0"]
        assert inst.handle().rpc("resource.status", {}).get()["method"] == "config"
    finally:
        assert inst.stop() == 0


@pytest.mark.parametrize("text,message", [
    ('[resource]\nbogus = 1\n', "resource.bogus: unknown key"),
    ('[resource]\npath = "/nonexistent/R.json"\n',
     "resource.path: /nonexistent/R.json: No such file or directory"),
    ('[[resource.config]]\nhosts = "n[0-1]"\ncores = "zero"\n',
     "resource.config[0].cores"),
    ('[[resource.config]]\nhosts = "n0"\n[resource]\nexclude = "n7"\n',
     "resource.exclude: unknown host n7"),
    ('[queues.debug]\nrequires = "debug"\n', "queues.debug.requires: "),
    ('[sched]\nbackfill = -2\n', "sched.backfill: expected an integer >= 0"),
])
def test_bad_configuration_stops_the_instance_naming_the_key(tmp_path, text, message):
    conf = config_dir(tmp_path, text)
    with pytest.raises(RuntimeError) as info:
        TestInstance(config_path=conf).start()
    assert message in str(info.value)


def test_bad_R_file_names_the_problem(tmp_path):
    path = tmp_path / "R.json"
    path.write_text('{"version": 1, "execution": {"R_lite": [{"rank": "0"}]}}')
    conf = config_dir(tmp_path, f'[resource]\npath = "{path}"\n')
    with pytest.raises(RuntimeError) as info:
        TestInstance(config_path=conf).start()
    assert f"resource.path: {path}: invalid R: R.execution.R_lite[0]" in str(info.value)


def test_drained_nodes_stay_drained_across_a_restart(tmp_path):
    statedir = tmp_path / "state"
    conf = config_dir(tmp_path, '[resource]\nmonitor-force-up = true\n'
                                '[[resource.config]]\nhosts = "n[0-3]"\ncores = "0-1"\n')
    inst = TestInstance(config_path=conf, setattrs=[f"statedir={statedir}"]).start()
    try:
        assert inst.flux("resource", "drain", "n[1-2]", "bad", "fan").returncode == 0
        before = inst.flux("resource", "drain").stdout
    finally:
        assert inst.stop() == 0
    inst = TestInstance(config_path=conf, setattrs=[f"statedir={statedir}"]).start()
    try:
        assert inst.flux("resource", "drain").stdout == before
        assert "bad fan" in before and "n[1-2]" in before
        assert status_lines(inst, "-s", "drained", "-no", "{ranks}") == ["1-2"]
        # the scheduler does not use them: a 3-node job cannot run now
        free = inst.flux("resource", "list", "-s", "free", "-no", "{nodelist}").stdout
        assert free.split() == ["n[0,3]"]
        r = inst.flux("kvs", "eventlog", "get", "resource.eventlog")
        names = [line.split()[1] for line in r.stdout.splitlines()]
        assert names.count("restart") == 2 and names.count("drain") == 1
        assert inst.flux("kvs", "get", "checkpoint.resource").returncode == 0
    finally:
        assert inst.stop() == 0


GUEST = """
import os, sys
import flux, flux.core.handle, flux.rpc, flux.resource, flux.idset, flux.hostlist
import flux.util.outputformat, jobmgr.resource.state
import locale, gettext, contextlib, io, difflib
import cli.cmd_resource as cmd
with contextlib.redirect_stdout(io.StringIO()):  # load what click loads lazily
    cmd.command.main(["status", "--help"], prog_name="flux resource", standalone_mode=False)
os.setgid(65534); os.setuid(65534)
os.environ["FLUX_URI"] = sys.argv[1]
cmd.command.main(sys.argv[2:], prog_name="flux resource")
"""


def as_guest(inst, *args):
    if os.getuid() != 0:
        pytest.skip("needs root to run commands as user nobody")
    return subprocess.run([sys.executable, "-c", GUEST, inst.uri, *args], capture_output=True,
                          text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__)))))


def test_guests_may_look_but_not_drain(tmp_path):
    conf = config_dir(tmp_path, "[access]\nallow-guest-user = true\n")
    inst = TestInstance(config_path=conf).start()
    try:
        r = as_guest(inst, "drain", "0", "mine")
        assert r.returncode == 1
        assert r.stderr.strip() == "flux-resource: Request requires owner credentials"
        r = as_guest(inst, "undrain", "0")
        assert r.returncode == 1 and "owner credentials" in r.stderr
        r = as_guest(inst, "status", "-no", "{state}")
        assert (r.returncode, r.stdout) == (0, "avail\n"), r.stderr
        r = as_guest(inst, "list", "-s", "free", "-no", "{state}")
        assert (r.returncode, r.stdout) == (0, "free\n"), r.stderr
        assert inst.flux("resource", "drain").stdout.count("\n") == 1   # header only
    finally:
        assert inst.stop() == 0
