"""Malformed requests to every service method of a live instance.

A bad request from one client must never break the instance for others:
each (topic, payload) below either gets an error that names what is wrong
(not a Python exception's text) or, for the methods that never answer,
nothing; afterwards every module is still loaded and a real job still runs.
The topics come from the handlers the modules declare, so a new method is
covered without touching this file.
"""
from __future__ import annotations

import errno
import importlib
import os
import pkgutil
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from helpers.live import start_instance

from broker.module import Module
from broker.testing import TestInstance

# Owner-only methods whose job is to stop or unload something: sent any
# payload they do what they are for (as flux-core's would).
DESTRUCTIVE = {
    "broker.shutdown": "shuts the instance down",
    "module.remove": "unloads a module",
    "job-exec.shutdown": "stops exec starting jobs (the broker's shutdown sequence)",
    "log.clear": "empties the log ring this test reads",
    "job-manager.stop-alloc": "stops allocation for the rest of the run (a shutdown step)",
}

# Methods that never respond (RFC 6 notifications and cancels, by design).
NO_RESPONSE = {
    "job-ingest.queue-update",      # the job manager's notice; valid ones get no answer
    "resource.hello",               # a follower's notice to rank 0
    "resource.journal-cancel",      # cancels end the stream, they are not answered
    "job-manager.events-journal-cancel",
    "sched.cancel",                 # answered through the alloc it cancels (RFC 27)
    "job-exec.input-ready",         # a notice between exec services
}

BAD_PAYLOADS: list[Any] = [
    None, "garbage", b"\xff\x00\xfe", [], 42, {},
    {"id": "bogus"}, {"id": -1}, {"id": 1.5},
    {"key": ["x"], "namespace": 5},
    # well-formed but for one field's type (a kvs.commit with string flags once broke
    # the whole group commit it landed in)
    {"ops": [], "flags": "x"}, {"ops": [], "flags": 1.5, "namespace": "primary"},
    {"keys": 3, "flags": "x", "ranks": {"a": 1}},
    {"jobspec": None, "rank": [1], "id": [1], "key": {"a": 1}, "userid": [], "name": {},
     "matchtag": {"a": 1}, "pid": [], "label": {}},
    {"id": None, "userid": "root", "name": [], "value": {"deep": [[[[]]]]}, "jobspec": 7,
     "R": "x", "rank": -5, "nodeid": "a", "topic": 1, "data": {}, "seq": "x",
     "state": "bogus", "states": "x", "attrs": 5, "ops": {"a": 1}, "signum": 99999,
     "ref": 5, "blobref": "sha1-zz", "path": 3, "eventlog": 5, "event": {}, "timeout": -1,
     "service": 7, "mode": [], "enable": "yes", "reason": 3, "queue": {}},
]

# what an error's text looks like when a Python exception leaked into it
LEAKED = re.compile(r"object has no attribute|unhashable type|not subscriptable|NoneType|"
                    r"object is not|Traceback|KeyError|TypeError|unsupported operand|"
                    r"invalid literal for|not supported between|object of type")


def handler_topics() -> dict[str, bool]:
    """Every request topic a broker module declares -> open to guests."""
    for pkg in ("broker", "jobmgr", "kvs"):
        for info in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    topics: dict[str, bool] = {}
    todo = [Module]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        for topic, (_attr, spec) in cls._handler_specs.items():
            if cls.__module__.startswith(("broker", "jobmgr", "kvs")):
                topics[topic] = spec.allow_guest
    return topics


def fire(h: Any, topics: list[str], timeout: float = 20.0) -> tuple[list, list]:
    """Send every bad payload to every topic at once; (leaked errors, unanswered)."""
    sent = [(topic, payload, h.rpc(topic, payload))
            for topic in topics for payload in BAD_PAYLOADS]
    deadline = time.monotonic() + timeout
    leaks, silent = [], []
    for topic, payload, fut in sent:
        try:
            fut.wait_for(max(0.0, deadline - time.monotonic()))
        except OSError as exc:
            if exc.errno == errno.ETIMEDOUT:
                silent.append((topic, payload))
                continue
            raise
        try:
            fut.get()
        except OSError as exc:
            if LEAKED.search(exc.strerror or ""):
                leaks.append((topic, payload, exc.strerror))
    return leaks, silent


