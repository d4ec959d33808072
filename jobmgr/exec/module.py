"""The ``job-exec`` broker module: runs jobs, on every broker rank.

On rank 0 it speaks RFC 32 with the job manager (``job-exec.start``,
streaming; ``job-exec.kill``) and coordinates each job over the ranks of
its R: a test-mode job is run by ``TestExec`` (no processes), any other by
a ``BulkJob`` (a shell on each rank).  It also answers the shells of
running jobs: ``job-exec.barrier``, ``job-exec.exception``,
``job-exec.task-exit``, ``job-exec.input`` (someone writes the job's
input log: its shells start following it) (guests may call these for
their own jobs only),
and ``job-exec.expiration {id, expiration}`` moves a running job's time
limit.

On every rank (rank 0 included) it starts shells when rank 0 asks
(``job-exec.launch``, streaming: ``started {pid}``, ``exit {status}``,
then ENODATA; an error if the shell cannot be forked) and signals them
(``job-exec.signal {id, signum}``).  Rank 0 starts the shells of its own
rank without a request to itself (``launch_local``, the same work).  Shells run in the rank's shell
server for the job's user (jobmgr/exec/launcher.py, shell/server.py).

When the instance leaves its run state (``job-exec.shutdown``, asked by
rank 0's broker before its other brokers leave) and again at unload, rank
0 ends its running jobs (a fatal ``exec`` exception, the shells
signalled, SIGKILL after the kill timeout) and waits for them to be
reported; every rank then ends whatever shells it still has and its shell
servers.  specs/exec.md states the protocol.
"""
from __future__ import annotations

import asyncio
import base64
import errno
import os
import pwd
import secrets
import signal
import tempfile
from typing import Any

from broker.module import Module, request_handler
from flux.constants import FLUX_ROLE_OWNER
from flux.errors import FluxError
from flux.job.JobID import JobID
from flux.job.summary import summarize_shared
from flux.job.taskmap import layout
from flux.message import Message
from jobmgr.exec.bulkexec import BulkJob
from jobmgr.exec.config import ExecConfig, job_settings
from jobmgr.exec.guest import GuestNamespace, LinkBatcher
from jobmgr.exec.launcher import Launcher, ShellHandle
from jobmgr.exec.testexec import TestExec, fail, run_settings
from jobmgr.manager.active import job_key

__all__ = ["JobExec", "user_check"]

_GUEST_OUTPUT_LIMIT = "10M"
_OWNER_OUTPUT_LIMIT = "1G"
_SHUTDOWN_NOTE = "job killed: the instance is shutting down"


def user_check(userid: int, owner: int, euid: int) -> str | None:
    """Why a job of USERID cannot run here (None if it can): only root switches users."""
    if userid == owner or userid == euid or euid == 0:
        return None
    return (f"the instance cannot run jobs for other users: it does not run as root, and "
            f"the job belongs to uid {userid}")


def _payload(msg: Message) -> dict[str, Any]:
    body = msg.payload
    if not isinstance(body, dict):
        raise FluxError(errno.EPROTO, f"{msg.topic}: payload must be an object")
    return body


def _int(body: dict[str, Any], key: str, topic: str) -> int:
    value = body.get(key)
    if type(value) is not int:
        raise FluxError(errno.EPROTO, f"{topic}: '{key}' must be an integer")
    return value


