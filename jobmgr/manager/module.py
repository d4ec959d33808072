"""The ``job-manager`` broker module: RPC handlers over jobmgr.manager.

The work is in the ``jobmgr/manager`` package, one file per concern
(post, journal, submit, alloc, start, raise_kill, urgency, queues, wait,
purge, restart, drain_idle); this module only wires requests to it and
runs the start-up recovery, the periodic checkpoint and the age purge.
specs/job-manager.md describes the whole.
"""
from __future__ import annotations

import asyncio
import errno
import time
from typing import Any

from broker.module import Module, request_handler
from flux.errors import FluxError
from flux.job.JobID import JobID
from flux.message import Message
from jobmgr.policy import JobPolicy, parse_job_policy
from jobmgr.manager import jobtap_rpc
from jobmgr.manager import memo as memo_rpc
from jobmgr.manager import raise_kill, restart
from jobmgr.manager import submit as submit_rpc
from jobmgr.manager import urgency as urgency_rpc
from jobmgr.manager.core import Manager
from jobmgr.manager.lookup import payload_of
from jobmgr.manager.perilog import parse_perilog
from jobmgr.manager.purge import parse_purge_limits, select
from jobmgr.states import JobState

__all__ = ["JobManager", "CHECKPOINT_PERIOD"]

#: seconds between checkpoints while jobs change: a restart after a crash then
#: replays only the jobs of the last few seconds (a write costs about 25 ms at
#: 100,000 inactive jobs, all of it in C)
CHECKPOINT_PERIOD = 2.0
_PURGE_COMMIT = 10000


def _optional_limit(payload: dict[str, Any], key: str, kind: type) -> Any:
    value = payload.get(key, -1)
    if value is None or (not isinstance(value, bool) and isinstance(value, (int, float))
                         and value == -1):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
            or (kind is int and type(value) is not int):
        raise FluxError(errno.EPROTO, f"job-manager.purge: '{key}' must be a non-negative "
                                      f"{'integer' if kind is int else 'number'} or -1, "
                                      f"got {value!r}")
    return value


