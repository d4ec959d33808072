"""flux.job.stats: job counts by state and result (``job-list.job-stats``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from flux.core.handle import Flux
    from flux.rpc import RPC

__all__ = ["JobStats"]

_STATES = ("new", "depend", "priority", "sched", "run", "cleanup", "inactive")
_RESULTS = ("successful", "failed", "canceled", "timeout")


class JobStats:
    """Job statistics of the instance (or of one ``queue``), as ``flux jobs --stats`` shows.

    Attributes: ``depend``, ``priority``, ``sched``, ``run``, ``cleanup``,
    ``inactive``, ``active`` (every state but INACTIVE), ``pending``
    (depend + priority + sched), ``running`` (run + cleanup), ``successful``,
    ``failed``, ``canceled``, ``timeout``, ``inactive_purged``.  All are 0
    until ``update_sync()`` or ``update()`` fetches them.
    """

    def __init__(self, handle: "Flux", queue: str | None = None) -> None:
        self.handle = handle
        self.queue = queue
        self.new = self.depend = self.priority = self.sched = 0
        self.run = self.cleanup = self.inactive = 0
        self.active = self.pending = self.running = self.total = 0
        self.successful = self.failed = self.canceled = self.timeout = 0
        self.inactive_purged = 0

    def _update(self, resp: dict[str, Any]) -> None:
        stats = resp
        if self.queue is not None:
            stats = next((q for q in resp.get("queues", []) if q.get("name") == self.queue),
                         {"job_states": {}})
        states = stats.get("job_states", {})
        for name in _STATES:
            setattr(self, name, int(states.get(name, 0)))
        for name in _RESULTS:
            setattr(self, name, int(stats.get(name, 0)))
        self.inactive_purged = int(resp.get("inactive_purged", 0))
        self.pending = self.depend + self.priority + self.sched
        self.running = self.run + self.cleanup
        self.active = self.new + self.pending + self.running
        self.total = self.active + self.inactive

    def _rpc(self) -> "RPC":
        return self.handle.rpc("job-list.job-stats", {})

    def update_sync(self) -> "JobStats":
        """Fetch the statistics now (blocking)."""
        self._update(self._rpc().get())
        return self

    def update(self, callback: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        """Fetch the statistics from the reactor; then call ``callback(**kwargs)``."""

        def done(future: "RPC") -> None:
            self._update(future.get())
            if callback is not None:
                callback(**kwargs)

        self._rpc().then(done)
