"""The ``attr`` service: broker attributes for flux getattr/setattr/lsattr.

``attr.set`` and ``attr.rm`` answer with no payload, as Flux's do.
"""
from __future__ import annotations

from typing import Any

from broker.module import Module, request_handler
from flux.message import Message


def str_field(msg: Message, key: str) -> str:
    """PAYLOAD[KEY] as a str; ValueError (-> EPROTO) naming the key otherwise."""
    body = msg.payload
    if not isinstance(body, dict):
        raise ValueError("payload must be a JSON object")
    value = body.get(key)
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string")
    return value


class AttrService(Module):
    name = "attr"

    @request_handler("attr.get", allow_guest=True)
    def get(self, msg: Message) -> dict[str, Any]:
        attrs = self.ctx._broker.attrs
        name = str_field(msg, "name")
        value = attrs.get(name)
        return {"value": value, "immutable": attrs.is_immutable(name)}

    @request_handler("attr.set")
    def set(self, msg: Message) -> None:
        self.ctx._broker.attrs.set(str_field(msg, "name"), str_field(msg, "value"))
        self.ctx.respond(msg)

    @request_handler("attr.rm")
    def rm(self, msg: Message) -> None:
        self.ctx._broker.attrs.remove(str_field(msg, "name"))
        self.ctx.respond(msg)

    @request_handler("attr.list", allow_guest=True)
    def list(self, msg: Message) -> dict[str, Any]:
        return {"attrs": [[n, v, imm] for n, v, imm in self.ctx._broker.attrs.items()]}


__all__ = ["AttrService", "str_field"]
