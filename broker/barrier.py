"""The ``barrier`` service: named barriers for the instance's clients (``Flux.barrier``).

``barrier.enter {"name": NAME, "nprocs": N}`` is answered (no payload) once N
requests have entered NAME, all of them at once; the name can then be used
again. Guests may enter too, but a barrier is shared by name, so guests'
names should be their own. A client that disconnects while it waits fails
the barrier for the others (ECONNRESET), as a process that died would never
arrive. Entering with a different N than the first entrant is EINVAL.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from broker.module import Module, request_handler
from flux.errors import FluxError
from flux.message import Message

__all__ = ["Barrier"]


@dataclass(slots=True)
class _Waiting:
    nprocs: int
    requests: list[Message] = field(default_factory=list)


class Barrier(Module):
    name = "barrier"

    async def start(self) -> None:
        self.barriers: dict[str, _Waiting] = {}

    @request_handler("barrier.enter", allow_guest=True)
    def enter(self, msg: Message) -> Any:
        p = msg.payload if isinstance(msg.payload, dict) else {}
        name, nprocs = p.get("name"), p.get("nprocs")
        if not isinstance(name, str) or not name:
            raise FluxError(errno.EPROTO, "barrier.enter: 'name' must be a non-empty string")
        if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
            raise FluxError(errno.EPROTO, "barrier.enter: 'nprocs' must be an integer >= 1")
        waiting = self.barriers.get(name)
        if waiting is None:
            waiting = self.barriers[name] = _Waiting(nprocs)
        elif waiting.nprocs != nprocs:
            raise FluxError(errno.EINVAL, f"barrier {name}: entered with nprocs {nprocs}, "
                                          f"but it is a barrier of {waiting.nprocs}")
        waiting.requests.append(msg)
        if len(waiting.requests) >= nprocs:
            del self.barriers[name]
            for request in waiting.requests:
                self.ctx.respond(request, None)
        return None

    def disconnect(self, sender: str) -> None:
        for name, waiting in list(self.barriers.items()):
            if any(m.sender == sender for m in waiting.requests):
                del self.barriers[name]
                for request in waiting.requests:
                    if request.sender != sender:
                        self.ctx.respond_error(request, errno.ECONNRESET,
                                               f"barrier {name}: a participant disconnected")
