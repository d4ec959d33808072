"""``[bootstrap]`` and ``[tbon]`` of a system instance's configuration, as pure functions.

flux-config-bootstrap(5): ``hosts`` is a rank-ordered array of tables,
each with ``host`` (an RFC 29 hostlist, expanded in order: one rank per
name) and optionally ``bind``, ``connect`` and ``parent`` (the host name
of its TBON parent).  ``default_port`` replaces ``%p``, and each entry's
host name replaces ``%h``, in ``bind``/``connect`` and in
``default_bind``/``default_connect`` (used where an entry sets none).
``curve_cert`` names the certificate of flux-keygen(1), required for
more than one host.  A broker's rank is the index of its hostname.
``enable_ipv6 = true`` lets the overlay's sockets (bind and connect side)
use IPv6 addresses, e.g. ``default_bind = "tcp://[::1]:%p"`` (ZeroMQ's
IPV6 socket option, set by broker.overlay).

flux-config-tbon(5): ``topo`` is ``custom`` (the default here: rank 0 is
the parent of every host without a ``parent`` key) or ``kary:N`` (N = 0
is flat); ``torpid_min``, ``torpid_max``, ``tcp_user_timeout``,
``connect_timeout`` are RFC 23 durations; ``keepalive_enable``,
``keepalive_count``, ``keepalive_idle``, ``keepalive_interval`` (ZeroMQ's
TCP keepalive settings: -1 leaves the system default), ``child_rcvhwm``,
``zmqdebug``, ``zmq_io_threads`` are integers; ``interface-hint`` a string.

Every error is a ValueError whose text names the entry (``bootstrap.hosts[3]``,
``tbon.torpid_max``); the caller adds the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.topology import Tree
from flux.hostlist import Hostlist
from flux.util.fsd import parse_fsd

__all__ = ["HostEntry", "Bootstrap", "TbonConfig", "parse_bootstrap", "parse_tbon",
           "parse_topo", "substitute", "TBON_DEFAULTS"]

_BOOTSTRAP_KEYS = {"enable_ipv6", "curve_cert", "default_port", "default_bind",
                   "default_connect", "hosts"}
_HOST_KEYS = {"host", "bind", "connect", "parent"}


@dataclass(frozen=True, slots=True)
class HostEntry:
    host: str
    bind: str | None        # with %h/%p substituted; None: no bind address configured
    connect: str | None
    parent: str | None      # host name of the TBON parent (custom topology)
    entry: int              # index in bootstrap.hosts this host came from


@dataclass(slots=True)
class Bootstrap:
    hosts: list[HostEntry] = field(default_factory=list)
    curve_cert: str | None = None
    default_port: int | None = None
    enable_ipv6: bool = False

    @property
    def size(self) -> int:
        return len(self.hosts)

    def rank_of(self, hostname: str) -> int:
        """The rank of HOSTNAME; ValueError if the configuration does not list it."""
        for rank, entry in enumerate(self.hosts):
            if entry.host == hostname:
                return rank
        raise ValueError(f"bootstrap.hosts: this host ({hostname}) is not listed")

    def hostnames(self) -> list[str]:
        return [e.host for e in self.hosts]

    def parents(self, topo: str = "custom") -> list[int | None]:
        """Each rank's parent under TOPO (``custom`` or ``kary:N``); ValueError for a
        parent that is not a listed host, a cycle, or ``parent`` keys with kary."""
        kind, k = parse_topo(topo)
        size = self.size
        if kind == "kary":
            for entry in self.hosts:
                if entry.parent is not None:
                    raise ValueError(f"bootstrap.hosts[{entry.entry}]: parent is set "
                                     f"({entry.parent}) but tbon.topo is {topo}")
            return Tree.kary(size, k).parents
        rank_of = {e.host: r for r, e in enumerate(self.hosts)}
        parents: list[int | None] = [None]
        for rank in range(1, size):
            entry = self.hosts[rank]
            if entry.parent is None:
                parents.append(0)
                continue
            up = rank_of.get(entry.parent)
            if up is None:
                raise ValueError(f"bootstrap.hosts[{entry.entry}]: parent '{entry.parent}' of "
                                 f"{entry.host} is not a listed host")
            if up == rank:
                raise ValueError(f"bootstrap.hosts[{entry.entry}]: {entry.host} is its own "
                                 "parent")
            parents.append(up)
        if size and self.hosts[0].parent is not None:
            raise ValueError(f"bootstrap.hosts[{self.hosts[0].entry}]: {self.hosts[0].host} is "
                             "rank 0, the root, and cannot have a parent")
        try:
            Tree(parents)
        except ValueError as exc:
            # name the hosts, not just ranks
            names = self.hostnames()
            cycle = [names[r] for r in _cycle(parents)]
            raise ValueError(f"bootstrap.hosts: parents make a cycle: "
                             f"{' -> '.join(cycle)}" if cycle else f"bootstrap.hosts: {exc}") \
                from None
        return parents


def _cycle(parents: list[int | None]) -> list[int]:
    """The first cycle among PARENTS (ranks, the first repeated at the end), or []."""
    for start in range(len(parents)):
        seen: list[int] = []
        node: int | None = start
        while node is not None and node not in seen:
            seen.append(node)
            node = parents[node]
        if node is not None:
            i = seen.index(node)
            return seen[i:] + [node]
    return []


def substitute(template: str, host: str, port: int | None, key: str) -> str:
    """TEMPLATE with ``%h`` -> HOST and ``%p`` -> PORT (``%%`` -> ``%``)."""
    out = []
    i = 0
    while i < len(template):
        c = template[i]
        if c == "%" and i + 1 < len(template):
            nxt = template[i + 1]
            if nxt == "h":
                out.append(host)
            elif nxt == "p":
                if port is None:
                    raise ValueError(f"{key}: uses %p but bootstrap.default_port is not set")
                out.append(str(port))
            elif nxt == "%":
                out.append("%")
            else:
                raise ValueError(f"{key}: unknown token %{nxt} in '{template}' "
                                 "(expected %h or %p)")
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _str(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value


def parse_bootstrap(table: Any) -> Bootstrap:
    """The ``[bootstrap]`` TABLE (None or {} for a standalone broker)."""
    if table is None:
        return Bootstrap()
    if not isinstance(table, dict):
        raise ValueError("bootstrap: must be a table")
    for key in table:
        if key not in _BOOTSTRAP_KEYS:
            raise ValueError(f"bootstrap.{key}: unknown key")
    port = table.get("default_port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 0 < port < 65536):
        raise ValueError(f"bootstrap.default_port: expected a port number (1-65535), "
                         f"got {port!r}")
    ipv6 = table.get("enable_ipv6", False)
    if not isinstance(ipv6, bool):
        raise ValueError(f"bootstrap.enable_ipv6: expected true or false, got {ipv6!r}")
    cert = _str(table, "curve_cert", "bootstrap")
    default_bind = _str(table, "default_bind", "bootstrap")
    default_connect = _str(table, "default_connect", "bootstrap")
    hosts_value = table.get("hosts", [])
    if not isinstance(hosts_value, list):
        raise ValueError("bootstrap.hosts: expected an array of tables")
    hosts: list[HostEntry] = []
    first: dict[str, int] = {}
    for i, raw in enumerate(hosts_value):
        where = f"bootstrap.hosts[{i}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a table like {{ host = \"name\" }}, "
                             f"got {raw!r}")
        for key in raw:
            if key not in _HOST_KEYS:
                raise ValueError(f"{where}.{key}: unknown key (expected host, bind, connect "
                                 "or parent)")
        pattern = _str(raw, "host", where)
        if pattern is None:
            raise ValueError(f"{where}: has no host key")
        try:
            names = list(Hostlist(pattern))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}.host: {exc}") from None
        if not names:
            raise ValueError(f"{where}.host: '{pattern}' names no host")
        bind = _str(raw, "bind", where)
        connect = _str(raw, "connect", where)
        parent = _str(raw, "parent", where)
        for name in names:
            if name in first:
                raise ValueError(f"{where}: host {name} is listed twice (also in "
                                 f"bootstrap.hosts[{first[name]}])")
            first[name] = i
            b = bind if bind is not None else default_bind
            c = connect if connect is not None else default_connect
            hosts.append(HostEntry(
                host=name,
                bind=None if b is None else substitute(
                    b, name, port, f"{where}.bind" if bind else "bootstrap.default_bind"),
                connect=None if c is None else substitute(
                    c, name, port, f"{where}.connect" if connect else
                    "bootstrap.default_connect"),
                parent=parent, entry=i))
    boot = Bootstrap(hosts=hosts, curve_cert=cert, default_port=port, enable_ipv6=ipv6)
    if boot.size > 1 and cert is None:
        raise ValueError("bootstrap.curve_cert: required when bootstrap.hosts lists more "
                         "than one host (make one with flux keygen)")
    return boot


def parse_topo(text: str) -> tuple[str, int]:
    """``custom`` -> ("custom", 0); ``kary:N`` -> ("kary", N)."""
    if text == "custom":
        return "custom", 0
    kind, sep, arg = text.partition(":")
    if kind == "kary" and sep:
        try:
            k = int(arg)
            if k < 0:
                raise ValueError
        except ValueError:
            raise ValueError(f"tbon.topo: bad fanout in '{text}' (expected kary:N, "
                             "N >= 0)") from None
        return "kary", k
    raise ValueError(f"tbon.topo: unknown topology '{text}' (expected custom or kary:N)")


#: [tbon] keys: (kind, default)
TBON_DEFAULTS: dict[str, tuple[str, Any]] = {
    "topo": ("topo", "custom"),
    "torpid_min": ("fsd", 5.0),
    "torpid_max": ("fsd", 30.0),
    "tcp_user_timeout": ("fsd", 20.0),
    "connect_timeout": ("fsd", 30.0),
    "child_timeout": ("fsd", 30.0),
    "keepalive_enable": ("int", 1),
    "keepalive_count": ("int", -1),
    "keepalive_idle": ("int", -1),
    "keepalive_interval": ("int", -1),
    "child_rcvhwm": ("int", 0),
    "zmqdebug": ("int", 0),
    "zmq_io_threads": ("int", 1),
    "interface-hint": ("str", "default-route"),
    "prefertcp": ("int", 0),
    "fanout": ("int", 2),
}


@dataclass(slots=True)
class TbonConfig:
    values: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def _tbon_value(key: str, value: Any) -> Any:
    kind, _default = TBON_DEFAULTS[key]
    full = f"tbon.{key}"
    if kind == "fsd":
        if isinstance(value, bool):
            raise ValueError(f"{full}: expected a duration such as \"30s\", got {value!r}")
        try:
            return parse_fsd(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{full}: {exc}") from None
    if kind == "int":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"{full}: expected an integer, got '{value}'") from None
        if not isinstance(value, int):
            raise ValueError(f"{full}: expected an integer, got {value!r}")
        if key == "child_rcvhwm" and value not in (0,) and value < 2:
            raise ValueError(f"{full}: must be 0 (unlimited) or >= 2, got {value}")
        if key in ("keepalive_count", "keepalive_idle", "keepalive_interval") and value < -1:
            raise ValueError(f"{full}: must be -1 (system default) or >= 0, got {value}")
        if key == "keepalive_enable" and value not in (0, 1, -1):
            raise ValueError(f"{full}: must be 0, 1 or -1, got {value}")
        if key == "zmq_io_threads" and value < 1:
            raise ValueError(f"{full}: must be >= 1, got {value}")
        if key == "fanout" and value < 0:
            raise ValueError(f"{full}: must be >= 0, got {value}")
        return value
    if kind == "topo":
        if not isinstance(value, str):
            raise ValueError(f"{full}: expected a string such as \"kary:2\", got {value!r}")
        parse_topo(value)
        return value
    if not isinstance(value, str):
        raise ValueError(f"{full}: expected a string, got {value!r}")
    return value


def parse_tbon(table: Any, attrs: dict[str, str] | None = None) -> TbonConfig:
    """``[tbon]`` TABLE, overridden by ``tbon.<key>`` broker attributes in ATTRS."""
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ValueError("tbon: must be a table")
    values = {k: d for k, (_kind, d) in TBON_DEFAULTS.items()}
    for key, value in table.items():
        if key not in TBON_DEFAULTS:
            raise ValueError(f"tbon.{key}: unknown key")
        values[key] = _tbon_value(key, value)
    for name, value in (attrs or {}).items():
        if name.startswith("tbon.") and name[5:] in TBON_DEFAULTS:
            values[name[5:]] = _tbon_value(name[5:], value)
    return TbonConfig(values)
