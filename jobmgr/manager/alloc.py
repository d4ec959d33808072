"""The job manager's side of the scheduler protocol (RFC 27).

``sched-hello`` tells a (re)starting scheduler which jobs hold resources;
``sched-ready`` starts allocation.  Jobs whose committed state is SCHED,
with priority > 0, in a started queue, are offered with ``sched.alloc`` —
all of them in unlimited mode, each loop turn's new ones sorted by
priority then submit time.  ``sched.alloc``/``sched.free`` go out with
matchtag 0 and their responses are matched by job id
(jobmgr.manager.channel.Multiplexer).  An error response means the
scheduler is gone: allocation stops until the next hello/ready.  SUCCESS
carries R, which is written with the ``alloc`` event in one commit
(specs/scheduler.md: the scheduler does not commit R, unlike RFC 27).
A job with the debug flag gets ``debug.alloc-request`` and
``debug.free-request`` events as those requests go out.
"""
from __future__ import annotations

import asyncio
import binascii
import errno
from typing import TYPE_CHECKING, Any

import orjson

from flux.errors import FluxError
from flux.message import Message
from jobmgr.events import JobFlag
from jobmgr.job import merge_annotations
from jobmgr.manager.active import ActiveJob, job_key
from jobmgr.manager.channel import Multiplexer
from jobmgr.priority import sched_key
from jobmgr.states import JobState
from kvs.txn import RawValue

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["SchedClient", "ALLOC_SUCCESS", "ALLOC_ANNOTATE", "ALLOC_DENY", "ALLOC_CANCEL"]

ALLOC_SUCCESS, ALLOC_ANNOTATE, ALLOC_DENY, ALLOC_CANCEL = 0, 1, 2, 3
_DEBUG = int(JobFlag.DEBUG)     # the debug flag: note each request to the scheduler (RFC 21)
_dumps = orjson.dumps
_SORT_KEYS = orjson.OPT_SORT_KEYS


