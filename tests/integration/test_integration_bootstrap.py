"""A system instance bootstrapped from one shared configuration ([bootstrap], [tbon]):
each broker its own process with its own fake hostname (FLUX_FAKE_HOSTNAME) on its own
loopback address, started in shuffled orders; bad configurations refused at start."""
from __future__ import annotations

import os
import random
import re
import subprocess
import time

import pytest

from broker.cert import write_cert
from broker.testing import SystemInstance, flux_command


GUIDE_TREE_HOSTS = [None, 0, 0, 1, 1, 1, 2, 2]   # the Administrator's Guide's 8 nodes


def guide_hosts(s: SystemInstance) -> str:
    lines = []
    for r, p in enumerate(GUIDE_TREE_HOSTS):
        parent = f', parent = "node{p}"' if p else ""
        lines.append(f'  {{ host = "node{r}", bind = "{s.endpoint(r)}", '
                     f'connect = "{s.endpoint(r)}"{parent} }},')
    return "\n".join(lines)


def test_brokers_start_in_any_order_and_join(systems):
    s = systems(7, topo="kary:2")
    order = list(range(7))
    random.Random(7).shuffle(order)
    if order[0] == 0:
        order.reverse()
    # the first brokers to start wait for parents that are not there yet
    s.start_all(order[:3])
    time.sleep(0.5)
    if 0 in order[:3]:
        up = s.online()
        assert 0 in up and len(up) < 7
    s.start_all(order[3:])
    s.wait_full()
    status = s.flux("overlay", "status")
    assert status.stdout.splitlines() == [
        "0 node0: full",
        "├─ 1 node1: full",
        "│  ├─ 3 node3: full",
        "│  └─ 4 node4: full",
        "└─ 2 node2: full",
        "   ├─ 5 node5: full",
        "   └─ 6 node6: full"], status.stderr
    # a follower knows its place
    r = s.flux("getattr", "rank", rank=5)
    assert r.stdout.strip() == "5"
    assert s.flux("getattr", "size", rank=5).stdout.strip() == "7"
    assert s.flux("getattr", "tbon.parent-endpoint", rank=5).stdout.strip() == s.endpoint(2)
    assert s.flux("getattr", "config.hostlist").stdout.strip() == "node[0-6]"
    assert s.flux("overlay", "parentof", "5").stdout.strip() == "2"
    assert s.flux("overlay", "parentof", "2").stdout.strip() == "0"
    # RPCs reach the deepest rank through the tree
    assert s.flux("exec", "-r", "6", "hostname").returncode == 0
    codes = s.shutdown()
    # the leader exits 0; the followers, told to stop by the instance, with exit-norestart
    assert codes[0] == 0 and all(codes[r] == 42 for r in range(1, 7)), codes
    assert not s.live_pids()


def test_uptime_overlay_and_resource_status_as_the_guide_prints_them(systems):
    s = systems(8, topo="custom", extra_toml='[[resource.config]]\nhosts = "node[0-7]"\n'
                                            'cores = "0-1"\n')
    s.write_config("custom", '[[resource.config]]\nhosts = "node[0-7]"\ncores = "0-1"\n',
                   hosts_toml=guide_hosts(s))
    s.start_all([1, 0])
    s.wait_for(lambda: s.online() == [0, 1], 30, "ranks 0-1 online")
    uptime = s.flux("uptime").stdout
    assert re.match(r"^ \d\d:\d\d:\d\d run [\d.]+[smhd],  owner \S+,  depth 0,  size 8,  "
                    r"6 offline$", uptime.rstrip("\n")), uptime
    assert s.flux("overlay", "status").stdout.splitlines() == [
        "0 node0: partial",
        "├─ 1 node1: partial",
        "│  ├─ 3 node3: offline",
        "│  ├─ 4 node4: offline",
        "│  └─ 5 node5: offline",
        "└─ 2 node2: offline",
        "   ├─ 6 node6: offline",
        "   └─ 7 node7: offline"]
    s.wait_for(lambda: "avail*" in s.flux("resource", "status").stdout, 20, "avail* row")
    assert s.flux("resource", "status").stdout.splitlines() == [
        "     STATE UP NNODES NODELIST",
        "     avail  ✔      2 node[0-1]",
        "    avail*  ✗      6 node[2-7]"]
    # offline nodes get no jobs: 2 nodes run at once, a 3-node job waits
    r = s.flux("run", "-N2", "flux", "getattr", "rank")
    assert r.returncode == 0 and sorted(r.stdout.split()) == ["0", "1"], r.stderr
    pending = s.flux("submit", "-N3", "hostname").stdout.strip()
    time.sleep(0.5)
    assert s.flux("jobs", "-no", "{state}", pending).stdout.strip() == "SCHED"
    s.start_all([7, 6, 5, 4, 3, 2])
    s.wait_full()
    assert s.flux("overlay", "status").stdout.splitlines() == [
        "0 node0: full",
        "├─ 1 node1: full",
        "│  ├─ 3 node3: full",
        "│  ├─ 4 node4: full",
        "│  └─ 5 node5: full",
        "└─ 2 node2: full",
        "   ├─ 6 node6: full",
        "   └─ 7 node7: full"]
    assert s.flux("overlay", "status", "-r", "1").stdout.splitlines()[0] == "1 node1: full"
    assert "offline" not in s.flux("uptime").stdout
    s.wait_for(lambda: s.flux("resource", "status").stdout.splitlines()[1:] ==
               ["     avail  ✔      8 node[0-7]"], 20, "all avail")
    # the waiting job now runs
    r = s.flux("job", "attach", pending, timeout=60)
    assert r.returncode == 0 and len(r.stdout.split()) == 3
    codes = s.shutdown()
    assert codes[0] == 0


