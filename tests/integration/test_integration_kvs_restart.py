"""Persistence of the KVS across restarts, crashes and GC; kvs on a size-3 instance."""
from __future__ import annotations

import os
import select
import re
import signal
import subprocess
import time

import pytest

from broker.testing import TestInstance, flux_command
from kvs.content_service import UNCLEAN_MESSAGE

STARTLOG_LINE = r"\d{4}-\d\d-\d\d \d\d:\d\d - "


def kvs(inst, *args: str) -> str:
    proc = inst.flux("kvs", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def start(statedir, *setattrs: str, config_path: str | None = None) -> TestInstance:
    return TestInstance(setattrs=[f"statedir={statedir}", *setattrs],
                        config_path=config_path).start()


def test_restart_keeps_keys_and_eventlog(tmp_path):
    state = tmp_path / "state"
    inst = start(state)
    try:
        kvs(inst, "put", "r.a=1", "r.dir.b=two")
        kvs(inst, "eventlog", "append", "-t", "100", "r.log", "first", '{"n":1}')
        kvs(inst, "eventlog", "append", "-t", "101", "r.log", "second")
        kvs(inst, "namespace", "create", "keepns")
        kvs(inst, "put", "-N", "keepns", "k=ns-value")
        version = int(kvs(inst, "version"))
        assert inst.handle().attr_get("content.backing-path") == str(state / "content.lmdb")
    finally:
        assert inst.stop() == 0
    assert (state / "content.lmdb" / "data.mdb").exists()

    again = start(state)
    try:
        assert kvs(again, "get", "r.a", "r.dir.b") == "1\ntwo\n"
        assert kvs(again, "eventlog", "get", "r.log") == \
            " 100.000000 first n=1\n 101.000000 second\n"
        assert kvs(again, "get", "-N", "keepns", "k") == "ns-value\n"
        assert int(kvs(again, "version")) >= version  # other modules commit at start/stop
        kvs(again, "eventlog", "append", "r.log", "third")
        lines = again.flux("startlog").stdout.splitlines()
        assert len(lines) == 2
        assert re.fullmatch(STARTLOG_LINE + r"\d{4}-\d\d-\d\d \d\d:\d\d \(.+\)", lines[0])
        assert re.fullmatch(STARTLOG_LINE + r"running \(.+\)", lines[1])
        assert again.flux("startlog", "--check").returncode == 0
        assert UNCLEAN_MESSAGE not in again.stderr_text()
    finally:
        assert again.stop() == 0


def test_killed_instance_logs_unclean_start_and_keeps_commits(tmp_path):
    state = tmp_path / "state"
    inst = start(state)
    kvs(inst, "put", "crash.acked=yes")
    for i in range(20):
        kvs(inst, "eventlog", "append", "crash.log", f"ev{i}")
    os.killpg(inst.proc.pid, signal.SIGKILL)
    inst.kill()

    again = start(state)
    try:
        assert kvs(again, "get", "crash.acked") == "yes\n"
        assert len(kvs(again, "eventlog", "get", "crash.log").splitlines()) == 20
        assert UNCLEAN_MESSAGE in again.stderr_text()
        dmesg = again.flux("dmesg").stdout
        assert UNCLEAN_MESSAGE in dmesg
        lines = again.flux("startlog").stdout.splitlines()
        assert re.fullmatch(STARTLOG_LINE + "crashed", lines[0])
        assert re.fullmatch(STARTLOG_LINE + r"running \(.+\)", lines[1])
        check = again.flux("startlog", "--check", "--quiet")
        assert (check.returncode, check.stdout) == (1, "")
    finally:
        assert again.stop() == 0
    third = start(state)
    try:
        assert third.flux("startlog", "--check").returncode == 0
        assert UNCLEAN_MESSAGE not in third.stderr_text()
    finally:
        assert third.stop() == 0


def test_shutdown_gc_frees_garbage_and_keeps_data(tmp_path):
    state = tmp_path / "state"
    inst = start(state)
    try:
        for i in range(30):
            kvs(inst, "put", f"gc.big={str(i) * 20000}")
        kvs(inst, "put", "gc.keep=kept")
        h = inst.handle()
        before = h.rpc("content.stats", {}).get()["blob_count"]
        shut = subprocess.run(flux_command() + ["shutdown", "--gc"], env=inst.env,
                              capture_output=True, text=True, timeout=60)
        assert shut.returncode == 0, shut.stderr
        assert re.search(r"content GC: freed [1-9]\d* blobs", shut.stderr), shut.stderr
        assert inst.wait() == 0
    finally:
        inst.stop()
    again = start(state)
    try:
        assert kvs(again, "get", "gc.keep") == "kept\n"
        assert kvs(again, "get", "gc.big") == "29" * 20000 + "\n"
        after = again.handle().rpc("content.stats", {}).get()["blob_count"]
        assert after < before
    finally:
        assert again.stop() == 0


def test_pinned_root_survives_gc(tmp_path):
    state = tmp_path / "state"
    inst = start(state)
    try:
        kvs(inst, "put", "pin.v=old")
        root = kvs(inst, "getroot", "-b").strip()
        h = inst.handle()
        h.rpc("content.pin", {"name": "test.snapshot", "ref": root}).get()
        kvs(inst, "put", "pin.v=new")
        with pytest.raises(OSError):
            h.rpc("content.pin", {"name": "x", "ref": "blake3-" + "1" * 64}).get()
        subprocess.run(flux_command() + ["shutdown", "--gc", "--quiet"], env=inst.env,
                       check=True, timeout=60)
        assert inst.wait() == 0
    finally:
        inst.stop()
    again = start(state)
    try:
        tobj = '{"ver":1,"type":"dirref","data":["%s"]}' % root
        assert kvs(again, "get", "-a", tobj, "pin.v") == "old\n"
        h = again.handle()
        # other modules (job-list snapshots) pin their own roots too
        assert h.rpc("content.pins", {}).get()["pins"]["test.snapshot"] == {
            "ref": root, "kind": "tree"}
        h.rpc("content.unpin", {"name": "test.snapshot"}).get()
        with pytest.raises(OSError):
            h.rpc("content.unpin", {"name": "test.snapshot"}).get()
    finally:
        assert again.stop() == 0


def test_store_without_statedir_is_removed_at_exit():
    inst = TestInstance().start()
    path = inst.handle().attr_get("content.backing-path")
    assert path.startswith(inst.rundir) and os.path.isdir(path)
    assert inst.stop() == 0
    assert not os.path.exists(path)


def test_backing_path_given_keeps_the_store_there(tmp_path):
    # flux-broker-attributes(7): content.backing-path set on the command line is where
    # the store goes; content is kept at exit and the next start with it imports it
    path = str(tmp_path / "store")
    inst = TestInstance(setattrs=[f"content.backing-path={path}"]).start()
    assert inst.handle().attr_get("content.backing-path") == path
    kvs(inst, "put", "kept=yes")
    assert inst.flux("dump", "--no-cache", str(tmp_path / "d.tar")).returncode == 0
    assert inst.stop() == 0
    assert os.path.exists(os.path.join(path, "data.mdb"))
    inst = TestInstance(setattrs=[f"content.backing-path={path}"]).start()
    try:
        assert kvs(inst, "get", "kept") == "yes\n"
    finally:
        assert inst.stop() == 0


def test_durability_from_attribute_and_config(tmp_path):
    inst = TestInstance(setattrs=["content.durability=none"]).start()
    try:
        assert inst.handle().attr_get("content.durability") == "none"
        kvs(inst, "put", "d.k=1")
        assert kvs(inst, "get", "d.k") == "1\n"
    finally:
        assert inst.stop() == 0
    (tmp_path / "content.toml").write_text('[content]\ndurability = "batch"\n')
    inst = TestInstance(config_path=str(tmp_path)).start()
    try:
        assert inst.handle().attr_get("content.durability") == "batch"
    finally:
        assert inst.stop() == 0


def test_bad_durability_stops_the_broker():
    inst = TestInstance(setattrs=["content.durability=sometimes"])
    with pytest.raises(RuntimeError) as e:
        inst.start(timeout=20)
    assert "content.durability" in str(e.value) and "sometimes" in str(e.value)


# -- size 3 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trio():
    inst = TestInstance(size=3).start()
    yield inst
    inst.stop()


def rank_env(inst, rank: int) -> dict[str, str]:
    env = dict(inst.env)
    env["FLUX_URI"] = "local://" + os.path.join(inst.rundir, str(rank), "local")
    return env


def test_kvs_from_rank_2_goes_upstream(trio):
    env2 = rank_env(trio, 2)
    assert trio.flux("kvs", "put", "t.from2=hello", env=env2).returncode == 0
    assert kvs(trio, "get", "t.from2") == "hello\n"
    assert trio.flux("kvs", "get", "t.from2", env=env2).stdout == "hello\n"
    out = trio.flux("kvs", "get", "t.none", env=env2)
    assert (out.returncode, out.stderr) == (1, "flux-kvs: t.none: No such file or directory\n")
    assert trio.flux("content", "flush", env=env2).returncode == 0


def test_watch_from_rank_2(trio):
    env2 = rank_env(trio, 2)
    kvs(trio, "put", "t.w=0")
    proc = subprocess.Popen(flux_command() + ["kvs", "get", "-w", "-c", "2", "t.w"], env=env2,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the first value comes once the watch (served on rank 2) is in place
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready and proc.stdout.readline() == "0\n"
        kvs(trio, "put", "t.w=1")
        out, err = proc.communicate(timeout=15)
        assert (proc.returncode, out) == (0, "1\n"), err
    finally:
        proc.kill()


def test_kvs_served_after_a_broker_is_killed(trio):
    kvs(trio, "put", "t.before=1")
    os.kill(trio.broker_pids[2], signal.SIGKILL)
    h = trio.handle()
    deadline = time.monotonic() + 30
    while 2 not in _lost(h):
        assert time.monotonic() < deadline, "rank 2 never noticed lost"
        time.sleep(0.05)
    kvs(trio, "put", "t.after=2")
    assert kvs(trio, "get", "t.before", "t.after") == "1\n2\n"
    env1 = rank_env(trio, 1)
    assert trio.flux("kvs", "get", "t.after", env=env1).stdout == "2\n"


def _lost(h) -> list[int]:
    from flux.idset import decode

    lost = h.rpc("broker.state", nodeid=0).get().get("lost", [])
    return list(decode(lost)) if isinstance(lost, str) else list(lost)


def test_a_second_broker_cannot_open_a_store_in_use(tmp_path):
    # two brokers writing roots behind each other's back lose acknowledged commits:
    # the second is refused before it writes anything
    from kvs.offline import STORE_DIRNAME, store_locked

    state = tmp_path / "state"
    first = start(state)
    try:
        kvs(first, "put", "mine=1")
        r = subprocess.run(flux_command() + ["start", f"-Sstatedir={state}", "true"],
                           capture_output=True, text=True, timeout=60,
                           env={k: v for k, v in os.environ.items()
                                if not k.startswith("FLUX_")})
        assert r.returncode == 1
        assert "is in use by another broker" in r.stderr
        assert store_locked(str(state / STORE_DIRNAME))
        kvs(first, "put", "still=1")
    finally:
        assert first.stop() == 0
    assert not store_locked(str(state / STORE_DIRNAME))
    again = start(state)
    try:
        assert kvs(again, "get", "mine") == "1\n" and kvs(again, "get", "still") == "1\n"
    finally:
        again.stop()
    # a killed broker's lock goes with it: the next start is not refused
    killed = start(state)
    killed.kill()
    after = start(state)
    after.stop()
