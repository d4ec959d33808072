"""The job manager's table of active jobs.

An ``ActiveJob`` pairs the committed fold of the job's eventlog
(``jobmgr.job.Job``: what the store says) with what the job manager has
asked for and not yet seen answered: the *tentative* state after every
posted event (committed or not), whether an alloc, free or exec request is
out, and the tentative resource/exec flags that decide which event may be
posted next.  Effects read the committed record; posting reads the
tentative fields (specs/job-manager.md, "two states").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobmgr.depend import Dependency
from jobmgr.job import Job
from jobmgr.states import JobState

__all__ = ["ActiveJob", "ExecPhase", "job_key", "eventlog_key", "id_from_key"]


def job_key(jobid: int) -> str:
    """``job.<dothex>`` (RFC 16 via flux-core's flux_job_kvs_key)."""
    h = "%016x" % jobid   # one conversion, then slices: called several times per job
    return f"job.{h[:4]}.{h[4:8]}.{h[8:12]}.{h[12:]}"


def eventlog_key(jobid: int) -> str:
    return job_key(jobid) + ".eventlog"


def id_from_key(key: str) -> int | None:
    """The job id of a key under ``job.<dothex>``, or None if KEY is not one."""
    parts = key.split(".")
    if len(parts) < 5 or parts[0] != "job":
        return None
    value = 0
    for part in parts[1:5]:
        if not 1 <= len(part) <= 4:
            return None
        try:
            value = (value << 16) | int(part, 16)
        except ValueError:
            return None
    return value


class ExecPhase:
    """Where the job is with the exec service (ints: compared often, stored per job)."""

    NONE = 0        # no start request sent
    STARTING = 1    # start sent, shells may be running
    DONE = 2        # exec is finished with the job (finish + final release, or gave up)


@dataclass(slots=True, eq=False)
class ActiveJob:
    rec: Job                                 # committed fold of the eventlog
    jobspec: dict[str, Any]
    queue: str | None = None
    tstate: JobState = JobState.NEW          # state after every posted event
    events: list[dict[str, Any]] = field(default_factory=list)   # committed, for the journal
    R: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None   # volatile sched annotations (RFC 27)
    deps: list[Dependency] | None = None        # parsed jobspec dependencies
    t_deps: int = 0                  # dependencies outstanding after posted events
    t_urgency: int = 16
    t_resources: bool = False        # resources held after posted events
    t_started: bool = False
    t_release_final: bool = False
    t_finished: bool = False
    alloc_pending: bool = False      # a sched.alloc is out
    alloc_jobspec: dict[str, Any] | None = None   # the jobspec that request carried
    cancel_sent: bool = False        # sched.cancel sent for the pending alloc
    free_pending: bool = False       # a sched.free is out
    exec_phase: int = ExecPhase.NONE
    kill_sent: bool = False
    inflight: int = 0                # posted events whose commit has not returned
    sent: int = 0                    # of those, events in a commit sent and not answered
    held: list[Any] | None = None    # (event, line) waiting for those to be answered
    prolog: int = 0                  # perilog.NOT_RUN / RUNNING / DONE / FAILED
    epilog: int = 0
    eventlog_key: str = ""           # job.<dothex>.eventlog, computed once

    def __post_init__(self) -> None:
        if not self.eventlog_key:
            self.eventlog_key = eventlog_key(self.rec.id)

    def reset_tentative(self) -> None:
        """Make the tentative fields agree with the committed record."""
        rec = self.rec
        self.tstate = rec.state
        self.t_deps = len(rec.dependencies)
        self.t_urgency = rec.urgency
        self.t_resources = rec.has_resources
        self.t_started = rec.started
        self.t_release_final = rec.release_final
        self.t_finished = rec.finish_status is not None

    @property
    def id(self) -> int:
        return self.rec.id

    @property
    def userid(self) -> int:
        return self.rec.userid
