"""Lost and returning brokers of a configured instance: SIGKILL and SIGSTOP are detected
within the (scaled-down) timeouts, jobs on the lost nodes fail naming the node, the rest
keeps running, restarted brokers rejoin and their resources return; rank 0 restarts;
flux overlay disconnect; flux shutdown stops every broker, leaves first."""
from __future__ import annotations

import os
import re
import signal
import time

import pytest

from broker.testing import SystemInstance, flux_command

RESOURCES = '[[resource.config]]\nhosts = "node[0-6]"\ncores = "0-1"\n'
#: timeouts scaled down for tests: keepalive every 0.2s, a silent child lost after 2s
FAST = ["tbon.torpid_min=0.2s", "tbon.child-timeout=2s"]


@pytest.fixture
def system(systems):
    return systems


def status_lines(s: SystemInstance, *args: str) -> list[str]:
    return s.flux("overlay", "status", *args).stdout.splitlines()


def test_sigkill_of_a_leaf_fails_its_job_naming_the_node_and_it_rejoins(system):
    s = system(7, extra_toml=RESOURCES, setattrs=FAST)
    s.start_all([6, 5, 4, 3, 2, 1, 0])
    s.wait_full()
    jid = s.flux("submit", "-N2", "--requires=host:node[5-6]", "sleep", "300").stdout.strip()
    other = s.flux("submit", "-N2", "--requires=host:node[3-4]", "sleep", "300").stdout.strip()
    for j in (jid, other):
        s.wait_for(lambda j=j: s.flux("jobs", "-no", "{state}", j).stdout.strip() == "RUN",
                   30, f"job {j} runs")
    t0 = time.monotonic()
    s.kill_broker(6)
    s.wait_for(lambda: "   └─ 6 node6: lost" in status_lines(s), 10, "rank 6 lost")
    assert time.monotonic() - t0 < 5
    assert status_lines(s)[0] == "0 node0: degraded"
    assert s.flux("uptime").stdout.rstrip().endswith("size 7,  1 offline")
    s.wait_for(lambda: "avail*  ✗      1 node6" in s.flux("resource", "status").stdout, 10,
               "node6 offline in resource status")
    # the job with a rank there gets a fatal exception naming the node, and ends
    s.wait_for(lambda: s.flux("jobs", "-no", "{state}", jid).stdout.strip() == "INACTIVE",
               30, "the job ends")
    note = s.flux("jobs", "-no", "{status} {exception.type} {exception.note}", jid).stdout
    assert note.startswith("FAILED node-failure ") and "rank 6 (node6)" in note, note
    # its task on the surviving rank 5 was killed: rank 5 has no job shell left
    log = s.flux("job", "eventlog", jid).stdout
    assert "finish" in log and "clean" in log
    # the rest keeps running and scheduling
    assert s.flux("jobs", "-no", "{state}", other).stdout.strip() == "RUN"
    r = s.flux("run", "-N3", "--requires=host:node[0-2]", "flux", "getattr", "rank")
    assert r.returncode == 0 and sorted(r.stdout.split()) == ["0", "1", "2"], r.stderr
    # node6 gets no new job while it is away: a job asking for it waits
    waiting = s.flux("submit", "--requires=host:node6", "flux", "getattr", "rank").stdout.strip()
    time.sleep(0.5)
    assert s.flux("jobs", "-no", "{state}", waiting).stdout.strip() == "SCHED"
    # restarted, it rejoins; its resources return and the waiting job runs there
    s.start(6)
    s.wait_full()
    assert status_lines(s)[0] == "0 node0: full"
    r = s.flux("job", "attach", waiting, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "6"
    s.wait_for(lambda: s.flux("resource", "status").stdout.splitlines()[1:] ==
               ["     avail  ✔      7 node[0-6]"], 10, "all avail")
    s.flux("cancel", other)
    assert s.shutdown()[0] == 0


def test_sigstop_of_an_internal_node_loses_its_subtree_until_it_comes_back(system):
    s = system(7, extra_toml=RESOURCES, setattrs=FAST)
    s.start_all([3, 0, 5, 1, 6, 2, 4])
    s.wait_full()
    jid = s.flux("submit", "-N1", "--requires=host:node5", "sleep", "300").stdout.strip()
    s.wait_for(lambda: s.flux("jobs", "-no", "{state}", jid).stdout.strip() == "RUN", 30, "run")
    t0 = time.monotonic()
    s.signal(2, signal.SIGSTOP)
    try:
        # (flux overlay status shows it lost as soon as it does not answer; the instance
        # counts it lost after tbon.child-timeout)
        s.wait_for(lambda: s.flux("uptime").stdout.rstrip().endswith("size 7,  3 offline"),
                   15, "rank 2 and its subtree lost")
        detect = time.monotonic() - t0
        # the timeout runs from the last message the parent heard, which may
        # come a little before the SIGSTOP is sent
        assert 1.5 <= detect < 8, detect
        assert status_lines(s) == [
            "0 node0: degraded",
            "├─ 1 node1: full",
            "│  ├─ 3 node3: full",
            "│  └─ 4 node4: full",
            "└─ 2 node2: lost",
            "   ├─ 5 node5: lost",        # presumed: their parent's status, as flux-core
            "   └─ 6 node6: lost"]
        s.wait_for(lambda: "avail*  ✗      3 node[2,5-6]" in s.flux("resource", "status").stdout,
                   10, "subtree offline in resource status")
        s.wait_for(lambda: s.flux("jobs", "-no", "{state}", jid).stdout.strip() == "INACTIVE",
                   30, "the job on node5 ends")
        assert "node-failure" in s.flux("jobs", "-no", "{exception.type}", jid).stdout
        r = s.flux("run", "-N4", "flux", "getattr", "rank")
        assert r.returncode == 0 and sorted(r.stdout.split()) == ["0", "1", "3", "4"]
    finally:
        s.signal(2, signal.SIGCONT)
    # woken, rank 2 finds itself disconnected and exits to be restarted (as do its
    # children, whose parent went away); all rejoin
    s.wait_full(60)
    assert 1 in s.codes[2], s.codes
    assert status_lines(s)[0] == "0 node0: full"
    s.wait_for(lambda: s.flux("resource", "status").stdout.splitlines()[1:] ==
               ["     avail  ✔      7 node[0-6]"], 10, "all avail")
    assert s.shutdown()[0] == 0


def test_rank0_restart_followers_rejoin_with_history(system):
    s = system(5, extra_toml='[[resource.config]]\nhosts = "node[0-4]"\ncores = "0-1"\n',
               setattrs=FAST)
    s.start_all([4, 3, 2, 1, 0])
    s.wait_full()
    done = s.flux("submit", "--wait", "-N5", "true").stdout.strip()
    assert s.flux("jobs", "-no", "{status}", done).stdout.strip() == "COMPLETED"
    s.kill_broker(0, hold=False)          # the service manager restarts it
    s.wait_for(lambda: s.running(0) and s.restarts[0] == 1, 20, "rank 0 restarted")
    s.wait_full(60)
    # the followers left when their parent went away and were restarted
    assert all(s.codes[r] for r in (1, 2)), s.codes
    assert s.flux("jobs", "-no", "{status}", done).stdout.strip() == "COMPLETED"
    r = s.flux("run", "-N5", "flux", "getattr", "rank")
    assert r.returncode == 0 and sorted(r.stdout.split()) == ["0", "1", "2", "3", "4"]
    assert s.shutdown()[0] == 0


def test_overlay_disconnect_drops_a_subtree_that_then_rejoins(system):
    s = system(7, setattrs=FAST)
    s.start_all()
    s.wait_full()
    r = s.flux("overlay", "disconnect", "2")
    assert r.returncode == 0 and "asking node0 (rank 0) to disconnect child node2 (rank 2)" in r.stderr
    s.wait_for(lambda: 1 in s.codes[2], 10, "rank 2 exits")
    s.wait_full(60)
    assert s.restarts[2] >= 1
    r = s.flux("overlay", "disconnect", "0")
    assert r.returncode == 1 and "0 has no parent" in r.stderr
    r = s.flux("overlay", "disconnect", "9")
    assert r.returncode == 1
    assert s.shutdown()[0] == 0


def _goodbye_time(log: str, rank: int) -> float:
    from datetime import datetime

    m = re.search(rf"^(\S+)Z broker\.info\[{rank}\]: rc3-success: finalize->goodbye", log, re.M)
    assert m, log[-2000:]
    return datetime.fromisoformat(m.group(1)).timestamp()


def test_shutdown_stops_every_broker_leaves_first(system):
    s = system(7, setattrs=["log-stderr-level=6", "log-stderr-mode=local"])
    s.start_all([2, 6, 0, 4, 1, 5, 3])
    s.wait_full()
    codes = s.shutdown()
    assert codes == {0: 0, **{r: 42 for r in range(1, 7)}}
    assert not s.live_pids()
    t = {r: _goodbye_time(s.log(r), r) for r in range(7)}
    # each broker leaves after its own children (kary:2: the parent of r is (r-1)//2);
    # brokers in different subtrees leave in any order
    for r in range(1, 7):
        assert t[r] <= t[(r - 1) // 2], (r, s.logs())
    assert "is lost" not in s.log(0)


def unit_command(s: SystemInstance, rank: int) -> list[str]:
    """ExecStart of the shipped etc/flux.service, with this test's paths for broker RANK."""
    import shlex

    here = os.path.dirname(os.path.abspath(__file__))
    unit = open(os.path.join(here, "..", "..", "etc", "flux.service")).read()
    text = unit.split("ExecStart=", 1)[1].split("\n#", 1)[0].split("\nRestart", 1)[0]
    argv = shlex.split(text.replace("\\\n", " "))
    run = s.rundir(rank)
    state = os.path.join(s.root, f"state{rank}")
    crond = os.path.join(s.root, "cron.d")
    sub = {"/etc/flux/system/conf.d": s.conf, "/etc/flux/system/cron.d": crond,
           "/run/flux": run, "/var/lib/flux": state}
    out = []
    for arg in argv:
        for old, new in sub.items():
            arg = arg.replace(old, new)
        out.append(arg)
    assert out[0] == "/usr/bin/flux" and out[1] == "broker"
    return flux_command() + out[1:]


def test_shipped_unit_file_command_line_runs_a_system_instance(system):
    """etc/flux.service's ExecStart (the guide's system-instance broker command line:
    rc2_none, quorum=1, quorum-timeout=none, exit-norestart=42, rundir, statedir,
    local-uri, log-stderr-*, content.dump/restore=auto) starts a working instance;
    its restart policy is what SystemInstance mimics."""
    unit = open(os.path.join(os.path.dirname(__file__), "..", "..", "etc", "flux.service")).read()
    assert "RestartPreventExitStatus=42" in unit and "Restart=always" in unit
    # systemctl reload flux (the Administrator's Guide): the local broker rereads its files
    assert "\nExecReload=/usr/bin/flux config reload\n" in unit
    assert "\nEnvironment=FLUX_URI=local:///run/flux/local\n" in unit
    s = system(2)
    os.makedirs(os.path.join(s.root, "cron.d"))
    with open(os.path.join(s.root, "cron.d", "site"), "w") as fh:
        fh.write("0 4 * * * echo nightly\n")
    for rank in (0, 1):
        os.makedirs(s.rundir(rank), exist_ok=True)
    s.start(0, argv=unit_command(s, 0))
    sock = os.path.join(s.rundir(0), "local")
    s.wait_for(lambda: "run" in s.flux("uptime").stdout, 30, "run")
    # quorum=1: rank 0 runs alone, the other node offline
    assert s.flux("uptime").stdout.rstrip().endswith("size 2,  1 offline")
    assert s.flux("getattr", "broker.exit-norestart").stdout.strip() == "42"
    assert s.flux("getattr", "local-uri").stdout.strip() == f"local://{sock}"
    assert s.flux("getattr", "statedir").stdout.strip() == os.path.join(s.root, "state0")
    # -Scron.directory: the site's crontab is loaded
    assert "echo nightly" in s.flux("cron", "list").stdout
    assert s.flux("config", "reload").returncode == 0
    s.start(1, argv=unit_command(s, 1))
    s.wait_for(lambda: "offline" not in s.flux("uptime").stdout, 30, "node1 joins")
    assert "quorum-full: quorum->run" in s.log(0)
    assert s.flux("run", "-N2", "true").returncode == 0
    codes = s.shutdown()
    assert codes == {0: 0, 1: 42}
    # the dump of content.dump=auto was written at shutdown
    assert any(n.endswith(".tar") or "dump" in n for n in os.listdir(os.path.join(s.root,
                                                                                  "state0")))


def test_follower_sigterm_leaves_alone_and_is_offline_not_lost(system):
    s = system(3, restart=False)
    s.start_all()
    s.wait_full()
    s.signal(2, signal.SIGTERM)
    assert s.wait_exit(2) == 0
    s.wait_for(lambda: s.flux("uptime").stdout.rstrip().endswith("size 3,  1 offline"), 10,
               "rank 2 offline")
    assert status_lines(s)[-1] == "└─ 2 node2: offline"
    assert s.running(0) and s.running(1)
    assert s.shutdown()[0] == 0


def test_idle_children_are_not_lost_with_a_short_child_timeout(system):
    # keepalives come often enough for any tbon.child-timeout (here shorter than the
    # default keepalive period)
    s = system(3, setattrs=["tbon.child-timeout=1s"], restart=False)
    s.start_all()
    s.wait_full()
    time.sleep(3.0)
    assert s.online() == [0, 1, 2] and "is lost" not in s.flux("dmesg").stdout
    assert s.shutdown()[0] == 0


def test_a_hung_node_goes_torpid_gets_no_new_work_and_comes_back(system):
    """flux-config-tbon(5) torpid_max: a child connected but silent that long gets no new
    work until it speaks again (here child-timeout is long, so it is not lost)."""
    s = system(3, extra_toml='[[resource.config]]\nhosts = "node[0-2]"\ncores = "0-1"\n'
                             '[tbon]\ntorpid_min = "0.2s"\ntorpid_max = "1s"\n',
               setattrs=["tbon.child-timeout=60s"], restart=False)
    s.write_config("kary:2", '[[resource.config]]\nhosts = "node[0-2]"\ncores = "0-1"\n')
    s.setattrs += ["tbon.torpid_min=0.2s", "tbon.torpid_max=1s"]
    s.start_all()
    s.wait_full()
    s.signal(2, signal.SIGSTOP)
    try:
        s.wait_for(lambda: s.state()["torpid"] == [2], 10, "rank 2 torpid")
        s.wait_for(lambda: "torpid  ✔      1 node2" in s.flux("resource", "status").stdout,
                   10, "torpid in resource status")
        assert s.online() == [0, 1, 2]            # still connected: not lost
        waiting = s.flux("submit", "--requires=host:node2", "true").stdout.strip()
        time.sleep(0.5)
        assert s.flux("jobs", "-no", "{state}", waiting).stdout.strip() == "SCHED"
    finally:
        s.signal(2, signal.SIGCONT)
    s.wait_for(lambda: s.state()["torpid"] == [], 10, "rank 2 lively")
    r = s.flux("job", "attach", waiting, timeout=60)
    assert r.returncode == 0
    assert "is torpid" in s.flux("dmesg").stdout
    assert s.shutdown()[0] == 0


def test_sd_notify_tells_systemd_ready_and_stopping(system, tmp_path):
    import socket as _socket

    path = str(tmp_path / "notify")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    try:
        s = system(2, setattrs=["broker.sd-notify=1"], restart=False)
        s.extra_env[0] = {"NOTIFY_SOCKET": path}
        s.start(0)
        ready = sock.recv(4096).decode()
        assert ready == "READY=1\nSTATUS=Running as leader of 2 node Flux instance"
        s.start(1)
        s.wait_full()
        assert s.shutdown()[0] == 0
        assert sock.recv(4096).decode() == "STOPPING=1"
    finally:
        sock.close()
