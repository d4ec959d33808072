"""Bootstrap from configuration: a system instance's broker (flux-config-bootstrap(5)).

``flux broker --config-path=DIR`` (and ``flux start`` without
``--test-size`` outside a job) with a ``[bootstrap] hosts`` array runs
ONE broker of the instance those hosts make: its rank is the index of
this host's name (``FLUX_FAKE_HOSTNAME`` stands in for the hostname, as
in Flux's tests), the size is the number of hosts, the tree is ``[tbon]
topo`` (``custom`` by default: each host's ``parent``, else rank 0).
A broker with children binds its host's ``bind`` address; a broker
connects to its parent's ``connect`` address.  Every broker uses the one
certificate of ``curve_cert`` (flux-keygen(1)) as both its CURVE server
and client key, and admits only peers presenting that same key, so a
peer without it, or with another, cannot join.

A configuration that does not list this host, lists a host twice, makes a
cycle of parents, lacks a needed address or certificate, or has a bad
``[tbon]`` value is refused before anything starts, with the file and the
entry named (``resolve`` raises FluxError).  A follower waits for its
parent without limit (brokers start in any order).  See specs/overlay.md.
"""
from __future__ import annotations

import errno
import os
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broker.config import Config
from flux.errors import FluxError

if TYPE_CHECKING:
    from broker.bootstrap import Bootstrap, TbonConfig
    from broker.broker import BrokerOptions
    from broker.launch import LaunchOptions

# zmq, the hostlist and certificate code are imported only when a configuration
# does bootstrap: `flux start` of a single broker checks has_bootstrap() and no more

__all__ = ["ConfigBoot", "Resolved", "resolve", "has_bootstrap", "launch_config",
           "config_broker_options", "this_hostname"]


def this_hostname() -> str:
    return os.environ.get("FLUX_FAKE_HOSTNAME") or socket.gethostname()


def has_bootstrap(config: Config) -> bool:
    """Whether CONFIG lists hosts to bootstrap from."""
    boot = config.get("bootstrap")
    return isinstance(boot, dict) and bool(boot.get("hosts"))


class ConfigBoot:
    """The overlay's bootstrap (broker.overlay.OverlayBoot) from ``[bootstrap]``."""

    refusal = "without the instance certificate (bootstrap.curve_cert)"
    join_timeout: float | None = None     # wait for the parent as long as it takes

    def __init__(self, boot: Bootstrap, rank: int, public: bytes, secret: bytes,
                 tbon: TbonConfig) -> None:
        import zmq.utils.z85

        self.boot = boot
        self.rank = rank
        self.public, self.secret = public, secret
        self._raw_public = zmq.utils.z85.decode(public)
        self.tbon = tbon
        entry = boot.hosts[rank]
        self.bind_uri = entry.bind

    async def publish(self, rank: int, endpoint: str | None, parent: int | None,
                      children: list[int]) -> None:
        return None

    async def parent(self, rank: int, parent: int) -> tuple[str, bytes]:
        entry = self.boot.hosts[parent]
        if entry.connect is None:
            raise FluxError(errno.EINVAL, f"bootstrap.hosts[{entry.entry}]: {entry.host} has "
                                          "no connect address (set connect or "
                                          "bootstrap.default_connect)")
        return entry.connect, self.public

    def child_key_ok(self, key: bytes) -> bool:
        return key == self._raw_public


@dataclass(slots=True)
class Resolved:
    rank: int
    size: int
    hostname: str
    hosts: list[str]
    parents: list[int | None]
    boot: ConfigBoot | None
    tbon: TbonConfig


def _where(config: Config, key: str) -> str:
    path, line = config.where(key)
    return path if line is None else f"{path}:{line}"


def resolve(config: Config, setattrs: list[tuple[str, str]] | None = None,
            hostname: str | None = None) -> Resolved:
    """This broker's place in the configured instance; FluxError (EINVAL) names what is
    wrong, with the file."""
    from broker.bootstrap import parse_bootstrap, parse_tbon
    from broker.cert import load_cert

    attrs = dict(setattrs or [])
    hostname = hostname or this_hostname()
    try:
        boot = parse_bootstrap(config.get("bootstrap"))
    except ValueError as exc:
        raise FluxError(errno.EINVAL, f"{_where(config, 'bootstrap')}: {exc}") from None
    try:
        tbon = parse_tbon(config.get("tbon"), attrs)
    except ValueError as exc:
        raise FluxError(errno.EINVAL, f"{_where(config, 'tbon')}: {exc}") from None
    try:
        rank = boot.rank_of(hostname)
        topo = tbon["topo"]
        if "tbon.fanout" in attrs and "tbon.topo" not in attrs \
                and not isinstance(config.get("tbon.topo"), str):
            topo = f"kary:{tbon['fanout']}"
        parents = boot.parents(topo)
    except ValueError as exc:
        raise FluxError(errno.EINVAL, f"{_where(config, 'bootstrap')}: {exc}") from None
    hosts = boot.hostnames()
    conf_boot = None
    if boot.curve_cert is not None:
        public, secret = load_cert(boot.curve_cert)
        conf_boot = ConfigBoot(boot, rank, public, secret, tbon)
    if conf_boot is not None and boot.size > 1:
        has_children = any(p == rank for p in parents)
        entry = boot.hosts[rank]
        if has_children and entry.bind is None:
            raise FluxError(errno.EINVAL, f"{_where(config, 'bootstrap')}: "
                                          f"bootstrap.hosts[{entry.entry}]: {entry.host} has "
                                          "children in the tree but no bind address (set bind "
                                          "or bootstrap.default_bind)")
        up = parents[rank]
        if up is not None and boot.hosts[up].connect is None:
            pentry = boot.hosts[up]
            raise FluxError(errno.EINVAL, f"{_where(config, 'bootstrap')}: "
                                          f"bootstrap.hosts[{pentry.entry}]: {pentry.host} has "
                                          "children in the tree but no connect address (set "
                                          "connect or bootstrap.default_connect)")
    return Resolved(rank=rank, size=boot.size, hostname=hostname, hosts=hosts,
                    parents=parents, boot=conf_boot, tbon=tbon)


def config_broker_options(config: Config, setattrs: list[tuple[str, str]],
                          initial_program: list[str], verbose: int = 0,
                          rundir: str | None = None) -> "BrokerOptions":
    """The options of this host's broker of the configured instance (FluxError if
    the configuration is wrong or does not list this host)."""
    from broker.broker import BrokerOptions

    where = resolve(config, setattrs)
    if verbose:
        print(f"flux-broker: {where.hostname} is rank {where.rank} of {where.size} "
              "(config bootstrap)", file=sys.stderr)
    setattrs = list(setattrs)
    if rundir and "rundir" not in {n for n, _v in setattrs}:
        setattrs.append(("rundir", rundir))
    return BrokerOptions(rank=where.rank, size=where.size, setattrs=setattrs, config=config,
                         initial_program=list(initial_program), verbose=verbose,
                         parents=where.parents, hostname=where.hostname, hosts=where.hosts,
                         boot=where.boot, config_boot=True)


def launch_config(opts: "LaunchOptions") -> int:
    """Run this host's broker of the configured instance; returns its exit code."""
    import asyncio

    from broker.broker import Broker
    from broker.launch import _flux_path_env

    options = config_broker_options(opts.config, opts.setattrs, opts.initial_program,
                                    opts.verbose, opts.rundir)
    if opts.noexec:
        return 0
    _flux_path_env()
    return asyncio.run(Broker(options).run())
