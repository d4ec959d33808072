"""``job-manager.update``: jobspec updates as events, and time limits that follow R.

A request is checked by ``jobmgr.update.plan_update`` (pure); when the plan
asks for it, the scheduler is consulted first (``feasibility.check`` with
the updated jobspec for a queue change, ``sched.expiration`` for a running
job's new time limit: its refusal refuses the update).  Then, in one
commit: ``set-flags immutable`` when the owner bypassed a guest job's
limits, ``jobspec-update`` with every key, and for a running job
``resource-update`` with the new expiration.  The answer comes once they
are durable.  The job's current jobspec is replaced as the events are
posted, so an alloc request sent afterwards carries it; an alloc request
already out is withdrawn and sent again (``Manager.on_applied``).

The instance's own expiration (``resource.R``, which a child instance
rewrites when its parent moves its time limit) is watched: when it
changes, every running job that has no duration of its own but an
expiration (given by the scheduler from the instance's) gets a
``resource-update`` with the new one, and so on down a hierarchy.
"""
from __future__ import annotations

import asyncio
import errno
from typing import TYPE_CHECKING, Any

import orjson

from kvs.constants import FLUX_KVS_WAITCREATE, FLUX_KVS_WATCH
from flux.errors import FluxError
from flux.job.JobID import JobID
from flux.message import Message
from jobmgr.manager.lookup import is_owner
from jobmgr.update import UpdatePlan, UpdateTarget, check_request, plan_update
from jobmgr.states import JobState

if TYPE_CHECKING:
    from jobmgr.manager.active import ActiveJob
    from jobmgr.manager.core import Manager

__all__ = ["UpdateService", "with_expiration"]

_RESOURCE_R = "resource.R"
_QUEUE = "attributes.system.queue"


def with_expiration(R: dict[str, Any] | None, expiration: float) -> dict[str, Any] | None:
    """A copy of R whose execution.expiration is EXPIRATION (None stays None)."""
    if R is None:
        return None
    execution = dict(R.get("execution") or {})
    execution["expiration"] = float(expiration)
    return {**R, "execution": execution}


def _duration_of(jobspec: dict[str, Any]) -> float:
    system = (jobspec.get("attributes") or {}).get("system") or {}
    value = system.get("duration", 0) if isinstance(system, dict) else 0
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else 0.0


