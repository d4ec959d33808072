"""Bad input gets a clear error and exit code, never a traceback (issue 11)."""
from __future__ import annotations

import json

import pytest

from helpers.live import JOBS_CONF, start_instance


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, JOBS_CONF)
    yield instance
    instance.stop()


def test_commands_reading_a_damaged_eventlog_fail_cleanly(inst):
    jobid = inst.flux("submit", "--urgency=hold", "true").stdout.strip()
    key = inst.flux("job", "id", "--to=kvs", jobid).stdout.strip()
    r = inst.flux("kvs", "put", "--append", f"{key}.eventlog=not json\n")
    assert r.returncode == 0, r.stderr
    for args in (("job", "eventlog", jobid), ("job", "wait-event", "-t", "5", jobid, "clean"),
                 ("job", "attach", jobid)):
        r = inst.flux(*args, timeout=30)
        assert r.returncode == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert "eventlog entry is not valid JSON" in r.stderr, (args, r.stderr)
    inst.flux("cancel", jobid)


def test_a_nan_count_is_named_as_such(inst):
    h = inst.handle()
    spec = {"version": 1, "resources": [{"type": "slot", "count": float("nan"), "label": "task",
                                         "with": [{"type": "core", "count": 1}]}],
            "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
            "attributes": {"system": {"duration": 0}}}
    with pytest.raises(OSError) as exc:
        h.rpc("job-ingest.submit", {"jobspec": json.dumps(spec), "urgency": 16,
                                    "flags": 0}).get()
    assert exc.value.strerror == ("invalid jobspec: resources[0].count: nan is not a number "
                                  "JSON allows")
    h.close()
