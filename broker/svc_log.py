"""The ``log`` service: append to the ring (flux logger), read it (flux dmesg), clear it."""
from __future__ import annotations

import time
from typing import Any

from broker.module import Module, request_handler
from flux.constants import FLUX_ROLE_OWNER
from flux.message import Message

_APPNAME_MAX = 48  # RFC 5424 APP-NAME limit, as flux_log(3) applies it


class LogService(Module):
    name = "log"

    @request_handler("log.append", allow_guest=True)
    def append(self, msg: Message) -> dict[str, Any]:
        body = msg.payload
        if not isinstance(body, dict):
            raise ValueError("payload must be a JSON object")
        level = body.get("level", 6)
        if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 7:
            raise ValueError(f"'level' must be an integer from 0 to 7, got {level!r}")
        appname = body.get("appname", "logger")
        message = body.get("message", "")
        if not isinstance(appname, str) or not isinstance(message, str):
            raise ValueError("'appname' and 'message' must be strings")
        ts = body.get("timestamp")
        if not isinstance(ts, (int, float)) or isinstance(ts, bool):
            ts = time.time()
        rank = body.get("rank")
        # only brokers (owner role) may speak for another rank
        if not isinstance(rank, int) or not msg.rolemask & FLUX_ROLE_OWNER:
            rank = None
        self.ctx._broker.ring.append(level, appname[:_APPNAME_MAX], message, rank=rank,
                                     timestamp=float(ts))
        return {}

    @request_handler("log.dmesg", streaming=True)
    def dmesg(self, msg: Message) -> None:
        body = msg.payload if isinstance(msg.payload, dict) else {}
        ring = self.ctx._broker.ring
        stream = self.ctx.stream(msg)
        if not body.get("nobacklog"):
            for entry in ring.entries():
                stream.send(entry.to_dict())
        if not body.get("follow"):
            stream.end()
            return

        def follow(entry: Any) -> None:
            stream.send(entry.to_dict())

        ring.follow(follow)
        stream.on_cancel = lambda: ring.unfollow(follow)

    @request_handler("log.clear")
    def clear(self, msg: Message) -> dict[str, Any]:
        self.ctx._broker.ring.clear()
        return {}


__all__ = ["LogService"]
