"""KVS namespaces: names and the facts reported about each."""
from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from typing import Any

from flux.errors import FluxError
from kvs import treeobj as _t

__all__ = ["NamespaceInfo", "check_name", "MAX_NAME"]

MAX_NAME = 255
_BAD = re.compile(r"[\x00-\x20\x7f/]")


@dataclass(slots=True, frozen=True)
class NamespaceInfo:
    """A namespace's current root (blobref), its sequence number and owner uid."""

    name: str
    rootref: str
    sequence: int
    owner: int

    @property
    def treeobj(self) -> dict[str, Any]:
        """The root as an RFC 11 dirref (what ``getroot`` reports)."""
        return _t.dirref(self.rootref)


def check_name(name: object) -> str:
    """A valid namespace name: 1-255 characters, no whitespace, control chars or '/'."""
    if type(name) is not str or not name:
        raise FluxError(errno.EINVAL, f"invalid namespace name {name!r}: must be a non-empty string")
    if len(name) > MAX_NAME:
        raise FluxError(errno.EINVAL, f"invalid namespace name {name[:40]!r}...: longer than {MAX_NAME}")
    m = _BAD.search(name)
    if m:
        raise FluxError(errno.EINVAL, f"invalid namespace name {name!r}: character {m.group()!r}")
    return name
