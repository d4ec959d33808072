"""flux kvs get -w/-W and eventlog get -w / wait-event against live writes, with timeouts."""
from __future__ import annotations

import subprocess
import time

import pytest

from broker.testing import TestInstance, flux_command

TIMEOUT = 15


@pytest.fixture(scope="module")
def inst():
    inst = TestInstance(size=1).start()
    yield inst
    assert inst.stop() == 0


def kvs(inst, *args: str) -> str:
    proc = inst.flux("kvs", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _watchers(inst) -> int:
    h = inst.handle()
    try:
        return h.rpc("kvs-watch.stats", {}).get()["watchers"]
    finally:
        h.close()


def background(inst, *args: str, settle: bool = True) -> subprocess.Popen:
    """Start ``flux kvs ARGS``; with SETTLE, return once its watch is registered."""
    base = _watchers(inst) if settle else 0
    proc = subprocess.Popen(flux_command() + ["kvs", *args], env=inst.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + TIMEOUT
    while settle and proc.poll() is None and _watchers(inst) <= base:
        assert time.monotonic() < deadline, "watch never registered"
        time.sleep(0.01)
    return proc


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    return proc.returncode, out, err


def test_get_watch_count(inst):
    kvs(inst, "put", "gw.k=0")
    proc = background(inst, "get", "-w", "-c", "3", "gw.k")
    kvs(inst, "put", "gw.k=1")
    kvs(inst, "put", "gw.k=2")
    code, out, err = finish(proc)
    assert (code, out) == (0, "0\n1\n2\n"), err


def test_get_watch_uniq_skips_same_value(inst):
    kvs(inst, "put", "gu.k=a")
    proc = background(inst, "get", "-w", "-u", "-c", "2", "gu.k")
    kvs(inst, "put", "gu.k=a")
    kvs(inst, "put", "gu.k=b")
    code, out, _ = finish(proc)
    assert (code, out) == (0, "a\nb\n")


def test_get_watch_append_shows_new_data_only(inst):
    kvs(inst, "put", "ga.k=start")
    proc = background(inst, "get", "-w", "-A", "-c", "3", "ga.k")
    kvs(inst, "put", "-A", "ga.k=+one")
    kvs(inst, "put", "-A", "ga.k=+two")
    code, out, _ = finish(proc)
    assert (code, out) == (0, "start\n+one\n+two\n")


def test_get_watch_full_sees_parent_replaced(inst):
    kvs(inst, "put", "gf.d.k=1")
    proc = background(inst, "get", "-w", "-f", "-c", "2", "gf.d.k")
    kvs(inst, "put", "-t", 'gf.d={"ver":1,"type":"dir","data":{"k":{"ver":1,"type":"val","data":"Mg=="}}}')
    code, out, _ = finish(proc)
    assert (code, out) == (0, "1\n2\n")


def test_get_waitcreate(inst):
    proc = background(inst, "get", "-W", "gc.k")
    assert proc.poll() is None
    kvs(inst, "put", "gc.k=made")
    code, out, _ = finish(proc)
    assert (code, out) == (0, "made\n")


def test_get_watch_label_and_treeobj(inst):
    kvs(inst, "put", "gl.k=x")
    proc = background(inst, "get", "-w", "-l", "-c", "1", "gl.k")
    code, out, _ = finish(proc)
    assert (code, out) == (0, "gl.k=x\n")
    proc = background(inst, "get", "-w", "-t", "-c", "1", "gl.k")
    code, out, _ = finish(proc)
    assert code == 0 and out.startswith('{"data":"eA=="')


def test_get_watch_missing_key_fails(inst):
    code, _, err = finish(background(inst, "get", "-w", "gm.none"))
    assert (code, err) == (1, "flux-kvs: gm.none: No such file or directory\n")


def test_get_watch_ends_when_key_removed(inst):
    kvs(inst, "put", "gr.k=1")
    proc = background(inst, "get", "-w", "gr.k")
    kvs(inst, "unlink", "gr.k")
    code, out, err = finish(proc)
    assert code == 1 and out == "1\n" and "gr.k" in err


def test_eventlog_get_watch_follows_appends(inst):
    kvs(inst, "eventlog", "append", "-t", "1", "ew.log", "one")
    proc = background(inst, "eventlog", "get", "-w", "-c", "3", "-u", "ew.log")
    kvs(inst, "eventlog", "append", "-t", "2", "ew.log", "two")
    kvs(inst, "eventlog", "append", "-t", "3", "ew.log", "three", '{"x":1}')
    code, out, _ = finish(proc)
    assert code == 0
    assert out.splitlines() == ['{"timestamp":1.0,"name":"one"}', '{"timestamp":2.0,"name":"two"}',
                                '{"timestamp":3.0,"name":"three","context":{"x":1}}']


def test_eventlog_get_waitcreate(inst):
    proc = background(inst, "eventlog", "get", "-W", "ewc.log")
    kvs(inst, "eventlog", "append", "-t", "5", "ewc.log", "born")
    code, out, _ = finish(proc)
    assert (code, out) == (0, "   5.000000 born\n")


def test_wait_event_for_a_later_event(inst):
    kvs(inst, "eventlog", "append", "-t", "1", "we.log", "start")
    proc = background(inst, "eventlog", "wait-event", "-v", "-t", "10", "we.log", "done")
    kvs(inst, "eventlog", "append", "-t", "2", "we.log", "middle")
    kvs(inst, "eventlog", "append", "-t", "3", "we.log", "done")
    code, out, _ = finish(proc)
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()] == ["start", "middle", "done"]


def test_wait_event_waitcreate_with_timeout(inst):
    t0 = time.monotonic()
    code, _, err = finish(background(inst, "eventlog", "wait-event", "-W", "-t", "0.3",
                                     "wc.never", "x"))
    assert code == 1 and err == "flux-kvs: wait-event timeout on event 'x'\n"
    assert time.monotonic() - t0 < 10
    proc = background(inst, "eventlog", "wait-event", "-W", "-t", "10", "wc.later", "go")
    kvs(inst, "eventlog", "append", "wc.later", "go")
    code, out, _ = finish(proc)
    assert code == 0 and " go" in out


def test_wait_event_ends_when_log_removed(inst):
    kvs(inst, "eventlog", "append", "wr.log", "a")
    proc = background(inst, "eventlog", "wait-event", "wr.log", "never")
    kvs(inst, "unlink", "wr.log")
    code, _, err = finish(proc)
    assert code == 1 and "wr.log" in err


def test_watch_ends_when_namespace_removed(inst):
    kvs(inst, "namespace", "create", "wns")
    kvs(inst, "put", "-N", "wns", "k=1")
    proc = background(inst, "get", "-N", "wns", "-w", "k")
    kvs(inst, "namespace", "remove", "wns")
    code, out, _ = finish(proc)
    assert (code, out) == (0, "1\n")
