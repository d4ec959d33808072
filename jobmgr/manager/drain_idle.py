"""``job-manager.drain`` and ``job-manager.idle``: wait for the queue to empty or go idle.

Drained: no active jobs.  Idle: no job in RUN or CLEANUP and no alloc
request out (flux-queue(1)); the answer says how many jobs are pending.
Counts follow committed states, so a waiter is answered only once the
events that emptied the queue are durable.
"""
from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from flux.message import Message
from jobmgr.states import JobState

__all__ = ["DrainIdle"]

# plain ints: IntFlag arithmetic builds a new enum member per operation
_RUNNING = int(JobState.RUN | JobState.CLEANUP)
_PENDING = int(JobState.NEW | JobState.PENDING)
_INACTIVE = int(JobState.INACTIVE)


class DrainIdle:
    def __init__(self, respond: Callable[[Message, dict[str, Any]], None],
                 respond_error: Callable[[Message, int, str], None]) -> None:
        self._respond = respond
        self._respond_error = respond_error
        self.active = 0
        self.running = 0
        self.pending = 0
        self.alloc_pending = 0
        self._drain: list[Message] = []
        self._idle: list[Message] = []

    def count(self, old: JobState | None, new: JobState | None) -> None:
        """A job moved from committed state OLD to NEW (None: not in the table)."""
        if old is not None:
            value = int(old)
            self.active -= 1
            if value & _RUNNING:
                self.running -= 1
            elif value & _PENDING:
                self.pending -= 1
        if new is not None:
            value = int(new)
            if value != _INACTIVE:
                self.active += 1
                if value & _RUNNING:
                    self.running += 1
                elif value & _PENDING:
                    self.pending += 1

    @property
    def idle(self) -> bool:
        return self.running == 0 and self.alloc_pending == 0

    def wait_drain(self, msg: Message) -> None:
        if self.active == 0:
            self._respond(msg, {})
        else:
            self._drain.append(msg)

    def wait_idle(self, msg: Message) -> None:
        if self.idle:
            self._respond(msg, {"pending": self.pending})
        else:
            self._idle.append(msg)

    def check(self) -> None:
        if self._drain and self.active == 0:
            waiters, self._drain = self._drain, []
            for msg in waiters:
                self._respond(msg, {})
        if self._idle and self.idle:
            waiters, self._idle = self._idle, []
            for msg in waiters:
                self._respond(msg, {"pending": self.pending})

    def disconnect(self, sender: str) -> None:
        self._drain = [m for m in self._drain if m.sender != sender]
        self._idle = [m for m in self._idle if m.sender != sender]

    def close(self) -> None:
        for msg in self._drain + self._idle:
            self._respond_error(msg, errno.ENOSYS, "job-manager is unloading")
        self._drain.clear()
        self._idle.clear()
