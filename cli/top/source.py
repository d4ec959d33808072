"""Where ``flux top`` gets its data: one connected instance.

``resolve(target)`` turns a job id, a job id path (``ƒA/ƒB``) or a URI into
the ``local://`` URI to connect to and a title; ``Instance.open(uri,
title)`` connects; ``Instance.fetch(max_jobs)`` asks the instance for
everything the two panes show (the broker's state, job statistics, the
scheduler's view of resources, the expiration in ``resource.R``, the
running jobs) and returns a ``Snapshot``; ``Instance.pulses()`` counts the
``heartbeat.pulse`` events received since it was last called (the heart).
A lost connection raises OSError from ``fetch``.

An instance may be shown for one of its configured queues (``[queues]``
of its config; ``flux top -q NAME``, the h/l keys): then the job counts
are that queue's, the jobs those submitted to it, and the resources
those its ``requires`` properties select.
"""
from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from typing import Any

from cli.top.view import JobRow, Summary, job_row

__all__ = ["RPC_TIMEOUT", "Instance", "ResolveError", "Snapshot", "resolve"]

#: how long one answer may take before the instance counts as gone (seconds)
RPC_TIMEOUT = 15.0

#: the event the instance's heartbeat module publishes every period
HEARTBEAT_TOPIC = "heartbeat.pulse"

#: the job-list attributes the table needs
JOB_ATTRS = ["annotations", "userid", "state", "name", "nnodes", "ntasks", "t_run"]


class ResolveError(Exception):
    """TARGET names no instance ``flux top`` can show; the text says why."""


def _jobid_path_title(path: str) -> str:
    from flux.job import JobID

    return "/".join(JobID(part).f58 for part in path.split("/") if part)


def resolve(target: str | None) -> tuple[str | None, str | None]:
    """(URI to connect to, title) for TARGET; (None, None) for the enclosing instance.

    A target without a scheme is a job id or a job id path, whose f58 form
    becomes the title; a URI's title comes from the instance's ``jobid``
    attribute once connected (None here).  ResolveError names a target that
    is not a running Flux instance.
    """
    if target is None:
        return None, None
    from flux.uri import FluxURIResolver, JobURI, URIResolverURI

    parsed = URIResolverURI(target)
    try:
        uri = FluxURIResolver().resolve(target)
        local = JobURI(uri.uri).local
    except (ValueError, NotImplementedError, OSError) as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ResolveError(f"failed to resolve target {target} to a Flux URI: {text}") from None
    title = None
    if parsed.scheme in ("", "jobid"):
        try:
            title = _jobid_path_title(parsed.path)
        except (ValueError, TypeError, OSError):
            title = None
    return local, title


def _configured_queues(handle: Any) -> dict[str, dict[str, Any]]:
    """The ``[queues]`` table of the instance's config ({} if none or unreadable)."""
    try:
        queues = handle.rpc("config.get").wait_for(RPC_TIMEOUT).get().get("queues")
    except (OSError, AttributeError):
        return {}
    if not isinstance(queues, dict):
        return {}
    return {str(name): conf if isinstance(conf, dict) else {} for name, conf in queues.items()}


@dataclass(slots=True)
class Snapshot:
    """What one fetch brought: the summary, the running jobs (newest first), and
    whether this user owns the instance."""

    summary: Summary
    rows: list[JobRow] = field(default_factory=list)
    owner: bool = True
    fetched: float = 0.0


def _counts(rset: Any) -> tuple[int, int, int]:
    return int(rset.nnodes), int(rset.ncores), int(rset.ngpus)


