"""Flux URIs the client understands: ``local://PATH`` (an AF_UNIX socket).

``local:///run/flux/local`` names the socket itself; a PATH that is a
directory means the ``local`` socket inside it (flux-core's older form).
"""
from __future__ import annotations

import errno
import os

from flux.errors import FluxError


def local_socket_path(uri: str) -> str:
    """The socket path of a ``local://`` URI; FluxError(EINVAL) names a bad URI."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise FluxError(errno.EINVAL, f"{uri}: not a Flux URI (expected local://PATH)")
    if scheme != "local":
        raise FluxError(errno.EINVAL, f"{uri}: unsupported URI scheme '{scheme}' "
                                      "(only local:// is supported)")
    path = rest.split("?", 1)[0]
    if not path:
        raise FluxError(errno.EINVAL, f"{uri}: local URI has no path")
    if os.path.isdir(path):
        path = os.path.join(path, "local")
    return path


def local_uri(path: str) -> str:
    """The ``local://`` URI of the socket at PATH."""
    return "local://" + os.path.abspath(path)


__all__ = ["local_socket_path", "local_uri"]
