"""``testmod``: a small module exercising the module API end to end.

``flux module load testmod`` registers the ``testmod`` service:

- ``testmod.echo`` (guests allowed): responds with the request payload.
- ``testmod.owner``: owner-only; responds ``{}``.
- ``testmod.stream`` (streaming): ``{"count": N, "interval": S}`` sends N
  responses ``{"seq": i}`` S seconds apart, then ENODATA; with
  ``"forever": true`` it streams until cancelled or disconnected.
- ``testmod.hold``: never responds (a request left outstanding).
- ``testmod.senders``: route identities of the held requests' senders.
- ``testmod.info``: counts of streams open, cancelled and disconnects seen.
- ``testmod.relay``: ``{"topic", "payload", "nodeid"?}`` forwards an RPC from
  the module and responds with its result (module-to-module calls).
- ``testmod.collect``: ``{"topic", "payload", "nodeid"?, "limit"?}`` gathers a
  streaming RPC's responses (stopping early after ``limit``, which cancels it).
- ``testmod.fail``: raises the errno given in ``{"errno": N}``.
- ``testmod.publish``: publishes ``{"topic", "payload"}`` as an event.
- ``testmod.events``: the topics of events seen on its ``testmod.`` subscription.
- attribute ``testmod.greeting`` (settable), and its ``[testmod]`` config table.

``testmod-b`` (``TestModuleB``) is a second, trivial module for load-order tests;
``testmod-b.disconnects`` lists the senders it was told are gone.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
from typing import Any

from broker.config import Config
from broker.module import Module, Stream, request_handler
from flux.constants import FLUX_NODEID_ANY
from flux.errors import FluxError
from flux.message import Message


class TestModule(Module):
    __test__ = False  # not a pytest class
    name = "testmod"

    async def start(self) -> None:
        self.open_streams: dict[int, Stream] = {}
        self.cancelled = 0
        self.disconnects: list[str] = []
        self.held: list[Message] = []
        self.events: list[str] = []
        self.greeting = "hello"
        self.ctx.attr_register("testmod.greeting", getter=lambda: self.greeting,
                               setter=self._set_greeting)
        self.ctx.event_subscribe("testmod.", self._on_event)
        self.check_config(self.ctx._broker.config)
        self.ctx.log.info("testmod started", args=" ".join(self.args) or "none")

    def _set_greeting(self, value: str) -> None:
        if not value:
            raise FluxError(errno.EINVAL, "testmod.greeting must not be empty")
        self.greeting = value

    def _on_event(self, msg: Message) -> None:
        self.events.append(msg.topic)

    @staticmethod
    def check_config(config: Config) -> None:
        table = config.get("testmod", {})
        if not isinstance(table, dict):
            raise ValueError("[testmod] must be a table")
        if "refuse" in table and not isinstance(table["refuse"], bool):
            raise ValueError("testmod.refuse must be a boolean")
        if table.get("refuse"):
            raise ValueError("testmod.refuse is set")

    def config_reload(self, config: Config) -> None:
        self.check_config(config)

    @request_handler("testmod.echo", allow_guest=True)
    def echo(self, msg: Message) -> Any:
        return msg.payload if msg.payload is not None else {}

    @request_handler("testmod.owner")
    def owner_only(self, msg: Message) -> dict[str, Any]:
        return {"userid": msg.userid}

    @request_handler("testmod.stream", allow_guest=True, streaming=True)
    async def stream(self, msg: Message) -> None:
        body = msg.payload if isinstance(msg.payload, dict) else {}
        count = int(body.get("count", 1))
        interval = float(body.get("interval", 0))
        forever = bool(body.get("forever", False))
        stream = self.ctx.stream(msg)
        key = id(stream)
        self.open_streams[key] = stream

        def cancelled() -> None:
            self.cancelled += 1

        stream.on_cancel = cancelled
        try:
            i = 0
            while forever or i < count:
                if stream.ended:
                    return
                stream.send({"seq": i})
                i += 1
                if interval:
                    await asyncio.sleep(interval)
            stream.end()
        finally:
            self.open_streams.pop(key, None)

    @request_handler("testmod.hold", allow_guest=True)
    def hold(self, msg: Message) -> None:
        self.held.append(msg)

    @request_handler("testmod.info", allow_guest=True)
    def info(self, msg: Message) -> dict[str, Any]:
        return {"open": len(self.open_streams), "cancelled": self.cancelled,
                "disconnects": len(self.disconnects), "held": len(self.held),
                "rank": self.ctx.rank}

    @request_handler("testmod.senders", allow_guest=True)
    def senders(self, msg: Message) -> dict[str, Any]:
        return {"senders": [m.sender for m in self.held]}

    @request_handler("testmod.relay")
    async def relay(self, msg: Message) -> Any:
        body = msg.payload
        nodeid = body.get("nodeid", FLUX_NODEID_ANY)
        return {"result": await self.ctx.rpc(body["topic"], body.get("payload"), nodeid)}

    @request_handler("testmod.collect")
    async def collect(self, msg: Message) -> dict[str, Any]:
        body = msg.payload
        limit = int(body.get("limit", 1000))
        items: list[Any] = []
        stream = self.ctx.rpc_stream(body["topic"], body.get("payload"),
                                     body.get("nodeid", FLUX_NODEID_ANY))
        async with contextlib.aclosing(stream) as responses:
            async for item in responses:
                items.append(item)
                if len(items) >= limit:
                    break
        return {"items": items}

    @request_handler("testmod.fail", allow_guest=True)
    def fail(self, msg: Message) -> None:
        raise FluxError(int(msg.payload["errno"]), "testmod failed as asked")

    @request_handler("testmod.publish")
    async def publish(self, msg: Message) -> dict[str, Any]:
        body = msg.payload
        seq = await self.ctx.event_publish(body["topic"], body.get("payload"))
        return {"seq": seq}

    @request_handler("testmod.events", allow_guest=True)
    def seen_events(self, msg: Message) -> dict[str, Any]:
        return {"topics": list(self.events)}

    def disconnect(self, sender: str) -> None:
        self.disconnects.append(sender)
        self.held = [m for m in self.held if m.sender != sender]

    async def stop(self) -> None:
        self.ctx.log.info("testmod stopping", shutdown_options=self.ctx.shutdown_options)


class TestModuleB(Module):
    """A second module (service ``testmod-b``), to show load and unload order."""

    __test__ = False
    name = "testmod-b"

    async def start(self) -> None:
        self.disconnects: list[str] = []
        self.ctx.log.info("testmod-b started")

    @request_handler("testmod-b.hello", allow_guest=True)
    def hello(self, msg: Message) -> dict[str, Any]:
        return {"from": "testmod-b"}

    @request_handler("testmod-b.disconnects", allow_guest=True)
    def disconnects_seen(self, msg: Message) -> dict[str, Any]:
        return {"senders": self.disconnects}

    def disconnect(self, sender: str) -> None:
        self.disconnects.append(sender)

    async def stop(self) -> None:
        self.ctx.log.info("testmod-b stopping")


__all__ = ["TestModule", "TestModuleB"]