class Instance:
    """One Flux instance shown by ``flux top``: its handle and its fixed facts."""

    def __init__(self, handle: Any, title: str) -> None:
        self.handle = handle
        self.title = title
        self.version = ""
        self.f_char = "f" if "FLUX_F58_FORCE_ASCII" in os.environ else "\u0192"
        self._users: dict[int, str] = {}
        #: the configured queues (name -> its table in the config), and the one shown
        self.queues: dict[str, dict[str, Any]] = {}
        self.queue: str | None = None

    @classmethod
    def open(cls, uri: str | None, title: str | None = None) -> Instance:
        """Connect to URI (None: ``$FLUX_URI``).  Without TITLE, the title is the
        instance's job id (its ``jobid`` attribute), or empty for a root instance."""
        import flux

        handle = flux.Flux(uri) if uri else flux.Flux()
        try:
            if title is None:
                title = ""
                try:
                    from flux.job import JobID

                    title = JobID(handle.attr_get("jobid")).f58
                except (OSError, ValueError, TypeError):
                    pass
            inst = cls(handle, title)
            try:
                inst.version = str(handle.attr_get("version"))
            except OSError:
                pass
            inst.queues = _configured_queues(handle)
            try:
                handle.event_subscribe(HEARTBEAT_TOPIC)
            except OSError:
                pass  # no heart then; the rest of the display does not need it
        except BaseException:
            handle.close()
            raise
        return inst

    def close(self) -> None:
        try:
            self.handle.close()
        except OSError:
            pass

    def pulses(self) -> int:
        """How many heartbeat events arrived since the last call (never blocks)."""
        from flux.constants import FLUX_MSGTYPE_EVENT, FLUX_O_NONBLOCK

        count = 0
        try:
            while self.handle.recv(type_mask=FLUX_MSGTYPE_EVENT, topic_glob=HEARTBEAT_TOPIC,
                                   flags=FLUX_O_NONBLOCK) is not None:
                count += 1
        except OSError:
            pass  # a lost connection is noticed (and reported) by fetch()
        return count

    def set_queue(self, name: str | None) -> None:
        """Show queue NAME only (None: every queue).  ValueError if it is not configured."""
        if name is not None and name not in self.queues:
            raise ValueError(f"queue {name} not configured")
        self.queue = name

    def rotate_queue(self, step: int) -> None:
        """The next (STEP 1) or previous (-1) configured queue, every queue between the
        last and the first; nothing changes without queues."""
        names: list[str | None] = [None, *self.queues]
        index = names.index(self.queue) if self.queue in names else 0
        self.queue = names[(index + step) % len(names)]

    def _constraint(self) -> dict[str, Any] | None:
        """The RFC 31 constraint of the queue shown (None: all resources)."""
        if self.queue is None:
            return None
        requires = self.queues.get(self.queue, {}).get("requires")
        return {"properties": list(requires)} if requires else None

    def _user(self, userid: int) -> str:
        name = self._users.get(userid)
        if name is None:
            from flux.job.info import get_username

            name = self._users[userid] = get_username(userid)
        return name

    def fetch(self, max_jobs: int) -> Snapshot:
        """Everything the panes show, now.  OSError if the instance is gone."""
        from flux.constants import FLUX_JOB_STATE_RUNNING, FLUX_USERID_UNKNOWN
        from flux.job import JobID, job_list
        from flux.job.info import statetostr
        from flux.kvs import lookup as kvs_lookup
        from flux.resource import resource_list

        h = self.handle
        # every request in flight at once, then the answers
        f_state = h.rpc("broker.state", nodeid=0)
        f_stats = h.rpc("job-list.job-stats", {})
        f_jobs = job_list(h, max_entries=max(1, max_jobs), attrs=JOB_ATTRS,
                          userid=FLUX_USERID_UNKNOWN, states=FLUX_JOB_STATE_RUNNING,
                          queue=self.queue)
        f_R = kvs_lookup(h, "resource.R")
        f_res = resource_list(h)
        state = f_state.wait_for(RPC_TIMEOUT).get()
        summary = Summary(title=self.title, version=self.version, f_char=self.f_char,
                          size=int(state.get("size", 1)),
                          level=int(state.get("instance_level", 0)),
                          starttime=float(state.get("starttime") or 0.0),
                          queue=self.queue or "")
        self._apply_stats(summary, f_stats, self.queue)
        self._apply_resources(summary, f_res, self._constraint())
        summary.expiration = self._expiration(f_R)
        now = time.time()
        rows = []
        for job in f_jobs.wait_for(RPC_TIMEOUT).get_jobs():
            rows.append(job_row(job, now, JobID(job["id"]).f58,
                                self._user(int(job.get("userid", -1))),
                                statetostr(int(job.get("state", 0)), True)))
        return Snapshot(summary=summary, rows=rows,
                        owner=int(state.get("owner", os.getuid())) == os.getuid(),
                        fetched=now)

    @staticmethod
    def _apply_stats(summary: Summary, future: Any, queue: str | None = None) -> None:
        try:
            stats = future.wait_for(RPC_TIMEOUT).get()
        except OSError as exc:
            # no job-list (yet), or not allowed: counts stay 0 (as flux-top does)
            if exc.errno in (errno.ENOSYS, errno.EPERM):
                return
            raise
        if queue is not None:
            # a queue no job was submitted to has no entry yet: its counts are 0
            stats = next((q for q in stats.get("queues") or [] if q.get("name") == queue), {})
        states = stats.get("job_states", {})
        summary.pending = sum(int(states.get(s, 0)) for s in ("depend", "priority", "sched"))
        summary.running = sum(int(states.get(s, 0)) for s in ("run", "cleanup"))
        summary.inactive = int(states.get("inactive", 0))
        summary.successful = int(stats.get("successful", 0))
        summary.failed = sum(int(stats.get(k, 0)) for k in ("failed", "canceled", "timeout"))

    @staticmethod
    def _apply_resources(summary: Summary, future: Any,
                         constraint: dict[str, Any] | None = None) -> None:
        try:
            rl = future.wait_for(RPC_TIMEOUT).get()
        except OSError as exc:
            if exc.errno in (errno.ENOSYS, errno.EPERM):  # instance not up yet
                return
            raise
        if constraint is not None:
            rl = rl.copy_constraint(constraint)
        counts = [_counts(rl[state]) for state in ("all", "allocated", "down")]
        for i, res in enumerate((summary.nodes, summary.cores, summary.gpus)):
            res.total, res.used, res.down = (c[i] for c in counts)

    @staticmethod
    def _expiration(future: Any) -> float:
        """``execution.expiration`` of resource.R; 0 if unknown (a guest may not read it)."""
        import json

        try:
            resp = future.wait_for(RPC_TIMEOUT).get()
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.ENOENT, errno.ENOSYS):
                return 0.0
            raise
        try:
            from flux.kvs import val_data

            R = json.loads(val_data(resp["val"]))
            return float(R.get("execution", {}).get("expiration") or 0.0)
        except (KeyError, TypeError, ValueError, AttributeError):
            return 0.0

