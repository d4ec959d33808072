"""Job helpers for integration tests that talk to a real instance over RPC.

Jobs opt into test-mode exec through ``attributes.system.exec.test``;
eventlogs are read straight from the KVS, so a test sees exactly what
was committed.
"""
from __future__ import annotations

import binascii
import time
from typing import Any

import orjson

from broker.testing import TestInstance
from flux.job.JobID import JobID


def start_configured(tmp_path_factory: Any, config: str) -> TestInstance:
    """A size-1 instance whose configuration is CONFIG (TOML text)."""
    conf = tmp_path_factory.mktemp("conf")
    (conf / "jobs.toml").write_text(config)
    return TestInstance(config_path=str(conf)).start()


def jobspec(run_duration: Any = None, test: bool = True, ntasks: int = 1, duration: Any = 0,
            deps: list[dict[str, Any]] | None = None, command: list[str] | None = None,
            **system: Any) -> dict[str, Any]:
    """A V1 jobspec of NTASKS one-core tasks running COMMAND (default ``true``), in test
    mode unless TEST is false (then the command really runs)."""
    attrs: dict[str, Any] = {"duration": duration}
    if test:
        attrs["exec"] = {"test": {} if run_duration is None else {"run_duration": run_duration}}
    if deps is not None:
        attrs["dependencies"] = deps
    attrs.update(system)
    return {"version": 1,
            "resources": [{"type": "slot", "count": ntasks, "label": "task",
                           "with": [{"type": "core", "count": 1}]}],
            "tasks": [{"command": command or ["true"], "slot": "task",
                       "count": {"per_slot": 1}}],
            "attributes": {"system": attrs}}


def submit(h: Any, spec: dict[str, Any] | None = None, urgency: int = 16, flags: int = 0) -> int:
    return h.rpc("job-ingest.submit", {"jobspec": spec or jobspec(), "urgency": urgency,
                                       "flags": flags}).get()["id"]


def lookup(h: Any, key: str) -> bytes:
    """The raw value at KEY in the primary namespace."""
    reply = h.rpc("kvs.lookup", {"key": key, "flags": 0}).get()
    return binascii.a2b_base64(reply["val"]["data"])


def eventlog(h: Any, jobid: int) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in lookup(h, JobID(jobid).kvs + ".eventlog").splitlines()]


def names(h: Any, jobid: int) -> list[str]:
    return [e["name"] for e in eventlog(h, jobid)]


def wait_event(h: Any, jobid: int, name: str, timeout: float = 15.0, count: int = 1,
               after: int = 0) -> dict[str, Any]:
    """The COUNT-th event NAME past the first AFTER events, polling until TIMEOUT."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in eventlog(h, jobid)[after:] if e["name"] == name]
        if len(found) >= count:
            return found[count - 1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {name} in {names(h, jobid)}")
        time.sleep(0.02)
