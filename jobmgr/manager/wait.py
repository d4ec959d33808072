"""``job-manager.wait``: the result of waitable jobs, once, like waitpid(2).

A job submitted with the waitable flag (owner only) is a "child": when it
becomes inactive its result is handed to a waiter for that id or for any
job (FLUX_JOBID_ANY), or kept as a zombie until someone waits.  Zombies
are tiny (success flag and error text) and go into the checkpoint.
"""
from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from typing import Any

from flux.errors import FluxError
from flux.message import Message
from jobmgr.job import Job

__all__ = ["Waits", "wait_result", "FLUX_JOBID_ANY"]

FLUX_JOBID_ANY = 0xFFFFFFFFFFFFFFFF


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"task(s) {name}" + (" (core dumped)" if os.WCOREDUMP(status) else "")
    if os.WIFEXITED(status):
        return f"task(s) exited with exit code {os.WEXITSTATUS(status)}"
    return f"task(s) ended with wait status {status}"


def wait_result(rec: Job) -> tuple[bool, str]:
    """(success, errstr) of an inactive job, as ``job-manager.wait`` reports it."""
    if rec.fatal is not None:
        note = f" {rec.fatal.note}" if rec.fatal.note else ""
        return False, f"Fatal exception type={rec.fatal.type}{note}"
    if rec.finish_status is None:
        return False, "job never ran"
    if rec.finish_status != 0:
        return False, _status_text(rec.finish_status)
    return True, ""


class Waits:
    def __init__(self, respond: Callable[[Message, dict[str, Any]], None],
                 respond_error: Callable[[Message, int, str], None]) -> None:
        self._respond = respond
        self._respond_error = respond_error
        self.zombies: dict[int, tuple[bool, str]] = {}
        self._by_id: dict[int, Message] = {}
        self._any: list[Message] = []
        self.active_waitable = 0

    def request(self, msg: Message, jobid: int, job: Job | None) -> None:
        """A wait for JOBID (JOB: its active record, if active); answers now or later."""
        if jobid == FLUX_JOBID_ANY:
            if self.zombies:
                zid = next(iter(self.zombies))
                self._answer(msg, zid, *self.zombies.pop(zid))
            elif self.active_waitable > len(self._any) + len(self._by_id):
                self._any.append(msg)
            else:
                raise FluxError(errno.ECHILD, "there are no waitable jobs")
            return
        if jobid in self.zombies:
            self._answer(msg, jobid, *self.zombies.pop(jobid))
            return
        if job is None:
            raise FluxError(errno.ECHILD, f"job {jobid} is not a waitable job "
                                          "(unknown, or already waited for)")
        if not job.waitable:
            raise FluxError(errno.EINVAL, f"job {jobid} is not waitable")
        if jobid in self._by_id:
            raise FluxError(errno.EINVAL, f"job {jobid} already has a waiter")
        self._by_id[jobid] = msg

    def _answer(self, msg: Message, jobid: int, success: bool, errstr: str) -> None:
        self._respond(msg, {"id": jobid, "success": success, "errstr": errstr})

    def added(self, rec: Job) -> None:
        if rec.waitable:
            self.active_waitable += 1

    def dropped(self, rec: Job) -> None:
        """An active job that never was (its submit commit failed): nobody can wait for it."""
        if rec.waitable:
            self.active_waitable -= 1

    def inactive(self, rec: Job) -> None:
        """A waitable job became inactive: answer its waiter, or keep it as a zombie."""
        if not rec.waitable:
            return
        self.active_waitable -= 1
        success, errstr = wait_result(rec)
        msg = self._by_id.pop(rec.id, None)
        if msg is None and self._any:
            msg = self._any.pop(0)
        if msg is not None:
            self._answer(msg, rec.id, success, errstr)
        else:
            self.zombies[rec.id] = (success, errstr)

    def disconnect(self, sender: str) -> None:
        self._any = [m for m in self._any if m.sender != sender]
        for jobid in [j for j, m in self._by_id.items() if m.sender == sender]:
            del self._by_id[jobid]

    def checkpoint(self) -> list[list[Any]]:
        return [[jobid, ok, text] for jobid, (ok, text) in self.zombies.items()]

    def restore(self, saved: Any) -> None:
        if isinstance(saved, list):
            for entry in saved:
                if isinstance(entry, list) and len(entry) == 3 and type(entry[0]) is int:
                    self.zombies[entry[0]] = (bool(entry[1]), str(entry[2]))

    def close(self) -> None:
        for msg in list(self._by_id.values()) + self._any:
            self._respond_error(msg, errno.ENOSYS, "job-manager is unloading")
        self._by_id.clear()
        self._any.clear()
