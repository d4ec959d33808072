"""Broker-level flux commands against a live instance: output and exit codes."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
from click.testing import CliRunner

from broker.testing import TestInstance, flux_command, stray_brokers
from cli.main import main

FLUX = flux_command()


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    """After this module, no broker it started may still run."""
    yield
    assert stray_brokers() == []


@pytest.fixture(scope="module")
def inst():
    instance = TestInstance().start()
    yield instance
    assert instance.stop() == 0
    assert instance.live_pids() == []


@pytest.fixture(scope="module")
def inst3():
    instance = TestInstance(size=3).start()
    yield instance
    assert instance.stop() == 0
    assert instance.live_pids() == []


def flux(inst, *args, input=None):
    """Run a flux subcommand in-process (click runner) against INST."""
    result = CliRunner().invoke(main, list(args), env={"FLUX_URI": inst.uri}, input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_getattr_setattr_lsattr(inst):
    r = flux(inst, "getattr", "size")
    assert (r.exit_code, r.stdout) == (0, "1\n")
    r = flux(inst, "getattr", "nope")
    assert r.exit_code == 1 and r.stderr == "flux-getattr: unknown attribute 'nope'\n"
    assert flux(inst, "getattr").exit_code == 2
    r = flux(inst, "setattr", "rank", "4")
    assert r.exit_code == 1 and r.stderr == "flux-setattr: attribute 'rank' is immutable\n"
    assert flux(inst, "setattr", "my.attr", "v1").exit_code == 0
    assert flux(inst, "getattr", "my.attr").stdout == "v1\n"
    assert flux(inst, "setattr", "--expunge", "my.attr").exit_code == 0
    assert flux(inst, "getattr", "my.attr").exit_code == 1
    assert flux(inst, "setattr", "--expunge", "x", "y").exit_code == 2
    names = flux(inst, "lsattr").stdout.split()
    for expected in ("rank", "size", "rundir", "local-uri", "version", "broker.pid",
                     "instance-level", "content.hash", "log-level", "log-stderr-level",
                     "log-ring-size", "log-ring-used", "log-count", "broker.quorum",
                     "tbon.fanout", "tbon.level", "tbon.maxlevel", "tbon.descendants",
                     "broker.starttime"):
        assert expected in names
    assert names == sorted(names)
    lines = flux(inst, "lsattr", "-v").stdout.splitlines()
    size_line = [line for line in lines if line.startswith("size ")][0]
    assert re.fullmatch(r"size +1", size_line)


def test_logger_and_dmesg(inst):
    assert flux(inst, "logger", "-s", "err", "-n", "myapp", "hello", "world").exit_code == 0
    assert flux(inst, "logger", "plain").exit_code == 0
    out = flux(inst, "dmesg").stdout.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z myapp\.err\[0\]: hello world",
                        out[-2])
    assert out[-1].endswith(" logger.info[0]: plain")
    assert any(re.search(r"broker\.info\[0\]: rc1-success: init->quorum [0-9.e-]+s", line)
               for line in out)
    human = flux(inst, "dmesg", "-H").stdout.splitlines()
    assert re.fullmatch(r"\[[A-Z][a-z]{2}\d\d \d\d:\d\d\] .*", human[0])
    assert re.fullmatch(r"\[(?: +\+\d+\.\d{6}|[A-Z][a-z]{2}\d\d \d\d:\d\d)\] logger\.info\[0\]: plain",
                        human[-1])
    r = flux(inst, "logger", "-s", "loud", "x")
    assert r.exit_code == 2 and "unknown log severity 'loud'" in r.stderr
    assert flux(inst, "logger").exit_code == 2
    assert flux(inst, "dmesg", "-c").exit_code == 0
    assert flux(inst, "dmesg").stdout == ""
    flux(inst, "logger", "again")
    assert flux(inst, "dmesg", "-C").stdout == ""
    assert flux(inst, "dmesg").stdout == ""


def test_dmesg_follow(inst):
    flux(inst, "logger", "backlog entry")
    proc = subprocess.Popen([*FLUX, "dmesg", "-f"], env=inst.env, stdout=subprocess.PIPE,
                            text=True)
    try:
        first = proc.stdout.readline()      # the backlog arrives: the stream is open
        assert first.strip()
        flux(inst, "logger", "followed entry")
        for _ in range(1000):
            line = proc.stdout.readline()
            if "followed entry" in line:
                break
        assert line.rstrip().endswith("logger.info[0]: followed entry")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_ping(inst):
    r = flux(inst, "ping", "-c", "2", "-i", "0", "broker")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"broker\.ping pad=0 seq=0 time=\d+\.\d{3} ms \([0-9A-F]{5}!0\)",
                        lines[0])
    assert lines[1].startswith("broker.ping pad=0 seq=1 ")
    r = flux(inst, "ping", "-c", "1", "-p", "10", "-u", "0")
    assert re.fullmatch(r"0!broker\.ping pad=10 userid=\d+ rolemask=0x5 seq=0 time=[0-9.]+ ms "
                        r"\([0-9A-F]{5}!0\)\n", r.stdout)
    r = flux(inst, "ping", "-c", "1", "0!attr")
    assert r.stdout.startswith("0!attr.ping pad=0 seq=0")
    r = flux(inst, "ping", "-c", "1", "-r", "0", "log")
    assert r.stdout.startswith("0!log.ping ")
    r = flux(inst, "ping", "-c", "3", "-i", "0", "-b", "broker")
    assert [line.split()[2] for line in r.stdout.splitlines()] == ["seq=0", "seq=1", "seq=2"]
    r = flux(inst, "ping", "-c", "1", "nosuch")
    assert r.exit_code == 1
    assert r.stderr == "flux-ping: any!nosuch.ping: Service is not available: nosuch.ping\n"
    assert flux(inst, "ping", "-b", "broker").exit_code == 2
    assert flux(inst, "ping", "-c", "1", "-r", "bogus", "kvs").exit_code == 2
    assert flux(inst, "ping").exit_code == 2


def test_ping_remote_rank(inst3):
    r = flux(inst3, "ping", "-c", "1", "2")
    assert re.fullmatch(r"2!broker\.ping pad=0 seq=0 time=[0-9.]+ ms \([0-9A-F]{5}!0!2\)\n",
                        r.stdout)
    r = flux(inst3, "ping", "-c", "1", "-r", "upstream", "broker")
    assert r.exit_code == 1 and "upstream!broker.ping" in r.stderr


class Publisher:
    """Publish TOPIC every 20 ms in a thread until stopped (to meet a subscriber)."""

    def __init__(self, inst, topic):
        import threading

        self.h = inst.handle()
        self.topic = topic
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag.is_set():
            self.h.event_publish(self.topic).get()
            time.sleep(0.02)

    def stop(self):
        self.stop_flag.set()
        self.thread.join()
        self.h.close()


def test_event_pub_sub(inst):
    sub = subprocess.Popen([*FLUX, "event", "sub", "cli."], env=inst.env,
                           stdout=subprocess.PIPE, text=True)
    pub = Publisher(inst, "cli.ready")
    try:
        assert sub.stdout.readline() == "cli.ready\n"
        pub.stop()
        assert flux(inst, "event", "pub", "cli.json", '{"a":', "1}").exit_code == 0
        assert flux(inst, "event", "pub", "-r", "cli.raw", "some", "text").exit_code == 0
        lines = []
        while not lines or not lines[-1].startswith("cli.raw"):
            lines.append(sub.stdout.readline().rstrip("\n"))
        assert lines[-2:] == ['cli.json\t{"a":1}', "cli.raw\tsome text"]
    finally:
        pub.stop()
        sub.send_signal(signal.SIGINT)
        sub.wait(10)
    assert sub.returncode == -signal.SIGINT  # ended by the signal, as flux-core's command
    counted = subprocess.Popen([*FLUX, "event", "sub", "-c", "2", "cli2"], env=inst.env,
                               stdout=subprocess.PIPE, text=True)
    pub = Publisher(inst, "cli2.tick")
    try:
        out, _ = counted.communicate(timeout=20)
    finally:
        pub.stop()
    assert counted.returncode == 0 and out == "cli2.tick\ncli2.tick\n"
    r = flux(inst, "event", "pub", "cli.bad", "{nope")
    assert r.exit_code == 1 and "payload is not valid JSON" in r.stderr
    assert flux(inst, "event", "pub", "-s", "-l", "-p", "cli.loop", "{}").exit_code == 0
    assert flux(inst, "event", "pub").exit_code == 2
    assert flux(inst, "event", "bogus").exit_code == 2


def test_an_unloaded_module_is_disconnected_from_the_services_it_used(inst):
    # as a client's going away is: a reloaded scheduler is not taken for a second one
    h = inst.handle()
    assert flux(inst, "module", "load", "testmod-b").exit_code == 0
    assert flux(inst, "module", "load", "testmod").exit_code == 0
    try:
        relayed = h.rpc("testmod.relay", {"topic": "testmod-b.hello"}).get()
        assert relayed == {"result": {"from": "testmod-b"}}
        assert h.rpc("testmod-b.disconnects").get() == {"senders": []}
        assert flux(inst, "module", "remove", "testmod").exit_code == 0
        deadline = time.monotonic() + 10
        while not (seen := h.rpc("testmod-b.disconnects").get()["senders"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert len(seen) == 1
    finally:
        flux(inst, "module", "remove", "-f", "testmod")
        flux(inst, "module", "remove", "-f", "testmod-b")


def test_module_commands(inst):
    r = flux(inst, "module", "list")
    assert r.stdout.splitlines()[0].split() == ["Module", "Size", "Digest", "Idle", "Service"]
    assert "testmod" not in r.stdout
    # flux-module(1) list [service]: "broker" (the modules' loader) lists them all
    assert flux(inst, "module", "list", "broker").stdout == r.stdout
    assert flux(inst, "module", "list", "kvs").stdout.splitlines()[1].startswith("kvs ")
    assert flux(inst, "module", "load", "testmod", "a1").exit_code == 0
    r = flux(inst, "module", "list")
    row = [line for line in r.stdout.splitlines() if line.startswith("testmod ")][0]
    assert re.fullmatch(r"testmod +\d+ [0-9a-f]{7} +\d+ testmod", row)
    r = flux(inst, "module", "load", "testmod")
    assert r.exit_code == 1 and "module 'testmod' is already loaded" in r.stderr
    assert flux(inst, "module", "reload", "testmod").exit_code == 0
    assert flux(inst, "module", "remove", "testmod").exit_code == 0
    r = flux(inst, "module", "remove", "testmod")
    assert r.exit_code == 1 and r.stderr == "flux-module: module 'testmod' is not loaded\n"
    assert flux(inst, "module", "remove", "-f", "testmod").exit_code == 0
    assert flux(inst, "module", "reload", "testmod").exit_code == 1
    assert flux(inst, "module", "reload", "-f", "testmod").exit_code == 0
    assert flux(inst, "module", "remove", "testmod").exit_code == 0
    r = flux(inst, "module", "load", "nosuchmod")
    assert r.exit_code == 1 and "module 'nosuchmod' not found" in r.stderr
    r = flux(inst, "module", "load", "json:JSONDecoder")
    assert r.exit_code == 1 and "is not a broker Module class" in r.stderr
    r = flux(inst, "module", "remove", "attr")
    assert r.exit_code == 1 and "built into the broker" in r.stderr


def test_uptime(inst, inst3):
    r = flux(inst, "uptime")
    assert re.fullmatch(r" \d\d:\d\d:\d\d run [0-9.]+[smhd],  owner \S+,  depth 0,  size 1\n",
                        r.stdout)
    r = flux(inst3, "uptime")
    assert r.stdout.rstrip().endswith("size 3")


def test_version(inst):
    r = flux(inst, "version")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["commands:", "0.1.0"]
    assert lines[2].split() == ["broker:", "0.1.0"]
    assert lines[3].split() == ["FLUX_URI:", inst.uri]


def test_env(inst):
    out = subprocess.run([*FLUX, "env"], env=inst.env, capture_output=True, text=True).stdout
    assert f"export FLUX_URI={inst.uri}" in out.splitlines()
    out = subprocess.run([*FLUX, "env", "sh", "-c", "echo $FLUX_URI"], env=inst.env,
                         capture_output=True, text=True)
    assert out.stdout.strip() == inst.uri
    r = subprocess.run([*FLUX, "env", "/no/such/cmd"], env=inst.env, capture_output=True,
                       text=True)
    assert r.returncode == 127 and "flux-env: /no/such/cmd" in r.stderr


def test_overlay_commands(inst3):
    r = flux(inst3, "overlay", "status")
    host = r.stdout.split()[1].rstrip(":")
    assert r.stdout.splitlines() == [f"0 {host}: full", f"├─ 1 {host}: full",
                                     f"└─ 2 {host}: full"]
    r = flux(inst3, "overlay", "status", "-v")
    assert re.fullmatch(rf"0 {host}: full for [0-9.]+[smhd]", r.stdout.splitlines()[0])
    assert flux(inst3, "overlay", "status", "--summary").stdout == "full\n"
    assert flux(inst3, "overlay", "status", "--down").stdout == ""
    assert flux(inst3, "overlay", "status", "-r", "2").stdout == f"2 {host}: full\n"
    assert flux(inst3, "overlay", "parentof", "2").stdout == "0\n"
    r = flux(inst3, "overlay", "parentof", "9")
    assert r.exit_code == 1 and "rank 9 is not in the instance" in r.stderr
    assert flux(inst3, "overlay", "status", "-t", "bogus").exit_code == 2


def test_config_get_and_reload(tmp_path):
    confdir = tmp_path / "conf"
    confdir.mkdir()
    (confdir / "a.toml").write_text('[testmod]\nlevel = 3\nname = "x"\ntimeout = "30s"\n')
    inst = TestInstance(config_path=str(confdir)).start()
    try:
        r = flux(inst, "config", "get")
        assert json.loads(r.stdout) == {"testmod": {"level": 3, "name": "x", "timeout": "30s"}}
        assert flux(inst, "config", "get", "testmod.level").stdout == "3\n"
        assert flux(inst, "config", "get", "testmod.name").stdout == "x\n"
        assert flux(inst, "config", "get", "-t", "fsd-integer", "testmod.timeout").stdout == "30\n"
        r = flux(inst, "config", "get", "-t", "string", "testmod.level")
        assert r.exit_code == 1 and "not of type string" in r.stderr
        r = flux(inst, "config", "get", "nope.key")
        assert r.exit_code == 1 and r.stderr == "flux-config: nope.key is not set\n"
        assert flux(inst, "config", "get", "-q", "nope.key").exit_code == 1
        assert flux(inst, "config", "get", "-d", "dflt", "nope.key").stdout == "dflt\n"
        r = flux(inst, "config", "get", "--config-path", str(confdir), "testmod.level")
        assert r.stdout == "3\n"
        # reload picks up changes
        assert flux(inst, "module", "load", "testmod").exit_code == 0
        (confdir / "b.toml").write_text("[site]\nx = 1\n")
        assert flux(inst, "config", "reload").exit_code == 0
        assert flux(inst, "config", "get", "site.x").stdout == "1\n"
        # a bad file is refused with the error; the old config stays
        (confdir / "c.toml").write_text("[access]\nallow-guest-user = 'no'\n")
        r = flux(inst, "config", "reload")
        assert r.exit_code == 1
        assert f"{confdir / 'c.toml'}:2: access.allow-guest-user: expected a boolean" in r.stderr
        assert flux(inst, "config", "get", "site.x").stdout == "1\n"
        # a module may refuse the new config too
        (confdir / "c.toml").write_text("[testmod]\n")
        (confdir / "d.toml").write_text("[testmod.more]\n")
        os.remove(confdir / "c.toml")
        (confdir / "a.toml").write_text("[testmod]\nrefuse = true\n")
        r = flux(inst, "config", "reload")
        assert r.exit_code == 1 and "module testmod refused the new config" in r.stderr
        assert flux(inst, "config", "get", "testmod.level").stdout == "3\n"
    finally:
        assert inst.stop() == 0


def test_proxy(inst):
    out = subprocess.run([*FLUX, "proxy", inst.uri, "sh", "-c",
                          'echo $FLUX_URI; flux getattr size'],
                         capture_output=True, text=True, timeout=30, env=inst.env)
    assert out.returncode == 0, out.stderr
    uri, size = out.stdout.splitlines()
    assert uri.startswith("local://") and uri != inst.uri and size == "1"
    out = subprocess.run([*FLUX, "proxy", inst.uri, "sh", "-c", "exit 7"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 7
    out = subprocess.run([*FLUX, "proxy", "local:///nonexistent/sock"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and "cannot connect" in out.stderr


def test_commands_without_instance(monkeypatch):
    monkeypatch.delenv("FLUX_URI", raising=False)
    r = CliRunner().invoke(main, ["getattr", "rank"], env={"FLUX_URI": None})
    assert r.exit_code == 1 and "FLUX_URI is not set" in r.stderr


@pytest.mark.parametrize("args", [
    ["getattr"], ["getattr", "a", "b"], ["setattr"], ["setattr", "-e"], ["lsattr", "x"],
    ["lsattr", "--bogus"], ["dmesg", "--bogus"], ["dmesg", "extra"], ["logger"],
    ["logger", "-s"], ["ping"], ["ping", "-c", "-1", "x"], ["ping", "-i", "-1", "x"],
    ["ping", "-p", "abc", "x"], ["event"], ["event", "pub"], ["event", "sub", "-c", "x"],
    ["module"], ["module", "load"], ["module", "remove"], ["module", "frob"], ["uptime", "x"],
    ["shutdown", "--bogus"], ["shutdown", "a", "b"], ["overlay"], ["overlay", "status", "-r", "x"],
    ["overlay", "parentof"], ["overlay", "disconnect"], ["proxy"], ["version", "x"],
    ["config"], ["config", "get", "a", "b"], ["config", "get", "-t", "bogus", "a"],
    ["config", "reload", "x"], ["start", "--test-size=x"],
])
def test_bad_usage_exits_2(args):
    r = CliRunner().invoke(main, args, env={"FLUX_URI": "local:///nonexistent"})
    assert r.exit_code == 2, (args, r.output)


def test_module_info(inst):
    r = flux(inst, "module", "info", "kvs")
    assert r.exit_code == 0, r.output
    rows = dict(line.split(":", 1) for line in r.output.splitlines())
    assert rows["Target"].strip() == "kvs.service:Kvs"
    assert rows["File"].strip().endswith("kvs/service.py")
    assert len(rows["Digest"].strip()) == 40 and rows["Services"].strip() == "kvs"
    r = flux(inst, "module", "info", "no-such-module")
    assert r.exit_code == 1 and "module 'no-such-module' not found" in r.stderr


def test_config_path_names_stand_for_the_system_directories(tmp_path, monkeypatch):
    from cli.cmd_config import named_config_path

    assert named_config_path("system") == "/etc/flux/system/conf.d"
    assert named_config_path("security") == "/etc/flux/security/conf.d"
    assert named_config_path("imp") == "/etc/flux/imp/conf.d"
    assert named_config_path(str(tmp_path)) == str(tmp_path)
    # the name wins over a directory of that name here (as in flux-core)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "system").mkdir()
    (tmp_path / "system" / "a.toml").write_text("x = 1\n")
    if os.path.isdir("/etc/flux/system/conf.d"):
        pytest.skip("this machine has a real /etc/flux/system/conf.d")
    r = CliRunner().invoke(__import__("cli.main", fromlist=["main"]).main,
                           ["config", "get", "--config-path=system", "x"])
    assert r.exit_code == 1 and "/etc/flux/system/conf.d" in (r.stderr or r.output)
