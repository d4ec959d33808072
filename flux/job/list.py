"""flux.job.list: query the job-list service (RFC 43).

``job_list`` sends one ``job-list.list`` request and returns a JobListRPC
(``get_jobs()`` dicts, ``get_jobinfos()`` JobInfo objects);
``job_list_id`` asks for one job; ``JobList`` is the friendly front end
``flux jobs`` uses (filters by state/result names, user, ids, since, name,
queue).  Jobs come back pending first (highest priority first), then
running (newest first), then inactive (most recently finished first).
"""
from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
    FLUX_JOB_STATE_ACTIVE,
    FLUX_JOB_STATE_CLEANUP,
    FLUX_JOB_STATE_DEPEND,
    FLUX_JOB_STATE_INACTIVE,
    FLUX_JOB_STATE_PENDING,
    FLUX_JOB_STATE_PRIORITY,
    FLUX_JOB_STATE_RUN,
    FLUX_JOB_STATE_RUNNING,
    FLUX_JOB_STATE_SCHED,
    FLUX_USERID_UNKNOWN,
)
from flux.future import WaitAllFuture
from flux.job.event import require_handle
from flux.job.info import JobInfo
from flux.job.JobID import JobID
from flux.rpc import RPC

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["JobList", "JobListRPC", "JobListIdRPC", "JobListIdsFuture", "job_list",
           "job_list_id", "job_list_inactive", "get_job", "VALID_ATTRS"]

# JobList's default attributes (Flux's list)
VALID_ATTRS = [
    "userid", "urgency", "priority", "t_submit", "t_depend", "t_run", "t_cleanup",
    "t_inactive", "state", "name", "ntasks", "nnodes", "ranks", "nodelist", "waitstatus",
    "success", "exception_occurred", "exception_type", "exception_severity",
    "exception_note", "result", "expiration", "annotations", "dependencies",
]


class JobListRPC(RPC):
    """The response of ``job-list.list``."""

    def get_jobs(self) -> list[dict[str, Any]]:
        """The jobs, as dicts of their attributes."""
        return self.get()["jobs"]

    def get_jobinfos(self) -> Iterator[JobInfo]:
        """The jobs, as JobInfo objects."""
        for job in self.get_jobs():
            yield JobInfo(job)


def _queue_names(queue: Any) -> list[str]:
    if isinstance(queue, str):
        return [queue]
    try:
        names = list(queue)
    except TypeError:
        raise TypeError(f"queue must be a str or an iterable of str, "
                        f"not {type(queue).__name__}") from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"queue names must be str, not {type(name).__name__}")
    return names


def _list_payload(max_entries: int, attrs: Iterable[str], userid: int, states: int,
                  results: int, since: float, name: str | None, queue: Any,
                  constraint: Mapping[str, Any] | None) -> dict[str, Any]:
    if isinstance(attrs, str):
        attrs = [attrs]
    # an "and" of nothing matches every job
    terms: list[dict[str, Any]] = []
    if userid != FLUX_USERID_UNKNOWN:
        terms.append({"userid": [int(userid)]})
    if name:
        terms.append({"name": [name]})
    if queue:
        queues = _queue_names(queue)
        if queues:
            terms.append({"queue": queues})
    if states and results:
        # a job matches by its state OR its result (Flux's rule)
        terms.append({"or": [{"states": [int(states)]}, {"results": [int(results)]}]})
    elif states:
        terms.append({"states": [int(states)]})
    elif results:
        terms.append({"results": [int(results)]})
    if constraint is not None:
        if not isinstance(constraint, Mapping):
            raise TypeError(f"constraint must be a dict, not {type(constraint).__name__}")
        terms.append(dict(constraint))
    payload: dict[str, Any] = {"max_entries": int(max_entries), "attrs": list(attrs),
                               "since": float(since), "constraint": {"and": terms}}
    return payload


