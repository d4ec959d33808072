"""flux start: exit codes, initial program, options, rundir/statedir, config errors, shutdown."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from broker.testing import flux_command

FLUX = flux_command()


def env(**extra):
    e = dict(os.environ)
    e.pop("FLUX_URI", None)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e.update(extra)
    return e


def start(*args, input=None, timeout=60, **kw):
    return subprocess.run([*FLUX, "start", *args], capture_output=True, text=True,
                          input=input, timeout=timeout, env=env(**kw))


@pytest.mark.parametrize("prog,code", [
    (["true"], 0),
    (["false"], 1),
    (["sh", "-c", "exit 5"], 5),
    (["sh", "-c", "kill -9 $$"], 128 + 9),
])
def test_exit_code_is_initial_programs(prog, code):
    assert start(*prog).returncode == code


def test_missing_initial_program():
    r = start("/no/such/program")
    assert r.returncode == 127 and "/no/such/program" in r.stderr


def test_initial_program_environment_and_attrs():
    r = start("sh", "-c", 'echo "$FLUX_URI"; flux getattr local-uri; flux getattr size')
    uri, local_uri, size = r.stdout.split()
    assert uri == local_uri and uri.startswith("local://") and size == "1"


def test_default_initial_program_is_a_shell():
    r = start(input="echo from-shell $(flux getattr rank)\nexit 3\n", SHELL="/bin/sh")
    assert r.returncode == 3 and r.stdout == "from-shell 0\n"


def test_size3_and_setattr_forms():
    r = start("-s3", "-o,-Stbon.fanout=1", "-S", "my.attr=v", "sh", "-c",
              "flux getattr size; flux getattr tbon.fanout; flux getattr my.attr;"
              "flux overlay status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["3", "1", "v"]
    host = lines[3].split()[1].rstrip(":")
    # fanout 1 makes a chain 0 - 1 - 2
    assert lines[3:] == [f"0 {host}: full", f"└─ 1 {host}: full", f"   └─ 2 {host}: full"]


def test_tcp_overlay():
    r = start("-s2", "-Stbon.prefertcp=1", "sh", "-c",
              "flux getattr tbon.endpoint; flux ping -c1 1")
    assert r.returncode == 0, r.stderr
    endpoint, ping = r.stdout.splitlines()
    assert endpoint.startswith("tcp://127.0.0.1:") and ping.startswith("1!broker.ping")


def test_lifecycle_is_logged_with_durations():
    r = start("-o,-Slog-stderr-level=6", "true")
    events = re.findall(r"broker\.info\[0\]: ([a-z0-9-]+): (\w+)->(\w+) [0-9.e-]+s", r.stderr)
    assert [(a, b) for _e, a, b in events] == [
        ("none", "join"), ("join", "init"), ("init", "quorum"), ("quorum", "run"),
        ("run", "cleanup"), ("cleanup", "shutdown"), ("shutdown", "finalize"),
        ("finalize", "goodbye"), ("goodbye", "exit")]


def test_shutdown_hangs_up_initial_program():
    t0 = time.monotonic()
    r = start("sh", "-c", "flux shutdown --quiet; sleep 30")
    assert r.returncode == 129
    assert time.monotonic() - t0 < 20


def test_shutdown_from_outside_shows_logs(tmp_path):
    rundir = tmp_path / "rd"
    # the initial program announces itself, so the shutdown lands in the run
    # state (rc1 loads every module first) and ends the program with SIGHUP
    marker = tmp_path / "running"
    proc = subprocess.Popen([*FLUX, "start", "-s1", f"--rundir={rundir}", "sh", "-c",
                             f"touch {marker}; exec sleep 60"],
                            env=env(), stderr=subprocess.PIPE, text=True)
    try:
        sock = rundir / "local"
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        r = subprocess.run([*FLUX, "shutdown", f"local://{sock}"], capture_output=True,
                           text=True, timeout=30, env=env())
        assert r.returncode == 0
        assert f"rc2.0: sh -c touch {marker}; exec sleep 60 Exited (rc=129)" in r.stderr
        assert re.search(r"broker\.info\[0\]: rc3-success: finalize->goodbye", r.stderr)
        assert proc.wait(20) == 129
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not rundir.exists()


def test_shutdown_gc_option_reaches_modules(tmp_path):
    from broker.testing import TestInstance

    inst = TestInstance().start()
    try:
        assert inst.flux("module", "load", "testmod").returncode == 0
        r = inst.flux("shutdown", "--gc")
        assert r.returncode == 0, r.stderr
        assert "testmod.info[0]: testmod stopping shutdown_options={'gc': True}" in r.stderr
        assert inst.wait() == 0
    finally:
        inst.stop()
    r = start("sh", "-c", f"flux shutdown --quiet --dump={tmp_path}/x.tgz; sleep 30")
    assert r.returncode == 129


def test_shutdown_background():
    t0 = time.monotonic()
    r = start("sh", "-c", "flux shutdown --background; sleep 30")
    assert r.returncode == 129 and r.stderr == ""
    assert time.monotonic() - t0 < 20


def test_noexec_verbose_prints_commands():
    r = start("-X", "-v", "-s2", "-Sfoo=bar", "true")
    assert r.returncode == 0 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("flux-start: ") and "-m broker" in lines[0]
    assert "--rank=1" in lines[1] and "--setattr=foo=bar" in lines[1]


@pytest.mark.parametrize("args", [
    ["--test-size=0", "true"],
    ["--test-exit-mode=bogus", "true"],
    ["--test-start-mode=bogus", "true"],
    ["--test-exit-timeout=soon", "true"],
    ["-o,--bogus-option", "true"],
    ["--rundir=/tmp/a", "--test-rundir=/tmp/b", "true"],
    ["--no-such-option"],
])
def test_bad_usage_exits_2(args):
    assert start(*args).returncode == 2


def test_bad_attribute_values_fail_start():
    r = start("-Stbon.fanout=zero", "true")
    assert r.returncode == 1 and "tbon.fanout: bad value 'zero'" in r.stderr
    r = start("-Sbroker.quorum=9", "true")
    assert r.returncode == 1 and "broker.quorum: bad value '9'" in r.stderr


def test_config_error_names_file_line_and_key(tmp_path):
    (tmp_path / "good.toml").write_text("[site]\nx = 1\n")
    (tmp_path / "bad.toml").write_text("[access]\nallow-root-owner = maybe\n")
    r = start(f"--config-path={tmp_path}", "true")
    assert r.returncode == 1
    assert f"flux-start: {tmp_path / 'bad.toml'}:2: allow-root-owner:" in r.stderr
    r = start("true", FLUX_CONF_DIR=str(tmp_path))
    assert r.returncode == 1 and "bad.toml:2" in r.stderr
    os.remove(tmp_path / "bad.toml")
    r = start(f"--config-path={tmp_path}", "flux", "config", "get", "site.x")
    assert (r.returncode, r.stdout) == (0, "1\n")


def test_setattr_rundir_with_test_size_is_the_shared_directory(tmp_path):
    # flux-broker-attributes(7): a rundir set on the command line is shared by the
    # brokers of the node; each test broker gets DIR/RANK in it (it was ignored)
    shared = tmp_path / "shared"
    shared.mkdir()
    r = start("-s2", f"-Srundir={shared}", "flux", "exec", "-r", "all", "flux", "getattr",
              "rundir")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == [str(shared / "0"), str(shared / "1")]
    assert shared.is_dir()          # it existed: kept


def test_rundir_created_and_removed_or_kept(tmp_path):
    new = tmp_path / "new"
    r = start("-s1", f"--rundir={new}", "sh", "-c",
              "flux getattr rundir; test -S $(flux getattr rundir)/local")
    assert r.returncode == 0 and r.stdout.strip() == str(new)
    assert not new.exists()
    old = tmp_path / "old"
    old.mkdir()
    assert start("-s1", f"--rundir={old}", "true").returncode == 0
    assert old.exists() and not (old / "local").exists()
    r = start("sh", "-c", "flux getattr rundir")
    assert not os.path.exists(r.stdout.strip())
    kept = tmp_path / "kept"
    kept.mkdir()
    assert start(f"--test-rundir={kept}", "-s2", "true").returncode == 0
    assert kept.exists()
    assert start(f"--test-rundir={kept}", "--test-rundir-cleanup", "true").returncode == 0
    assert not kept.exists()


def test_statedir_survives(tmp_path):
    state = tmp_path / "state"
    r = start(f"-Sstatedir={state}", "flux", "getattr", "statedir")
    assert r.returncode == 0 and r.stdout.strip() == str(state)
    assert state.is_dir()
    r = start("flux", "getattr", "statedir")
    assert r.returncode == 1 and "unknown attribute 'statedir'" in r.stderr


def test_leader_start_mode_leaves_others_offline():
    r = start("-s2", "--test-start-mode=leader", "-Sbroker.quorum=1", "sh", "-c",
              "flux overlay status; flux uptime")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].endswith(": partial") and lines[1].endswith(": offline")
    assert lines[2].endswith("size 2,  1 offline")


def test_quorum_timeout_fails_start():
    r = start("-s2", "--test-start-mode=leader", "-Sbroker.quorum-timeout=0.2s", "true")
    assert r.returncode == 1 and "quorum not reached" in r.stderr


def test_exit_mode_leader_uses_leader_code():
    r = start("-s2", "--test-exit-mode=leader", "sh", "-c", "exit 4")
    assert r.returncode == 4


def test_sigterm_shuts_instance_down(tmp_path):
    # Wait until the initial program runs (rc1 loads every module first), so
    # the SIGTERM ends the run state and the program gets SIGHUP.
    marker = tmp_path / "running"
    proc = subprocess.Popen([*FLUX, "start", "-s1", f"--rundir={tmp_path}/r", "sh", "-c",
                             f"touch {marker}; exec sleep 60"], env=env(),
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 129


def test_flux_start_true_waits_for_no_timeout():
    # how fast is bench_broker's flux_start_true_s; here only that nothing on the
    # way in or out waits for a timeout (the shortest is 5 s), even on a busy machine
    t0 = time.monotonic()
    assert start("true").returncode == 0
    assert time.monotonic() - t0 < 5.0
