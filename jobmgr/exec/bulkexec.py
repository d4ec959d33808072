"""Real execution of one job, on rank 0: a shell on every rank of its R.

``BulkJob`` carries out what ``ExecJob`` (the pure state machine,
jobmgr/exec/job.py) decides: it creates the job's guest namespace, asks the
exec service of each rank for a shell (``job-exec.launch``, streaming:
``started``, then ``exit`` with the shell's wait status; rank 0's own
shell is started directly and enters its barriers through its shell
server's socket), answers the shells' barriers, sends signals, runs the timers, drains ranks whose
shells cannot be killed, and at the end moves the guest namespace into
the job's directory before the final release.  A rank that cannot be
reached (its broker is gone) ends the job with a fatal ``node-failure``
exception.
"""
from __future__ import annotations

import asyncio
import base64
import errno
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flux.idset import IDset
from flux.job.JobID import JobID
from flux.message import Message
from jobmgr.exec.guest import GuestNamespace
from jobmgr.exec.job import Action, ExecJob, ExecSettings

if TYPE_CHECKING:
    from jobmgr.exec.module import JobExec

__all__ = ["BulkJob", "LauncherWaiter"]

#: exec eventlog entries that may wait a moment for company (Guest.append's hold)
_HELD = frozenset(("shell.init", "shell.start", "shell.task-exit"))


class LauncherWaiter:
    """A barrier entered by a shell of rank 0 through its server's socket (not a request)."""

    __slots__ = ("reply",)

    def __init__(self, reply: Callable[[dict[str, Any]], None]) -> None:
        self.reply = reply


