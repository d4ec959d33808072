"""One running job as rank 0's exec sees it: a pure state machine over its shells.

``ExecJob`` gets what happens to a job (a shell launched or failed to, a
shell entered a barrier or exited, a task exited, a kill request, a timer)
and answers with ``Action``s for the module to carry out: RFC 32
responses to the job manager, entries for the exec eventlog, barrier
replies, signals for the shells of some ranks, timers, drains, and the
final move of the guest namespace.  No I/O happens here, so every path
(time limits, kill escalation, exit-timeout, a shell lost half way) is
tested with plain calls.

Order of a normal run: ``init``/``starting`` are logged by the module
before launch; every shell enters barrier ``init`` (-> ``shell.init``),
then ``start`` (-> ``shell.start`` and the RFC 32 ``start``); shells exit;
with the last one ``complete {status}`` and ``done``, then ``finalize``
(guest namespace into the job directory), and only after that ``finish
{status}`` with the final ``release``: so an INACTIVE job's directory
holds its guest data (RFC 16), and the job manager logs both in one
commit.
"""
from __future__ import annotations

import errno
import signal
from dataclasses import dataclass, field
from typing import Any

from flux.idset import IDset

__all__ = ["Action", "ExecJob", "ExecSettings", "TIMEOUT_NOTE"]

TIMEOUT_NOTE = "resource allocation expired"
_SIGKILL = int(signal.SIGKILL)
_SIGTERM = int(signal.SIGTERM)
_SIGALRM = int(signal.SIGALRM)


@dataclass(slots=True, frozen=True)
class Action:
    """Something the module must do.  ``kind`` and its arguments:

    - ``respond``: ``type``, ``data`` (an RFC 32 response)
    - ``eventlog``: ``name``, ``context`` (append to guest.exec.eventlog)
    - ``barrier``: ``name``, ``waiters`` (tokens), ``data`` (merged) or
      ``errnum`` + ``text`` for a failed barrier
    - ``signal``: ``ranks`` (broker ranks), ``signum``
    - ``timer``: ``name``, ``delay`` (seconds; replaces a timer of that name)
    - ``cancel_timer``: ``name``
    - ``drain``: ``ranks``, ``reason``
    - ``finalize``: move the guest namespace into the job directory, then
      call ``ExecJob.finalized()``
    """

    kind: str
    args: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.args[key]


@dataclass(slots=True, frozen=True)
class ExecSettings:
    kill_timeout: float = 5.0            # SIGKILL this long after the first kill signal
    exit_timeout: float | None = 30.0    # None: no exit-timeout
    exit_on_error: bool = False
    signal_before: tuple[int, float] | None = None   # (signum, seconds before expiration)


