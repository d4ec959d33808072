"""flux module stats / debug (flux-module(1)) against real modules: every module counts
the messages it receives and sends, reports the broker's rusage, and keeps debug bits."""
from __future__ import annotations

import json

import pytest

from broker.testing import TestInstance
from cli.cmd_module import _mask, stats_text, walk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inst():
    i = TestInstance(size=2).start()
    yield i
    i.stop()


def ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_counters_follow_the_traffic_and_clear(inst):
    stats = json.loads(ok(inst.flux("module", "stats", "kvs")))
    assert set(stats) == {"tx", "rx"}
    assert set(stats["rx"]) == {"request", "response", "event", "control"}
    before = int(ok(inst.flux("module", "stats", "-p", "rx.request", "kvs")))
    for i in range(5):
        ok(inst.flux("kvs", "put", f"stats.k{i}=v"))
    after = int(ok(inst.flux("module", "stats", "-p", "rx.request", "kvs")))
    assert after >= before + 5 + 1        # the puts' commits and this stats request
    ok(inst.flux("module", "stats", "--clear", "kvs"))
    assert int(ok(inst.flux("module", "stats", "-p", "rx.request", "kvs"))) <= 2
    for _ in range(4):
        ok(inst.flux("module", "stats", "-r", "1", "kvs"))
    assert int(ok(inst.flux("module", "stats", "-r", "1", "-p", "rx.request", "kvs"))) >= 5
    ok(inst.flux("module", "stats", "-C", "kvs"))
    # the clear and this request
    assert int(ok(inst.flux("module", "stats", "-r", "1", "-p", "rx.request", "kvs"))) <= 2
    half = ok(inst.flux("module", "stats", "-p", "tx.request", "-s", "0.5", "-t", "double",
                        "kvs"))
    assert half.endswith("00000") and "." in half


def test_job_manager_stats_has_its_counters_and_the_message_counts(inst):
    # the job manager answers stats-get itself (as flux-core's does): its job
    # counts, plus the counters every module keeps
    stats = json.loads(ok(inst.flux("module", "stats", "job-manager")))
    assert "active_jobs" in stats and "inactive_jobs" in stats
    assert stats["rx"]["request"] >= 1 and "response" in stats["tx"]


def test_rusage_is_the_brokers(inst):
    ru = json.loads(ok(inst.flux("module", "stats", "-R", "job-manager")))
    assert ru["maxrss"] > 1000 and ru["utime"] > 0
    assert int(ok(inst.flux("module", "stats", "-R", "-p", "maxrss", "kvs"))) > 1000


def test_debug_bits(inst):
    assert ok(inst.flux("module", "debug", "job-list")) == "0x0"
    ok(inst.flux("module", "debug", "--setbit", "0x5", "job-list"))
    ok(inst.flux("module", "debug", "--clearbit", "1", "job-list"))
    assert ok(inst.flux("module", "debug", "job-list")) == "0x4"
    ok(inst.flux("module", "debug", "--set", "010", "job-list"))
    assert ok(inst.flux("module", "debug", "job-list")) == "0x8"
    ok(inst.flux("module", "debug", "--clear", "job-list"))
    assert ok(inst.flux("module", "debug", "job-list")) == "0x0"


def test_errors(inst):
    r = inst.flux("module", "stats", "-p", "rx.nope", "kvs")
    assert r.returncode == 1 and "no field 'nope'" in r.stderr
    r = inst.flux("module", "stats", "-p", "rx", "-t", "int", "kvs")
    assert r.returncode == 1 and "rx is not a number" in r.stderr
    r = inst.flux("module", "stats", "nosuch")
    assert r.returncode == 1
    r = inst.flux("module", "debug", "-c", "-s", "1", "kvs")
    assert r.returncode == 2
    r = inst.flux("module", "debug", "-s", "zz", "kvs")
    assert r.returncode == 2 and "'zz' is not a number" in r.stderr


def test_pure_helpers():
    obj = {"a": {"b": 3, "c": 1.5}}
    assert walk(obj, "a.b") == 3
    with pytest.raises(KeyError):
        walk(obj, "a.x")
    assert stats_text(obj, "a.b", None, None) == "3"
    assert stats_text(obj, "a.c", "int", 3) == "4"
    assert stats_text(obj, "a.b", "double", None) == "3.000000"
    assert stats_text(obj, "a", None, None) == '{"b": 3, "c": 1.5}'
    assert (_mask("0x10"), _mask("010"), _mask("10"), _mask("0")) == (16, 8, 10, 0)
