"""``pid:PID``: the URI of the instance a local process belongs to.

A broker process (one listening on an instance's ``local`` socket) gives
that socket's ``local://`` URI; any other process gives the ``FLUX_URI`` of
its environment.  Errors (ValueError): ``invalid PID 'x'``, ``PID N not
found``, ``PID N doesn't seem to have a FLUX_URI``.
"""
from __future__ import annotations

import os

from flux.uri import URIResolverPlugin, URIResolverURI

__all__ = ["URIResolver", "broker_uri", "environ_uri"]

# /proc/net/unix flag of a listening socket (__SO_ACCEPTCON)
_ACCEPTCON = 0x10000


def broker_uri(pid: int) -> str | None:
    """``local://PATH`` of a listening AF_UNIX socket named ``local`` held by
    ``pid`` (a broker or a ``flux proxy``), or None."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        with open(f"/proc/{pid}/net/unix", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split(None, 7)
        if len(fields) < 8:
            continue
        flags, inode, path = fields[3], fields[6], fields[7]
        if inode in inodes and int(flags, 16) & _ACCEPTCON and \
                os.path.basename(path) == "local" and path.startswith("/"):
            return f"local://{path}"
    return None


def environ_uri(pid: int) -> str | None:
    """``FLUX_URI`` from the environment ``pid`` was started with, or None."""
    with open(f"/proc/{pid}/environ", "rb") as fh:
        for entry in fh.read().split(b"\0"):
            if entry.startswith(b"FLUX_URI="):
                return entry[9:].decode("utf-8", errors="surrogateescape")
    return None


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                    out.extend(int(c) for c in fh.read().split())
            except OSError:
                continue
    except OSError:
        pass
    return out


def _name(pid: int) -> str:
    with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
        return fh.read().strip()


def resolve_pid(text: str) -> str:
    """The URI for process ``text`` (a decimal PID)."""
    try:
        pid = int(text)
    except ValueError:
        raise ValueError(f"invalid PID '{text}'") from None
    if pid <= 0:
        raise ValueError(f"invalid PID '{text}'")
    if not os.path.exists(f"/proc/{pid}"):
        raise ValueError(f"PID {pid} not found")
    uri = broker_uri(pid)
    if uri:
        return uri
    try:
        if "flux-broker" in _name(pid):
            # flux-core's broker: its children run with its FLUX_URI
            for child in _children(pid):
                uri = environ_uri(child)
                if uri:
                    return uri
            raise ValueError(f"PID {pid} is a flux-broker and no child can be found")
        uri = environ_uri(pid)
    except PermissionError:
        raise ValueError(f"PID {pid}: cannot read its environment: permission denied") \
            from None
    except FileNotFoundError:
        raise ValueError(f"PID {pid} not found") from None
    if not uri:
        raise ValueError(f"PID {pid} doesn't seem to have a FLUX_URI")
    return uri


class URIResolver(URIResolverPlugin):
    """Fetch FLUX_URI for a local PID."""

    def describe(self) -> str:
        return "Get FLUX_URI for a given local PID"

    def resolve(self, uri: URIResolverURI) -> str:
        parts = [p for p in uri.path.split("/") if p]
        if not parts:
            raise ValueError(f"no PID in '{uri.uri}'")
        return resolve_pid(parts[0])
