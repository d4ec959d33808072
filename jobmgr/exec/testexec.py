"""The ``job-exec`` broker module, test mode: jobs that "run" without processes.

Real execution comes later.  Until then a job runs in test mode when its
jobspec has ``attributes.system.exec.test`` (an object; optional
``run_duration``, FSD or seconds, default 0) or the instance config says
``[exec] test = true``; any other job gets a fatal ``exec`` exception naming
why.  A test job answers ``start`` at once, then after ``run_duration``
``finish`` (status 0) and the final ``release`` — with no duration all
three in the same loop turn, so the job manager logs them in one commit.
``job-exec.kill`` ends a test job at once with that signal's wait status.
If ``run_duration`` passes the job's time limit (``attributes.system.
duration``), the job gets a fatal ``timeout`` exception ("resource
allocation expired") at the limit and finishes killed (SIGKILL).  A job
handed back after a restart (``reattach``) cannot be: its shells were
lost with the instance, so it gets a fatal ``exec`` exception and finishes
killed; at unload, running test jobs end the same way.
specs/job-manager.md ("Exec") has the protocol.
"""
from __future__ import annotations

import asyncio
import errno
import math
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker.module import Module, request_handler
from flux.errors import FluxError
from flux.message import Message
from flux.util.fsd import parse_fsd

__all__ = ["JobExec", "run_settings", "RunSettings", "TIMEOUT_NOTE"]

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
    msg: Message
    timer: asyncio.TimerHandle | None = None


class JobExec(Module):
    name = "job-exec"

    async def start(self) -> None:
        self.instance_test = bool(self.ctx.conf_get("exec.test", False))
        self.running: dict[int, _Running] = {}
        # the job manager answers hello by sending start requests at once, so
        # say hello only once this module's service is registered (after start)
        self.ctx.create_task(self._hello(), "job-exec hello")

    async def _hello(self) -> None:
        try:
            await self.ctx.rpc("job-manager.exec-hello", {"service": "job-exec"})
        except FluxError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            self.ctx.log.warning("job-manager is not loaded; job-exec waits to be asked")

    async def stop(self) -> None:
        for jobid in list(self.running):
            job = self.running[jobid]
            self._reply(job.msg, jobid, "exception",
                        {"severity": 0, "type": "exec",
                         "note": "job killed: the instance is shutting down"})
            self._end(jobid, _KILLED)

    # -- protocol --------------------------------------------------------------------------
    def _reply(self, msg: Message, jobid: int, kind: str,
               data: dict[str, Any] | None = None) -> None:
        self.ctx.respond(msg, {"id": jobid, "type": kind, "data": data or {}})

    def _release(self, msg: Message, jobid: int) -> None:
        self._reply(msg, jobid, "release", {"ranks": "all", "final": True})

    def _fail(self, msg: Message, jobid: int, note: str, started: bool) -> None:
        self._reply(msg, jobid, "exception", {"severity": 0, "type": "exec", "note": note})
        if started:
            self._reply(msg, jobid, "finish", {"status": _KILLED})
        self._release(msg, jobid)

    @request_handler("job-exec.start")
    def start_job(self, msg: Message) -> None:
        payload = msg.payload
        if not isinstance(payload, dict) or type(payload.get("id")) is not int:
            raise FluxError(errno.EPROTO, "job-exec.start: payload needs an integer 'id'")
        jobid = payload["id"]
        if jobid in self.running:
            raise FluxError(errno.EEXIST, f"job-exec.start: job {jobid} is already running")
        if payload.get("reattach"):
            self._fail(msg, jobid, "job shells were lost: the instance stopped while the job "
                                   "was running", started=True)
            return
        try:
            settings = run_settings(payload.get("jobspec"), self.instance_test)
        except ValueError as exc:
            self._fail(msg, jobid, str(exc), started=False)
            return
        if settings is None:
            self._fail(msg, jobid, "job execution is not available yet: submit in test mode "
                                   "(attributes.system.exec.test) or set [exec] test = true",
                       started=False)
            return
        self._reply(msg, jobid, "start")
        limit = settings.time_limit
        if limit and settings.run_duration > limit:
            job = self.running[jobid] = _Running(msg)
            job.timer = asyncio.get_running_loop().call_later(limit, self._timeout, jobid)
        elif settings.run_duration > 0:
            job = self.running[jobid] = _Running(msg)
            job.timer = asyncio.get_running_loop().call_later(settings.run_duration,
                                                              self._end, jobid, 0)
        else:
            self._reply(msg, jobid, "finish", {"status": 0})
            self._release(msg, jobid)

    def _end(self, jobid: int, status: int) -> None:
        job = self.running.pop(jobid, None)
        if job is None:
            return
        if job.timer is not None:
            job.timer.cancel()
        self._reply(job.msg, jobid, "finish", {"status": status})
        self._release(job.msg, jobid)

    def _timeout(self, jobid: int) -> None:
        job = self.running.get(jobid)
        if job is None:
            return
        self._reply(job.msg, jobid, "exception",
                    {"severity": 0, "type": "timeout", "note": TIMEOUT_NOTE})
        self._end(jobid, _KILLED)

    @request_handler("job-exec.kill")
    def kill(self, msg: Message) -> dict[str, Any]:
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        jobid, signum = payload.get("id"), payload.get("signal", int(signal.SIGTERM))
        if type(jobid) is not int:
            raise FluxError(errno.EPROTO, "job-exec.kill: payload needs an integer 'id'")
        if type(signum) is not int or not 1 <= signum <= 64:
            raise FluxError(errno.EINVAL, f"job-exec.kill: invalid signal {signum!r}")
        if jobid not in self.running:
            raise FluxError(errno.ENOENT, f"job-exec.kill: job {jobid} is not running")
        # a process killed by signal N has wait status N
        self._end(jobid, signum)
        return {}