class BulkJob:
    def __init__(self, mod: "JobExec", jobid: int, userid: int, jobspec: dict[str, Any],
                 R: dict[str, Any], ranks: list[int], ntasks: int, settings: ExecSettings,
                 respond: Callable[[str, dict[str, Any] | None], None],
                 job_key: str) -> None:
        self.mod = mod
        self.ctx = mod.ctx
        self.jobid = jobid
        self.userid = userid
        self.jobspec = jobspec
        self.R = R
        self.ntasks = ntasks
        self.respond = respond
        execution = R.get("execution") or {}
        self.job = ExecJob(jobid, ranks, settings, float(execution.get("expiration") or 0.0),
                           JobID(jobid).f58)
        self.guest = GuestNamespace(self.ctx, jobid, userid, job_key, mod.links)
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.tags: dict[int, int] = {}          # shell rank -> launch matchtag (0: ours)
        self.finalizing = False
        self.input = False                      # someone writes the job's input log
        self.held: list[Action] = []            # barrier replies waiting for the namespace
        self.namespace_failed = False
        self.done = asyncio.get_running_loop().create_future()

    # -- running the job ----------------------------------------------------------------
    def run(self) -> None:
        """Launch the shells and make the namespace, now (no task, no loop turn lost)."""
        # shells start while the namespace is made: they touch it only after barrier
        # init, which is answered once it exists
        self.apply(self.job.begin(time.time()))
        if self.job.complete:
            return
        for shell_rank, rank in enumerate(self.job.ranks):
            self._launch(shell_rank, rank)
        made = self.guest.create(self.ntasks, [("init", {}), ("starting", {})])
        made.add_done_callback(self._namespace_made)

    def _namespace_made(self, made: "asyncio.Future[None]") -> None:
        exc = made.exception()
        if exc is not None:
            text = getattr(exc, "strerror", None) or str(exc)
            self.mod.log.error("guest namespace setup failed", id=self.jobid, error=text)
            self.namespace_failed = True
            self.apply(self.job.raise_fatal("exec", f"cannot set up the job's KVS namespace: "
                                                    f"{text}"))
        held, self.held = self.held, []
        for action in held:
            self._barrier_reply(action)
        if self.finalizing and not self.done.done():
            self._finalize()        # the job ended before its namespace was made

    def _launch(self, shell_rank: int, rank: int) -> None:
        payload = {"id": self.jobid, "userid": self.userid, "jobspec": self.jobspec,
                   "R": self.R, "namespace": self.guest.name, "shell_rank": shell_rank,
                   "input": self.input, "kvsname": f"{self.jobid}-{self.mod.pmi_token}"}
        if rank == self.ctx.rank:
            # this rank's shell: no request to ourselves (job-exec.launch's work, directly)
            self.tags[shell_rank] = 0
            self.mod.launch_local(payload, self.jobid, self.userid,
                                  lambda _pid: self._started(shell_rank),
                                  lambda status, tail: self._exited(shell_rank, status, tail),
                                  lambda _errnum, text: self._failed(shell_rank, rank, text),
                                  lambda name, data, reply: self._local_barrier(
                                      shell_rank, name, data, reply), self.job.f58)
            return

        def on_response(msg: Message) -> None:
            self._launch_response(shell_rank, rank, msg)

        self.tags[shell_rank] = self.ctx.request_callback("job-exec.launch", payload,
                                                          on_response, streaming=True,
                                                          nodeid=rank)

    def _launch_response(self, shell_rank: int, rank: int, msg: Message) -> None:
        if msg.errnum:
            if msg.errnum != errno.ENODATA:
                self._failed(shell_rank, rank, msg.errstr or "launch failed")
            return
        body = msg.payload if isinstance(msg.payload, dict) else {}
        kind = body.get("type")
        if kind == "started":
            self._started(shell_rank)
        elif kind == "exit":
            tail = body.get("output")
            status = body.get("status")
            self._exited(shell_rank, int(status) if isinstance(status, int) else 1 << 8,
                         base64.b64decode(tail) if isinstance(tail, str) and tail else b"")

    def _started(self, shell_rank: int) -> None:
        self.apply(self.job.launched_on(shell_rank))

    def _exited(self, shell_rank: int, status: int, tail: bytes) -> None:
        if tail:
            self.guest.append_output(tail)
        self.apply(self.job.shell_exited(shell_rank, status))

    def _failed(self, shell_rank: int, rank: int, text: str) -> None:
        if shell_rank in self.job.launched and shell_rank not in self.job.exited:
            # the rank went away with the shell running on it
            self.apply(self.job.raise_fatal(
                "node-failure", f"lost contact with broker rank {rank}: {text}", 9))
            self.apply(self.job.shell_exited(shell_rank, 9))
        elif shell_rank not in self.job.exited:
            self.apply(self.job.launch_failed(shell_rank, text))

    # -- requests from the shells -----------------------------------------------------
    def barrier(self, msg: Message, shell_rank: int, name: str, data: Any) -> None:
        self.apply(self.job.barrier(shell_rank, name, data, msg))

    def _local_barrier(self, shell_rank: int, name: Any, data: Any,
                       reply: Callable[[dict[str, Any]], None]) -> None:
        """A shell of this rank entered barrier NAME over its server's socket (or, as
        ``task-exit``, reported its first task exit there: no reply)."""
        if name == "task-exit":
            if isinstance(data, dict) and type(data.get("status")) is int:
                self.task_exit(shell_rank, data["status"], data.get("task"))
            return
        if not isinstance(name, str) or not name:
            reply({"errno": errno.EPROTO, "text": "barrier: 'name' must be a non-empty string"})
            return
        self.apply(self.job.barrier(shell_rank, name, data, LauncherWaiter(reply)))

    def shell_exception(self, severity: int, etype: str, note: str) -> None:
        self.apply(self.job.exception(severity, etype, note))

    def task_exit(self, shell_rank: int, status: int, task: Any = None) -> None:
        self.apply(self.job.task_exited(shell_rank, status,
                                        task if isinstance(task, dict) else None))

    def input_ready(self) -> None:
        """Shells launched from now on follow the input log; tell those already out."""
        if self.input:
            return
        self.input = True
        for shell_rank in self.tags:
            self.ctx.send_request("job-exec.input-ready", {"id": self.jobid},
                                  nodeid=self.job.ranks[shell_rank])

    def kill(self, signum: int, after_exception: bool) -> None:
        self.apply(self.job.kill(signum, after_exception))

    def update_expiration(self, expiration: float) -> None:
        self.apply(self.job.update_expiration(expiration, time.time()))

    # -- carrying out actions -------------------------------------------------------------
    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            kind = action.kind
            if kind == "respond":
                self.respond(action["type"], action["data"] or None)
            elif kind == "eventlog":
                # shell.init and shell.start may wait a moment for company: a short job's
                # exec log then goes in with its last entries, in one commit
                self.guest.append(action["name"], action["context"],
                                  hold=action["name"] in _HELD)
            elif kind == "barrier":
                if not self.guest.created and not self.namespace_failed \
                        and "errnum" not in action.args:
                    self.held.append(action)     # answered once the namespace exists
                else:
                    self._barrier_reply(action)
            elif kind == "signal":
                for rank in action["ranks"]:
                    if rank == self.ctx.rank:
                        # this rank's shells: straight to the launcher (also while the
                        # module unloads, when a request to itself is no longer served)
                        self.mod.launcher.kill(str(self.jobid), action["signum"])
                        continue
                    self.ctx.send_request("job-exec.signal", {"id": self.jobid,
                                                              "signum": action["signum"]},
                                          nodeid=rank)
            elif kind == "timer":
                self._timer(action["name"], action["delay"])
            elif kind == "cancel_timer":
                handle = self.timers.pop(action["name"], None)
                if handle is not None:
                    handle.cancel()
            elif kind == "drain":
                self.ctx.create_task(self._drain(action["ranks"], action["reason"]),
                                     f"drain for job {self.jobid}")
            elif kind == "finalize":
                if not self.finalizing:
                    self.finalizing = True
                    self._finalize()

    def _barrier_reply(self, action: Action) -> None:
        waiters: list[Message | LauncherWaiter] = action["waiters"]
        if "errnum" in action.args:
            errnum, text = action["errnum"], action["text"]
            for msg in waiters:
                if isinstance(msg, LauncherWaiter):
                    msg.reply({"errno": errnum, "text": text})
                else:
                    self.ctx.respond_error(msg, errnum, text)
        else:
            payload = {"data": action["data"]}
            for msg in waiters:
                if isinstance(msg, LauncherWaiter):
                    msg.reply(payload)
                else:
                    self.ctx.respond(msg, payload)

    def _timer(self, name: str, delay: float) -> None:
        old = self.timers.pop(name, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self.timers.pop(name, None)
            self.apply(self.job.timer(name))

        self.timers[name] = asyncio.get_running_loop().call_later(delay, fire)

    async def _drain(self, ranks: list[int], reason: str) -> None:
        try:
            await self.ctx.rpc("resource.drain", {"targets": IDset(ranks).encode(),
                                                  "reason": reason, "mode": "update"})
        except OSError as exc:
            self.mod.log.error("drain failed", ranks=ranks, error=exc.strerror or str(exc))

    def _finalize(self) -> None:
        if not self.guest.created and not self.namespace_failed:
            # a one-shell job does not wait for its namespace and may end first: the
            # link (and so ``finish``) waits for it, or the namespace would be left behind
            return

        def failed(text: str) -> None:
            self.mod.log.error("moving the guest namespace failed", id=self.jobid, error=text)

        self.guest.finalize(failed)
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        self.apply(self.job.finalized())
        if not self.done.done():
            self.done.set_result(None)