class ExecJob:
    """Rank 0's view of one job's shells (one per broker rank of its R)."""

    def __init__(self, jobid: int, ranks: list[int], settings: ExecSettings,
                 expiration: float = 0.0, f58: str = "") -> None:
        self.jobid = jobid
        self.f58 = f58 or str(jobid)
        self.ranks = list(ranks)                  # shell rank i runs on broker rank ranks[i]
        self.settings = settings
        self.expiration = expiration
        self.launched: set[int] = set()           # shell ranks whose shell process exists
        self.exited: dict[int, int] = {}          # shell rank -> wait status
        self.status = 0                           # largest wait status so far
        self.started = False                      # RFC 32 start sent
        self.fatal = False                        # a fatal exception was raised
        self.kill_stage = 0                       # 0 none, 1 signal sent, 2 SIGKILL sent, 3 drained
        self.barriers_done: list[str] = []
        self._open: dict[str, dict[int, tuple[Any, Any]]] = {}    # name -> rank -> entry
        self._failed_barriers: set[str] = set()
        self.first_task_exit = False
        self.task_exit_logged = False             # shell.task-exit is in the exec log
        self.complete = False
        self.finished = False                     # finalize done, final release sent
        self.released: set[int] = set()           # shell ranks released early

    # -- helpers ---------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.ranks)

    def running(self) -> list[int]:
        """Shell ranks whose shell may still be running."""
        return [r for r in range(self.size) if r not in self.exited]

    def _broker(self, shell_ranks: list[int]) -> list[int]:
        return [self.ranks[r] for r in shell_ranks]

    @staticmethod
    def _respond(kind: str, **data: Any) -> Action:
        return Action("respond", {"type": kind, "data": data})

    @staticmethod
    def _log(name: str, **context: Any) -> Action:
        return Action("eventlog", {"name": name, "context": context})

    # -- start ---------------------------------------------------------------------------
    def begin(self, now: float) -> list[Action]:
        """Timers for the time limit; the module launches shells after this."""
        return self._expiration_timers(now)

    def _expiration_timers(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self.expiration > 0:
            out.append(Action("timer", {"name": "expire",
                                        "delay": max(self.expiration - now, 0.0)}))
            before = self.settings.signal_before
            if before is not None:
                at = self.expiration - before[1]
                out.append(Action("timer", {"name": "signal", "delay": max(at - now, 0.0)}))
        else:
            out += [Action("cancel_timer", {"name": "expire"}),
                    Action("cancel_timer", {"name": "signal"})]
        return out

    def update_expiration(self, expiration: float, now: float) -> list[Action]:
        """The job's R got a new expiration (0: none): move the timers."""
        self.expiration = float(expiration)
        if self.complete:
            return []
        return self._expiration_timers(now)

    def launched_on(self, shell_rank: int) -> list[Action]:
        self.launched.add(shell_rank)
        return []

    def launch_failed(self, shell_rank: int, note: str) -> list[Action]:
        """The shell of SHELL_RANK could not be started: the job fails."""
        out = self.raise_fatal("exec", f"rank {self.ranks[shell_rank]}: {note}", _SIGKILL)
        return out + self.shell_exited(shell_rank, 1 << 8)

    # -- barriers ----------------------------------------------------------------------
    def barrier(self, shell_rank: int, name: str, data: Any, token: Any) -> list[Action]:
        """SHELL_RANK entered barrier NAME with DATA; TOKEN identifies its request.

        Barriers are independent and named once each (``init``, ``start``,
        ``pmi.1``, ...): a shell may enter the next before the others have
        left the previous one.
        """
        if name in self._failed_barriers or self.exited:
            return [Action("barrier", {"name": name, "waiters": [token],
                                       "errnum": errno.ECONNRESET,
                                       "text": "a shell of the job has exited"})]
        entered = self._open.setdefault(name, {})
        if shell_rank in entered or name in self.barriers_done:
            return [Action("barrier", {"name": name, "waiters": [token], "errnum": errno.EEXIST,
                                       "text": f"shell {shell_rank} entered {name!r} twice"})]
        entered[shell_rank] = (token, data)
        if len(entered) < self.size:
            return []
        return self._barrier_complete(name, self._open.pop(name))

    def _barrier_complete(self, name: str, entered: dict[int, tuple[Any, Any]]) -> list[Action]:
        merged: dict[str, Any] = {}
        pids: dict[int, int] = {}
        for rank in sorted(entered):
            data = entered[rank][1]
            if isinstance(data, dict):
                merged.update(data)
                if name == "start" and "pids" in data:
                    pids.update(_task_pids(data["pids"]))
        if name == "start":
            merged.pop("pids", None)      # each shell's own: gathered above, not passed on
        waiters = [entered[r][0] for r in sorted(entered)]
        self.barriers_done.append(name)
        out: list[Action] = []
        if name == "init":
            out.append(self._log("shell.init", **{"leader-rank": self.ranks[0],
                                                  "size": self.size}))
        elif name == "start":
            # the leader's task count and RFC 34 task map, as flux-core logs them
            context = {key: merged.pop(key) for key in ("task-count", "taskmap")
                       if key in merged}
            count = context.get("task-count")
            if type(count) is int and count >= 0:
                pids = {r: p for r, p in pids.items() if r < count}   # the job's ranks only
            if pids:
                # each task's pid, by task rank (0: it did not start)
                context["pids"] = [pids.get(r, 0) for r in range(max(pids) + 1)]
            out.append(self._log("shell.start", **context))
            if not self.started:
                self.started = True
                out.append(self._respond("start"))
        out.append(Action("barrier", {"name": name, "waiters": waiters, "data": merged}))
        return out

    def _fail_barriers(self, shell_rank: int, why: str) -> list[Action]:
        """Fail every open barrier SHELL_RANK (now gone) had not entered."""
        out: list[Action] = []
        for name in [n for n, e in self._open.items() if shell_rank not in e]:
            entered = self._open.pop(name)
            self._failed_barriers.add(name)
            out.append(Action("barrier", {"name": name,
                                          "waiters": [tok for tok, _d in entered.values()],
                                          "errnum": errno.ECONNRESET, "text": why}))
        return out

    # -- exceptions, kills, timers ----------------------------------------------------------
    def raise_fatal(self, etype: str, note: str, signum: int = _SIGTERM) -> list[Action]:
        """Exec raises a fatal exception (once) and starts killing the shells."""
        if self.fatal or self.complete:
            return []
        self.fatal = True
        out = [self._respond("exception", severity=0, type=etype, note=note)]
        return out + self._kill_sequence(signum)

    def exception(self, severity: int, etype: str, note: str) -> list[Action]:
        """A shell reported an exception (e.g. a task that could not start)."""
        if severity == 0:
            if self.fatal or self.complete:
                return []
            self.fatal = True
            return [self._respond("exception", severity=0, type=etype, note=note)] \
                + self._kill_sequence(_SIGTERM)
        return [self._respond("exception", severity=severity, type=etype, note=note)]

    def _kill_sequence(self, signum: int) -> list[Action]:
        running = self.running()
        if not running or self.kill_stage:
            return []
        self.kill_stage = 1
        return [Action("signal", {"ranks": self._broker(running), "signum": signum}),
                Action("timer", {"name": "kill", "delay": self.settings.kill_timeout})]

    def kill(self, signum: int, after_exception: bool = False) -> list[Action]:
        """``job-exec.kill``: the job manager's (after a fatal exception) or a user's."""
        if after_exception:
            self.fatal = True
            return self._kill_sequence(signum)
        running = self.running()
        if not running:
            return []
        return [Action("signal", {"ranks": self._broker(running), "signum": signum})]

    def timer(self, name: str) -> list[Action]:
        if self.complete:
            return []
        if name == "expire":
            return self.raise_fatal("timeout", TIMEOUT_NOTE, _SIGALRM)
        if name == "signal" and self.settings.signal_before is not None:
            running = self.running()
            if running:
                return [Action("signal", {"ranks": self._broker(running),
                                          "signum": self.settings.signal_before[0]})]
            return []
        if name == "exit-timeout":
            running = self.running()
            if not running:
                return []
            timeout = self.settings.exit_timeout or 0
            return self.raise_fatal(
                "exec", f"exit-timeout: {len(running)} rank(s) still running {timeout:g}s "
                        "after the first task exited", _SIGTERM)
        if name == "kill":
            return self._escalate()
        return []

    def _escalate(self) -> list[Action]:
        running = self.running()
        if not running:
            return []
        if self.kill_stage <= 1:
            self.kill_stage = 2
            return [Action("signal", {"ranks": self._broker(running), "signum": _SIGKILL}),
                    Action("timer", {"name": "kill", "delay": self.settings.kill_timeout})]
        # shells that outlive SIGKILL: take their nodes out of service and let the job end
        self.kill_stage = 3
        ranks = self._broker(running)
        out = [Action("drain", {"ranks": ranks,
                                "reason": f"unkillable processes of job {self.f58}"})]
        for r in running:
            out += self.shell_exited(r, _SIGKILL)
        return out

    # -- tasks and shells exiting ---------------------------------------------------------
    def task_exited(self, shell_rank: int, status: int,
                    task: dict[str, Any] | None = None) -> list[Action]:
        """A shell's first task exited with STATUS (a wait status); TASK, the shell's
        facts about it, goes in ``shell.task-exit`` if it is the job's first."""
        out: list[Action] = []
        if task is not None and not self.task_exit_logged and not self.complete:
            self.task_exit_logged = True
            out.append(self._log("shell.task-exit", **task))
        if status != 0 and self.settings.exit_on_error:
            if status & 0x7F == 0:
                how = f"exited with code {status >> 8}"
            else:
                sig = status & 0x7F
                try:
                    name = signal.Signals(sig).name
                except ValueError:
                    name = f"signal {sig}"
                how = f"was killed by {name}"
            out += self.raise_fatal("exec", f"exit-on-error: a task on rank "
                                            f"{self.ranks[shell_rank]} {how}")
        if not self.first_task_exit:
            self.first_task_exit = True
            if self.settings.exit_timeout is not None and len(self.running()) > 0:
                out.append(Action("timer", {"name": "exit-timeout",
                                            "delay": self.settings.exit_timeout}))
        return out

    def shell_exited(self, shell_rank: int, status: int) -> list[Action]:
        """The shell of SHELL_RANK ended with wait status STATUS."""
        if shell_rank in self.exited or self.complete:
            return []
        self.exited[shell_rank] = status
        self.status = max(self.status, status)
        out = self._fail_barriers(shell_rank, "a shell of the job has exited")
        running = self.running()
        if running:
            out += self.task_exited(shell_rank, status) if not self.first_task_exit else []
            self.released.add(shell_rank)
            out.append(self._respond("release", ranks=str(self.ranks[shell_rank]), final=False))
            return out
        self.complete = True
        out += [Action("cancel_timer", {"name": n})
                for n in ("expire", "signal", "exit-timeout", "kill")]
        out.append(self._log("complete", status=self.status))
        out.append(self._log("done"))
        out.append(Action("finalize"))
        return out

    def finalized(self) -> list[Action]:
        """The guest namespace is in the job directory: ``finish`` (if the job started)
        and the final release of the remaining ranks, together (one job manager commit)."""
        if self.finished:
            return []
        self.finished = True
        rest = [self.ranks[r] for r in range(self.size) if r not in self.released]
        # one rank (most jobs): its number is its idset, no IDset to build per job
        ranks = str(rest[0]) if len(rest) == 1 else IDset(rest).encode() if rest else ""
        out = [self._respond("finish", status=self.status)] if self.started else []
        return out + [self._respond("release", ranks=ranks, final=True)]


def _task_pids(value: Any) -> dict[int, int]:
    """A shell's ``[[task rank, pid], ...]`` as a dict; anything malformed is left out."""
    out: dict[int, int] = {}
    if isinstance(value, list):
        for item in value:
            if (isinstance(item, list) and len(item) == 2 and type(item[0]) is int
                    and type(item[1]) is int and 0 <= item[0] < 1 << 20 and item[1] >= 0):
                out[item[0]] = item[1]
    return out
