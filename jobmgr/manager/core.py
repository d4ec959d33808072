"""The job manager's hub: the active table, and what follows from each event.

Two kinds of follow-up, kept apart on purpose (specs/job-manager.md):

- ``progress(job)`` posts the events that need no outside input, judged
  on the *tentative* state: ``depend`` once no dependency is outstanding,
  ``priority`` in PRIORITY, ``clean`` once resources are freed and exec is
  done.  Several of them land in one commit (validate + depend + priority
  for a plain submission).
- ``advance(job)`` acts on the *committed* state, after the commit that
  got it there is durable: ask the scheduler (SCHED), start exec (RUN),
  cancel the alloc / kill the shells / free the resources (CLEANUP).
  Inactive jobs leave the table: their waiters, dependents and the purge
  index are told, and only 16 bytes of them remain.
"""
from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

from flux.errors import FluxError
from flux.job.summary import forget_summary
from jobmgr.policy import JobPolicy
from jobmgr.manager.active import ActiveJob, ExecPhase, job_key
from jobmgr.manager.alloc import SchedClient
from jobmgr.manager.dependencies import Dependencies
from jobmgr.manager.drain_idle import DrainIdle
from jobmgr.manager.jobtap import Jobtap
from jobmgr.manager.journal import Journal
from jobmgr.manager.perilog import RUNNING as PERILOG_RUNNING
from jobmgr.manager.perilog import Perilog, PerilogConfig
from jobmgr.manager.post import Applied, EventPoster
from jobmgr.manager.purge import InactiveIndex, PurgeLimits, select
from jobmgr.manager.queues import Queues
from jobmgr.manager.start import ExecClient
from jobmgr.manager.update import UpdateService
from jobmgr.manager.wait import Waits
from jobmgr.priority import priority_for
from jobmgr.states import JobState

__all__ = ["Manager", "PURGE_BATCH"]

_D, _P, _S, _R, _C, _I = (JobState.DEPEND, JobState.PRIORITY, JobState.SCHED, JobState.RUN,
                          JobState.CLEANUP, JobState.INACTIVE)
#: most job directories unlinked in one commit by the automatic purge
PURGE_BATCH = 2000


