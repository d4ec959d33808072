"""jobmgr.manager.wait (results of waitable jobs) and job-exec's test-mode settings."""
from __future__ import annotations

import errno

import pytest

from flux.errors import FluxError
from jobmgr.events import event
from jobmgr.exec.testexec import RunSettings, run_settings as settings_of
from jobmgr.job import replay
from jobmgr.manager.wait import FLUX_JOBID_ANY, Waits, wait_result


def finished(status=None, exc=None, flags=2, jobid=1):
    events = [event("submit", {"userid": 0, "urgency": 16, "flags": flags, "version": 1}, 1.0),
              event("validate", None, 2.0), event("depend", None, 2.0),
              event("priority", {"priority": 16}, 2.0)]
    if exc:
        events.append(event("exception", {"type": exc, "severity": 0, "note": "why"}, 3.0))
    if status is not None:
        events += [event("alloc", None, 3.0), event("start", None, 3.0),
                   event("finish", {"status": status}, 4.0),
                   event("release", {"ranks": "all", "final": True}, 4.0),
                   event("free", None, 4.0)]
    events.append(event("clean", None, 5.0))
    return replay(jobid, events)


@pytest.mark.parametrize("status, exc, expected", [
    (0, None, (True, "")),
    (256, None, (False, "task(s) exited with exit code 1")),
    (9, None, (False, "task(s) SIGKILL")),
    (None, "cancel", (False, "Fatal exception type=cancel why")),
])
def test_wait_result(status, exc, expected):
    assert wait_result(finished(status, exc)) == expected


class Recorder:
    def __init__(self):
        self.sent = []

    def respond(self, msg, payload):
        self.sent.append((msg, payload))

    def error(self, msg, errnum, text):
        self.sent.append((msg, errnum, text))


class Msg:
    def __init__(self, sender="c1"):
        self.sender = sender


def test_waiter_gets_the_result_once_inactive():
    rec = Recorder()
    waits = Waits(rec.respond, rec.error)
    job = finished(0, jobid=7)
    waits.added(job)
    msg = Msg()
    waits.request(msg, 7, job)
    assert rec.sent == []
    waits.inactive(job)
    assert rec.sent == [(msg, {"id": 7, "success": True, "errstr": ""})]
    with pytest.raises(FluxError) as exc:
        waits.request(Msg(), 7, None)
    assert exc.value.errno == errno.ECHILD


def test_zombie_answers_a_later_wait_and_any():
    rec = Recorder()
    waits = Waits(rec.respond, rec.error)
    job = finished(256, jobid=8)
    waits.added(job)
    waits.inactive(job)
    assert waits.zombies == {8: (False, "task(s) exited with exit code 1")}
    msg = Msg()
    waits.request(msg, FLUX_JOBID_ANY, None)
    assert rec.sent[-1][1]["id"] == 8 and not waits.zombies


def test_wait_errors():
    waits = Waits(Recorder().respond, Recorder().error)
    with pytest.raises(FluxError) as exc:
        waits.request(Msg(), FLUX_JOBID_ANY, None)
    assert exc.value.errno == errno.ECHILD and "no waitable jobs" in exc.value.strerror
    plain = finished(0, flags=0, jobid=3)
    with pytest.raises(FluxError) as exc:
        waits.request(Msg(), 3, plain)
    assert exc.value.errno == errno.EINVAL and "not waitable" in exc.value.strerror


def test_disconnect_drops_waiters_and_checkpoint_roundtrip():
    rec = Recorder()
    waits = Waits(rec.respond, rec.error)
    job = finished(0, jobid=4)
    waits.added(job)
    waits.request(Msg("gone"), 4, job)
    waits.disconnect("gone")
    waits.inactive(job)
    assert rec.sent == [] and 4 in waits.zombies
    other = Waits(rec.respond, rec.error)
    other.restore(waits.checkpoint())
    assert other.zombies == waits.zombies


def jobspec(system):
    return {"attributes": {"system": system}}


def test_run_settings():
    assert settings_of(jobspec({}), False) is None
    assert settings_of(jobspec({}), True) == RunSettings()
    assert settings_of(jobspec({"exec": {"test": {"run_duration": "2m"}}, "duration": 30}),
                       False) == RunSettings(120.0, 30.0)
    assert settings_of(jobspec({"exec": {"test": {"run_duration": 0.5}}}), False) == \
        RunSettings(0.5, 0.0)
    with pytest.raises(ValueError, match="run_duration: invalid duration 'soon'"):
        settings_of(jobspec({"exec": {"test": {"run_duration": "soon"}}}), False)
    with pytest.raises(ValueError, match="exec.test must be an object"):
        settings_of(jobspec({"exec": {"test": True}}), False)
