"""Job prologs and epilogs: site commands run on a job's ranks around its run.

Configured as flux-core's perilog plugin is::

    [job-manager.prolog]
    command = ["/etc/flux/prolog"]      # or a string, split like a shell would
    per-rank = true                     # on every rank of the job (false: rank 0 only)
    timeout = "30m"                     # then the command is killed and counts as failed
                                        # (epilog default: none)
    cancel-on-exception = true          # a fatal exception ends a running prolog (SIGTERM)

    [job-manager.epilog]                # the same keys
    command = ["/etc/flux/epilog"]

    [job-manager.perilog]
    log-ignore = ["^debug:"]            # output lines (regular expressions) not logged

A job entering RUN gets ``prolog-start {description}``; the command runs
(through each rank's ``rexec`` service) with FLUX_JOB_ID, FLUX_JOB_USERID,
FLUX_OWNER_USERID and FLUX_JOB_RANKS set; then ``prolog-finish
{description, status}`` (the largest wait status).  Exec is started only
after a successful prolog; a failed one raises a fatal ``prolog``
exception naming the ranks.  After exec is done (or a job that had
resources ends), ``epilog-start`` ... ``epilog-finish`` run before the
resources are freed; a failed epilog drains the ranks it failed on, with
the job in the reason, and the job ends normally.  Each line the commands
print is logged as flux-core's perilog does (``flux dmesg``): ``ID: prolog:
HOST (rank N): stdout: LINE`` at level info (stderr: err), except blank
lines and those matching a ``log-ignore`` pattern.  A prolog or epilog cut
short by a restart is finished with status 1 at recovery.
"""
from __future__ import annotations

import asyncio
import re
import shlex
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flux.idset import IDset
from flux.job.JobID import JobID
from flux.util.fsd import parse_fsd
from jobmgr.manager.active import ActiveJob

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["PerilogConfig", "Perilog", "parse_perilog", "NOT_RUN", "RUNNING", "DONE", "FAILED"]

NOT_RUN, RUNNING, DONE, FAILED = 0, 1, 2, 3
_DEFAULT_TIMEOUT = 1800.0


@dataclass(slots=True, frozen=True)
class PerilogConfig:
    command: tuple[str, ...]
    per_rank: bool = True
    timeout: float | None = _DEFAULT_TIMEOUT
    #: a fatal job exception while it runs ends it (SIGTERM) instead of waiting it out
    cancel_on_exception: bool = True
    #: ``[job-manager.perilog] log-ignore``: output lines matching one are not logged
    log_ignore: tuple[re.Pattern[str], ...] = ()


