"""Flux URIs: connecting (``local://PATH``) and resolving (``flux uri``, ``flux proxy``).

``local_socket_path(uri)`` is what the client connects to: ``local:///run/
flux/local`` names the socket itself; a PATH that is a directory means the
``local`` socket inside it (flux-core's older form).  ``native_uri(target)``
turns anything ``flux.Flux(url)`` accepts into such a ``local://`` URI: an
``ssh://`` URI of this host, an ancestor path (``..``, ``../..``, ``/``, as
flux_open(3) reads them) or a resolver target (a job id, a job id path
``ƒA/ƒB``, ``pid:PID``, ...).

``JobURI`` is an instance's URI with its ``local`` and ``remote``
(``ssh://HOST/PATH``) forms.  ``FluxURIResolver().resolve(target)`` turns a
high-level target into a JobURI through plugins named by the target's
scheme: ``jobid:ID[/ID...]`` (the default scheme), ``pid:PID``,
``slurm:JOBID``, ``lsf:JOBID``; ``ssh:`` and ``local:`` URIs pass
through.  A ``?local`` or ``?remote`` query forces that form.

Plugins are the modules of the ``flux.uri.resolvers`` package (other
distributions may add modules to it), plus, for each directory ``D`` in
``pluginpath``, ``D/flux/uri/resolvers/*.py`` (these win on a name clash).
Each defines ``URIResolver``, a ``URIResolverPlugin`` subclass.
"""
from __future__ import annotations

import errno
import os
from abc import ABC, abstractmethod

from flux.errors import FluxError

if False:  # for type checkers only: every command imports this module, typing costs ~3 ms
    from typing import Any

__all__ = [
    "local_socket_path", "local_uri", "URI", "JobURI", "URIResolverURI", "URIResolverPlugin",
    "FluxURIResolver", "hostname", "native_uri", "ancestor_uri", "URIResolveError",
]


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


class URIResolveError(ValueError):
    """A target that names no instance; ``errno`` says how (ENOENT: no such job,
    or it is not running or not an instance; EINVAL: the target is malformed)."""

    def __init__(self, message: str, errnum: int = errno.EINVAL) -> None:
        super().__init__(message)
        self.errno = errnum


def _this_host(netloc: str) -> bool:
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    else:
        host = host.partition(":")[0]
    if host in ("", "localhost", "127.0.0.1", "::1"):
        return True
    me = hostname()
    return host == me or host.split(".")[0] == me.split(".")[0]


def native_uri(target: str) -> str:
    """The ``local://`` URI a client connects to for TARGET.

    - ``local://PATH``: as it is.
    - ``ssh://[USER@]HOST[:PORT]/PATH`` of this host: ``local://PATH`` (the
      same socket, reached without ssh); of another host: FluxError(EINVAL),
      since this client has no ssh connector.
    - a path starting with ``.``, or a lone ``/``: an ancestor of the
      enclosing instance (``$FLUX_URI``), as flux_open(3) reads it
      (``ancestor_uri``).
    - anything else without ``://``: a target for FluxURIResolver (a job id
      or job id path of the enclosing instance, also with a leading ``/``
      as flux-proxy(1) takes it, ``jobid:``, ``pid:``, ...),
      in its local form; an unresolvable one is FluxError naming why
      (ENOENT for a job that is missing, not running or no instance).
    """
    if target.startswith("local://"):
        return target
    scheme, sep, rest = target.partition("://")
    if sep:
        if scheme == "ssh":
            netloc, slash, path = rest.partition("/")
            if not _this_host(netloc):
                raise FluxError(errno.EINVAL, f"{target}: cannot connect to host "
                                              f"'{netloc}' (only instances on this host "
                                              "can be reached)")
            return "local://" + slash + path.split("?", 1)[0]
        raise FluxError(errno.EINVAL, f"{target}: unsupported URI scheme '{scheme}' "
                                      "(only local:// is supported)")
    if target.startswith(".") or target == "/":
        return ancestor_uri(target)
    if not target:
        raise FluxError(errno.EINVAL, "empty URI")
    try:
        resolved = FluxURIResolver().resolve(target)
        return native_uri(JobURI(resolved.uri).local)
    except URIResolveError as exc:
        raise FluxError(exc.errno, str(exc)) from None
    except (ValueError, NotImplementedError) as exc:
        raise FluxError(errno.EINVAL, f"{target}: {exc}") from None


def _attr(handle: Any, name: str) -> str | None:
    try:
        return handle.attr_get(name)
    except OSError:
        return None


