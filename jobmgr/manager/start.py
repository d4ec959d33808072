"""The job manager's side of the exec protocol (RFC 32).

After ``job-manager.exec-hello``, a job whose committed state is RUN (and
that has no fatal exception on the way) gets one ``job-exec.start``
request; its responses — ``start``/``reattached``, ``release``,
``exception``, ``finish`` — become events.  Exec is done with a job once it
has posted the final ``release``.  A fatal exception on a job whose shells
may be running sends ``job-exec.kill`` (SIGTERM).  If the exec service goes
away with jobs in its hands, those jobs get a fatal ``exec`` exception and,
if they had started, a ``finish`` with SIGKILL's wait status: their shells
are gone.
"""
from __future__ import annotations

import errno
import signal
from typing import TYPE_CHECKING, Any

from flux.errors import FluxError
from flux.message import Message
from jobmgr.manager.active import ActiveJob, ExecPhase
from jobmgr.manager.channel import Multiplexer

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["ExecClient"]

_KILLED = int(signal.SIGKILL)          # wait status of a process killed by SIGKILL


class ExecClient:
    def __init__(self, mgr: "Manager") -> None:
        self._mgr = mgr
        self.service: str | None = None
        self.sender: str | None = None
        self._mux = Multiplexer(mgr.ctx)
        self._mux.register("job-exec.start", self._response, self._error)

    @property
    def ready(self) -> bool:
        return self.service is not None

    def hello(self, msg: Message) -> dict[str, Any]:
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        service = payload.get("service")
        if not isinstance(service, str) or not service:
            raise FluxError(errno.EPROTO, "exec-hello: 'service' must be a non-empty string")
        if self.ready and self.sender is not None and msg.sender != self.sender:
            # starts of running jobs would go to a service that knows nothing of them
            raise FluxError(errno.EEXIST, f"exec-hello: exec service {self.service!r} is "
                                          "already registered")
        if service != "job-exec":
            self._mux.register(f"{service}.start", self._response, self._error)
        self.service = service
        self.sender = msg.sender
        for job in list(self._mgr.jobs.values()):
            self._mgr.advance(job)
        return {}

    def start(self, job: ActiveJob) -> None:
        """Send JOB to exec (reattach when its shells were started before a restart)."""
        if not self.ready or job.exec_phase != ExecPhase.NONE:
            return
        job.exec_phase = ExecPhase.STARTING
        rec = job.rec
        self._mux.send(f"{self.service}.start",
                       {"id": rec.id, "userid": rec.userid, "jobspec": job.jobspec, "R": job.R,
                        "reattach": rec.started})

    def kill(self, job: ActiveJob, signum: int = int(signal.SIGTERM),
             exception: bool = False) -> None:
        """Signal JOB's shells; EXCEPTION marks the kill that follows a fatal exception
        (exec then escalates to SIGKILL, and ignores it if it is already killing the job)."""
        if self.ready and job.exec_phase == ExecPhase.STARTING:
            payload: dict[str, Any] = {"id": job.rec.id, "signal": signum}
            if exception:
                job.kill_sent = True
                payload["exception"] = True
            self._mgr.ctx.send_request(f"{self.service}.kill", payload)

    def expiration(self, job: ActiveJob, expiration: float) -> None:
        """Move a running job's time limit (its resource-update is durable)."""
        if self.ready and job.exec_phase == ExecPhase.STARTING:
            self._mgr.ctx.send_request(f"{self.service}.expiration",
                                       {"id": job.rec.id, "expiration": expiration})

    def _response(self, msg: Message) -> None:
        payload = msg.payload
        try:
            jobid, kind = payload["id"], payload["type"]
        except (KeyError, TypeError):
            self._mgr.log.error("exec: malformed start response", payload=repr(payload)[:200])
            return
        data = payload.get("data") or {}
        job = self._mgr.jobs.get(jobid)
        if job is None or job.exec_phase != ExecPhase.STARTING:
            return
        mgr = self._mgr
        try:
            if kind == "start":
                mgr.post(job, "start")
            elif kind == "reattached":
                pass
            elif kind == "release":
                mgr.post(job, "release", {"ranks": data.get("ranks", "all"),
                                          "final": bool(data.get("final", False))})
                if job.t_release_final:
                    job.exec_phase = ExecPhase.DONE
            elif kind == "exception":
                ctx = {"type": str(data.get("type") or "exec"),
                       "severity": data.get("severity", 0), "note": str(data.get("note") or "")}
                mgr.post(job, "exception", ctx)
            elif kind == "finish":
                mgr.post(job, "finish", {"status": data.get("status", 0)})
            else:
                mgr.log.error("exec: unknown response type", id=jobid, type=kind)
                return
        except FluxError as exc:
            mgr.log.error("exec response cannot be logged", id=jobid, type=kind,
                          error=exc.strerror)
            return
        mgr.progress(job)

    def _error(self, msg: Message) -> None:
        """Exec went away: the jobs it was running cannot report any more."""
        self._mgr.log.error("exec service failed", error=msg.errstr or str(msg.errnum))
        self.service = None
        for job in list(self._mgr.jobs.values()):
            self.abandon(job, f"exec service unavailable: {msg.errstr or 'unloaded'}")

    def abandon(self, job: ActiveJob, note: str) -> None:
        """Give up on JOB's shells: fatal exception, and finish if they had started."""
        if job.exec_phase != ExecPhase.STARTING:
            return
        mgr = self._mgr
        job.exec_phase = ExecPhase.DONE
        mgr.try_post(job, "exception", {"type": "exec", "severity": 0, "note": note})
        if job.t_started and not job.t_finished:
            mgr.post(job, "finish", {"status": _KILLED})
        if not job.t_release_final:
            mgr.post(job, "release", {"ranks": "all", "final": True})
        mgr.progress(job)

    def disconnect(self, sender: str) -> None:
        if sender == self.sender and self.ready:
            self.service = None

    def close(self) -> None:
        self._mux.close()
