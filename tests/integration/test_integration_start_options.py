"""flux start's remaining options (flux-start(1)): --test-hosts (with and without a
configured [bootstrap]), --wrap, -v/--verbose[=LEVEL], --test-pmi-clique and
--caliper-profile, each run for real."""
from __future__ import annotations

import os
import subprocess

import pytest

from broker.cert import write_cert
from broker.testing import flux_command, free_port

pytestmark = pytest.mark.slow
FLUX = flux_command()


def start(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    return subprocess.run(FLUX + ["start", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_test_hosts_names_each_broker():
    r = start("-s2", "--test-hosts=fake[0-1]", "sh", "-c",
              "flux overlay status; flux resource list -n -o '{nodelist}'; "
              "echo prog $FLUX_FAKE_HOSTNAME")
    assert r.returncode == 0, r.stderr
    # (resource list prints a line per state: allocated and down are empty here)
    assert [line for line in r.stdout.splitlines() if line] == [
        "0 fake0: full", "└─ 1 fake1: full", "fake[0-1]", "prog fake0"]


def test_test_hosts_with_a_configured_bootstrap(tmp_path):
    cert = tmp_path / "curve.cert"
    write_cert(str(cert))
    addrs = ["127.0.0.2", "127.0.0.3"]
    port = free_port(addrs)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "boot.toml").write_text(
        f'[bootstrap]\ncurve_cert = "{cert}"\nhosts = [\n'
        f'  {{ host = "fake0", bind = "tcp://{addrs[0]}:{port}", '
        f'connect = "tcp://{addrs[0]}:{port}" }},\n'
        f'  {{ host = "fake1", bind = "tcp://{addrs[1]}:{port}", '
        f'connect = "tcp://{addrs[1]}:{port}" }},\n]\n')
    # hosts named in another order than the configuration's: broker 0 here is fake1, which
    # the configuration makes rank 1; the initial program runs on rank 0 (fake0)
    r = start("-s2", "--test-hosts=fake1,fake0", f"--config-path={conf}", "sh", "-c",
              "flux getattr rank; flux overlay status", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["0", "0 fake0: full", "└─ 1 fake1: full"]
    shown = start("-s2", "--test-hosts=fake1,fake0", f"--config-path={conf}", "-v", "-X",
                  "true")
    lines = shown.stderr.splitlines()
    assert shown.returncode == 0 and len(lines) == 2
    assert lines[0].startswith("flux-start: FLUX_FAKE_HOSTNAME=fake1 ")
    assert "--config-path=" in lines[0] and not lines[0].endswith(" true")
    assert lines[1].startswith("flux-start: FLUX_FAKE_HOSTNAME=fake0 ")
    assert lines[1].endswith(" true")          # the configuration's rank 0 runs it


def test_wrap_runs_each_broker_under_the_given_words():
    for size in ("1", "2"):
        r = start("-s", size, "--wrap=env,WRAPPED=yes", "sh", "-c",
                  "tr '\\0' '\\n' < /proc/$(flux getattr broker.pid)/environ | grep WRAPPED; "
                  "flux getattr size")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["WRAPPED=yes", size]
    # the initial program's exit code is still flux start's
    assert start("--wrap=env", "sh", "-c", "exit 3").returncode == 3


@pytest.mark.parametrize("flag", ["-v", "--verbose", "--verbose=1", "-v1"])
def test_verbose_level_one_shows_the_commands(flag):
    r = start("-s2", flag, "-X", "true")
    assert r.returncode == 0
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("flux-start: ") for line in lines)


def test_verbose_levels_and_bad_values():
    for args in (["-vv"], ["--verbose=2"], ["-v2"], ["-v", "-v"]):
        r = start(*args, "-X", "true")
        assert r.returncode == 0 and r.stderr.startswith("flux-start: "), args
    # an option-like word of the initial program is left alone
    r = start("-X", "-v", "echo", "--verbose=3")
    assert r.returncode == 0 and r.stderr.rstrip().endswith("echo --verbose=3")
    r = start("--verbose=lots", "-X", "true")
    assert r.returncode == 2 and "verbosity level" in r.stderr


def test_usage_errors_and_unsupported_profiling():
    r = start("-s3", "--test-hosts=a,b", "true")
    assert r.returncode == 2 and "names 2 host(s) for 3 broker(s)" in r.stderr
    r = start("--test-hosts=a", "true")
    assert r.returncode == 2 and "--test-hosts needs --test-size" in r.stderr
    r = start("--test-pmi-clique=many", "true")
    assert r.returncode == 2 and "--test-pmi-clique" in r.stderr
    assert start("--test-pmi-clique=none", "true").returncode == 0
    r = start("--caliper-profile=thread-trace", "true")
    assert r.returncode == 1 and "without Caliper" in r.stderr


def test_a_module_in_the_start_directory_does_not_shadow_the_brokers_own(tmp_path):
    # `token` is a standard module the broker and the shell server import; with the
    # current directory first on their path, this file would be imported instead
    (tmp_path / "token.py").write_text("raise SystemExit('shadowed')\n")
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    r = subprocess.run(flux_command() + ["start", "flux", "run", "echo", "ok"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_a_lone_command_line_runs_through_the_shell():
    # flux-broker runs a single-argument initial program with sh -c
    r = start("echo a; echo b; exit 3")
    assert (r.returncode, r.stdout) == (3, "a\nb\n"), r.stderr
    # the same for an instance a job starts (flux alloc COMMAND)
    r = start("flux", "alloc", "-n1", "echo c && echo d")
    assert (r.returncode, r.stdout) == (0, "c\nd\n"), r.stderr
    # a plain word is still run as it is, with our own error if it is missing
    r = start("no-such-command-here")
    assert r.returncode == 127 and "rc2: no-such-command-here: No such file" in r.stderr


def test_tbon_topo_attribute_shapes_a_test_instance():
    # -Stbon.topo=kary:N as flux-broker-attributes(7) has it (it was ignored: fanout 2)
    for topo, maxlevel in (("kary:1", "3"), ("kary:0", "1"), ("kary:3", "1")):
        r = start("-s", "4", f"-o,-Stbon.topo={topo}", "flux", "getattr", "tbon.maxlevel")
        assert (r.returncode, r.stdout.strip()) == (0, maxlevel), (topo, r.stderr)
    r = start("-s", "2", "-o,-Stbon.topo=binomial", "true")
    assert r.returncode != 0 and "tbon.topo: unknown topology 'binomial'" in r.stderr


def test_overlay_status_blames_the_hung_broker_not_its_parent():
    # rank 3 stopped: its parent (rank 1) still answers, so rank 1 is degraded and
    # rank 3 lost, named by its own host (rank 1 and its subtree were shown lost)
    script = ("p=$(flux exec -r 3 flux getattr broker.pid); kill -STOP $p; sleep 1.5; "
              "flux overlay status; kill -CONT $p")
    r = start("--test-hosts=node[0-3]", "-s", "4", "sh", "-c", script, timeout=90)
    assert r.returncode == 0, r.stderr
    for want in ("1 node1: degraded", "3 node3: lost", "2 node2: full"):
        assert any(line.endswith(want) for line in r.stdout.splitlines()), r.stdout
