"""Broker attributes (flux-broker-attributes(7)): a small string table.

An attribute is *immutable* once the broker is up (set on the command
line or by the broker itself); ``flux setattr`` on one fails with EPERM.
An attribute with a getter is *active*: its value is computed when read
(``log-ring-used``); one with a setter validates and applies new values
(``log-level``).  Setting an unknown name creates a plain attribute, as
flux-core does; reading one fails with ENOENT naming it.  The attributes
of ``BROKER_OWNED`` (rank, size, ...) cannot be given with ``-S`` at all.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Callable

from flux.errors import FluxError

#: attributes whose value the broker (or a module of it) decides: never from ``-S``
BROKER_OWNED = frozenset({
    "rank", "size", "version", "broker.pid", "broker.starttime", "broker.state",
    "tbon.level", "tbon.maxlevel", "tbon.descendants", "tbon.endpoint",
    "tbon.parent-endpoint", "hostlist", "config.hostlist", "log-ring-used", "log-count",
    "content.acct-entries", "content.acct-size", "content.acct-dirty", "content.acct-valid",
})


def check_cmdline(name: str) -> None:
    """Refuse NAME in a command-line ``-S NAME=VALUE`` if the broker sets it itself:
    FluxError (EINVAL) naming it, instead of a setting silently overridden."""
    if name in BROKER_OWNED:
        raise FluxError(errno.EINVAL, f"attribute '{name}' is set by the broker and may not "
                                      "be given on the command line")


@dataclass(slots=True)
class Attr:
    name: str
    value: str | None = None
    immutable: bool = False
    getter: Callable[[], str | None] | None = None
    setter: Callable[[str], None] | None = None
    owner: str | None = None  # name of the module that registered it


class AttrTable:
    """The attributes of one broker."""

    def __init__(self) -> None:
        self._attrs: dict[str, Attr] = {}
        self._frozen = False

    def freeze(self) -> None:
        """Start-up is over: immutable attributes no longer change."""
        self._frozen = True

    def add(self, name: str, value: str | int | None = None, *, immutable: bool = False,
            getter: Callable[[], str | None] | None = None,
            setter: Callable[[str], None] | None = None, owner: str | None = None,
            replace: bool = True) -> None:
        """Create (or redefine) NAME.  With replace=False an existing value wins,
        so a command-line ``-S`` setting survives the broker's default."""
        old = self._attrs.get(name)
        if old is not None and not replace:
            old.immutable = old.immutable or immutable
            if getter is not None:
                old.getter = getter
            if setter is not None:
                old.setter = setter
            if owner is not None:
                old.owner = owner
            return
        if old is not None and owner is not None and old.owner not in (None, owner):
            raise FluxError(errno.EEXIST, f"attribute '{name}' is already registered "
                                          f"by {old.owner}")
        self._attrs[name] = Attr(name, None if value is None else str(value), immutable,
                                 getter, setter, owner)

    def __contains__(self, name: object) -> bool:
        return name in self._attrs

    def lookup(self, name: str) -> Attr:
        try:
            return self._attrs[name]
        except KeyError:
            raise FluxError(errno.ENOENT, f"unknown attribute '{name}'") from None

    def get(self, name: str) -> str:
        """Value of NAME; ENOENT if unknown or unset."""
        attr = self.lookup(name)
        value = attr.getter() if attr.getter is not None else attr.value
        if value is None:
            raise FluxError(errno.ENOENT, f"attribute '{name}' is not set")
        return value

    def get_default(self, name: str, default: str | None = None) -> str | None:
        try:
            return self.get(name)
        except FluxError:
            return default

    def is_immutable(self, name: str) -> bool:
        return self.lookup(name).immutable

    def set(self, name: str, value: str, *, force: bool = False) -> None:
        """Set NAME to VALUE (str).  Immutable attributes refuse with EPERM
        unless FORCE (the broker itself, during start-up)."""
        if not isinstance(value, str):
            raise FluxError(errno.EINVAL, f"attribute '{name}': value must be a string")
        attr = self._attrs.get(name)
        if attr is None:
            self._attrs[name] = Attr(name, value)
            return
        if attr.immutable and (self._frozen or not force):
            raise FluxError(errno.EPERM, f"attribute '{name}' is immutable")
        if attr.setter is not None:
            attr.setter(value)
            if attr.getter is not None:
                return
        elif attr.getter is not None:
            raise FluxError(errno.EPERM, f"attribute '{name}' is read-only")
        attr.value = value

    def remove(self, name: str) -> None:
        """Remove NAME (``flux setattr --expunge``); immutable ones refuse with EPERM."""
        attr = self.lookup(name)
        if attr.immutable or attr.getter is not None or attr.setter is not None:
            raise FluxError(errno.EPERM, f"attribute '{name}' cannot be removed")
        del self._attrs[name]

    def remove_owned(self, owner: str) -> None:
        """Drop every attribute registered by module OWNER."""
        for name in [n for n, a in self._attrs.items() if a.owner == owner]:
            del self._attrs[name]

    def names(self) -> list[str]:
        return sorted(self._attrs)

    def items(self) -> list[tuple[str, str | None, bool]]:
        """(name, value or None, immutable) for every attribute, sorted by name."""
        out = []
        for name in sorted(self._attrs):
            attr = self._attrs[name]
            value = attr.getter() if attr.getter is not None else attr.value
            out.append((name, value, attr.immutable))
        return out


__all__ = ["BROKER_OWNED", "Attr", "AttrTable", "check_cmdline"]