def ancestor_uri(path: str, base: str | None = None) -> str:
    """The URI of an ancestor of the instance at BASE (default ``$FLUX_URI``).

    PATH follows flux_open(3): ``..`` is the parent (``parent-uri``), each
    further ``/..`` one more level up, ``.`` the instance itself, and a lone
    ``/`` the root (instance-level 0).  Going up past the root stays at the
    root.  Any other element, or ``/`` followed by more, is FluxError(EINVAL).
    """
    from flux.core.handle import Flux

    if path.startswith("/"):
        if path != "/":
            raise FluxError(errno.EINVAL, f"{path}: invalid URI")
        levels = -1
    else:
        levels = 0
        for part in path.split("/"):
            if part == "..":
                levels += 1
            elif part not in ("", "."):
                raise FluxError(errno.EINVAL, f"{path}: invalid URI path element '{part}'")
    if base is None:
        base = os.environ.get("FLUX_URI")
        if not base:
            raise FluxError(errno.EINVAL, f"{path}: FLUX_URI is not set, so there is no "
                                          "enclosing instance to start from")
    uri = native_uri(base)
    while levels != 0:
        handle = Flux(uri)
        try:
            parent = _attr(handle, "parent-uri")
        finally:
            handle.close()
        if not parent:
            break
        uri = native_uri(parent)
        levels -= 1
    return uri


def local_uri(path: str) -> str:
    """The ``local://`` URI of the socket at PATH."""
    return "local://" + os.path.abspath(path)


def hostname() -> str:
    """This host's name, as a remote URI names it."""
    return os.uname().nodename


# -- URIs ---------------------------------------------------------------------------


class URI:
    """A URI split as ``urllib.parse.urlparse`` splits it, with settable parts.

    Attributes: ``uri`` (the text given), ``scheme``, ``netloc``, ``path``,
    ``params``, ``query``, ``fragment`` and ``query_dict`` (the query as
    ``parse_qs`` reads it, blank values kept: ``?local`` gives
    ``{"local": [""]}``).
    """

    def __init__(self, uri: str) -> None:
        from urllib.parse import parse_qs, urlparse

        if not isinstance(uri, str):
            raise TypeError(f"URI must be a string, not {type(uri).__name__}")
        self.uri = uri
        parts = urlparse(uri)
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.path = parts.path
        self.params = parts.params
        self.query = parts.query
        self.fragment = parts.fragment
        self.query_dict: dict[str, list[str]] = (
            parse_qs(self.query, keep_blank_values=True) if self.query else {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


class JobURI(URI):
    """The URI of a Flux instance, convertible between local and remote form.

    ``remote``: an ``ssh://`` URI as is, or a ``local://`` one as
    ``ssh://HOST/PATH`` (HOST is ``remote_hostname`` or this host).
    ``local``: a ``local://`` URI as is, or an ``ssh://`` one as
    ``local://PATH``.  Other schemes raise ValueError for both; so does a
    URI without a scheme.  ``str()`` is the URI, or its local form when
    ``FLUX_URI_RESOLVE_LOCAL`` is set.
    """

    def __init__(self, uri: str, remote_hostname: str | None = None) -> None:
        super().__init__(uri)
        if not self.scheme:
            raise ValueError(f"JobURI '{uri}' does not have a valid scheme")
        path = self.path
        while "//" in path:
            path = path.replace("//", "/")
        self.path = path
        self.remote_hostname = remote_hostname

    @property
    def remote(self) -> str:
        if self.scheme == "ssh":
            return self.uri
        if self.scheme == "local":
            return f"ssh://{self.remote_hostname or hostname()}{self.path}"
        raise ValueError(f"Cannot convert JobURI with scheme {self.scheme} to remote")

    @property
    def local(self) -> str:
        if self.scheme == "local":
            return self.uri
        if self.scheme == "ssh":
            return f"local://{self.path}"
        raise ValueError(f"Cannot convert JobURI with scheme {self.scheme} to local")

    @property
    def force_local(self) -> bool:
        return bool(os.environ.get("FLUX_URI_RESOLVE_LOCAL"))

    def __str__(self) -> str:
        return self.local if self.force_local else self.uri

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JobURI):
            return self.uri == other.uri
        if isinstance(other, str):
            return self.uri == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.uri)


# (by hand, not a regular expression: every command imports this module, and re costs ~5 ms)
_SCHEME_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SCHEME_REST = _SCHEME_FIRST | frozenset("0123456789+.-")


def _is_scheme(text: str) -> bool:
    """RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )."""
    return bool(text) and text[0] in _SCHEME_FIRST and all(c in _SCHEME_REST for c in text)


