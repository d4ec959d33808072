"""The ``overlay`` service: subtree status, parentof, disconnect.

``overlay.status`` answers ``{"rank", "host", "status", "duration",
"children"}``; a lost child carries ``"error"``, why it is lost (the reason
its parent recorded, or the failed request's error), which ``flux overlay
errors`` lists.
"""
from __future__ import annotations

import asyncio
import errno
import os
import time
from typing import Any

from broker.module import Module, request_handler
from broker.overlay_status import ghost, subtree_status
from flux.errors import FluxError
from flux.message import Message


class OverlayService(Module):
    name = "overlay"

    @request_handler("overlay.status", allow_guest=True)
    async def status(self, msg: Message) -> dict[str, Any]:
        body = msg.payload if isinstance(msg.payload, dict) else {}
        timeout = body.get("timeout", 0.5)
        if not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError("'timeout' must be a number >= 0")
        return await self.subtree(float(timeout) or None)

    async def subtree(self, timeout: float | None) -> dict[str, Any]:
        """This broker's subtree, asking each online child for its own."""
        b = self.ctx._broker
        overlay = b.overlay
        now = time.monotonic()
        hosts = b.opts.hosts or self._hostmap()
        # each child gets less time than this broker has, so that a hung broker below
        # is reported by its own parent rather than making every broker above it look
        # lost; and the children are asked at once, not one after another
        below = timeout * 0.75 if timeout else None

        async def one(child: int) -> dict[str, Any]:
            peer = overlay.children.get(child) if overlay is not None else None
            status = peer.status if peer is not None else "offline"
            since = peer.since if peer is not None else b.state_since
            host = peer.hostname if peer is not None and peer.hostname else b.hostname
            error = peer.error if peer is not None and status == "lost" else ""
            if status == "online":
                try:
                    return await self.ctx.rpc("overlay.status", {"timeout": below or 0},
                                              nodeid=child, timeout=timeout)
                except OSError as exc:
                    status = "lost"
                    # as flux-core names a probe that failed: "Connection timed out"
                    error = os.strerror(exc.errno) if exc.errno else str(exc)
            node = ghost(child, b.tree, b.size, status, host, now - since, hosts)
            if error:
                # why it is lost, for flux overlay errors
                node["error"] = error
            return node

        kids = list(await asyncio.gather(*(one(c) for c in b.tree.children(b.rank))))
        return {"rank": b.rank, "host": b.hostname,
                "status": subtree_status([k["status"] for k in kids]),
                "duration": now - b.state_since, "children": kids}

    def _hostmap(self) -> list[str] | None:
        """Each rank's hostname from the hostlist attribute (a test instance's
        or a PMI instance's), so that nodes behind a lost one get their own
        names; None when the attribute is unset."""
        cached: list[str] | None = getattr(self, "_hosts", None)
        if cached is None:
            from flux.hostlist import Hostlist

            text = self.ctx._broker.attrs.get_default("hostlist")
            cached = list(Hostlist(text)) if text else None
            self._hosts = cached
        return cached

    @request_handler("overlay.parentof", allow_guest=True)
    def parentof(self, msg: Message) -> dict[str, Any]:
        b = self.ctx._broker
        body = msg.payload if isinstance(msg.payload, dict) else {}
        rank = body.get("rank")
        if not isinstance(rank, int) or not 0 <= rank < b.size:
            raise FluxError(errno.EINVAL, f"rank {rank!r} is not in the instance (size {b.size})")
        if rank == 0:
            raise FluxError(errno.EINVAL, "rank 0 has no parent")
        return {"parent": b.tree.parent(rank)}

    @request_handler("overlay.disconnect")
    def disconnect(self, msg: Message) -> dict[str, Any]:
        b = self.ctx._broker
        body = msg.payload if isinstance(msg.payload, dict) else {}
        rank = body.get("rank")
        if b.overlay is None or not isinstance(rank, int) or rank not in b.overlay.children:
            raise FluxError(errno.EINVAL, f"rank {rank!r} is not a child of rank {b.rank}")
        b.overlay.disconnect_child(rank, "disconnected by flux overlay disconnect")
        return {}


__all__ = ["OverlayService"]
