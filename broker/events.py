"""Event subscriptions of one broker's clients and modules (flux-event(1) rules).

A subscription is a topic prefix: ``a.b`` matches ``a.b.c`` and ``a.bc``;
``""`` matches everything.  An endpoint subscribed several times to
matching prefixes still gets each event once, and each subscription needs
its own unsubscribe.  Private events reach only owner-role endpoints and
the endpoint of the publishing user (the check is the endpoint's own).
"""
from __future__ import annotations

import errno
from typing import Any, Protocol

from flux.errors import FluxError
from flux.message import Message


class Subscriber(Protocol):
    uuid: str

    def deliver_event(self, msg: Message) -> None: ...


def matches(prefix: str, topic: str) -> bool:
    return topic.startswith(prefix)


class EventHub:
    def __init__(self) -> None:
        self._subs: dict[str, tuple[Any, list[str]]] = {}

    def subscribe(self, ep: Subscriber, prefix: str) -> None:
        if not isinstance(prefix, str):
            raise FluxError(errno.EINVAL, "event subscription topic must be a string")
        entry = self._subs.get(ep.uuid)
        if entry is None:
            self._subs[ep.uuid] = (ep, [prefix])
        else:
            entry[1].append(prefix)

    def unsubscribe(self, ep: Subscriber, prefix: str) -> None:
        entry = self._subs.get(ep.uuid)
        if entry is None or prefix not in entry[1]:
            raise FluxError(errno.ENOENT, f"not subscribed to '{prefix}'")
        entry[1].remove(prefix)
        if not entry[1]:
            del self._subs[ep.uuid]

    def drop(self, ep: Subscriber) -> None:
        self._subs.pop(ep.uuid, None)

    def subscriptions(self, ep: Subscriber) -> list[str]:
        entry = self._subs.get(ep.uuid)
        return list(entry[1]) if entry else []

    def deliver(self, msg: Message) -> int:
        """Hand MSG to every subscriber with a matching prefix; returns how many."""
        topic = msg.topic
        n = 0
        for ep, prefixes in list(self._subs.values()):
            for prefix in prefixes:
                if topic.startswith(prefix):
                    ep.deliver_event(msg)
                    n += 1
                    break
        return n


__all__ = ["EventHub", "matches"]