class Manager:
    def __init__(self, ctx: Any, policy: JobPolicy, purge_limits: PurgeLimits,
                 prolog: PerilogConfig | None = None,
                 epilog: PerilogConfig | None = None) -> None:
        self.ctx = ctx
        self.log = ctx.log
        self.owner: int = ctx.owner
        self.policy = policy
        self.jobs: dict[int, ActiveJob] = {}
        self.max_jobid = 0
        self.poster = EventPoster(ctx, self.on_applied, self.on_failed,
                                  on_abandoned=self.on_abandoned)
        self.journal = Journal()
        self.queues = Queues(policy)
        self.waits = Waits(ctx.respond, ctx.respond_error)
        self.drain_idle = DrainIdle(ctx.respond, ctx.respond_error)
        self.sched = SchedClient(self)
        self.execs = ExecClient(self)
        self.deps = Dependencies(self)
        self.perilog = Perilog(self, prolog, epilog)
        self.update = UpdateService(self)
        self.jobtap = Jobtap(self)
        self.inactive = InactiveIndex()
        self.purge_limits = purge_limits
        self.changes = 0                  # applied commits since the last checkpoint
        self._prioritize: list[list[int]] = []
        self._purge_scheduled = False
        self._purging = False

    # -- the table ------------------------------------------------------------------------
    def add(self, job: ActiveJob) -> None:
        self.jobs[job.rec.id] = job
        if job.rec.id > self.max_jobid:
            self.max_jobid = job.rec.id
        self.drain_idle.count(None, job.rec.state)
        self.waits.added(job.rec)

    # -- posting -------------------------------------------------------------------------
    def post(self, job: ActiveJob, name: str, context: dict[str, Any] | None = None) -> None:
        """Post event NAME for JOB and update its tentative fields (JobEventError if refused)."""
        self.poster.post(job, name, context)
        if name == "alloc":
            job.t_resources = True
        elif name == "free":
            job.t_resources = False
        elif name == "start":
            job.t_started = True
        elif name == "finish":
            job.t_finished = True
        elif name == "release":
            if context and context.get("final"):
                job.t_release_final = True
        elif name == "dependency-add":
            job.t_deps += 1
        elif name == "dependency-remove":
            job.t_deps -= 1
        elif name == "urgency":
            job.t_urgency = context["urgency"]  # type: ignore[index]
            if self.jobtap.active:
                self.jobtap.stale(job.rec.id)
        elif name == "exception" and context and context.get("severity") == 0:
            self.deps.forget(job)
            self.perilog.fatal_posted(job)

    def try_post(self, job: ActiveJob, name: str, context: dict[str, Any] | None = None) -> bool:
        try:
            self.post(job, name, context)
        except FluxError as exc:
            self.log.debug("event not posted", id=job.rec.id, event=name, error=exc.strerror)
            return False
        return True

    @staticmethod
    def can_clean(job: ActiveJob) -> bool:
        return (not job.t_resources and not job.alloc_pending and not job.free_pending
                and job.exec_phase != ExecPhase.STARTING
                and (not job.t_started or job.t_finished)
                and job.prolog != PERILOG_RUNNING and job.epilog != PERILOG_RUNNING)

    def progress(self, job: ActiveJob) -> None:
        """Post every event JOB's tentative state leads to without outside input."""
        while True:
            ts = job.tstate
            if ts == _D:
                if self.jobtap.active:
                    self.jobtap.depend(job)
                if job.t_deps != 0:
                    return
                self.post(job, "depend")
            elif ts == _P:
                if self.jobtap.custom_priority:
                    prio = self.jobtap.priority(job)
                    if prio is None:
                        return          # a plugin's reprioritize_job moves it on
                else:
                    prio = priority_for(job.t_urgency)
                self.post(job, "priority", {"priority": prio})
            elif ts == _C:
                if self.can_clean(job):
                    self.post(job, "clean")
                return
            else:
                return

    def advance(self, job: ActiveJob) -> None:
        """Act on JOB's committed state: scheduler, exec, cleanup."""
        rec = job.rec
        st = rec.state
        if st == _S:
            self.sched.consider(job)
        elif st == _R or st == _C:
            if job.exec_phase == ExecPhase.NONE and (
                    (st == _R and job.tstate == _R) or (job.t_started and not job.t_finished)):
                if st == _R and self.perilog.prolog_pending(job):
                    self.perilog.start_prolog(job)       # exec starts once it succeeded
                else:
                    self.execs.start(job)
            if st == _C:
                if job.alloc_pending:
                    self.sched.cancel(job)
                elif job.exec_phase == ExecPhase.STARTING:
                    if rec.fatal is not None and not job.kill_sent and not job.t_finished:
                        self.execs.kill(job, int(signal.SIGTERM), exception=True)
                elif rec.has_resources and job.t_resources and not job.free_pending \
                        and (not job.t_started or job.t_finished) \
                        and job.prolog != PERILOG_RUNNING:
                    if self.perilog.epilog_pending(job):
                        self.perilog.start_epilog(job)   # the free waits for it
                    else:
                        self.sched.free(job)
        self.progress(job)

    def start_early(self, job: ActiveJob) -> None:
        """JOB's ``alloc`` is posted: start exec once that commit is on its way to the KVS,
        not once it is durable (specs/job-manager.md, "Exec starts with the alloc commit").

        Safe because the KVS makes commits durable in the order they arrive:
        whatever exec and the shells write for the job (its guest namespace,
        output, the ``start`` event, which waits behind ``alloc`` in the
        job's own order) can only be durable after ``alloc`` is.  A crash in
        between loses the tasks with the broker and leaves the job in SCHED,
        as if it had not been granted.  A prolog still runs first, on the
        committed state.
        """
        if not self.execs.ready or self.perilog.prolog_pending(job):
            return

        def sent() -> None:
            if (self.jobs.get(job.rec.id) is job and job.tstate == _R and job.t_resources
                    and job.exec_phase == ExecPhase.NONE and not job.rec.started):
                self.execs.start(job)

        self.poster.after_send(sent)

    # -- commits ---------------------------------------------------------------------------
    def on_applied(self, applied: list[Applied]) -> None:
        self.changes += 1
        items: list[dict[str, Any]] = []
        counts = self.drain_idle
        tap = self.jobtap if self.jobtap.active else None
        for job, events, before in applied:
            item: dict[str, Any] = {"id": job.rec.id, "events": events}
            if events[0]["name"] == "submit":
                item["jobspec"] = job.jobspec
            reprioritized = started = False
            for event in events:
                name = event["name"]
                if name == "alloc":
                    item["R"] = job.R
                elif name == "priority":
                    reprioritized = True
                elif name == "start":
                    started = True
                elif name == "resource-update":
                    self.execs.expiration(job, event["context"]["expiration"])
            items.append(item)
            after = job.rec.state
            if after != before:
                counts.count(before, after)
            if reprioritized and job.alloc_pending:
                if job.rec.priority == 0:
                    self.sched.cancel(job)
                else:
                    self._prioritize.append([job.rec.id, job.rec.priority])
            if started:
                self.deps.changed(job)
            if tap is not None:
                tap.applied(job, events, before)
        self.journal.publish(items)
        for job, _events, _before in applied:
            if job.rec.state == _I:
                self._retire(job)
            else:
                self.advance(job)
        if self._prioritize:
            pairs, self._prioritize = self._prioritize, []
            self.sched.prioritize(pairs)
        counts.check()

    def on_failed(self, jobs: list[ActiveJob]) -> None:
        """New jobs whose submit commit failed never existed: they leave the table.

        (Their submitters are told by the submit request's callback; every
        other failed commit is sent again by the poster.)
        """
        for job in jobs:
            if not job.events:
                self._drop(job)

    def on_abandoned(self, job: ActiveJob, why: str) -> None:
        """JOB's eventlog refuses its events: nothing more can be recorded, let it go.

        Its shells are killed and its resources handed back without events;
        a restart replays whatever its eventlog holds.
        """
        if self.jobs.get(job.rec.id) is not job:
            return
        if job.exec_phase == ExecPhase.STARTING:
            self.execs.kill(job, int(signal.SIGKILL))
            job.exec_phase = ExecPhase.DONE
        if job.alloc_pending:
            self.sched.cancel(job)
        elif job.t_resources and not job.free_pending:
            self.sched.free(job)
        del self.jobs[job.rec.id]
        forget_summary(job.jobspec)
        self.drain_idle.count(job.rec.state, None)
        self.waits.dropped(job.rec)
        self.deps.forget(job)
        self.jobtap.forget(job.rec.id)
        self.drain_idle.check()

    def _drop(self, job: ActiveJob) -> None:
        """Forget a job whose submit was never committed."""
        if self.jobs.get(job.rec.id) is not job:
            return
        del self.jobs[job.rec.id]
        forget_summary(job.jobspec)
        self.drain_idle.count(job.rec.state, None)
        self.waits.dropped(job.rec)
        self.deps.forget(job)
        self.jobtap.forget(job.rec.id)
        self.drain_idle.check()

    # -- inactive jobs ---------------------------------------------------------------------
    def _retire(self, job: ActiveJob) -> None:
        rec = job.rec
        self.jobs.pop(rec.id, None)
        # the summaries' table held its jobspec for the modules that summarize it;
        # an inactive job keeps none (summarize_shared)
        forget_summary(job.jobspec)
        self.waits.inactive(rec)
        self.deps.changed(job)
        if not rec.invalid:
            self.inactive.add(rec.id, rec.t_clean or time.time())
        if self.purge_limits.num is not None and len(self.inactive) > self.purge_limits.num:
            self.schedule_purge()

    def schedule_purge(self) -> None:
        if not self._purge_scheduled:
            self._purge_scheduled = True
            asyncio.get_running_loop().call_soon(self._auto_purge)

    def _auto_purge(self) -> None:
        self._purge_scheduled = False
        if self._purging:
            return
        limits = self.purge_limits
        ids = select(self.inactive, time.time(), limits.age, limits.num, PURGE_BATCH)
        if ids:
            self._purging = True

            def done(_count: int) -> None:
                self._purging = False
                if select(self.inactive, time.time(), limits.age, limits.num, 1):
                    self.schedule_purge()

            self.purge(ids, done)

    def purge(self, ids: list[int], callback: Any = None) -> None:
        """Remove the directories of inactive jobs IDS in one commit; journal them after."""
        from jobmgr.manager.restart import max_jobid_op

        self.inactive.discard(ids)
        self.poster.add_ops([{"key": job_key(jobid), "flags": 0, "dirent": None}
                             for jobid in ids] + [max_jobid_op(self.max_jobid)])

        def committed(errnum: int, errstr: str | None) -> None:
            if errnum:
                self.log.error("purge commit failed", error=errstr or str(errnum), jobs=len(ids))
                for jobid in ids:
                    self.inactive.add(jobid, 0.0)
            else:
                self.journal.purged(ids)
                self.deps.purged(ids)
                for jobid in ids:
                    self.waits.zombies.pop(jobid, None)
                self.changes += 1
            if callback is not None:
                callback(0 if errnum else len(ids))

        self.poster.after_commit(committed)

    def close(self) -> None:
        self.update.close()
        self.perilog.close()
        self.sched.close()
        self.execs.close()
        self.deps.close()
        self.waits.close()
        self.drain_idle.close()
        self.journal.close()

