"""flux job memo (flux-job(1)): notes on a job, shown as annotations.user, kept or volatile."""
from __future__ import annotations

import json

import os

from broker.testing import TestInstance
from helpers.live import JOBS_CONF, guest


def test_memos_are_events_and_volatile_memos_are_not(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    os.chmod(conf, 0o755)
    (conf / "jobs.toml").write_text(JOBS_CONF)
    state = tmp_path / "state"

    def start() -> TestInstance:
        return TestInstance(config_path=str(conf), setattrs=[f"statedir={state}"]).start()

    inst = start()
    try:
        jobid = inst.flux("submit", "--urgency=hold", "true").stdout.strip()
        assert inst.flux("job", "memo", jobid, "note=first", "n=3").returncode == 0
        assert inst.flux("job", "memo", "--volatile", jobid, "uri=ssh://h/p").returncode == 0
        assert inst.flux("job", "memo", jobid, "n=null").returncode == 0
        r = inst.flux("jobs", "-no", "{user.note} {user.uri} {annotations}", jobid)
        note, uri, annotations = r.stdout.split(" ", 2)
        assert (note, uri) == ("first", "ssh://h/p")
        assert json.loads(annotations)["user"] == {"note": "first", "uri": "ssh://h/p"}
        events = [json.loads(line) for line in
                  inst.flux("job", "eventlog", "-f", "json", jobid).stdout.splitlines()]
        assert [e["context"] for e in events if e["name"] == "memo"] == [
            {"note": "first", "n": 3}, {"n": None}]
        r = inst.flux("job", "memo", jobid, "bad")
        assert r.returncode == 2 and "KEY=VALUE" in r.stderr
        r = inst.flux("job", "memo", "ƒ1", "a=1")
        assert r.returncode == 1 and "unknown job id" in r.stderr
        r = guest(inst, "job", "memo", jobid, "a=1")
        assert r.returncode == 1 and "guests can only add memos to their own jobs" in r.stderr
        inst.stop()
        inst = start()
        # a restart replays the kept memo; the volatile one is gone
        r = inst.flux("jobs", "-no", "{user.note}|{user.uri}", jobid)
        assert r.stdout.strip() == "first|"
        inst.flux("cancel", jobid)
    finally:
        inst.stop()