class UpdateService:
    def __init__(self, mgr: "Manager") -> None:
        self._mgr = mgr
        self._pending: set[asyncio.Task[Any]] = set()
        self.instance_expiration: float | None = None
        self.updates = 0

    # -- requests -------------------------------------------------------------------------
    def request(self, msg: Message) -> None:
        mgr = self._mgr
        jobid, updates = check_request(msg.payload, msg.topic)
        job = mgr.jobs.get(jobid)
        if job is None:
            if jobid in mgr.inactive:
                raise FluxError(errno.EINVAL, "job is inactive")
            raise FluxError(errno.ENOENT, "unknown job id")
        owner = is_owner(msg)
        plan = self._plan(job, updates, msg.userid, owner)
        if not plan.feasibility and plan.expiration is None:
            self._post(msg, job, plan)
            return
        task = mgr.ctx.create_task(self._ask_scheduler(msg, job, updates, plan),
                                   name=f"update {JobID(jobid).f58}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _plan(self, job: "ActiveJob", updates: dict[str, Any], userid: int,
              owner: bool) -> UpdatePlan:
        mgr = self._mgr
        target = UpdateTarget(job.rec.id, job.rec.userid, job.tstate, job.rec.flags,
                              job.jobspec, job.R)
        return plan_update(target, updates, userid, owner, mgr.policy,
                           lambda name: mgr.queues.get(name).refusal())

    async def _ask_scheduler(self, msg: Message, job: "ActiveJob", updates: dict[str, Any],
                             plan: UpdatePlan) -> None:
        ctx = self._mgr.ctx
        try:
            if plan.feasibility:
                try:
                    await ctx.rpc("feasibility.check", {"jobspec": plan.jobspec})
                except FluxError as exc:
                    if exc.errno != errno.ENOSYS:
                        why = exc.strerror or "job is not feasible"
                        raise FluxError(errno.EINVAL, f"{_QUEUE}: {why}"
                                        if _QUEUE in updates else why) from None
            if plan.expiration is not None:
                try:
                    await ctx.rpc("sched.expiration", {"id": job.rec.id,
                                                       "expiration": plan.expiration})
                except FluxError as exc:
                    if exc.errno != errno.ENOSYS:
                        why = f": {exc.strerror}" if exc.strerror else ""
                        raise FluxError(exc.errno or errno.EINVAL,
                                        f"scheduler refused expiration update{why}") from None
            # the job may have moved on while the scheduler answered: check again
            if self._mgr.jobs.get(job.rec.id) is not job:
                raise FluxError(errno.EINVAL, "job is inactive")
            again = self._plan(job, updates, msg.userid, is_owner(msg))
            if (again.expiration is None) != (plan.expiration is None):
                raise FluxError(errno.EAGAIN, "job started or stopped running during the "
                                              "update: try again")
            again.expiration = plan.expiration
            self._post(msg, job, again)
        except FluxError as exc:
            ctx.respond_error(msg, exc.errno or errno.EINVAL, exc.strerror)
        except Exception as exc:  # noqa: BLE001 - the requester must get an answer
            self._mgr.log.exception("job-manager.update failed", id=job.rec.id)
            ctx.respond_error(msg, errno.EIO, f"job-manager.update: internal error: {exc}")

    def _post(self, msg: Message, job: "ActiveJob", plan: UpdatePlan) -> None:
        mgr = self._mgr
        previous = job.jobspec
        if plan.immutable:
            mgr.post(job, "set-flags", {"flags": ["immutable"]})
        mgr.post(job, "jobspec-update", plan.updates)
        job.jobspec = plan.jobspec
        job.queue = _queue_of(plan.jobspec)
        if plan.expiration is not None:
            mgr.post(job, "resource-update", {"expiration": plan.expiration})
            job.R = with_expiration(job.R, plan.expiration)
        mgr.sched.jobspec_changed(job)
        mgr.progress(job)
        self.updates += 1

        def done(errnum: int, errstr: str | None) -> None:
            if errnum:
                if job.jobspec is plan.jobspec:
                    job.jobspec = previous
                    job.queue = _queue_of(previous)
                mgr.ctx.respond_error(msg, errnum, errstr)
            else:
                mgr.ctx.respond(msg, {})

        mgr.poster.after_commit(done)

    # -- the instance's expiration ------------------------------------------------------------
    async def follow_instance_expiration(self) -> None:
        """Watch resource.R; when its expiration changes, move the jobs that follow it."""
        delay = 0.1
        ctx = self._mgr.ctx
        while True:
            try:
                async for resp in ctx.rpc_stream("kvs-watch.lookup",
                                                 {"key": _RESOURCE_R, "raw": True,
                                                  "flags": FLUX_KVS_WATCH | FLUX_KVS_WAITCREATE}):
                    delay = 0.1
                    self._instance_R(resp)
            except FluxError as exc:
                if exc.errno not in (errno.ENOSYS, errno.ENODATA):
                    self._mgr.log.error("cannot watch resource.R", error=exc.strerror)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _instance_R(self, resp: Any) -> None:
        raw = resp.get("raw") if isinstance(resp, dict) else None
        if raw is None:
            return
        try:
            R = orjson.loads(bytes(raw))
            value = (R.get("execution") or {}).get("expiration") or 0.0
            expiration = float(value)
        except (ValueError, TypeError, AttributeError):
            self._mgr.log.error("resource.R: cannot read its expiration")
            return
        old, self.instance_expiration = self.instance_expiration, expiration
        if old is None or abs(old - expiration) < 1e-5:
            return
        self._mgr.log.info("instance expiration updated", old=round(old, 2),
                           new=round(expiration, 2))
        for job in list(self._mgr.jobs.values()):
            if job.tstate != JobState.RUN or _duration_of(job.jobspec) != 0:
                continue
            current = ((job.R or {}).get("execution") or {}).get("expiration") or 0.0
            if not current or abs(current - expiration) < 1e-5:
                continue
            self._mgr.log.info("job expiration follows the instance's",
                               id=JobID(job.rec.id).f58, old=round(current, 2),
                               new=round(expiration, 2))
            if self._mgr.try_post(job, "resource-update", {"expiration": expiration}):
                job.R = with_expiration(job.R, expiration)

    def close(self) -> None:
        for task in list(self._pending):
            task.cancel()


def _queue_of(jobspec: dict[str, Any]) -> str | None:
    from jobmgr.manager.submit import queue_of

    return queue_of(jobspec)

