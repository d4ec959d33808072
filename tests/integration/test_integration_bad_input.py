"""Bad input gets a clear error and exit code, never a traceback (issue 11)."""
from __future__ import annotations

import errno
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


def _put(key: str, data: str = "eA==") -> dict:
    return {"namespace": "primary", "flags": 0,
            "ops": [{"key": key, "flags": 0, "dirent": {"ver": 1, "type": "val", "data": data}}]}


def test_refused_commits_leave_nothing_behind(inst):
    h = inst.handle()
    bad = [h.rpc("kvs.commit", _put(".")) for _ in range(10000)]
    for f in bad:
        with pytest.raises(OSError):
            f.get()
    h.rpc("kvs.commit", _put("after.refused")).get()
    assert h.rpc("kvs.lookup", {"key": "after.refused", "flags": 0}).get()["val"]["data"] == "eA=="
    h.close()


def test_a_bad_transaction_fails_alone_in_its_group_commit(inst):
    h = inst.handle()
    deep = ".".join(["d"] * 65)
    nested: dict = {"ver": 1, "type": "val", "data": "eA=="}
    for _ in range(100):
        nested = {"ver": 1, "type": "dir", "data": {"n": nested}}
    bad_dirent = {"namespace": "primary", "flags": 0,
                  "ops": [{"key": "nested", "flags": 0, "dirent": nested}]}
    # sent back to back: they go into the same group commits
    futures = []
    for i in range(50):
        futures.append(("good", h.rpc("kvs.commit", _put(f"mix.k{i}"))))
        futures.append(("deep", h.rpc("kvs.commit", _put(deep))))
        futures.append(("nested", h.rpc("kvs.commit", bad_dirent)))
    for kind, f in futures:
        if kind == "good":
            f.get()
            continue
        with pytest.raises(OSError) as exc:
            f.get()
        assert exc.value.errno == errno.EINVAL
        if kind == "deep":
            assert "more than 64 path components (65)" in exc.value.strerror
        else:
            assert "directories nested more than 64 deep" in exc.value.strerror
    assert h.rpc("kvs.lookup", {"key": "mix.k49", "flags": 0}).get()["val"]["data"] == "eA=="
    assert h.rpc("kvs.stats", {}).get()["max_batch"] > 1
    # the deepest key allowed works end to end
    ok = ".".join(["d"] * 64)
    h.rpc("kvs.commit", _put(ok)).get()
    assert h.rpc("kvs.lookup", {"key": ok, "flags": 0}).get()["val"]["data"] == "eA=="
    h.close()


def test_jobs_complete_while_a_client_commits_garbage(inst):
    import threading

    stop = threading.Event()

    def garbage() -> None:
        g = inst.handle()
        deep = ".".join(["x"] * 200)
        while not stop.is_set():
            for f in [g.rpc("kvs.commit", _put(deep)) for _ in range(20)]:
                try:
                    f.get()
                except OSError:
                    pass
        g.close()

    t = threading.Thread(target=garbage)
    t.start()
    try:
        r = inst.flux("submit", "--cc=1-100", "--wait", "--quiet", "true", timeout=120)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    states = inst.flux("jobs", "-a", "-n", "-o", "{status_abbrev}").stdout.split()
    assert states.count("CD") >= 100 and "R" not in states and "S" not in states