def test_quorum_holds_rank0_until_enough_brokers_are_online(systems):
    s = systems(3, setattrs=["broker.quorum=3"])
    s.start(0)
    s.wait_for(lambda: s.state()["state"] == "quorum", 30, "quorum state")
    time.sleep(1.0)
    assert s.state()["state"] == "quorum"        # it stays there
    s.start(2)
    s.start(1)
    s.wait_for(lambda: s.state()["state"] == "run", 30, "run")
    assert s.shutdown()[0] == 0


def test_quorum_timeout_ends_the_start(systems):
    s = systems(3, setattrs=["broker.quorum=3"])
    s.setattrs = [a for a in s.setattrs if not a.startswith("broker.quorum-timeout")]
    s.setattrs.append("broker.quorum-timeout=1s")
    s.restart = False
    s.start(0)
    code = s.wait_exit(0, 30)
    assert code != 0 and "quorum not reached after 1s" in s.log(0)


def test_flux_start_without_test_size_bootstraps_from_config(systems):
    s = systems(2, topo="kary:2")
    s.start(1)
    env = s.env(0)
    r = subprocess.run(flux_command() + ["start", f"--config-path={s.conf}",
                                         f"-Srundir={s.rundir(0)}", "-Sbroker.quorum=2",
                                         "sh", "-c", "flux getattr size; flux overlay status"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["2", "0 node0: full", "└─ 1 node1: full"]


def test_peer_with_another_certificate_cannot_join(systems):
    s = systems(2, topo="kary:2", restart=False)
    s.start(0)
    s.wait_for(lambda: s.state()["state"] == "run", 30, "rank 0 runs")
    # node1 gets a config naming a different certificate
    other = os.path.join(s.root, "other")
    os.makedirs(other)
    write_cert(os.path.join(other, "curve.cert"))
    text = open(os.path.join(s.conf, "system.toml")).read().replace(
        s.cert, os.path.join(other, "curve.cert"))
    with open(os.path.join(other, "system.toml"), "w") as fh:
        fh.write(text)
    conf, s.conf = s.conf, other
    s.start(1)
    s.conf = conf
    time.sleep(2.0)
    assert s.online() == [0]
    assert "refused a peer that failed the CURVE handshake without the instance " \
        "certificate" in s.flux("dmesg").stdout
    s.kill_broker(1)


def test_peer_without_curve_cannot_inject_a_message(systems):
    import zmq

    from broker.overlay import HELLO, control
    from flux import __version__
    from flux.constants import FLUX_MSGTYPE_REQUEST, FLUX_ROLE_OWNER
    from flux.message import Message, encode

    s = systems(2, topo="kary:2", restart=False)
    s.start(0)
    s.wait_for(lambda: s.state()["state"] == "run", 30, "rank 0 runs")
    ctx = zmq.Context()
    try:
        for curve in (False, True):
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.routing_id = b"1"
            if curve:     # right server key, wrong client keypair
                from broker.cert import load_cert

                sock.curve_serverkey = load_cert(s.cert)[0]
                sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
            sock.connect(s.endpoint(0))
            # pose as rank 1: join, then ask for a shutdown
            sock.send(encode(control(HELLO, {"rank": 1, "hostname": "node1",
                                             "version": __version__, "pid": 1})))
            shutdown = Message(FLUX_MSGTYPE_REQUEST, "broker.shutdown", {}, nodeid=0,
                               route=["x"], userid=os.getuid(), rolemask=FLUX_ROLE_OWNER)
            sock.send(encode(shutdown))
            time.sleep(1.0)
            sock.close()
        assert s.state()["state"] == "run"
        assert s.online() == [0]
    finally:
        ctx.term()
    assert s.shutdown()[0] == 0


def _broker(conf: str, host: str, tmp_path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FLUX_FAKE_HOSTNAME=host)
    env.pop("FLUX_URI", None)
    return subprocess.run(flux_command() + ["broker", f"--config-path={conf}",
                                            f"-Srundir={tmp_path / 'run'}",
                                            "-Sbroker.rc2_none", *extra],
                          env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("hosts, host, message", [
    ('{ host = "a", bind = "tcp://127.0.0.2:1", connect = "tcp://127.0.0.2:1" }, '
     '{ host = "b" }', "zz", "this host (zz) is not listed"),
    ('{ host = "a[0-2]" }, { host = "a1" }', "a0",
     "bootstrap.hosts[1]: host a1 is listed twice (also in bootstrap.hosts[0])"),
    ('{ host = "a" }, { host = "b", parent = "c" }, { host = "c", parent = "b" }', "a",
     "parents make a cycle: b -> c -> b"),
    ('{ host = "a" }, { host = "b" }', "a", "a has children in the tree but no bind address"),
])
def test_bad_bootstrap_is_refused_at_start(tmp_path, hosts, host, message):
    cert = tmp_path / "curve.cert"
    write_cert(str(cert))
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "boot.toml").write_text(f'[bootstrap]\ncurve_cert = "{cert}"\nhosts = [ {hosts} ]\n')
    r = _broker(str(conf), host, tmp_path)
    assert r.returncode == 1
    assert "flux-broker: " in r.stderr and message in r.stderr and "boot.toml" in r.stderr


def test_bad_certificate_is_refused_at_start(tmp_path):
    cert = tmp_path / "curve.cert"
    write_cert(str(cert))
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "boot.toml").write_text(
        f'[bootstrap]\ncurve_cert = "{cert}"\nhosts = [ {{ host = "a", bind = '
        f'"tcp://127.0.0.2:1", connect = "tcp://127.0.0.2:1" }}, {{ host = "b" }} ]\n')
    os.chmod(cert, 0o644)
    r = _broker(str(conf), "a", tmp_path)
    assert r.returncode == 1 and "accessible to group or others (mode 0644)" in r.stderr
    os.unlink(cert)
    r = _broker(str(conf), "a", tmp_path)
    assert r.returncode == 1 and f"cannot read {cert}" in r.stderr
    (conf / "tbon.toml").write_text('[tbon]\ntopo = "hypercube"\n')
    write_cert(str(cert))
    r = _broker(str(conf), "a", tmp_path)
    assert r.returncode == 1 and "tbon.topo: unknown topology 'hypercube'" in r.stderr


def test_keygen_writes_a_private_certificate(tmp_path):
    path = tmp_path / "curve.cert"
    r = subprocess.run(flux_command() + ["keygen", str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and os.stat(path).st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "curve\n    public-key = \"" in text and "    secret-key = \"" in text
    r = subprocess.run(flux_command() + ["keygen", str(path)], capture_output=True, text=True)
    assert r.returncode == 1 and "file exists" in r.stderr
    r = subprocess.run(flux_command() + ["keygen"], capture_output=True, text=True)
    assert r.returncode == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_start_orders_with_gaps_all_reach_full(systems, seed):
    rng = random.Random(seed)
    s = systems(6, topo="kary:2")
    order = list(range(6))
    rng.shuffle(order)
    for rank in order:
        s.start(rank)
        time.sleep(rng.choice([0.0, 0.05, 0.3]))
    s.wait_full()
    assert s.flux("overlay", "status", "--summary").stdout.strip() == "full"
    assert all(code == 42 for r, code in s.shutdown().items() if r)
