"""``heartbeat``: publishes the instance heartbeat, ``heartbeat.pulse`` events.

Loaded on every rank (as flux-core's rc1 loads it); only rank 0 publishes,
once at load and then every *period* seconds (default 2s).  Subscribers use
the pulse to pace periodic work (flux_sync_create(3)); ``flux top`` shows a
heart each time one arrives (flux-top(1), SUMMARY PANE).

Options: ``period=FSD`` (RFC 23, e.g. ``flux module reload heartbeat
period=0.5s``); any other option fails the load (EINVAL).
``heartbeat.stats-get`` answers ``{"period": seconds}``.
"""
from __future__ import annotations

import asyncio
import errno
from typing import Any

from broker.module import Module, request_handler
from flux.errors import FluxError
from flux.message import Message
from flux.util.fsd import parse_fsd

__all__ = ["DEFAULT_PERIOD", "Heartbeat", "parse_args"]

#: seconds between two pulses without ``period=``
DEFAULT_PERIOD = 2.0


def parse_args(args: list[str]) -> float:
    """The period given by ARGS (module options); FluxError EINVAL for a bad one."""
    period = DEFAULT_PERIOD
    for arg in args:
        if arg.startswith("period="):
            value = arg[len("period="):]
            try:
                period = parse_fsd(value)
            except ValueError:
                raise FluxError(errno.EINVAL,
                                f"heartbeat: invalid period value: {value!r}") from None
            if period <= 0:
                raise FluxError(errno.EINVAL, "heartbeat: period must be greater than zero")
        else:
            raise FluxError(errno.EINVAL, f"heartbeat: unknown option: {arg}")
    return period


class Heartbeat(Module):
    name = "heartbeat"

    async def start(self) -> None:
        self.period = parse_args(self.args)
        if self.ctx.rank == 0:
            self.ctx.create_task(self._beat(), name="heartbeat")

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            try:
                await self.ctx.event_publish("heartbeat.pulse")
            except (OSError, FluxError) as exc:
                self.ctx.log.error("error publishing heartbeat", error=str(exc))
            # keep to the period's grid: a slow publish does not stretch it
            due = max(due + self.period, loop.time())
            await asyncio.sleep(due - loop.time())

    @request_handler("heartbeat.stats-get", allow_guest=True)
    def stats_get(self, msg: Message) -> dict[str, Any]:
        return {"period": self.period}