class JobManager(Module):
    name = "job-manager"

    async def start(self) -> None:
        try:
            policy = parse_job_policy(self.ctx.config)
            limits = parse_purge_limits(self.ctx.conf_get("job-manager"))
            prolog, epilog = parse_perilog(self.ctx.conf_get("job-manager"))
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"job-manager: {exc}") from None
        self.mgr = Manager(self.ctx, policy, limits, prolog, epilog)
        try:
            directives, self._pluginpath = jobtap_rpc.parse_config(
                self.ctx.conf_get("job-manager"))
            self.mgr.jobtap.apply_directives(directives, self._pluginpath)
        except (ValueError, FluxError) as exc:
            raise FluxError(errno.EINVAL, f"job-manager: "
                            f"{exc.strerror if isinstance(exc, FluxError) else exc}") from None
        self.stats = await restart.recover(self.mgr)
        # one checkpoint write at a time: an older snapshot must not land after a newer
        self._ckpt_lock = asyncio.Lock()
        self._ckpt_task = self.ctx.create_task(self._checkpoints(), "job-manager checkpoint")
        self._expiration_task = self.ctx.create_task(
            self.mgr.update.follow_instance_expiration(), "job-manager instance expiration")
        self._age_timer: asyncio.TimerHandle | None = None
        self._arm_age_purge()

    async def stop(self) -> None:
        self._ckpt_task.cancel()
        self._expiration_task.cancel()
        if self._age_timer is not None:
            self._age_timer.cancel()
        try:
            async with self._ckpt_lock:
                await restart.write_checkpoint(self.mgr, final=True)
        except OSError as exc:
            self.ctx.log.error("job-manager checkpoint failed at unload", error=str(exc))
        self.mgr.close()

    async def _checkpoints(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_PERIOD)
            if self.mgr.changes:
                try:
                    async with self._ckpt_lock:
                        await restart.write_checkpoint(self.mgr)
                except OSError as exc:
                    self.ctx.log.error("job-manager checkpoint failed", error=str(exc))

    def _arm_age_purge(self) -> None:
        age = self.mgr.purge_limits.age
        if age is None:
            return
        loop = asyncio.get_running_loop()
        self._age_timer = loop.call_later(max(1.0, min(age / 4, 60.0)), self._age_purge)

    def _age_purge(self) -> None:
        self.mgr.schedule_purge()
        self._arm_age_purge()

    def disconnect(self, sender: str) -> None:
        self.mgr.sched.disconnect(sender)
        self.mgr.execs.disconnect(sender)
        self.mgr.waits.disconnect(sender)
        self.mgr.drain_idle.disconnect(sender)

    def config_reload(self, config: Any) -> None:
        try:
            limits = parse_purge_limits(config.get("job-manager"))
            prolog, epilog = parse_perilog(config.get("job-manager"))
            # [policy] limits as flux update checks them, and the queues
            policy = parse_job_policy(config)
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"job-manager: {exc}") from None
        self.mgr.policy = policy
        self._reconfigure_queues(policy)
        self.mgr.purge_limits = limits
        self.mgr.perilog.prolog, self.mgr.perilog.epilog = prolog, epilog
        if self._age_timer is not None:
            self._age_timer.cancel()
            self._age_timer = None
        self._arm_age_purge()
        self.mgr.schedule_purge()

    def _reconfigure_queues(self, policy: JobPolicy) -> None:
        """Add and remove queues as the reloaded ``[queues]`` says (flux-core's
        queue_configure).  A pending job whose queue is gone stays pending and is
        not scheduled (its alloc request is withdrawn) until the queue comes back;
        a new anonymous queue is started, so its jobs go to the scheduler."""
        mgr = self.mgr
        added, removed = mgr.queues.reconfigure(policy)
        if not added and not removed:
            return
        # a module refusing the config after this one gives us the old one back in
        # this same turn: the queues re-added then keep their state (see reconfigure)
        asyncio.get_running_loop().call_soon(mgr.queues.forget_removed)
        for q in added:
            # job-ingest may remember a queue of that name that was disabled
            self.ctx.send_request("job-ingest.queue-update",
                                  {"name": q.name, "enable": q.enable,
                                   "reason": q.disable_reason})
            self.ctx.log.info(f"queue {q.name or '(anonymous)'} added: submission "
                              f"{'enabled' if q.enable else 'disabled'}, scheduling "
                              f"{'started' if q.start else 'stopped'}")
        stranded = 0
        for job in list(mgr.jobs.values()):
            if job.rec.state != JobState.SCHED:
                continue
            if mgr.queues.started(job.queue):
                mgr.advance(job)
            else:
                mgr.sched.cancel(job)
                if policy.named and job.queue not in policy.queues:
                    stranded += 1
        for q in removed:
            self.ctx.log.info(f"queue {q.name or '(anonymous)'} removed")
        if stranded:
            self.ctx.log.warning(f"{stranded} pending job(s) of removed queues will not be "
                                 "scheduled until their queue is configured again")
        # the checkpoint holds one entry per queue: write the new set now
        self.ctx.create_task(self._queues_saved(), "job-manager queue checkpoint")

    async def _queues_saved(self) -> None:
        try:
            await self._queues_durable()
        except FluxError as exc:
            self.ctx.log.error(f"job-manager checkpoint failed: {exc.strerror}")

    # -- submission and the journal ------------------------------------------------------
    @request_handler("job-manager.submit")
    def submit(self, msg: Message) -> dict[str, Any] | None:
        return submit_rpc.submit(self.mgr, msg)

    @request_handler("job-manager.jobtap")
    def jobtap(self, msg: Message) -> dict[str, Any]:
        return jobtap_rpc.request(self.mgr.jobtap, payload_of(msg), self._pluginpath)

    @request_handler("job-manager.getinfo", allow_guest=True)
    def getinfo(self, msg: Message) -> dict[str, Any]:
        return {"max_jobid": self.mgr.max_jobid}

    @request_handler("job-manager.events-journal", streaming=True)
    def events_journal(self, msg: Message) -> None:
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        stream = self.ctx.stream(msg)
        self.mgr.journal.subscribe(stream, bool(payload.get("full")), self.mgr.jobs.values())

    @request_handler("job-manager.events-journal-cancel")
    def events_journal_cancel(self, msg: Message) -> None:
        """End the sender's journal stream with that matchtag (ENODATA); no answer."""
        payload = payload_of(msg)
        tag = payload.get("matchtag")
        if type(tag) is not int:
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'matchtag' must be an integer")
        for stream in self.ctx.streams_of(msg.sender):
            if stream.request.matchtag == tag \
                    and stream.request.topic == "job-manager.events-journal":
                stream._cancel(respond=True)
        return None

    # -- scheduler and exec --------------------------------------------------------------
    @request_handler("job-manager.sched-hello")
    def sched_hello(self, msg: Message) -> dict[str, Any]:
        return self.mgr.sched.hello(msg)

    @request_handler("job-manager.sched-ready")
    def sched_ready(self, msg: Message) -> dict[str, Any]:
        return self.mgr.sched.ready_request(msg)

    @request_handler("job-manager.exec-hello")
    def exec_hello(self, msg: Message) -> dict[str, Any]:
        return self.mgr.execs.hello(msg)

    # -- job control ---------------------------------------------------------------------
    @request_handler("job-manager.raise", allow_guest=True)
    def raise_(self, msg: Message) -> None:
        raise_kill.raise_exception(self.mgr, msg)

    @request_handler("job-manager.kill", allow_guest=True)
    def kill(self, msg: Message) -> dict[str, Any]:
        return raise_kill.kill(self.mgr, msg)

    @request_handler("job-manager.raiseall", allow_guest=True)
    def raiseall(self, msg: Message) -> dict[str, Any] | None:
        return raise_kill.raiseall(self.mgr, msg)

    @request_handler("job-manager.killall", allow_guest=True)
    def killall(self, msg: Message) -> dict[str, Any]:
        return raise_kill.killall(self.mgr, msg)

    @request_handler("job-manager.memo", allow_guest=True)
    def memo(self, msg: Message) -> dict[str, Any] | None:
        return memo_rpc.memo(self.mgr, msg)

    @request_handler("job-manager.update", allow_guest=True)
    def update(self, msg: Message) -> None:
        self.mgr.update.request(msg)

    @request_handler("job-manager.urgency", allow_guest=True)
    def urgency(self, msg: Message) -> None:
        urgency_rpc.set_urgency(self.mgr, msg)

    @request_handler("job-manager.wait")
    def wait(self, msg: Message) -> None:
        payload = payload_of(msg)
        jobid = payload.get("id")
        if type(jobid) is not int or jobid < 0:
            raise FluxError(errno.EPROTO, f"job-manager.wait: 'id' must be a job id, "
                                          f"got {jobid!r}")
        job = self.mgr.jobs.get(jobid)
        self.mgr.waits.request(msg, jobid, job.rec if job is not None else None)

    @request_handler("job-manager.purge")
    def purge(self, msg: Message) -> dict[str, Any] | None:
        payload = payload_of(msg)
        mgr = self.mgr
        ids = payload.get("ids")
        if ids is not None:
            if not isinstance(ids, list) or not all(type(i) is int and i >= 0 for i in ids):
                raise FluxError(errno.EPROTO, "job-manager.purge: 'ids' must be an array of "
                                              "job ids")
            for jobid in ids:
                # flux-core's words, with the id as users write it
                if jobid in mgr.jobs:
                    raise FluxError(errno.EINVAL, "cannot purge active job "
                                                  f"{JobID(jobid).f58}")
                if jobid not in mgr.inactive:
                    raise FluxError(errno.ENOENT, f"job {JobID(jobid).f58}: id not found")
            chosen = list(dict.fromkeys(ids))
        else:
            age = _optional_limit(payload, "age_limit", float)
            num = _optional_limit(payload, "num_limit", int)
            chosen = select(mgr.inactive, time.time(), age, num)
        if not payload.get("force"):
            return {"count": len(chosen)}
        if not chosen:
            return {"count": 0}
        for start in range(0, len(chosen), _PURGE_COMMIT):
            part = chosen[start:start + _PURGE_COMMIT]
            last = start + _PURGE_COMMIT >= len(chosen)
            mgr.purge(part, (lambda _count: self.ctx.respond(msg, {"count": len(chosen)}))
                      if last else None)
            mgr.poster.flush(force=True)
        return None

    # -- queues ----------------------------------------------------------------------------
    @request_handler("job-manager.queue-list", allow_guest=True)
    def queue_list(self, msg: Message) -> dict[str, Any]:
        return {"queues": self.mgr.queues.names(), "default": self.mgr.queues.default}

    @request_handler("job-manager.queue-status", allow_guest=True)
    def queue_status(self, msg: Message) -> dict[str, Any]:
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        return self.mgr.queues.get(payload.get("name")).status()

    def _queue_args(self, msg: Message, flag: str) -> tuple[list[Any], bool, str | None, bool]:
        payload = payload_of(msg)
        value = payload.get(flag)
        if not isinstance(value, bool):
            raise FluxError(errno.EPROTO, f"{msg.topic}: '{flag}' must be a boolean")
        reason = payload.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'reason' must be a string")
        name = payload.get("name")
        if name is not None and not isinstance(name, str):
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'name' must be a string")
        queues = self.mgr.queues.select(name, bool(payload.get("all")))
        return queues, value, reason or None, not payload.get("nocheckpoint")

    async def _queues_durable(self) -> dict[str, Any]:
        """Answer a queue change once it is on disk: queue state lives in the
        checkpoint, so one is written now rather than within the period (a crash in
        between lost an acknowledged ``flux queue disable``)."""
        self.mgr.changes += 1
        async with self._ckpt_lock:
            try:
                await restart.write_checkpoint(self.mgr)
            except OSError as exc:
                raise FluxError(exc.errno or errno.EIO,
                                f"the queue change is made but could not be saved: "
                                f"{exc.strerror or exc}") from None
        return {}

    @request_handler("job-manager.queue-enable")
    def queue_enable(self, msg: Message) -> Any:
        queues, enable, reason, keep = self._queue_args(msg, "enable")
        changed = self.mgr.queues.set_enable(queues, enable, reason, keep)
        for q in changed:
            self.ctx.send_request("job-ingest.queue-update",
                                  {"name": q.name, "enable": q.enable,
                                   "reason": q.disable_reason})
        return self._queues_durable()

    @request_handler("job-manager.queue-start")
    def queue_start(self, msg: Message) -> Any:
        queues, start, reason, keep = self._queue_args(msg, "start")
        changed = self.mgr.queues.set_start(queues, start, reason, keep)
        names = {q.name for q in changed}
        if names:
            for job in list(self.mgr.jobs.values()):
                if job.queue in names:
                    if start:
                        self.mgr.advance(job)
                    else:
                        self.mgr.sched.cancel(job)
        return self._queues_durable()

    @request_handler("job-manager.alloc-query", allow_guest=True)
    def alloc_query(self, msg: Message) -> dict[str, Any]:
        mgr = self.mgr
        queued = sum(1 for job in mgr.jobs.values()
                     if job.rec.state == JobState.SCHED and not job.alloc_pending
                     and job.rec.priority > 0)
        return {"queue_length": queued, "alloc_pending": mgr.drain_idle.alloc_pending,
                "free_pending": mgr.sched.free_pending, "running": mgr.drain_idle.running}

    @request_handler("job-manager.stats", allow_guest=True)
    def stats_request(self, msg: Message) -> dict[str, Any]:
        mgr = self.mgr
        return {"active": len(mgr.jobs), "inactive": len(mgr.inactive),
                "max_jobid": mgr.max_jobid, "commits": mgr.poster.commits,
                "events": mgr.poster.events_posted, "journal_listeners": mgr.journal.listeners,
                "restart": {"replayed": self.stats.replayed, "lost": self.stats.lost,
                            "full": self.stats.full, "seconds": self.stats.seconds,
                            "cpu_seconds": self.stats.cpu_seconds,
                            "from_section": self.stats.from_section}}

    @request_handler("job-manager.stats-get", allow_guest=True)
    def stats_get(self, msg: Message) -> dict[str, Any]:
        """Flux's name for the job manager's counters, with the message counters
        every module reports; no housekeeping jobs here (the epilog runs before the
        free), so that part is always empty."""
        out = self.stats_request(msg)
        out.update({"active_jobs": out["active"], "inactive_jobs": out["inactive"],
                    "housekeeping": {"running": {}}})
        out.update(self.ctx.stats())
        return out

    @request_handler("job-manager.idle", allow_guest=True)
    def idle(self, msg: Message) -> None:
        self.mgr.drain_idle.wait_idle(msg)

    @request_handler("job-manager.stop-alloc")
    def stop_alloc(self, msg: Message) -> dict[str, Any]:
        """The broker's shutdown, before running jobs are ended: no pending job is given
        the resources they free (it would only fail to start); they stay queued."""
        return {"withdrawn": self.mgr.sched.stop()}

    @request_handler("job-manager.drain", allow_guest=True)
    def drain(self, msg: Message) -> None:
        self.mgr.drain_idle.wait_drain(msg)
