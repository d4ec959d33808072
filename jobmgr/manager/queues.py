"""Job queues (RFC 33): submission enabled/disabled, scheduling started/stopped.

Without ``[queues]`` there is one anonymous queue (name None), enabled and
started.  With named queues every queue is named and starts *stopped*
(the Administrator's Guide: "If named queues are configured, they will be
initially stopped") but enabled.  Each change may be kept across restarts
(the default) or not (``nocheckpoint``): the checkpoint holds, per queue, the
last state that was asked to be kept.

``flux config reload`` may change the set (``reconfigure``, as flux-core's
queue_configure): a queue in both the old and the new config keeps its
state, a new queue starts as at load (named: enabled and stopped; the
anonymous queue: enabled and started), and a removed queue is forgotten.
"""
from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flux.errors import FluxError
from jobmgr.policy import JobPolicy

__all__ = ["QueueState", "Queues"]


@dataclass(slots=True)
class QueueState:
    name: str | None
    enable: bool = True
    disable_reason: str | None = None
    start: bool = True
    stop_reason: str | None = None
    # what a checkpoint keeps (changes made with nocheckpoint leave these alone)
    keep_enable: bool = True
    keep_disable_reason: str | None = None
    keep_start: bool = True
    keep_stop_reason: str | None = None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enable": self.enable, "start": self.start}
        if self.name is not None:
            out["name"] = self.name
        if not self.enable and self.disable_reason:
            out["disable_reason"] = self.disable_reason
        if not self.start and self.stop_reason:
            out["stop_reason"] = self.stop_reason
        return out

    def refusal(self) -> str | None:
        """Why a submission to this queue is refused now (None: accepted)."""
        if self.enable:
            return None
        reason = self.disable_reason or "no reason given"
        if self.name is None:
            return f"job submission is disabled: {reason}"
        return f"queue {self.name}: job submission is disabled: {reason}"


def _new_state(name: str | None) -> QueueState:
    """A queue as it is first configured: named queues start stopped."""
    if name is None:
        return QueueState(None)
    return QueueState(name, start=False, keep_start=False)


class Queues:
    def __init__(self, policy: JobPolicy) -> None:
        self.named = policy.named
        self.default = policy.default_queue
        self._states: dict[str | None, QueueState] = {
            name: _new_state(name) for name in (sorted(policy.queues) if self.named
                                                else [None])}
        self._removed: dict[str | None, QueueState] = {}

    def reconfigure(self, policy: JobPolicy) -> tuple[list[QueueState], list[QueueState]]:
        """Take the queues of a reloaded config: (queues added, queues removed).

        Queues kept keep their state; new ones start as at load (see the module's
        docstring); the anonymous queue counts as one more queue, named None."""
        old = self._states
        self.named = policy.named
        self.default = policy.default_queue
        wanted = sorted(policy.queues) if self.named else [None]
        self._states = {name: old.get(name) or self._removed.get(name) or _new_state(name)
                        for name in wanted}
        added = [q for name, q in self._states.items() if name not in old]
        removed = [q for name, q in old.items() if name not in self._states]
        self._removed.update((q.name, q) for q in removed)
        return added, removed

    def forget_removed(self) -> None:
        """The reload is over: a queue removed by it starts afresh if it comes back.
        Until then (a module refusing the reload restores the old config) it gets
        its state back."""
        self._removed.clear()

    def names(self) -> list[str]:
        return [name for name in self._states if name is not None]

    def states(self) -> Iterable[QueueState]:
        return self._states.values()

    def get(self, name: str | None) -> QueueState:
        """The queue called NAME (None: the anonymous queue); EINVAL if there is none."""
        if name is None:
            if self.named:
                raise FluxError(errno.EINVAL, "a queue name is required: queues are configured "
                                              f"({', '.join(self.names())})")
            return self._states[None]
        if not self.named:
            raise FluxError(errno.EINVAL, f"queue '{name}' does not exist: "
                                          "no queues are configured")
        state = self._states.get(name)
        if state is None:
            raise FluxError(errno.EINVAL, f"queue '{name}' does not exist "
                                          f"(queues: {', '.join(self.names())})")
        return state

    def find(self, name: str | None) -> QueueState | None:
        """The queue of a job (None if the queue no longer exists)."""
        return self._states.get(name)

    def started(self, name: str | None) -> bool:
        """Whether jobs of queue NAME may be scheduled.  Without named queues the
        anonymous queue's state applies to every job (a job submitted to a named
        queue that is gone since); with named queues a job of a queue that is not
        configured (or of none) is never scheduled, as in flux-core."""
        state = self._states.get(name if self.named else None)
        return state is not None and state.start

    def select(self, name: str | None, all_: bool) -> list[QueueState]:
        """The queues a command is about: NAME, every queue with ALL_, or the only one."""
        if all_:
            return list(self._states.values())
        if name is None and self.named and len(self._states) > 1:
            raise FluxError(errno.EINVAL, "use --all or name a queue: several queues are "
                                          f"configured ({', '.join(self.names())})")
        if name is None and self.named:
            return list(self._states.values())
        return [self.get(name)]

    @staticmethod
    def set_enable(queues: Iterable[QueueState], enable: bool, reason: str | None,
                   keep: bool = True) -> list[QueueState]:
        changed = []
        for q in queues:
            if q.enable != enable or (not enable and q.disable_reason != reason):
                changed.append(q)
            q.enable = enable
            q.disable_reason = None if enable else reason
            if keep:
                q.keep_enable, q.keep_disable_reason = q.enable, q.disable_reason
        return changed

    @staticmethod
    def set_start(queues: Iterable[QueueState], start: bool, reason: str | None,
                  keep: bool = True) -> list[QueueState]:
        changed = []
        for q in queues:
            if q.start != start:
                changed.append(q)
            q.start = start
            q.stop_reason = None if start else reason
            if keep:
                q.keep_start, q.keep_stop_reason = q.start, q.stop_reason
        return changed

    def checkpoint(self) -> list[dict[str, Any]]:
        return [{"name": q.name, "enable": q.keep_enable, "disable_reason": q.keep_disable_reason,
                 "start": q.keep_start, "stop_reason": q.keep_stop_reason}
                for q in self._states.values()]

    def restore(self, saved: Any) -> None:
        """Take back queue states from a checkpoint; queues no longer configured are ignored."""
        if not isinstance(saved, list):
            return
        for entry in saved:
            if not isinstance(entry, dict):
                continue
            q = self._states.get(entry.get("name"))
            if q is None:
                continue
            q.enable = q.keep_enable = bool(entry.get("enable", True))
            q.disable_reason = q.keep_disable_reason = entry.get("disable_reason")
            q.start = q.keep_start = bool(entry.get("start", True))
            q.stop_reason = q.keep_stop_reason = entry.get("stop_reason")