def still_works(inst: TestInstance, modules: list[str]) -> None:
    h = inst.handle()
    now = sorted(m["name"] for m in h.rpc("module.list", {}).get()["modules"])
    assert now == modules
    r = subprocess.run(["flux", "run", "echo", "still here"], env=inst.env,
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "still here\n"), r.stderr
    r = subprocess.run(["flux", "kvs", "put", "fuzz.after=1"], env=inst.env, timeout=60)
    assert r.returncode == 0


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, "[access]\nallow-guest-user = true\n", size=2)
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def topics():
    found = handler_topics()
    # the enumeration itself must see the core services
    for topic in ("kvs.commit", "job-ingest.submit", "job-manager.raise", "job-exec.start",
                  "sched.alloc", "job-list.list", "content.load", "broker.ping"):
        assert topic in found
    return found


@pytest.mark.slow
def test_owner_bad_requests_get_clear_errors_and_break_nothing(inst, topics):
    h = inst.handle()
    modules = sorted(m["name"] for m in h.rpc("module.list", {}).get()["modules"])
    targets = sorted(t for t in topics if t not in DESTRUCTIVE)
    leaks, silent = fire(h, targets)
    assert leaks == []
    assert sorted({t for t, _ in silent} - NO_RESPONSE) == []
    still_works(inst, modules)


@pytest.mark.slow
def test_a_second_scheduler_or_exec_is_refused_a_reloaded_one_taken(inst):
    h = inst.handle()
    with pytest.raises(OSError) as exc:
        h.rpc("job-manager.sched-hello", {}).get()
    assert exc.value.errno == errno.EEXIST
    assert "a scheduler is already connected" in exc.value.strerror
    with pytest.raises(OSError) as exc:
        h.rpc("job-manager.exec-hello", {"service": "not-exec"}).get()
    assert exc.value.errno == errno.EEXIST
    assert "already registered" in exc.value.strerror
    # a reloaded scheduler or exec is the same one coming back: taken
    for name in ("sched", "job-exec"):
        r = subprocess.run(["flux", "module", "reload", name], env=inst.env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    still_works(inst, sorted(m["name"] for m in h.rpc("module.list", {}).get()["modules"]))


# The guest's client imports everything as root (the project may live where
# nobody cannot read), then drops to nobody before connecting: the broker
# takes the client's identity from the socket.
_GUEST = """
import orjson, sys
sys.path[:0] = orjson.loads(sys.argv[3])
import test_integration_request_fuzz as T
import flux
topics = orjson.loads(sys.argv[2])
import os
os.setgid(65534); os.setuid(65534)
h = flux.Flux(sys.argv[1])
leaks, silent = T.fire(h, topics)
print(orjson.dumps({"leaks": [[t, repr(p), e] for t, p, e in leaks],
                    "silent": sorted({t for t, _ in silent})}).decode())
"""


@pytest.mark.slow
def test_guest_bad_requests_break_nothing(inst, topics):
    if os.geteuid() != 0:
        pytest.skip("needs root to send requests as user nobody")
    import orjson

    h = inst.handle()
    modules = sorted(m["name"] for m in h.rpc("module.list", {}).get()["modules"])
    # every topic, the destructive ones too: those closed to guests refuse them
    targets = sorted(topics)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", _GUEST, inst.uri, orjson.dumps(targets).decode(),
                        orjson.dumps([root, os.path.join(root, "tests"),
                                      os.path.dirname(os.path.abspath(__file__))]).decode()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = orjson.loads(r.stdout)
    assert out["leaks"] == []
    assert sorted(set(out["silent"]) - NO_RESPONSE) == []
    still_works(inst, modules)