class JobExec(Module):
    name = "job-exec"

    async def start(self) -> None:
        self.config = ExecConfig.from_table(self.ctx.conf_get("exec"))
        self.log = self.ctx.log
        self.tests = TestExec()
        self.jobs: dict[int, BulkJob] = {}
        self.links = LinkBatcher(self.ctx)     # the guest symlinks of jobs starting together
        self._uri = self.ctx.attr_get("local-uri")
        self._level = self.ctx.attr_get_default("instance-level", "0")
        self.launcher = Launcher(self.log, self._uri, max_servers=self.config.shell_servers)
        #: (rank 0) makes each job's PMI kvsname unique on the machine: job ids of two
        #: instances (FLUIDs count milliseconds from each one's start) can be equal, and
        #: MPICH names its shared memory after the kvsname, so two MPI jobs of the same
        #: id on one node failed in MPI_Init
        self.pmi_token = secrets.token_hex(4)
        self.local: dict[int, ShellHandle] = {}      # this rank's shells, by job id
        self.stopping = False
        if self.ctx.rank == 0:
            # the job manager answers hello by sending start requests at once, so
            # say hello only once this module's service is registered (after start)
            self.ctx.create_task(self._hello(), "job-exec hello")
        if not self.config.test:
            self.launcher.start()

    async def _hello(self) -> None:
        try:
            await self.ctx.rpc("job-manager.exec-hello", {"service": "job-exec"})
        except FluxError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            self.log.warning("job-manager is not loaded; job-exec waits to be asked")

    def config_reload(self, config: Any) -> None:
        self.config = ExecConfig.from_table(config.get("exec"))
        self.launcher.set_max_servers(self.config.shell_servers)

    async def stop(self) -> None:
        await self._end_jobs()
        await self.launcher.close(self.config.kill_timeout)

    async def _end_jobs(self) -> None:
        """Refuse new jobs; end the running ones (fatal ``exec`` exception, shells
        signalled, SIGKILL after the kill timeout) and wait until they are reported."""
        self.stopping = True
        self.tests.stop()
        if self.jobs:
            for bulk in list(self.jobs.values()):
                bulk.apply(bulk.job.raise_fatal("exec", _SHUTDOWN_NOTE))
            waits = [bulk.done for bulk in self.jobs.values()]
            await asyncio.wait(waits, timeout=2 * self.config.kill_timeout + 5.0)

    @request_handler("job-exec.shutdown")
    async def shutdown_jobs(self, msg: Message) -> dict[str, Any]:
        """Rank 0's broker asks this as the instance leaves its run state, before its
        other brokers go: a job's shells on those ranks can then still report their
        end, so the jobs end in order instead of waiting out the kill timeout for
        ranks that have left (answers once every job is over)."""
        if self.ctx.rank == 0:
            await self._end_jobs()
        return {}

    # -- rank 0: RFC 32 --------------------------------------------------------------------
    @request_handler("job-exec.start", streaming=True)
    def start_job(self, msg: Message) -> None:
        body = _payload(msg)
        jobid = _int(body, "id", msg.topic)
        if jobid in self.jobs or jobid in self.tests.running:
            raise FluxError(errno.EEXIST, f"job-exec.start: job {jobid} is already running")
        userid = body.get("userid", self.ctx.owner)

        def respond(kind: str, data: dict[str, Any] | None) -> None:
            self.ctx.respond(msg, {"id": jobid, "type": kind, "data": data or {}})

        if self.stopping:
            fail(respond, _SHUTDOWN_NOTE, started=bool(body.get("reattach")))
            return
        jobspec, R = body.get("jobspec"), body.get("R")
        try:
            settings = run_settings(jobspec, self.config.test)
        except ValueError as exc:
            fail(respond, str(exc), started=False)
            return
        if settings is not None:
            self.tests.start(jobid, settings, bool(body.get("reattach")), respond)
            return
        if body.get("reattach"):
            self.ctx.create_task(self._lost_on_restart(jobid, respond), f"reattach {jobid}")
            return
        if type(userid) is not int or userid < 0:
            fail(respond, f"invalid userid {userid!r}", started=False)
            return
        refused = user_check(userid, self.ctx.owner, os.geteuid())
        if refused is not None:
            fail(respond, refused, started=False)
            return
        try:
            if not isinstance(jobspec, dict) or not isinstance(R, dict):
                raise ValueError("jobspec and R must be objects")
            # the broker's jobspecs are never edited in place (summarize_shared)
            ranks, counts = layout(jobspec, R, summarize_shared(jobspec))
            settings_ = job_settings(jobspec, self.config)
        except ValueError as exc:
            fail(respond, str(exc), started=False)
            return
        bulk = BulkJob(self, jobid, userid, jobspec, R, ranks, sum(counts), settings_, respond,
                       job_key(jobid))
        self.jobs[jobid] = bulk
        bulk.done.add_done_callback(lambda _f: self.jobs.pop(jobid, None))
        try:
            bulk.run()
        except Exception:  # noqa: BLE001 - as a failed task would be: logged, not the caller's
            self.log.exception("starting a job failed", id=jobid)

    async def _lost_on_restart(self, jobid: int, respond: Any) -> None:
        """A job that was running when the instance stopped: its shells are gone."""
        try:
            await GuestNamespace.recover(self.ctx, jobid, job_key(jobid))
        except OSError as exc:
            self.log.error("recovering a job's guest namespace failed", id=jobid,
                           error=exc.strerror or str(exc))
        fail(respond, "job shells were lost: the instance stopped while the job was running",
             started=True)

    @request_handler("job-exec.kill")
    def kill(self, msg: Message) -> dict[str, Any] | None:
        body = _payload(msg)
        jobid = _int(body, "id", msg.topic)
        signum = body.get("signal", int(signal.SIGTERM))
        if type(signum) is not int or not 1 <= signum < signal.NSIG:
            raise FluxError(errno.EINVAL, f"job-exec.kill: invalid signal {signum!r}")
        if self.tests.kill(jobid, signum):
            return {}
        bulk = self.jobs.get(jobid)
        if bulk is None or bulk.job.complete:
            raise FluxError(errno.ENOENT, f"job-exec.kill: job {jobid} is not running")
        bulk.kill(signum, bool(body.get("exception", False)))
        return {}

    @request_handler("job-exec.expiration")
    def expiration(self, msg: Message) -> dict[str, Any]:
        body = _payload(msg)
        jobid = _int(body, "id", msg.topic)
        value = body.get("expiration")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'expiration' must be a number >= 0")
        bulk = self.jobs.get(jobid)
        if bulk is None:
            raise FluxError(errno.ENOENT, f"{msg.topic}: job {jobid} is not running")
        bulk.update_expiration(float(value))
        return {}

    # -- rank 0: the shells' requests --------------------------------------------------------
    def _job_for(self, msg: Message, body: dict[str, Any]) -> tuple[BulkJob, int]:
        jobid = _int(body, "id", msg.topic)
        shell_rank = _int(body, "rank", msg.topic)
        bulk = self.jobs.get(jobid)
        if bulk is None:
            raise FluxError(errno.ENOENT, f"{msg.topic}: job {JobID(jobid).f58} is not running")
        if not msg.rolemask & FLUX_ROLE_OWNER and msg.userid != bulk.userid:
            raise FluxError(errno.EPERM, f"{msg.topic}: job {JobID(jobid).f58} is not yours")
        if not 0 <= shell_rank < bulk.job.size:
            raise FluxError(errno.EINVAL, f"{msg.topic}: shell rank {shell_rank} is not in "
                                          f"job {JobID(jobid).f58}")
        return bulk, shell_rank

    @request_handler("job-exec.barrier", allow_guest=True)
    def barrier(self, msg: Message) -> None:
        body = _payload(msg)
        bulk, shell_rank = self._job_for(msg, body)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'name' must be a non-empty string")
        bulk.barrier(msg, shell_rank, name, body.get("data"))

    @request_handler("job-exec.exception", allow_guest=True)
    def shell_exception(self, msg: Message) -> dict[str, Any]:
        body = _payload(msg)
        bulk, _rank = self._job_for(msg, body)
        severity = body.get("severity", 0)
        if type(severity) is not int or not 0 <= severity <= 7:
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'severity' must be 0-7")
        etype = body.get("type", "exec")
        note = body.get("note", "")
        if not isinstance(etype, str) or not etype or not isinstance(note, str):
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'type' and 'note' must be strings")
        bulk.shell_exception(severity, etype, note)
        return {}

    @request_handler("job-exec.input", allow_guest=True)
    def input(self, msg: Message) -> dict[str, Any]:
        """Someone (flux run, flux job attach) writes to the job's input log."""
        body = _payload(msg)
        jobid = _int(body, "id", msg.topic)
        bulk = self.jobs.get(jobid)
        if bulk is None:
            raise FluxError(errno.ENOENT, f"{msg.topic}: job {JobID(jobid).f58} is not running")
        if not msg.rolemask & FLUX_ROLE_OWNER and msg.userid != bulk.userid:
            raise FluxError(errno.EPERM, f"{msg.topic}: job {JobID(jobid).f58} is not yours")
        bulk.input_ready()
        return {}

    @request_handler("job-exec.input-ready")
    def input_ready(self, msg: Message) -> None:
        body = _payload(msg)
        self.launcher.input_ready(str(_int(body, "id", msg.topic)))
        return None

    @request_handler("job-exec.task-exit", allow_guest=True)
    def task_exit(self, msg: Message) -> dict[str, Any]:
        body = _payload(msg)
        bulk, shell_rank = self._job_for(msg, body)
        status = body.get("status")
        if type(status) is int:
            bulk.task_exit(shell_rank, status, body.get("task"))
        return {}

    # -- every rank: this rank's shells -------------------------------------------------------
    @request_handler("job-exec.launch", streaming=True)
    def launch(self, msg: Message) -> None:
        body = _payload(msg)
        jobid = _int(body, "id", msg.topic)
        userid = _int(body, "userid", msg.topic)
        stream = self.ctx.stream(msg)

        def exited(status: int, output: bytes) -> None:
            if self.stopping:
                # this broker is leaving with the shell still running (its own shutdown,
                # not the instance's, which ends jobs first): the job lost this rank, as
                # when a broker is lost, rather than a shell that simply exited
                stream.error(errno.ESHUTDOWN,
                             f"broker rank {self.ctx.rank} left the instance")
                return
            reply: dict[str, Any] = {"type": "exit", "status": status}
            if output:
                reply["output"] = base64.b64encode(output).decode()
            stream.send(reply)
            stream.end()

        self.launch_local(body, jobid, userid,
                          lambda pid: stream.send({"type": "started", "pid": pid}),
                          exited, stream.error)

    def launch_local(self, body: dict[str, Any], jobid: int, userid: int,
                     on_started: Any, on_exit: Any, on_error: Any,
                     on_barrier: Any = None, f58: str | None = None) -> None:
        """Start the shell of job JOBID on this rank (``job-exec.launch``'s work).

        Rank 0's exec calls this directly for the shells of its own rank (no
        request to itself); the outcome comes as ON_STARTED(pid), then
        ON_EXIT(wait status, last output entries), or ON_ERROR(errnum, text),
        always from a later loop turn than the call.  With ON_BARRIER (rank
        0's own shells), the shell enters its barriers through the shell
        server's socket instead of ``job-exec.barrier`` requests.  F58: the
        job id's F58 form, when the caller has it already.
        """
        if self.stopping:
            self._later(on_error, errno.ENOSYS, "job-exec is shutting down")
            return
        rank = self.ctx.rank
        if f58 is None:
            f58 = JobID(jobid).f58
        gid = None
        if userid != os.geteuid():
            try:
                gid = pwd.getpwuid(userid).pw_gid
            except KeyError:
                self._later(on_error, errno.ENOENT, f"rank {rank}: no such user: uid {userid}")
                return
        base = self.ctx.rundir if userid == self.ctx.owner else tempfile.gettempdir()
        tmpdir = os.path.join(base, f"jobtmp-{rank}-{f58}")
        limit = self.config.output_limit or (
            _OWNER_OUTPUT_LIMIT if userid == self.ctx.owner else _GUEST_OUTPUT_LIMIT)
        args = {"jobid": jobid, "f58": f58, "jobspec": body.get("jobspec"), "R": body.get("R"),
                "rank": rank, "shell_rank": body.get("shell_rank", 0),
                "uri": self._uri, "namespace": body.get("namespace"),
                "tmpdir": tmpdir, "output_limit": limit, "userid": userid,
                "kvsname": body.get("kvsname"),
                "instance_level": self._level,
                "input": bool(body.get("input"))}
        if self.config.shell_initrc:
            args["initrc"] = self.config.shell_initrc
        if on_barrier is not None:
            args["barrier"] = "launcher"

        def exited(status: int, output: bytes) -> None:
            self.local.pop(jobid, None)
            on_exit(status, output)

        def failed(errnum: int, text: str) -> None:
            self.local.pop(jobid, None)
            self._later(on_error, errnum, f"cannot start the job shell: {text}")

        handle = ShellHandle(str(jobid), f58, on_started, exited, failed,
                             on_barrier=on_barrier)
        self.local[jobid] = handle
        if not self.launcher.spawn_now(handle, args, userid):
            # the user's shell server is not up yet
            self.ctx.create_task(self.launcher.spawn(handle, args, userid, gid),
                                 f"launch {f58}")

    @staticmethod
    def _later(fn: Any, *args: Any) -> None:
        asyncio.get_running_loop().call_soon(fn, *args)

    @request_handler("job-exec.signal")
    def signal_shell(self, msg: Message) -> None:
        body = _payload(msg)
        jobid = _int(body, "id", msg.topic)
        signum = _int(body, "signum", msg.topic)
        self.launcher.kill(str(jobid), signum)
        return None
