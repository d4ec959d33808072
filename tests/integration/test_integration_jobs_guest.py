"""Guests (user nobody with [access] allow-guest-user) versus the instance owner."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

from broker.testing import TestInstance

CONFIG = """
[access]
allow-guest-user = true
[exec]
test = true
[resource]
monitor-force-up = true
noverify = true
[[resource.config]]
hosts = "node0"
cores = "0-3"
"""
NOBODY = 65534

# Python lives under /root, which nobody cannot read: import first, then drop privileges.
# Each line of stdin is a request [topic, payload]; each answer a line of JSON.
GUEST = """
import json, os, sys
import flux, flux.rpc, flux.future, flux.message, flux.core.handle, orjson, base64, socket, select
os.setgid(65534); os.setuid(65534)
h = flux.Flux(sys.argv[1])
for line in sys.stdin:
    topic, payload = json.loads(line)
    try:
        print(json.dumps({"ok": h.rpc(topic, payload).get()}))
    except OSError as exc:
        print(json.dumps({"errno": exc.errno, "error": exc.strerror}))
"""


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    if os.getuid() != 0:
        pytest.skip("needs root to connect as user nobody")
    conf = tmp_path_factory.mktemp("conf")
    os.chmod(conf, 0o755)
    (conf / "jobs.toml").write_text(CONFIG)
    instance = TestInstance(config_path=str(conf)).start()
    yield instance
    assert instance.stop() == 0


@pytest.fixture(scope="module")
def h(inst):
    handle = inst.handle()
    yield handle
    handle.close()


def as_guest(inst, *requests):
    """Send REQUESTS ([topic, payload] pairs) as user nobody; one answer dict each."""
    text = "".join(json.dumps(r) + "\n" for r in requests)
    out = subprocess.run([sys.executable, "-c", GUEST, inst.uri], input=text,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def jobspec(run_duration=None):
    system = {"duration": 0}
    if run_duration:
        system["exec"] = {"test": {"run_duration": run_duration}}
    return {"version": 1,
            "resources": [{"type": "slot", "count": 1, "label": "task",
                           "with": [{"type": "core", "count": 1}]}],
            "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
            "attributes": {"system": system}}


def sub(urgency=16, flags=0, spec=None):
    return ["job-ingest.submit", {"jobspec": spec or jobspec(), "urgency": urgency,
                                  "flags": flags}]


def test_guest_submission_limits(inst):
    ok, high, waitable, novalidate = as_guest(inst, sub(urgency=16), sub(urgency=17),
                                              sub(flags=4), sub(flags=8))
    assert "id" in ok["ok"]
    assert high["errno"] == errno.EPERM and "0-16" in high["error"]
    assert waitable["errno"] == errno.EPERM and "waitable" in waitable["error"]
    assert novalidate["errno"] == errno.EPERM and "novalidate" in novalidate["error"]


def test_guest_jobs_are_owned_by_the_guest(inst, h):
    import binascii

    import orjson

    from flux.job.JobID import JobID

    (reply,) = as_guest(inst, sub(urgency=0))
    jobid = reply["ok"]["id"]
    data = h.rpc("kvs.lookup", {"key": JobID(jobid).kvs + ".eventlog", "flags": 0}).get()
    submit = orjson.loads(binascii.a2b_base64(data["val"]["data"]).splitlines()[0])
    assert submit["context"]["userid"] == NOBODY
    h.rpc("job-manager.raise", {"id": jobid, "severity": 0, "type": "cancel"}).get()


def test_guest_acts_on_its_own_jobs_only(inst, h):
    h.rpc("job-manager.queue-start", {"start": False}).get()     # jobs stay pending
    mine = as_guest(inst, sub(urgency=0))[0]["ok"]["id"]
    owners = h.rpc("job-ingest.submit", {"jobspec": jobspec(), "urgency": 0,
                                         "flags": 0}).get()["id"]
    answers = as_guest(
        inst,
        ["job-manager.urgency", {"id": mine, "urgency": 10}],
        ["job-manager.urgency", {"id": mine, "urgency": 20}],
        ["job-manager.urgency", {"id": owners, "urgency": 10}],
        ["job-manager.raise", {"id": owners, "severity": 0, "type": "cancel"}],
        ["job-manager.kill", {"id": owners, "signum": 9}],
        ["job-manager.raiseall", {"userid": 0xFFFFFFFF, "type": "cancel", "severity": 0}],
        ["job-manager.raiseall", {"userid": NOBODY, "dry_run": True, "type": "cancel",
                                  "severity": 0, "states": 62}],
        ["job-manager.raise", {"id": mine, "severity": 0, "type": "cancel"}],
    )
    assert answers[0] == {"ok": {"old_urgency": 0}}
    assert answers[1]["errno"] == errno.EPERM
    assert answers[2] == {"errno": errno.EPERM,
                          "error": "guests can only reprioritize their own jobs"}
    assert answers[3] == {"errno": errno.EPERM,
                          "error": "guests can only raise exceptions on their own jobs"}
    assert answers[4]["errno"] == errno.EPERM
    assert answers[5]["errno"] == errno.EPERM
    assert answers[6]["ok"]["count"] >= 1
    assert answers[7] == {"ok": {}}
    h.rpc("job-manager.raise", {"id": owners, "severity": 0, "type": "cancel"}).get()
    h.rpc("job-manager.queue-start", {"start": True}).get()


def test_owner_only_services_refuse_guests(inst):
    answers = as_guest(inst, ["job-manager.purge", {"num_limit": 0}],
                       ["job-manager.queue-start", {"start": False}],
                       ["job-manager.queue-enable", {"enable": False}],
                       ["job-manager.wait", {"id": 1}],
                       ["job-manager.submit", {"jobs": []}],
                       ["job-manager.queue-status", {}],
                       ["job-manager.queue-list", {}])
    for answer in answers[:5]:
        assert answer["errno"] == errno.EPERM
    assert answers[5] == {"ok": {"enable": True, "start": True}}
    assert answers[6]["ok"]["queues"] == []


def test_owner_may_act_on_guest_jobs(inst, h):
    held = as_guest(inst, sub(urgency=0, spec=jobspec(run_duration="60s")))[0]["ok"]["id"]
    assert h.rpc("job-manager.urgency", {"id": held, "urgency": 31}).get() == {"old_urgency": 0}
    h.rpc("job-manager.raise", {"id": held, "severity": 0, "type": "cancel"}).get()


def test_a_guests_event_does_not_make_a_service_do_owner_work(inst, h):
    import time

    h.rpc("kvs.commit", {"namespace": "primary", "flags": 0, "ops": [
        {"key": "guest-event.k", "flags": 0,
         "dirent": {"ver": 1, "type": "val", "data": "eA=="}}]}).get()
    h.rpc("kvs.lookup", {"key": "guest-event.k", "flags": 0}).get()

    def cached() -> int:
        return h.rpc("kvs.stats", {}).get()["cache"]["entries"]

    before = cached()
    assert before > 0
    (published,) = as_guest(inst, ["event.pub", {"topic": "kvs.dropcache", "flags": 0}])
    assert "ok" in published            # a guest may publish events ...
    time.sleep(0.3)
    assert cached() >= before           # ... but kvs does not act on this one
    h.rpc("event.pub", {"topic": "kvs.dropcache", "flags": 0}).get()
    deadline = time.monotonic() + 5
    while cached() >= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cached() < before            # the owner's is obeyed