def _parse_log_ignore(table: Any) -> tuple[re.Pattern[str], ...]:
    if table is None:
        return ()
    if not isinstance(table, Mapping):
        raise ValueError("[job-manager.perilog] must be a table")
    patterns = table.get("log-ignore", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ValueError("[job-manager.perilog] log-ignore: must be an array of strings")
    out = []
    for pattern in patterns:
        try:
            out.append(re.compile(pattern))
        except re.error:
            raise ValueError(f"[job-manager.perilog] log-ignore: Failed to compile regex: "
                             f"{pattern}") from None
    return tuple(out)


def _parse_one(table: Any, name: str,
               log_ignore: tuple[re.Pattern[str], ...] = ()) -> PerilogConfig | None:
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise ValueError(f"[job-manager.{name}] must be a table")
    command = table.get("command")
    if command is None:
        return None
    if isinstance(command, str):
        command = shlex.split(command)
    if not isinstance(command, list) or not command \
            or not all(isinstance(a, str) for a in command):
        raise ValueError(f"[job-manager.{name}] command: must be a non-empty list of strings")
    per_rank = table.get("per-rank", True)
    if not isinstance(per_rank, bool):
        raise ValueError(f"[job-manager.{name}] per-rank: must be true or false")
    # flux-config-job-manager(5): the prolog's timeout is 30m, the epilog's none
    timeout: float | None = _DEFAULT_TIMEOUT if name == "prolog" else None
    if "timeout" in table:
        value = table["timeout"]
        if value in ("none", "infinity", 0):
            timeout = None
        else:
            try:
                timeout = parse_fsd(value)
            except ValueError:
                raise ValueError(f"[job-manager.{name}] timeout: invalid duration "
                                 f"{value!r}") from None
    cancel = table.get("cancel-on-exception", True)
    if not isinstance(cancel, bool):
        raise ValueError(f"[job-manager.{name}] cancel-on-exception: must be true or false")
    kill_timeout = table.get("kill-timeout", 10)
    if isinstance(kill_timeout, bool) or not isinstance(kill_timeout, (int, float)) \
            or kill_timeout < 0:
        # accepted for flux-core's configs: rexec itself follows SIGTERM with SIGKILL
        raise ValueError(f"[job-manager.{name}] kill-timeout: must be a number of seconds")
    return PerilogConfig(tuple(command), per_rank, timeout, cancel, log_ignore)


def parse_perilog(jm_table: Any) -> tuple[PerilogConfig | None, PerilogConfig | None]:
    """(prolog, epilog) from the ``[job-manager]`` table; ValueError names the bad key."""
    if jm_table is None:
        return None, None
    if not isinstance(jm_table, Mapping):
        raise ValueError("[job-manager] must be a table")
    log_ignore = _parse_log_ignore(jm_table.get("perilog"))
    return (_parse_one(jm_table.get("prolog"), "prolog", log_ignore),
            _parse_one(jm_table.get("epilog"), "epilog", log_ignore))


class Perilog:
    """Runs prologs and epilogs for the job manager; state lives on each ActiveJob."""

    def __init__(self, mgr: "Manager", prolog: PerilogConfig | None,
                 epilog: PerilogConfig | None) -> None:
        self.mgr = mgr
        self.prolog = prolog
        self.epilog = epilog
        self.tasks: set[asyncio.Task[Any]] = set()
        #: job id -> set when a fatal exception is posted, for each prolog that
        #: cancel-on-exception ends
        self._fatal: dict[int, asyncio.Event] = {}
        self._hosts: list[str] | None = None      # hostname by rank, read once

    # -- what advance() asks -------------------------------------------------------------
    def prolog_pending(self, job: ActiveJob) -> bool:
        """True while exec must wait: a prolog is configured and has not succeeded."""
        return self.prolog is not None and job.prolog != DONE and not job.rec.started

    def epilog_pending(self, job: ActiveJob) -> bool:
        """True while the resources must stay allocated for an epilog."""
        if self.epilog is None or job.epilog == DONE:
            return False
        return job.prolog != NOT_RUN or job.t_started

    # -- running ---------------------------------------------------------------------------
    def start_prolog(self, job: ActiveJob) -> None:
        if job.prolog != NOT_RUN or self.prolog is None:
            return
        job.prolog = RUNNING
        self._run(job, "prolog", self.prolog)

    def start_epilog(self, job: ActiveJob) -> None:
        if job.epilog != NOT_RUN or self.epilog is None:
            return
        job.epilog = RUNNING
        self._run(job, "epilog", self.epilog)

    def _run(self, job: ActiveJob, kind: str, conf: PerilogConfig) -> None:
        desc = f"job-manager.{kind}"
        self.mgr.post(job, f"{kind}-start", {"description": desc})
        if kind == "prolog" and conf.cancel_on_exception:
            # from now on (not from the task's first step): an exception posted before
            # that step must still end the prolog
            self._fatal[job.rec.id] = asyncio.Event()
        task = asyncio.ensure_future(self._execute(job, kind, conf, desc))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if kind == "prolog":
            task.add_done_callback(lambda _t: self._fatal.pop(job.rec.id, None))

    def _ranks(self, job: ActiveJob) -> list[int]:
        from flux.job.taskmap import r_ranks

        try:
            return [r for r, _c, _g in r_ranks(job.R or {})]
        except ValueError:
            return [0]

    async def _execute(self, job: ActiveJob, kind: str, conf: PerilogConfig,
                       desc: str) -> None:
        from broker.svc_rexec import Command, run_command

        ranks = self._ranks(job)
        targets = ranks if conf.per_rank else ranks[:1]
        env = {"FLUX_JOB_ID": JobID(job.rec.id).f58, "FLUX_JOB_USERID": str(job.rec.userid),
               "FLUX_OWNER_USERID": str(self.mgr.owner), "FLUX_JOB_RANKS": IDset(ranks).encode(),
               "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/"}
        import os

        for name in ("PATH", "PYTHONPATH", "VIRTUAL_ENV"):
            if name in os.environ:
                env[name] = os.environ[name]
        cmd = Command(list(conf.command), cwd="/", env=env)

        async def one(rank: int) -> tuple[int, int, str]:
            out = _OutputLog(self, job, kind, rank, conf)
            try:
                res = await run_command(self.mgr.ctx, cmd, nodeid=rank, timeout=conf.timeout,
                                        on_output=out.write)
            except asyncio.TimeoutError:
                return rank, 1 << 8, "timed out"
            except OSError as exc:
                return rank, 1 << 8, exc.strerror or str(exc)
            finally:
                out.close()
            return rank, res.status, out.last_error

        gathered = asyncio.ensure_future(asyncio.gather(*(one(r) for r in targets)))
        canceled = False
        if kind == "prolog" and conf.cancel_on_exception:
            fatal = self._fatal.setdefault(job.rec.id, asyncio.Event())
            if job.rec.fatal is not None:
                fatal.set()
            watch = asyncio.ensure_future(fatal.wait())
            try:
                await asyncio.wait({gathered, watch}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                watch.cancel()
            if not gathered.done():
                # flux-config-job-manager(5) cancel-on-exception: the prolog is ended
                # (its cancelled rexec streams get SIGTERM, SIGKILL after rexec's grace)
                canceled = True
                gathered.cancel()
                await asyncio.wait({gathered})      # the rexec streams cancelled, then on
                if not gathered.cancelled():
                    gathered.exception()            # retrieved: no "never retrieved" warning
                results = [(r, int(signal.SIGTERM), "canceled") for r in targets]
        if not canceled:
            results = await gathered
        status = max((s for _r, s, _t in results), default=0)
        failed = [(r, s, t) for r, s, t in results if s != 0]
        if self.mgr.jobs.get(job.rec.id) is not job:
            return
        self.mgr.post(job, f"{kind}-finish", {"description": desc, "status": status})
        if kind == "prolog":
            job.prolog = DONE if not failed else FAILED    # a failed prolog never lets exec run
            if failed and not canceled:
                self.mgr.post(job, "exception", {
                    "type": "prolog", "severity": 0, "userid": self.mgr.owner,
                    "note": f"prolog failed on rank(s) {IDset([r for r, _s, _t in failed])}"
                            f"{': ' + failed[0][2] if failed[0][2] else ''}"})
        else:
            job.epilog = DONE
            if failed:
                reason = f"epilog failed for job {JobID(job.rec.id).f58}"
                try:
                    await self.mgr.ctx.rpc("resource.drain", {
                        "targets": IDset([r for r, _s, _t in failed]).encode(),
                        "reason": reason, "mode": "update"})
                except OSError as exc:
                    self.mgr.log.error("drain after a failed epilog failed",
                                       error=exc.strerror or str(exc))
        self.mgr.advance(job)

    def _host(self, rank: int) -> str:
        if self._hosts is None:
            from flux.hostlist import Hostlist

            try:
                self._hosts = list(Hostlist(self.mgr.ctx.attr_get("hostlist")))
            except (OSError, ValueError):
                self._hosts = []
        return self._hosts[rank] if 0 <= rank < len(self._hosts) else str(rank)

    def log_line(self, job: ActiveJob, kind: str, rank: int, stream: str, line: str) -> None:
        """Log one output line of a prolog or epilog in flux-core's form."""
        log = self.mgr.log.info if stream == "stdout" else self.mgr.log.error
        log(f"{JobID(job.rec.id).f58}: {kind}: {self._host(rank)} (rank {rank}): "
            f"{stream}: {line}")

    def fatal_posted(self, job: ActiveJob) -> None:
        """The job manager posted a fatal exception for JOB: end its running prolog
        (cancel-on-exception)."""
        event = self._fatal.get(job.rec.id)
        if event is not None:
            event.set()

    def recover(self, job: ActiveJob) -> None:
        """At restart: finish a prolog or epilog the stop cut short (status 1)."""
        rec = job.rec
        if rec.prolog_active:
            for _ in range(rec.prolog_active):
                self.mgr.post(job, "prolog-finish", {"description": "job-manager.prolog",
                                                     "status": 1 << 8})
            job.prolog = FAILED
            if rec.fatal is None:
                self.mgr.post(job, "exception", {"type": "prolog", "severity": 0,
                                                 "userid": self.mgr.owner,
                                                 "note": "prolog interrupted by a restart"})
        elif rec.started:
            job.prolog = DONE
        if rec.epilog_active:
            for _ in range(rec.epilog_active):
                self.mgr.post(job, "epilog-finish", {"description": "job-manager.epilog",
                                                     "status": 1 << 8})
            job.epilog = DONE

    def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()


class _OutputLog:
    """The output of one rank's prolog or epilog, logged line by line as it comes
    (so a prolog ended by an exception has what it printed logged too)."""

    __slots__ = ("perilog", "job", "kind", "rank", "ignore", "partial", "last_error")

    def __init__(self, perilog: Perilog, job: ActiveJob, kind: str, rank: int,
                 conf: PerilogConfig) -> None:
        self.perilog = perilog
        self.job = job
        self.kind = kind
        self.rank = rank
        self.ignore = conf.log_ignore
        self.partial: dict[str, bytes] = {}
        #: the last stderr line, for the exception of a failed prolog
        self.last_error = ""

    def write(self, stream: str, data: bytes) -> None:
        *lines, rest = (self.partial.pop(stream, b"") + data).split(b"\n")
        if rest:
            self.partial[stream] = rest
        for line in lines:
            self._line(stream, line)

    def close(self) -> None:
        for stream, rest in list(self.partial.items()):
            self._line(stream, rest)
        self.partial.clear()

    def _line(self, stream: str, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not line.strip():
            return          # flux-core always leaves blank lines out
        if stream == "stderr":
            self.last_error = line.strip()
        if any(p.search(line) for p in self.ignore):
            return
        self.perilog.log_line(self.job, self.kind, self.rank, stream, line)
