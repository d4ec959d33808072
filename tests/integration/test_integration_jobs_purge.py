"""Automatic purge of inactive jobs by [job-manager] inactive-num-limit and -age-limit."""
from __future__ import annotations

import time

import pytest

from broker.testing import TestInstance
from flux.job.JobID import JobID

CONFIG = """
[exec]
test = true
[job-manager]
inactive-num-limit = 3
inactive-age-limit = "2s"
"""


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    (conf / "jm.toml").write_text(CONFIG)
    instance = TestInstance(config_path=str(conf)).start()
    handle = instance.handle()
    yield handle
    handle.close()
    assert instance.stop() == 0


SPEC = {"version": 1,
        "resources": [{"type": "slot", "count": 1, "label": "task",
                       "with": [{"type": "core", "count": 1}]}],
        "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
        "attributes": {"system": {"duration": 0}}}


def exists(h, jobid):
    try:
        h.rpc("kvs.lookup", {"key": JobID(jobid).kvs + ".eventlog", "flags": 0}).get()
    except FileNotFoundError:
        return False
    return True


def until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_num_limit_then_age_limit(h):
    ids = [h.rpc("job-ingest.submit", {"jobspec": SPEC, "urgency": 16, "flags": 0}).get()["id"]
           for _ in range(5)]
    h.rpc("job-manager.drain", {}).get()
    until(lambda: h.rpc("job-manager.stats", {}).get()["inactive"] == 3)
    until(lambda: not exists(h, ids[0]) and not exists(h, ids[1]))
    assert all(exists(h, jobid) for jobid in ids[2:])
    # two seconds later the age limit takes the rest
    until(lambda: h.rpc("job-manager.stats", {}).get()["inactive"] == 0, timeout=15.0)
    assert not any(exists(h, jobid) for jobid in ids)