def job_list(flux_handle: "Flux", max_entries: int = 1000,
             attrs: Iterable[str] = ["all"],  # noqa: B006 - Flux's signature
             userid: int = os.getuid(), states: int = 0, results: int = 0,
             since: float = 0.0, name: str | None = None, queue: Any = None,
             constraint: Mapping[str, Any] | None = None) -> JobListRPC:
    """List jobs of ``userid`` (FLUX_USERID_UNKNOWN: every user).

    ``attrs`` names the attributes to return (default ``["all"]``; ``id``
    always comes).  ``states``/``results`` are masks; with both, a job
    matches by either.  ``since`` keeps only jobs that were active after
    that time.  ``name`` and ``queue`` (a name or an iterable of names)
    must match exactly; ``constraint`` (an RFC 43 constraint dict) is
    and-ed with the other filters.
    """
    require_handle(flux_handle)
    return JobListRPC(flux_handle, "job-list.list",
                      _list_payload(max_entries, attrs, userid, states, results, since,
                                    name, queue, constraint))


def job_list_inactive(flux_handle: "Flux", since: float = 0.0, max_entries: int = 1000,
                      attrs: Iterable[str] = ["all"],  # noqa: B006 - Flux's signature
                      name: str | None = None, queue: Any = None,
                      constraint: Mapping[str, Any] | None = None) -> JobListRPC:
    """Inactive jobs of every user, most recently finished first."""
    return job_list(flux_handle, max_entries=max_entries, attrs=attrs,
                    userid=FLUX_USERID_UNKNOWN, states=FLUX_JOB_STATE_INACTIVE, since=since,
                    name=name, queue=queue, constraint=constraint)


class JobListIdRPC(RPC):
    """The response of ``job-list.list-id`` for one job."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobid: Any = None

    def get_job(self) -> dict[str, Any]:
        return self.get()["job"]

    def get_jobinfo(self) -> JobInfo:
        return JobInfo(self.get_job())


def job_list_id(flux_handle: "Flux", jobid: int,
                attrs: Iterable[str] = ["all"]) -> JobListIdRPC:  # noqa: B006
    """One job's attributes (default all); waits briefly for a job that was just submitted.

    ``get_job()`` raises FileNotFoundError for an unknown job.
    """
    require_handle(flux_handle)
    if isinstance(attrs, str):
        attrs = [attrs]
    rpc = JobListIdRPC(flux_handle, "job-list.list-id", {"id": int(jobid), "attrs": list(attrs)})
    # the id as the caller gave it, for error messages
    rpc.jobid = jobid
    return rpc


def get_job(flux_handle: "Flux", jobid: int) -> dict[str, Any] | None:
    """A job's information as a dict (None if there is no such job).

    ``JobInfo.to_dict(filtered=False)``: the job-list attributes (unset
    ones as "" or 0) plus ``state``, ``result`` and ``status`` as names,
    ``username``, ``runtime``, ``returncode``, ``t_remaining``,
    ``annotations`` and ``exception`` (``occurred``, ``severity``,
    ``type``, ``note``).
    """
    rpc = job_list_id(flux_handle, jobid, ["all"])
    try:
        info = rpc.get_jobinfo()
    except FileNotFoundError:
        return None
    return info.to_dict(filtered=False)


class JobListIdsFuture(WaitAllFuture):
    """Several ``job_list_id`` requests behaving like one JobListRPC."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []

    def get_jobs(self) -> list[dict[str, Any]]:
        """Every job that was found; the failures are appended to ``errors``."""
        self.wait_for()
        jobs = []
        for child in self.children.values():
            try:
                jobs.append(child.get_job())  # type: ignore[attr-defined]
            except OSError as exc:
                jobid = getattr(child, "jobid", None)
                orig = getattr(jobid, "orig", jobid)
                if exc.errno == errno.ENOENT:
                    self.errors.append(f"JobID {orig} unknown")
                else:
                    self.errors.append(f"rpc: {exc.strerror}")
        return jobs

    def get_jobinfos(self) -> list[JobInfo]:
        return [JobInfo(job) for job in self.get_jobs()]


