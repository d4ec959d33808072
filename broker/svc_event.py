"""The ``event`` service: publish (rank 0 numbers events), subscribe, unsubscribe.

``event.pub`` takes ``{"topic", "flags", "payload"?, "encoding"?}``: a
payload is text, or JSON when ``encoding`` is ``"json"``, or base64 bytes
when it is ``"base64"``.  On ranks > 0 the request is passed up the tree
unchanged, so the publisher's response comes back from rank 0 with the
sequence number: ``{"seq": N}``.
"""
from __future__ import annotations

import base64
import errno
import binascii
from typing import Any

from broker.module import Module, request_handler
from broker.svc_attr import str_field
from flux.constants import FLUX_MSGFLAG_PRIVATE
from flux.errors import FluxError
from flux.message import Message


def event_payload(body: dict[str, Any]) -> Any:
    """The event payload described by an ``event.pub`` request body."""
    if "payload" not in body or body["payload"] is None:
        return None
    payload = body["payload"]
    encoding = body.get("encoding")
    if encoding == "json":
        return payload if payload is not None else None
    if encoding == "base64":
        if not isinstance(payload, str):
            raise ValueError("base64 'payload' must be a string")
        try:
            return base64.b64decode(payload, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"bad base64 'payload': {exc}") from None
    if encoding is not None:
        raise ValueError(f"unknown payload encoding '{encoding}'")
    if not isinstance(payload, str):
        raise ValueError("'payload' must be a string unless encoding is json or base64")
    return payload.encode()


class EventService(Module):
    name = "event"

    @request_handler("event.pub", allow_guest=True)
    def pub(self, msg: Message) -> dict[str, Any] | None:
        broker = self.ctx._broker
        if broker.rank != 0:
            broker.overlay.send_parent(msg)
            return None
        body = msg.payload
        if not isinstance(body, dict):
            raise ValueError("payload must be a JSON object")
        topic = str_field(msg, "topic")
        if not topic:
            raise ValueError("event topic must not be empty")
        flags = body.get("flags", 0)
        if not isinstance(flags, int):
            raise ValueError("'flags' must be an integer")
        seq = broker.publish_event(topic, event_payload(body), flags & FLUX_MSGFLAG_PRIVATE,
                                   msg.userid, msg.rolemask)
        return {"seq": seq}

    def _client(self, msg: Message) -> Any:
        ep = self.ctx._broker.endpoints.get(msg.sender or "")
        if ep is None or len(msg.route) != 1 or not hasattr(ep, "deliver_event"):
            raise FluxError(errno.EPROTO, f"{msg.topic}: only a local client may subscribe")
        return ep

    @request_handler("event.subscribe", allow_guest=True)
    def subscribe(self, msg: Message) -> dict[str, Any]:
        self.ctx._broker.events.subscribe(self._client(msg), str_field(msg, "topic"))
        return {}

    @request_handler("event.unsubscribe", allow_guest=True)
    def unsubscribe(self, msg: Message) -> dict[str, Any]:
        try:
            self.ctx._broker.events.unsubscribe(self._client(msg), str_field(msg, "topic"))
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            # Flux's text: plain strerror, whatever the topic
            raise FluxError(errno.ENOENT) from None
        return {}


__all__ = ["EventService", "event_payload"]
