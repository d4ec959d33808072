"""A pool of shell servers per user (jobmgr/exec/launcher.py): jobs that run
together are spread over several server processes, one lost server fails only
its own jobs, and none is left behind when the instance stops."""
from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from broker.testing import TestInstance
from helpers.procs import alive, wait_dead
from helpers.wait import wait_until
from flux.job import JobID

pytestmark = pytest.mark.slow


def _instance(tmp_path, servers: int) -> TestInstance:
    conf = tmp_path / f"conf{servers}"
    conf.mkdir()
    os.chmod(conf, 0o755)
    (conf / "c.toml").write_text(
        f"[exec]\nkill-timeout = \"1s\"\nshell-servers = {servers}\n"
        "[resource]\nnoverify = true\nmonitor-force-up = true\n"
        f"[[resource.config]]\nhosts = \"{socket.gethostname()}\"\ncores = \"0-3\"\n")
    return TestInstance(config_path=str(conf)).start()


def _servers_of(broker: int) -> set[int]:
    """Shell server processes started for BROKER (its children and theirs)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    parents[int(name)] = int(fh.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{name}/cmdline", "rb") as fh:
                    if b"shell.server" not in fh.read():
                        del parents[int(name)]
            except (OSError, KeyError):
                continue
    found, todo = set(), [broker]
    while todo:
        pid = todo.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _start(inst, tmp_path, name):
    """A job that writes its shell server's pid and its own, then sleeps."""
    out = tmp_path / name
    r = inst.flux("submit", "-o", "cpu-affinity=off", "sh", "-c",
                  f"echo $PPID $$ > {out}.tmp && mv {out}.tmp {out}; sleep 60")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: out.exists(), timeout=30, what=f"job {name} started")
    server, task = (int(p) for p in out.read_text().split())
    return JobID(r.stdout.strip()), server, task


def _three_jobs(inst, tmp_path):
    """Jobs a, b, c; c is started once the pool has grown (a second job while the
    first runs makes it grow, in the background), so it goes to another server."""
    broker = inst.broker_pids[0]
    a = _start(inst, tmp_path, "a")
    b = _start(inst, tmp_path, "b")
    wait_until(lambda: len(_servers_of(broker)) >= 2, timeout=30, what="a second server")
    return a, b, _start(inst, tmp_path, "c")


def test_busy_servers_get_company_and_a_lost_one_fails_only_its_job(tmp_path):
    inst = _instance(tmp_path, 3)
    try:
        broker = inst.broker_pids[0]
        (a, server_a, task_a), (b, server_b, task_b), (c, server_c, task_c) = \
            _three_jobs(inst, tmp_path)
        assert len({server_a, server_b, server_c}) >= 2
        assert {server_a, server_b, server_c} <= _servers_of(broker)
        # the server of the last job goes; that job fails, the others run on
        lost = server_c
        os.kill(lost, signal.SIGKILL)
        r = inst.flux("job", "attach", str(c))
        assert r.returncode == 137
        assert wait_dead([task_c])
        others = [(j, t) for j, s, t in ((a, server_a, task_a), (b, server_b, task_b))
                  if s != lost]
        assert others and all(alive(t) for _j, t in others)
        assert inst.flux("run", "echo", "still here").stdout == "still here\n"
        servers = _servers_of(broker)
    finally:
        inst.stop()
    assert wait_dead(list(servers) + [task_a, task_b], timeout=10)


def test_one_server_when_configured_so(tmp_path):
    inst = _instance(tmp_path, 1)
    try:
        started = [_start(inst, tmp_path, name) for name in ("a", "b", "c")]
        assert len({server for _j, server, _t in started}) == 1
        assert len(_servers_of(inst.broker_pids[0])) == 1
    finally:
        inst.stop()


def test_bad_shell_servers_config_is_refused(tmp_path):
    from jobmgr.exec.config import ExecConfig

    assert ExecConfig.from_table({"shell-servers": 4}).shell_servers == 4
    for bad in (0, -1, "2", True, 1000):
        with pytest.raises(ValueError, match="shell-servers"):
            ExecConfig.from_table({"shell-servers": bad})


def test_a_broker_killed_leaves_no_server_or_task_of_the_pool(tmp_path):
    inst = _instance(tmp_path, 2)
    try:
        (_a, server_a, task_a), (_b, server_b, task_b), (_c, server_c, task_c) = \
            _three_jobs(inst, tmp_path)
        servers = _servers_of(inst.broker_pids[0])
        assert len({server_a, server_b, server_c}) == 2
        for pid in inst.broker_pids:
            os.kill(pid, signal.SIGKILL)
        inst.proc.wait()
        pids = list(servers) + [task_a, task_b, task_c]
        if not wait_dead(pids, timeout=10):
            left = {p: open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ")
                    for p in pids if alive(p)}
            raise AssertionError(f"left running: {left}; servers {servers}, first {server_a}")
    finally:
        inst.stop()