class JobList:
    """Query jobs from the job-list service, ``flux jobs`` style.

    ``filters``: state names (``depend priority sched run cleanup inactive
    pending running active``) and result names (``completed failed
    canceled timeout``), as a list, each item possibly comma-separated; a
    job matches any of them.  ``ids``: list just these jobs (the other
    filters are then ignored).  ``user``: a user name or uid, or "all"
    (None: every user, as Flux's documentation says).  ``since``: only
    inactive jobs that ended after this time.  ``name``, ``queue``: exact.
    """

    STATES = {
        "depend": FLUX_JOB_STATE_DEPEND, "priority": FLUX_JOB_STATE_PRIORITY,
        "sched": FLUX_JOB_STATE_SCHED, "run": FLUX_JOB_STATE_RUN,
        "cleanup": FLUX_JOB_STATE_CLEANUP, "inactive": FLUX_JOB_STATE_INACTIVE,
        "pending": FLUX_JOB_STATE_PENDING, "running": FLUX_JOB_STATE_RUNNING,
        "active": FLUX_JOB_STATE_ACTIVE,
    }
    RESULTS = {
        "completed": FLUX_JOB_RESULT_COMPLETED, "failed": FLUX_JOB_RESULT_FAILED,
        "canceled": FLUX_JOB_RESULT_CANCELED, "timeout": FLUX_JOB_RESULT_TIMEOUT,
    }

    def __init__(self, flux_handle: "Flux",
                 attrs: Iterable[str] = ["all"],  # noqa: B006 - Flux's signature
                 filters: Iterable[str] = (), ids: Iterable[Any] = (), user: Any = None,
                 max_entries: int = 1000, since: float = 0.0, name: str | None = None,
                 queue: Any = None, constraint: Mapping[str, Any] | None = None) -> None:
        self.handle = flux_handle
        self.attrs = [attrs] if isinstance(attrs, str) else list(attrs)
        self.constraint = constraint
        self.states = 0
        self.results = 0
        self.max_entries = max_entries
        self.since = since
        self.name = name
        self.queue = queue
        self.ids = [JobID(i) for i in ids] if ids else []
        self.errors: list[str] = []
        for fname in filters:
            for item in fname.split(","):
                self.add_filter(item)
        self.set_user(user)

    def set_user(self, user: Any) -> None:
        """Only list jobs of ``user`` (name or uid); None or "all" lists every user's."""
        if user is None or user == "all":
            self.userid = FLUX_USERID_UNKNOWN
            return
        if isinstance(user, int) and not isinstance(user, bool):
            self.userid = user
            return
        import pwd

        try:
            self.userid = pwd.getpwnam(str(user)).pw_uid
        except KeyError:
            try:
                self.userid = int(user)
            except ValueError:
                raise ValueError(f"Invalid user {user} specified") from None

    def add_filter(self, fname: str) -> None:
        """Add a state or result name to the filter (ValueError for an unknown name)."""
        key = fname.strip().lower()
        if key in self.STATES:
            self.states |= self.STATES[key]
        elif key in self.RESULTS:
            self.results |= self.RESULTS[key]
        else:
            raise ValueError(f"Invalid filter specified: {fname}")

    def fetch_jobs(self) -> JobListRPC | JobListIdsFuture:
        """Send the query; ``jobs()`` (or the future's ``get_jobs()``) reads the answer."""
        if self.ids:
            listids = JobListIdsFuture()
            for jobid in self.ids:
                listids.push(job_list_id(self.handle, jobid, self.attrs))
            return listids
        return job_list(self.handle, max_entries=self.max_entries, attrs=self.attrs,
                        userid=self.userid, states=self.states, results=self.results,
                        since=self.since, name=self.name, queue=self.queue,
                        constraint=self.constraint)

    def jobs(self) -> list[JobInfo]:
        """The matching jobs as JobInfo objects (blocking); errors go to ``self.errors``."""
        rpc = self.fetch_jobs()
        jobs = rpc.get_jobs()
        if isinstance(rpc, JobListIdsFuture):
            self.errors = rpc.errors
        return [JobInfo(job) for job in jobs]
