"""flux.job.stats: job counts by state and result (``job-list.job-stats``)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from flux.core.handle import Flux
    from flux.rpc import RPC

__all__ = ["JobStats"]


class JobStats:
    """Job statistics of the instance (or of some queues), as ``flux jobs --stats`` shows.

    Attributes: ``depend``, ``priority``, ``sched``, ``run``, ``cleanup``,
    ``inactive``, ``total`` (jobs by state), ``successful``, ``failed``
    (every unsuccessful job: failed, canceled and timed out), ``timeout``,
    ``canceled``, ``inactive_purged``, and the sums ``pending`` (depend +
    priority + sched), ``running`` (run + cleanup) and ``active`` (total -
    inactive).  All are -1 until ``update_sync()`` or ``update()`` has
    fetched them.  ``queue`` (a name or an iterable of names) limits the
    counts to those queues (summed); ValueError at update for a queue with
    no statistics.
    """

    states = ("depend", "priority", "sched", "run", "cleanup", "inactive", "total")
    stats = ("successful", "failed", "timeout", "canceled", "inactive_purged")
    derived_stats = ("pending", "running", "active")

    def __init__(self, handle: "Flux", queue: str | Iterable[str] | None = None) -> None:
        self.handle = handle
        self.queues: list[str] = []
        if queue is not None:
            self.queues.extend([queue] if isinstance(queue, str) else queue)
        self.callback: Callable[..., Any] | None = None
        self.cb_kwargs: dict[str, Any] = {}
        for name in (*self.states, *self.stats, *self.derived_stats):
            setattr(self, name, -1)

    @classmethod
    def _counts(cls, stats: dict[str, Any]) -> dict[str, int]:
        states = stats.get("job_states", {})
        counts = {name: int(states.get(name, 0)) for name in cls.states}
        if "total" not in states:
            counts["total"] = sum(int(states.get(n, 0))
                                  for n in ("new", *cls.states[:-1]))
        for name in cls.stats:
            counts[name] = int(stats.get(name, 0))
        return counts

    def _apply(self, resp: dict[str, Any]) -> None:
        if self.queues:
            by_name = {q.get("name"): q for q in resp.get("queues", [])}
            counts = {name: 0 for name in (*self.states, *self.stats)}
            for queue in self.queues:
                if queue not in by_name:
                    raise ValueError(f"no stats available for queue {queue}")
                for key, value in self._counts(by_name[queue]).items():
                    counts[key] += value
        else:
            counts = self._counts(resp)
        for key, value in counts.items():
            setattr(self, key, value)
        self.pending = self.depend + self.priority + self.sched
        self.running = self.run + self.cleanup
        self.active = self.total - self.inactive
        # "failed" counts every unsuccessful job, as Flux's JobStats does
        self.failed += self.timeout + self.canceled

    def _query(self) -> "RPC":
        from flux.rpc import RPC

        return RPC(self.handle, "job-list.job-stats", {})

    def update_sync(self) -> "JobStats":
        """Fetch the statistics now (blocking); returns self."""
        self._apply(self._query().get())
        return self

    def update(self, callback: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        """Fetch the statistics from the reactor; then call ``callback(self, **kwargs)``."""
        self.callback = callback
        self.cb_kwargs = kwargs

        def done(future: "RPC") -> None:
            self._apply(future.get())
            if self.callback is not None:
                self.callback(self, **self.cb_kwargs)

        self._query().then(done)
