"""Where an instance's resources come from, as pure functions.

``parse_config(table)`` checks the ``[resource]`` table and returns a
ResourceConfig; ``configured_R(cfg)`` builds the instance R from
``[[resource.config]]`` or the R file at ``path`` (None means: discover);
``discover_local()`` is what one broker rank reports when resources are
discovered (hostname and the cores of its CPU affinity mask, no gpus);
``discovered_R(reports)`` joins those reports into R; ``resolve_targets``
turns the TARGETS of ``flux resource drain`` (an idset of ranks or a
hostlist) into ranks.  Every error is a FluxError(EINVAL) naming the key or
the bad target.
"""
from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flux.errors import FluxError

__all__ = ["ResourceConfig", "LocalResources", "parse_config", "configured_R",
           "discover_local", "discovered_R", "resolve_targets", "is_idset_text", "CONFIG_KEYS",
           "RESTART_KEYS", "restart_needed"]

#: keys of the [resource] table; "monitor-force-up" is a test knob (all ranks
#: of R count as online at start, so one broker can stand in for many nodes)
CONFIG_KEYS = ("path", "config", "exclude", "norestrict", "noverify", "monitor-force-up")


@dataclass(frozen=True, slots=True)
class ResourceConfig:
    path: str | None = None
    config: tuple[Mapping[str, Any], ...] | None = None
    exclude: str | None = None
    norestrict: bool = False
    noverify: bool = False
    monitor_force_up: bool = False

    @property
    def method(self) -> str:
        """The resource-define method: ``config`` or ``dynamic-discovery``."""
        return "config" if self.path is not None or self.config is not None \
            else "dynamic-discovery"


@dataclass(frozen=True, slots=True)
class LocalResources:
    """What one rank reports when resources are discovered."""

    rank: int
    hostname: str
    cores: str          # RFC 22 idset
    gpus: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "hostname": self.hostname, "cores": self.cores,
                "gpus": self.gpus}

    @classmethod
    def from_dict(cls, body: Any) -> LocalResources:
        from flux.idset import IDset

        if not isinstance(body, Mapping):
            raise ValueError("discovery report: expected an object")
        rank, host = body.get("rank"), body.get("hostname")
        cores, gpus = body.get("cores", ""), body.get("gpus", "")
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
            raise ValueError(f"discovery report: rank must be an integer >= 0, got {rank!r}")
        if not isinstance(host, str) or not host:
            raise ValueError(f"discovery report of rank {rank}: hostname must be a string")
        for key, value in (("cores", cores), ("gpus", gpus)):
            if not isinstance(value, str):
                raise ValueError(f"discovery report of rank {rank}: {key} must be an idset")
            IDset(value)
        return cls(rank, host, cores, gpus)


def _bad(key: str, problem: str) -> FluxError:
    return FluxError(errno.EINVAL, f"resource.{key}: {problem}" if key else f"resource: {problem}")


def parse_config(table: Any) -> ResourceConfig:
    """Check the ``[resource]`` table (None or missing = discover everything)."""
    if table is None:
        return ResourceConfig()
    if not isinstance(table, Mapping):
        raise FluxError(errno.EINVAL, "resource: expected a table")
    for key in table:
        if key not in CONFIG_KEYS:
            raise _bad(key, "unknown key")
    path = table.get("path")
    if path is not None and (not isinstance(path, str) or not path):
        raise _bad("path", "expected a file name (string)")
    config = table.get("config")
    if config is not None:
        if not isinstance(config, list) or not config:
            raise _bad("config", "expected a non-empty array of tables")
        for i, entry in enumerate(config):
            if not isinstance(entry, Mapping):
                raise _bad(f"config[{i}]", "expected a table")
        config = tuple(config)
    if path is not None and config is not None:
        raise _bad("", "path and config are mutually exclusive")
    exclude = table.get("exclude")
    if exclude is not None and not isinstance(exclude, str):
        raise _bad("exclude", "expected an idset or hostlist string")
    flags = {}
    for key in ("norestrict", "noverify", "monitor-force-up"):
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise _bad(key, f"expected a boolean, got {type(value).__name__}")
        flags[key] = value
    return ResourceConfig(path, config, exclude or None, flags["norestrict"],
                          flags["noverify"], flags["monitor-force-up"])


#: [resource] keys read only when the module starts: a reload that changes one is
#: refused.  ``exclude`` is not one: as flux-config-resource(5) says, it "may be
#: changed on a live system by reloading the configuration" (the module applies it).
RESTART_KEYS = (("path", "path"), ("config", "config"), ("norestrict", "norestrict"),
                ("monitor-force-up", "monitor_force_up"))