class SchedClient:
    def __init__(self, mgr: "Manager") -> None:
        self.stopping = False
        self._mgr = mgr
        self.ready = False
        self.mode: str | None = None
        self.sender: str | None = None
        self.free_pending = 0
        self._want: dict[int, ActiveJob] = {}
        self._flush_scheduled = False
        self._mux = Multiplexer(mgr.ctx, tag=0)
        self._mux.register("sched.alloc", self._alloc_response, self._error)
        self._mux.register("sched.free", self._free_response, self._error)

    # -- handshake ----------------------------------------------------------------------
    def hello(self, msg: Message) -> dict[str, Any]:
        """The jobs holding resources (R included, so the scheduler need not read the KVS).

        While a scheduler is connected and ready, a hello from anyone else is
        refused: taking it would leave the instance waiting for a ``sched-ready``
        that the real scheduler never sends.
        """
        if self.ready and self.sender is not None and msg.sender != self.sender:
            raise FluxError(errno.EEXIST, "sched-hello: a scheduler is already connected")
        self._suspend()
        self.sender = msg.sender
        alloc = []
        for job in self._mgr.jobs.values():
            if job.t_resources and job.R is not None:
                alloc.append({"id": job.rec.id, "priority": max(job.rec.priority, 0),
                              "userid": job.rec.userid, "t_submit": job.rec.t_submit,
                              "R": job.R})
        return {"alloc": alloc}

    def ready_request(self, msg: Message) -> dict[str, Any]:
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        mode = payload.get("mode")
        if mode not in ("unlimited", "limited", "single"):
            raise FluxError(errno.EPROTO, f"sched-ready: unknown mode {mode!r} "
                                          "(use unlimited, limited or single)")
        if mode == "limited":
            limit = payload.get("limit")
            if type(limit) is not int or limit < 1:
                raise FluxError(errno.EPROTO, f"sched-ready: limited mode needs limit >= 1, "
                                              f"got {limit!r}")
        self.mode = mode
        self.ready = True
        self.sender = msg.sender
        for job in self._mgr.jobs.values():
            self._mgr.advance(job)
        return {"count": self.pending_count()}

    def pending_count(self) -> int:
        return self._mgr.drain_idle.alloc_pending

    def _suspend(self) -> None:
        """The scheduler went away (or says hello again): nothing it was asked stands."""
        self.ready = False
        self._want.clear()
        changed = []
        for job in self._mgr.jobs.values():
            if job.alloc_pending or job.free_pending:
                job.alloc_pending = job.cancel_sent = job.free_pending = False
                changed.append(job)
        self._mgr.drain_idle.alloc_pending = 0
        self.free_pending = 0
        for job in changed:
            self._mgr.advance(job)

    def disconnect(self, sender: str) -> None:
        if sender == self.sender and self.ready:
            self._mgr.log.info("scheduler disconnected: allocation suspended")
            self._suspend()

    def _error(self, msg: Message) -> None:
        if self.ready:
            text = msg.errstr or errno.errorcode.get(msg.errnum, str(msg.errnum))
            if msg.errnum == errno.ENOSYS:      # unloaded, e.g. at shutdown
                self._mgr.log.info("scheduler is gone: allocation suspended", error=text)
            else:
                self._mgr.log.error("scheduler request failed: allocation suspended",
                                    topic=msg.topic, error=text)
        self._suspend()

    # -- alloc -----------------------------------------------------------------------------
    def stop(self) -> int:
        """The instance is shutting down: ask for no more resources and withdraw what
        was asked, so pending jobs stay pending (the Administrator's Guide: shutdown
        keeps the queue) rather than starting as exec refuses to.  Returns how many
        requests were withdrawn."""
        self.stopping = True
        self._want.clear()
        withdrawn = 0
        for job in self._mgr.jobs.values():
            if job.alloc_pending and not job.cancel_sent:
                self.cancel(job)
                withdrawn += 1
        return withdrawn

    def eligible(self, job: ActiveJob) -> bool:
        return (self.ready and not self.stopping and job.rec.state == JobState.SCHED
                and job.tstate == JobState.SCHED
                and job.rec.priority > 0 and not job.alloc_pending
                and self._mgr.queues.started(job.queue))

    def consider(self, job: ActiveJob) -> None:
        """Ask for resources for JOB at the end of this loop turn if it qualifies."""
        if not self.eligible(job):
            return
        if self.mode == "single" and (self.pending_count() or self._want):
            return
        self._want[job.rec.id] = job
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        want, self._want = self._want, {}
        jobs = [j for j in want.values() if self.eligible(j)]
        jobs.sort(key=lambda j: sched_key(j.rec.priority, j.rec.t_submit, j.rec.id))
        if self.mode == "single":
            jobs = jobs[:1]
        counts = self._mgr.drain_idle
        for job in jobs:
            job.alloc_pending = True
            counts.alloc_pending += 1
            rec = job.rec
            if rec.flags & _DEBUG:
                self._mgr.post(job, "debug.alloc-request")
            job.alloc_jobspec = job.jobspec
            self._mux.send("sched.alloc", {"id": rec.id, "priority": rec.priority,
                                           "userid": rec.userid, "t_submit": rec.t_submit,
                                           "jobspec": job.jobspec})

    def cancel(self, job: ActiveJob) -> None:
        """Withdraw JOB's alloc request (the answer comes as a CANCEL response)."""
        if job.alloc_pending and not job.cancel_sent:
            job.cancel_sent = True
            self._mgr.ctx.send_request("sched.cancel", {"id": job.rec.id})

    def jobspec_changed(self, job: ActiveJob) -> None:
        """JOB's jobspec was updated: withdraw a request made with the old one.

        The CANCEL answer puts the job back in line, and the next request
        carries the new jobspec.
        """
        if job.alloc_pending:
            self.cancel(job)

    def prioritize(self, pairs: list[list[int]]) -> None:
        if pairs and self.ready:
            self._mgr.ctx.send_request("sched.prioritize", {"jobs": pairs})

    def _retire(self, job: ActiveJob) -> None:
        if job.alloc_pending:
            job.alloc_pending = job.cancel_sent = False
            self._mgr.drain_idle.alloc_pending -= 1

    def _alloc_response(self, msg: Message) -> None:
        payload = msg.payload
        try:
            jobid, kind = payload["id"], payload["type"]
        except (KeyError, TypeError):
            self._mgr.log.error("sched.alloc: malformed response", payload=repr(payload)[:200])
            return
        job = self._mgr.jobs.get(jobid)
        if job is None or not job.alloc_pending:
            if kind == ALLOC_SUCCESS:
                self._mgr.log.error("sched.alloc: resources granted to a job that did not ask",
                                    id=jobid)
            return
        if kind == ALLOC_ANNOTATE:
            annotations = payload.get("annotations")
            if isinstance(annotations, dict):
                job.annotations = merge_annotations(job.annotations, annotations)
                self._mgr.journal.annotate(jobid, job.annotations)
        elif kind == ALLOC_SUCCESS and self.stopping and isinstance(payload.get("R"), dict):
            # granted before our cancel got there: handed straight back, the job stays
            # in SCHED with nothing in its eventlog
            self._retire(job)
            self._mux.send("sched.free", {"id": jobid, "R": payload["R"], "final": True})
            self._drop_annotations(job)
        elif kind == ALLOC_SUCCESS:
            self._retire(job)
            annotations = payload.get("annotations")
            if isinstance(annotations, dict):
                job.annotations = merge_annotations(job.annotations, annotations)
            R = payload.get("R")
            if isinstance(R, dict):
                self._granted(job, R, store=True)
            else:
                self._fetch_R(job)
        elif kind == ALLOC_DENY:
            self._retire(job)
            self._drop_annotations(job)
            note = payload.get("note") or "alloc denied"
            self._mgr.post(job, "exception", {"type": "alloc", "severity": 0, "note": str(note)})
            self._mgr.progress(job)
            self._mgr.drain_idle.check()
        elif kind == ALLOC_CANCEL:
            self._retire(job)
            self._drop_annotations(job)
            self._mgr.advance(job)
            self._mgr.drain_idle.check()
        else:
            self._mgr.log.error("sched.alloc: unknown response type", id=jobid, type=kind)

    def _drop_annotations(self, job: ActiveJob) -> None:
        if job.annotations is not None:
            job.annotations = None
            self._mgr.journal.annotate(job.rec.id, None)

    def _granted(self, job: ActiveJob, R: dict[str, Any], store: bool) -> None:
        """Post ``alloc``; with STORE, R is written in the same commit (specs/scheduler.md)."""
        if job.alloc_jobspec is not None and job.alloc_jobspec is not job.jobspec:
            R = self._follow_update(job, R)
        job.alloc_jobspec = None
        job.R = R
        ctx = {"annotations": job.annotations} if job.annotations else None
        self._mgr.post(job, "alloc", ctx)
        if store:
            self._mgr.poster.add_ops([{"key": job_key(job.rec.id) + ".R", "flags": 0,
                                       "dirent": RawValue(_dumps(R, option=_SORT_KEYS))}])
        job.annotations = None
        self._mgr.start_early(job)
        self._mgr.progress(job)
        self._mgr.drain_idle.check()

    def _follow_update(self, job: ActiveJob, R: dict[str, Any]) -> dict[str, Any]:
        """The scheduler granted a request made before JOB's jobspec was updated
        (the cancel came too late): give R the updated duration's expiration."""
        from jobmgr.manager.update import with_expiration
        from jobmgr.update import expiration_for

        system = (job.jobspec.get("attributes") or {}).get("system") or {}
        duration = system.get("duration") or 0
        if not isinstance(duration, (int, float)) or duration <= 0:
            return R
        try:
            expiration = expiration_for(R, float(duration))
        except FluxError:
            return R
        self._mgr.ctx.send_request("sched.expiration", {"id": job.rec.id,
                                                        "expiration": expiration})
        return with_expiration(R, expiration) or R

    def _fetch_R(self, job: ActiveJob) -> None:
        """A scheduler that did not put R in its answer: read the R it committed."""
        def got(msg: Message) -> None:
            R = None
            if not msg.errnum:
                try:
                    R = orjson.loads(binascii.a2b_base64(msg.payload["val"]["data"]))
                except (KeyError, TypeError, ValueError) as exc:
                    self._mgr.log.error("cannot decode R", id=job.rec.id, error=str(exc))
            if not isinstance(R, dict):
                self._mgr.post(job, "exception", {"type": "alloc", "severity": 0,
                                                  "note": "scheduler granted resources but "
                                                          "R cannot be read"})
                job.R = None
                self._mgr.progress(job)
                return
            self._granted(job, R, store=False)

        self._mgr.ctx.request_callback("kvs.lookup", {"key": job_key(job.rec.id) + ".R", "flags": 0},
                   got)

    # -- free ---------------------------------------------------------------------------------
    def free(self, job: ActiveJob) -> None:
        if job.free_pending or not self.ready:
            return
        job.free_pending = True
        self.free_pending += 1
        if job.rec.flags & _DEBUG:
            self._mgr.post(job, "debug.free-request")
        self._mux.send("sched.free", {"id": job.rec.id, "R": job.R, "final": True})

    def _free_response(self, msg: Message) -> None:
        payload = msg.payload
        jobid = payload.get("id") if isinstance(payload, dict) else None
        job = self._mgr.jobs.get(jobid)  # type: ignore[arg-type]
        if job is None or not job.free_pending:
            return
        job.free_pending = False
        self.free_pending -= 1
        if job.t_resources:
            self._mgr.post(job, "free")
        self._mgr.progress(job)

    def close(self) -> None:
        self._mux.close()