class URIResolverURI(URI):
    """A resolver target (``scheme:path[?query]``).

    Parsed by hand, not by urlparse, so an all-digit path (``pid:1234``)
    stays a path and ``jobid://A//B`` is the path ``//A//B`` (no netloc).
    A target without a scheme has scheme ``""``.
    """

    def __init__(self, uri: str) -> None:
        super().__init__("")
        if not isinstance(uri, str):
            raise TypeError(f"URI must be a string, not {type(uri).__name__}")
        from urllib.parse import parse_qs

        self.uri = uri
        scheme, colon, rest = uri.partition(":")
        if not colon or not _is_scheme(scheme):
            scheme, rest = "", uri
        rest, _, self.fragment = rest.partition("#")
        rest, _, self.query = rest.partition("?")
        self.scheme = scheme
        self.path = rest
        self.query_dict = parse_qs(self.query, keep_blank_values=True) if self.query else {}


class URIResolverPlugin(ABC):
    """A resolver for one scheme: ``resolve(uri)`` (a URIResolverURI) returns
    the instance's URI as a str; ``describe()`` a one-line description."""

    def __init__(self, *args: Any) -> None:
        pass

    @abstractmethod
    def describe(self) -> str:
        """A short description of the scheme."""

    @abstractmethod
    def resolve(self, uri: URIResolverURI) -> str:
        """The Flux URI that ``uri`` names; ValueError if there is none."""


# -- plugin loading ---------------------------------------------------------------

PLUGIN_NAMESPACE = "flux.uri.resolvers"


def _builtin_plugins() -> dict[str, Any]:
    import importlib
    import pkgutil

    package = importlib.import_module(PLUGIN_NAMESPACE)
    plugins: dict[str, Any] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        try:
            plugins[info.name] = importlib.import_module(f"{PLUGIN_NAMESPACE}.{info.name}")
        except ImportError as exc:
            raise ImportError(f"failed to import {info.name} URI resolver plugin: {exc}") \
                from exc
    return plugins


def _path_plugins(pluginpath: list[str]) -> dict[str, Any]:
    import glob
    import importlib.util

    plugins: dict[str, Any] = {}
    for directory in pluginpath:
        pattern = os.path.join(glob.escape(str(directory)), *PLUGIN_NAMESPACE.split("."), "*.py")
        for path in sorted(glob.glob(pattern)):
            name = os.path.basename(path)[:-3]
            if name.startswith("_"):
                continue
            spec = importlib.util.spec_from_file_location(
                f"_flux_uri_plugin_{len(plugins)}_{name}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load URI resolver plugin {path}")
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                raise ImportError(f"failed to import URI resolver plugin {path}: {exc}") \
                    from exc
            plugins[name] = module
    return plugins


class FluxURIResolver:
    """Resolve high-level targets to instance URIs through scheme plugins."""

    plugin_namespace = PLUGIN_NAMESPACE

    def __init__(self, pluginpath: list[str] | None = None) -> None:
        modules = _builtin_plugins()
        modules.update(_path_plugins(list(pluginpath or [])))
        self.resolvers: dict[str, URIResolverPlugin] = {}
        for scheme, module in modules.items():
            cls = getattr(module, "URIResolver", None)
            if cls is None:
                raise ImportError(f"URI resolver plugin '{scheme}' defines no URIResolver")
            self.resolvers[scheme] = cls()

    def resolve(self, uri: str) -> JobURI:
        """The JobURI that ``uri`` names.

        No scheme means ``jobid``; ``ssh:`` and ``local:`` URIs are returned
        as they are.  ``?local`` / ``?remote`` force the local or remote form
        (both: ValueError).  NotImplementedError: no plugin for the scheme;
        ValueError: the plugin cannot resolve it.
        """
        target = URIResolverURI(uri)
        scheme = target.scheme
        if not scheme:
            scheme = "jobid"
            target = URIResolverURI(f"jobid:{uri}")
        query = target.query_dict
        if "local" in query and "remote" in query:
            raise ValueError("Only one of 'local' or 'remote' is allowed")
        if scheme in ("ssh", "local"):
            if "local" in query or "remote" in query:
                plain = JobURI(uri.split("?", 1)[0])
                return JobURI(plain.local if "local" in query else plain.remote)
            return JobURI(uri)
        resolver = self.resolvers.get(scheme)
        if resolver is None:
            raise NotImplementedError(f"No plugin for URI scheme {scheme}")
        result = JobURI(resolver.resolve(target))
        if "local" in query:
            return JobURI(result.local)
        if "remote" in query:
            return JobURI(result.remote)
        return result

    def plugins(self) -> dict[str, str]:
        """``{scheme: description}`` of the loaded plugins."""
        return {name: plugin.describe() for name, plugin in self.resolvers.items()}