def restart_needed(old: ResourceConfig, new: ResourceConfig) -> None:
    """FluxError(EINVAL) naming the first key whose change needs a restart of the
    instance (R and discovery are set up at start); ``noverify`` and ``exclude``
    may change (the first has no effect here, the second is applied live)."""
    for key, attr in RESTART_KEYS:
        if getattr(old, attr) != getattr(new, attr):
            raise _bad(key, "changing it needs a restart of the instance (it is read "
                            "only when the resource module starts)")


def configured_R(cfg: ResourceConfig) -> Any:
    """The instance ResourceSet from ``config`` or ``path``, or None (discover)."""
    from flux.resource import ResourceSet

    if cfg.config is not None:
        try:
            rset = ResourceSet.from_config(cfg.config)
        except (ValueError, TypeError) as exc:
            text = str(exc)
            if not text.startswith("resource."):
                text = f"resource.config: {text}"
            raise FluxError(errno.EINVAL, text) from None
    elif cfg.path is not None:
        try:
            with open(cfg.path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise _bad("path", f"{cfg.path}: {exc.strerror or exc}") from None
        try:
            # the scheduling key (e.g. a Fluxion graph) stays in the instance R
            rset = ResourceSet(data, keep_scheduling=True)
        except (ValueError, TypeError) as exc:
            raise _bad("path", f"{cfg.path}: invalid R: {exc}") from None
    else:
        return None
    if not len(rset.ranks):
        raise _bad("config" if cfg.config is not None else "path", "R holds no resources")
    return rset


def discover_local(rank: int, norestrict: bool = False) -> LocalResources:
    """This broker's resources: its hostname and cores (the affinity mask unless
    ``norestrict``, then every online CPU); gpus are not discovered."""
    from flux.idset import IDset

    cpus: Iterable[int]
    if norestrict:
        cpus = range(os.cpu_count() or 1)
    else:
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = range(os.cpu_count() or 1)
    hostname = os.environ.get("FLUX_FAKE_HOSTNAME") or socket.gethostname()
    return LocalResources(rank, hostname, IDset(cpus).encode())


def discovered_R(reports: Mapping[int, LocalResources]) -> Any:
    """R from every rank's report (ranks in order; several ranks may share a host)."""
    from flux.resource import ResourceSet

    rset = ResourceSet()
    for rank in sorted(reports):
        rep = reports[rank]
        rset.add_rank(rank, rep.hostname, cores=rep.cores or None, gpus=rep.gpus or None)
    return rset


def is_idset_text(text: str) -> bool:
    """True if TEXT reads as an idset of ranks rather than a hostlist."""
    return bool(text) and all(c.isdigit() or c in ",-[] " for c in text)


def resolve_targets(text: Any, hostnames: Mapping[int, str], ranks: Iterable[int],
                    what: str = "targets") -> list[int]:
    """Ranks named by TEXT: an RFC 22 idset of ranks or an RFC 29 hostlist.

    A host stands for every rank that runs on it.  Unknown ranks or hosts
    raise FluxError(EINVAL) naming them.
    """
    from flux.hostlist import Hostlist
    from flux.idset import IDset

    if not isinstance(text, str) or not text.strip():
        raise FluxError(errno.EINVAL, f"{what}: expected an idset of ranks or a hostlist")
    text = text.strip()
    known = set(ranks)
    if is_idset_text(text):
        try:
            wanted = IDset(text)
        except (ValueError, TypeError) as exc:
            raise FluxError(errno.EINVAL, f"{what}: invalid idset '{text}': {exc}") from None
        missing = [r for r in wanted if r not in known]
        if missing:
            raise FluxError(errno.EINVAL, f"{what}: rank{'s' if len(missing) > 1 else ''} "
                            f"{IDset(missing).encode()} not in the instance "
                            f"(ranks {IDset(sorted(known)).encode() or 'none'})")
        return list(wanted)
    try:
        hosts = Hostlist(text)
    except (ValueError, TypeError) as exc:
        raise FluxError(errno.EINVAL, f"{what}: '{text}' is neither an idset nor a "
                        f"hostlist: {exc}") from None
    by_host: dict[str, list[int]] = {}
    for rank in sorted(known):
        host = hostnames.get(rank)
        if host is not None:
            by_host.setdefault(host, []).append(rank)
    out: set[int] = set()
    unknown = []
    for host in hosts:
        found = by_host.get(host)
        if found is None:
            unknown.append(host)
        else:
            out.update(found)
    if unknown:
        raise FluxError(errno.EINVAL, f"{what}: unknown host{'s' if len(unknown) > 1 else ''} "
                        f"{Hostlist(unknown).encode()}")
    return sorted(out)
