"""Test mode of ``job-exec``: jobs that "run" without processes (flux-core's testexec).

A job runs in test mode when its jobspec has ``attributes.system.exec.test``
(an object; optional ``run_duration``, FSD or seconds, default 0) or the
instance config says ``[exec] test = true``.  A test job answers ``start``
at once, then after ``run_duration`` ``finish`` (status 0) and the final
``release`` — with no duration all
three in the same loop turn, so the job manager logs them in one commit.
``job-exec.kill`` ends a test job at once with that signal's wait status.
If ``run_duration`` passes the job's time limit (``attributes.system.
duration``), the job gets a fatal ``timeout`` exception ("resource
allocation expired") at the limit and finishes killed (SIGKILL).  A job
handed back after a restart (``reattach``) cannot be: its shells were
lost with the instance, so it gets a fatal ``exec`` exception and finishes
killed; at unload, running test jobs end the same way.  Used for tests and
benchmarks of everything but the shells; specs/exec.md has the protocol.
"""
from __future__ import annotations

import asyncio
import math
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flux.util.fsd import parse_fsd

__all__ = ["TestExec", "run_settings", "RunSettings", "TIMEOUT_NOTE", "fail"]

TIMEOUT_NOTE = "resource allocation expired"
_KILLED = int(signal.SIGKILL)


@dataclass(slots=True, frozen=True)
class RunSettings:
    run_duration: float = 0.0
    time_limit: float = 0.0           # 0: none


def run_settings(jobspec: Any, instance_test: bool) -> RunSettings | None:
    """How a job runs in test mode, or None if it is not a test job.

    Raises ValueError naming the jobspec key when the test settings are bad.
    """
    system = {}
    if isinstance(jobspec, Mapping):
        attrs = jobspec.get("attributes")
        if isinstance(attrs, Mapping) and isinstance(attrs.get("system"), Mapping):
            system = attrs["system"]
    exec_attr = system.get("exec") if isinstance(system, Mapping) else None
    test = exec_attr.get("test") if isinstance(exec_attr, Mapping) else None
    if test is None:
        if not instance_test:
            return None
        test = {}
    if not isinstance(test, Mapping):
        raise ValueError("attributes.system.exec.test must be an object")
    run_duration = 0.0
    if "run_duration" in test:
        try:
            run_duration = parse_fsd(test["run_duration"])
        except ValueError:
            raise ValueError("attributes.system.exec.test.run_duration: invalid duration "
                             f"{test['run_duration']!r}") from None
    limit = system.get("duration", 0) if isinstance(system, Mapping) else 0
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0 \
            or math.isnan(limit):
        limit = 0.0
    return RunSettings(run_duration, float(limit))


@dataclass(slots=True)
class _Running:
    respond: Callable[[str, dict[str, Any] | None], None]
    timer: asyncio.TimerHandle | None = None


class TestExec:
    """Runs test-mode jobs for the job-exec module (rank 0): no shells, same events."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.running: dict[int, _Running] = {}

    def start(self, jobid: int, settings: RunSettings, reattach: bool,
              respond: Callable[[str, dict[str, Any] | None], None]) -> None:
        """Run JOBID; RESPOND(type, data) sends its RFC 32 responses."""
        if reattach:
            fail(respond, "job shells were lost: the instance stopped while the job was "
                          "running", started=True)
            return
        respond("start", None)
        limit = settings.time_limit
        if limit and settings.run_duration > limit:
            job = self.running[jobid] = _Running(respond)
            job.timer = asyncio.get_running_loop().call_later(limit, self._timeout, jobid)
        elif settings.run_duration > 0:
            job = self.running[jobid] = _Running(respond)
            job.timer = asyncio.get_running_loop().call_later(settings.run_duration,
                                                              self._end, jobid, 0)
        else:
            respond("finish", {"status": 0})
            _release(respond)

    def _end(self, jobid: int, status: int) -> None:
        job = self.running.pop(jobid, None)
        if job is None:
            return
        if job.timer is not None:
            job.timer.cancel()
        job.respond("finish", {"status": status})
        _release(job.respond)

    def _timeout(self, jobid: int) -> None:
        job = self.running.get(jobid)
        if job is None:
            return
        job.respond("exception", {"severity": 0, "type": "timeout", "note": TIMEOUT_NOTE})
        self._end(jobid, _KILLED)

    def kill(self, jobid: int, signum: int) -> bool:
        """End a test job as if killed by SIGNUM (its wait status); False if not ours."""
        if jobid not in self.running:
            return False
        self._end(jobid, signum)
        return True

    def stop(self) -> None:
        for jobid in list(self.running):
            job = self.running[jobid]
            job.respond("exception", {"severity": 0, "type": "exec",
                                      "note": "job killed: the instance is shutting down"})
            self._end(jobid, _KILLED)


def _release(respond: Callable[[str, dict[str, Any] | None], None]) -> None:
    respond("release", {"ranks": "all", "final": True})


def fail(respond: Callable[[str, dict[str, Any] | None], None], note: str,
         started: bool) -> None:
    """A fatal ``exec`` exception, then finish (if STARTED: killed) and the final release."""
    respond("exception", {"severity": 0, "type": "exec", "note": note})
    if started:
        respond("finish", {"status": _KILLED})
    _release(respond)
