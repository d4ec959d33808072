"""RFC 20 resource sets (R version 1): parse, query, combine and encode.

A ResourceSet maps broker ranks to named children (``core`` and ``gpu``
idsets, and any other child type R carries) and to hostnames, plus the
set-wide ``starttime``, ``expiration`` and rank ``properties``.
``encode()`` writes R with ranks of identical children grouped into one
``R_lite`` entry and the hostnames compressed into one RFC 29 ``nodelist``
string; ``dumps()`` gives the short form ``rank[0-3]/core[0-7],gpu[0-1]``.
The API follows Flux's ``flux.resource.ResourceSet``; ``from_config``
builds R from ``[[resource.config]]`` entries and ``add_rank`` builds it
rank by rank.  ``copy_constraint`` keeps the ranks an RFC 31 constraint
accepts (flux/resource/match.py).  See specs/R.md.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union

import orjson

from flux.hostlist import Hostlist
from flux.idset import IDSET_FLAG_BRACKETS, IDSET_FLAG_RANGE, IDset

__all__ = ["ResourceSet", "RankInfo", "decode_R", "MissingVersionError"]

_SHORT = IDSET_FLAG_RANGE | IDSET_FLAG_BRACKETS
# RFC 20: characters a property name must not contain.
_ILLEGAL_PROPERTY_CHARS = frozenset("!&'\"^`|()")
_CONFIG_KEYS = frozenset({"hosts", "cores", "gpus", "properties"})
_CHILD_RANK = {"core": 0, "gpu": 1}

RankArg = Union[IDset, int, str, Iterable[int]]
# The children of one rank: child name -> non-empty ids.  One dict is shared
# by every rank (and every copy) that has the same children, so it is never
# changed in place: a change builds a new dict.
_Children = dict[str, IDset]
_EMPTY: _Children = {}


@dataclass(frozen=True, slots=True)
class RankInfo:
    """The resources of one rank, as returned by ``ResourceSet.nodes()``."""

    rank: int
    hostname: str | None
    cores: IDset
    gpus: IDset


class MissingVersionError(KeyError, ValueError):
    """An R mapping without ``version``: a KeyError, as Flux raises, and a ValueError
    like every other invalid R."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "R: missing 'version'"


def _json_object(text: str | bytes | bytearray | memoryview) -> Mapping[str, Any]:
    """The R object in JSON TEXT; json.JSONDecodeError (a ValueError) if TEXT is not JSON."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise json.JSONDecodeError(f"R: invalid JSON: {exc.msg}", exc.doc, exc.pos) from None
    if not isinstance(data, Mapping):
        raise ValueError(f"R: expected a JSON object, got {type(data).__name__}")
    return data


def decode_R(data: str | bytes | bytearray | memoryview | Mapping[str, Any]) -> Mapping[str, Any]:
    """The object an RFC 20 R holds, from JSON text or as given; ValueError says what is wrong."""
    if not isinstance(data, Mapping):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"R: invalid JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"R: expected a JSON object, got {type(data).__name__}")
    return data


def _ordered(children: _Children) -> list[tuple[str, IDset]]:
    """Children in R order: core, gpu, then other types by name."""
    return sorted(children.items(), key=lambda kv: (_CHILD_RANK.get(kv[0], 2), kv[0]))


def _children_key(children: _Children) -> tuple[tuple[str, str], ...]:
    return tuple((name, ids.encode(IDSET_FLAG_RANGE)) for name, ids in _ordered(children))


def _combine(a: _Children, b: _Children, op: str) -> _Children:
    """Per-type union, difference or intersection, dropping empty types."""
    out: _Children = {}
    for name in (a.keys() | b.keys()) if op == "union" else a.keys():
        x, y = a.get(name), b.get(name)
        if x is None:
            ids = y  # only for union: the type is b's alone
        elif y is None:
            ids = x if op != "intersect" else None
        elif op == "union":
            ids = x.union(y)
        elif op == "diff":
            ids = x.difference(y)
        else:
            ids = x.intersect(y)
        if ids is not None and len(ids):
            out[name] = ids
    return out


def _merge_disjoint(a: _Children, b: _Children, rank: int) -> _Children:
    """Union of a and b; resources in both raise ValueError naming the rank."""
    for name, ids in b.items():
        if name in a:
            common = a[name].intersect(ids)
            if len(common):
                raise ValueError(f"rank {rank}: {name} {common} already present")
    return _combine(a, b, "union")


def _to_idset(ranks: RankArg, what: str) -> IDset:
    if isinstance(ranks, IDset):
        return ranks
    try:
        return IDset(ranks)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: {exc}") from None


def _check_time(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field}: expected a number, got {type(value).__name__}")
    value = float(value)
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise ValueError(f"{field}: {value} is not a time (seconds since the epoch, or 0)")
    return value


def _check_property_name(name: Any, field: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{field}: property name must be a non-empty string")
    bad = _ILLEGAL_PROPERTY_CHARS.intersection(name)
    if bad:
        raise ValueError(f"{field}: property '{name}' contains illegal character "
                         f"'{sorted(bad)[0]}'")
    return name


class ResourceSet:
    """An RFC 20 (version 1) resource set.

    ``arg`` may be an R JSON string (or bytes), a decoded R mapping, another
    ResourceSet (copied, ``scheduling`` included) or its ``impl``, or None
    for an empty set.  As Flux's: a mapping without ``version`` raises
    KeyError, text that is not JSON ``json.JSONDecodeError``, a version
    other than 1 ValueError, an argument of another type TypeError; any
    other invalid R raises ValueError naming the offending field.  R's
    ``scheduling`` key is dropped unless ``keep_scheduling``: then
    ``impl.scheduling`` holds it and ``encode()`` writes it back.
    ``state`` is a free attribute (e.g. ``"up"``), kept by copies.
    """

    __slots__ = ("version", "state", "_kids", "_hosts", "_starttime", "_expiration",
                 "_properties", "_scheduling", "_cache")

    def __init__(self, arg: str | bytes | Mapping[str, Any] | ResourceSet | None = None,
                 version: int = 1, keep_scheduling: bool = False) -> None:
        self.state: str | None = None
        self._kids: dict[int, _Children] = {}   # the ranks, and their children
        self._hosts: dict[int, str] = {}        # hostnames of the ranks that have one
        self._starttime = 0.0
        self._expiration = 0.0
        self._properties: dict[str, IDset] = {}
        self._scheduling: Any = None
        self._cache: dict[str, Any] = {}        # derived data, cleared on change
        if isinstance(arg, Rv1Implementation) or isinstance(getattr(arg, "rset", None),
                                                            ResourceSet):
            arg = arg.rset          # an implementation (``impl``, an ``Rlist``)
        if isinstance(arg, ResourceSet):
            self.version = arg.version
            self._take(arg)
            return
        if isinstance(arg, (str, bytes, bytearray, memoryview)):
            arg = _json_object(arg)
        if isinstance(arg, Mapping):
            if "version" not in arg:
                raise MissingVersionError("R: missing 'version'")
            version = arg["version"]
        elif arg is not None:
            raise TypeError(f"ResourceSet cannot be instantiated from {type(arg).__name__}")
        if isinstance(version, bool) or version != 1:
            raise ValueError(f"R version {version!r} not supported")
        self.version = 1
        if arg is not None:
            self._load(arg, keep_scheduling)

    # --- decoding ------------------------------------------------------------

    def _load(self, r: Mapping[str, Any], keep_scheduling: bool) -> None:
        if "execution" not in r and "scheduling" not in r:
            raise ValueError("R: needs 'execution' or 'scheduling'")
        if keep_scheduling:
            self._scheduling = r.get("scheduling")
        execution = r.get("execution", {})
        if not isinstance(execution, Mapping):
            raise ValueError("R.execution: expected an object")
        r_lite = execution.get("R_lite", [])
        if not isinstance(r_lite, list):
            raise ValueError("R.execution.R_lite: expected an array")
        parsed: dict[str, IDset] = {}  # the same idset strings repeat across entries

        def idset_of(value: Any, field: str) -> IDset:
            if not isinstance(value, str):
                raise ValueError(f"{field}: expected an idset string, got {type(value).__name__}")
            ids = parsed.get(value)
            if ids is None:
                try:
                    ids = parsed[value] = IDset(value)
                except ValueError as exc:
                    raise ValueError(f"{field}: {exc}") from None
            return ids

        kids = self._kids
        for k, entry in enumerate(r_lite):
            where = f"R.execution.R_lite[{k}]"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{where}: expected an object")
            if "rank" not in entry:
                raise ValueError(f"{where}: missing 'rank'")
            ranks = idset_of(entry["rank"], f"{where}.rank")
            value = entry.get("children")
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}.children: expected an object")
            children: _Children = {}
            for name, ids_str in value.items():
                ids = idset_of(ids_str, f"{where}.children.{name}")
                if len(ids):
                    children[name] = ids
            if not kids or kids.keys().isdisjoint(ranks):
                kids.update(dict.fromkeys(ranks, children))
            else:
                for rank in ranks:
                    old = kids.get(rank)
                    kids[rank] = children if old is None else _merge_disjoint(old, children, rank)

        nodelist = execution.get("nodelist")
        if nodelist is not None:
            if not isinstance(nodelist, list) or not all(isinstance(s, str) for s in nodelist):
                raise ValueError("R.execution.nodelist: expected an array of hostlist strings")
            try:
                hosts = Hostlist(nodelist)
            except ValueError as exc:
                raise ValueError(f"R.execution.nodelist: {exc}") from None
            if len(hosts) != len(kids):
                raise ValueError(f"R.execution.nodelist: {len(hosts)} hosts for "
                                 f"{len(kids)} ranks")
            self._hosts = dict(zip(self._sorted_ranks(), hosts))
            self._cache["nodelist"] = hosts.encode()

        props = execution.get("properties", {})
        if not isinstance(props, Mapping):
            raise ValueError("R.execution.properties: expected an object")
        for name, ids_str in props.items():
            field = f"R.execution.properties.{name}"
            _check_property_name(name, field)
            ids = idset_of(ids_str, field)
            missing = ids.difference(self.ranks)
            if len(missing):
                raise ValueError(f"{field}: ranks {missing} are not in R_lite")
            self._properties[name] = ids.copy()

        for key in ("starttime", "expiration"):
            if key in execution:
                setattr(self, "_" + key, _check_time(execution[key], f"R.execution.{key}"))
        if self._starttime and self._expiration and self._expiration <= self._starttime:
            raise ValueError(f"R.execution.expiration: {self._expiration} is not after "
                             f"starttime {self._starttime}")

    def _take(self, other: ResourceSet) -> None:
        self._kids = dict(other._kids)
        self._hosts = dict(other._hosts)
        self._starttime = other._starttime
        self._expiration = other._expiration
        self._properties = {k: v.copy() for k, v in other._properties.items()}
        self._scheduling = other._scheduling
        self.state = other.state

    def _changed(self) -> None:
        self._cache.clear()

    # --- encoding ------------------------------------------------------------

    def _sorted_ranks(self) -> list[int]:
        ranks = self._cache.get("ranks")
        if ranks is None:
            ranks = self._cache["ranks"] = sorted(self._kids)
        return ranks

    def _groups(self) -> list[tuple[list[int], list[tuple[str, IDset]]]]:
        """Ranks with identical children, ordered by each group's first rank."""
        groups = self._cache.get("groups")
        if groups is None:
            # Ranks usually share children dicts, so group by dict identity
            # first and compare contents once per distinct dict.
            by_dict: dict[int, list[int]] = {}
            dicts: dict[int, _Children] = {}
            kids = self._kids
            for rank in self._sorted_ranks():
                children = kids[rank]
                ranks = by_dict.get(id(children))
                if ranks is None:
                    by_dict[id(children)] = [rank]
                    dicts[id(children)] = children
                else:
                    ranks.append(rank)
            by_key: dict[tuple, tuple[list[int], list[tuple[str, IDset]]]] = {}
            for ident, ranks in by_dict.items():
                children = dicts[ident]
                key = _children_key(children)
                group = by_key.get(key)
                if group is None:
                    by_key[key] = (ranks, _ordered(children))
                else:
                    group[0].extend(ranks)
            groups = sorted(by_key.values(), key=lambda g: g[0][0])
            for ranks, _ in groups:
                ranks.sort()
            self._cache["groups"] = groups
        return groups

    def to_dict(self) -> dict[str, Any]:
        """R as a JSON-ready dict."""
        r_lite = []
        for ranks, children in self._groups():
            kids = {"core": ""}
            kids.update((name, ids.encode(IDSET_FLAG_RANGE)) for name, ids in children)
            r_lite.append({"rank": IDset.from_sorted(ranks).encode(IDSET_FLAG_RANGE),
                           "children": kids})
        execution: dict[str, Any] = {"R_lite": r_lite}
        nodelist = self._nodelist_string()
        if nodelist is not None:
            execution["nodelist"] = [nodelist] if nodelist else []
        if self._properties:
            execution["properties"] = {name: ids.encode(IDSET_FLAG_RANGE)
                                       for name, ids in sorted(self._properties.items())}
        execution["starttime"] = self._starttime
        execution["expiration"] = self._expiration
        out: dict[str, Any] = {"version": 1, "execution": execution}
        if self._scheduling is not None:
            out["scheduling"] = self._scheduling
        return out

    def encode(self) -> str:
        """R as a compact JSON string."""
        return orjson.dumps(self.to_dict()).decode()

    def _nodelist_string(self) -> str | None:
        """The encoded nodelist, or None unless every rank has a hostname."""
        if "nodelist" not in self._cache:
            if len(self._hosts) != len(self._kids):
                self._cache["nodelist"] = None
            else:
                hosts = self._hosts
                self._cache["nodelist"] = Hostlist(
                    [hosts[r] for r in self._sorted_ranks()]).encode()
        return self._cache["nodelist"]

    def dumps(self) -> str:
        """Short form, e.g. ``rank[0-1]/core[0-3],gpu0 rank2/core[0-7]``."""
        out = []
        for ranks, children in self._groups():
            text = "rank" + IDset.from_sorted(ranks).encode(_SHORT)
            if children:
                text += "/" + ",".join(name + ids.encode(_SHORT) for name, ids in children)
            out.append(text)
        return " ".join(out)

    def __str__(self) -> str:
        return self.dumps()

    def __repr__(self) -> str:
        return f"ResourceSet('{self.dumps()}')"

    # --- queries -------------------------------------------------------------

    @property
    def ranks(self) -> IDset:
        """The ranks in this set."""
        return IDset.from_sorted(self._sorted_ranks())

    @property
    def nodelist(self) -> Hostlist:
        """Hostnames of the ranks that have one, in rank order."""
        encoded = self._nodelist_string()
        if encoded is not None:
            return Hostlist(encoded)
        return Hostlist([self._hosts[r] for r in self._sorted_ranks() if r in self._hosts])

    @property
    def nnodes(self) -> int:
        """Number of ranks."""
        return len(self._kids)

    @property
    def ncores(self) -> int:
        """Total number of cores."""
        return self.count("core")

    @property
    def ngpus(self) -> int:
        """Total number of GPUs."""
        return self.count("gpu")

    @property
    def rlist(self) -> str:
        """The short form (as Flux's ``rlist`` property)."""
        return self.dumps()

    def count(self, name: str) -> int:
        """Total number of resources of type ``name`` (``node``, ``core``, ``gpu``...)."""
        if name == "node":
            return len(self._kids)
        counts = self._cache.setdefault("counts", {})
        total = counts.get(name)
        if total is None:
            # ranks share children dicts: count each distinct dict once
            uses = Counter(map(id, self._kids.values()))
            distinct = {id(c): c for c in self._kids.values()}
            total = counts[name] = sum(len(distinct[i].get(name, ())) * n
                                       for i, n in uses.items())
        return total

    def hostname(self, rank: int) -> str | None:
        """Hostname of ``rank`` (None if it has none); KeyError if absent."""
        self._check_rank(rank)
        return self._hosts.get(rank)

    def children(self, rank: int) -> dict[str, IDset]:
        """Copies of the child idsets of ``rank``; KeyError if absent."""
        self._check_rank(rank)
        return {name: ids.copy() for name, ids in _ordered(self._kids[rank])}

    def _check_rank(self, rank: int) -> None:
        if rank not in self._kids:
            raise KeyError(f"rank {rank} is not in this resource set")

    def nodes(self) -> Iterator[RankInfo]:
        """Each rank's hostname, cores and gpus, in rank order."""
        for rank in self._sorted_ranks():
            children = self._kids[rank]
            cores = children.get("core")
            gpus = children.get("gpu")
            yield RankInfo(rank, self._hosts.get(rank),
                           cores.copy() if cores is not None else IDset(),
                           gpus.copy() if gpus is not None else IDset())

    def host_ranks(self, hosts: str | Hostlist | Iterable[str],
                   ignore_nomatch: bool = False) -> list[int]:
        """The ranks of ``hosts`` (a hostlist), as a list in the order of ``hosts``.

        A host no rank has raises FileNotFoundError naming it, unless
        ``ignore_nomatch`` (then it is left out).  A host name that several
        ranks share gives the first of them.
        """
        if not isinstance(hosts, Hostlist):
            hosts = Hostlist(hosts)
        named = [r for r in self._sorted_ranks() if r in self._hosts]
        positions = Hostlist([self._hosts[r] for r in named]).index(
            hosts, ignore_nomatch=ignore_nomatch)
        return [named[i] for i in positions]

    @property
    def properties(self) -> str:
        """The property names of this set, comma-separated (``""`` if none)."""
        return ",".join(sorted(self._properties))

    def get_properties(self) -> str:
        """The RFC 20 ``properties`` object (name -> idset of ranks), as JSON text."""
        return orjson.dumps({name: ids.encode(IDSET_FLAG_RANGE)
                             for name, ids in sorted(self._properties.items())}).decode()

    def property_ranks(self) -> dict[str, IDset]:
        """Property name -> the ranks that have it (copies)."""
        return {name: ids.copy() for name, ids in self._properties.items()}

    def rank_properties(self, rank: int) -> frozenset[str]:
        """The property names of ``rank`` (empty if it has none or is absent)."""
        return frozenset(name for name, ids in self._properties.items() if rank in ids)

    @property
    def impl(self) -> "Rv1Implementation":
        """This set seen as Flux's ResourceSetImplementation (``impl.scheduling`` holds
        R's ``scheduling`` when the set was built with ``keep_scheduling``)."""
        return Rv1Implementation(self)

    @property
    def starttime(self) -> float:
        """Start of validity in seconds since the epoch; 0 means unset."""
        return self._starttime

    @starttime.setter
    def starttime(self, value: float) -> None:
        self._starttime = _check_time(value, "starttime")

    @property
    def expiration(self) -> float:
        """End of validity in seconds since the epoch; 0 means unset."""
        return self._expiration

    @expiration.setter
    def expiration(self, value: float) -> None:
        self._expiration = _check_time(value, "expiration")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResourceSet):
            return NotImplemented
        return (self._kids.keys() == other._kids.keys()
                and self._hosts == other._hosts
                and all(_children_key(c) == _children_key(other._kids[r])
                        for r, c in self._kids.items() if c is not other._kids[r])
                and self._properties == other._properties
                and self._starttime == other._starttime
                and self._expiration == other._expiration)

    __hash__ = None  # type: ignore[assignment]  # mutable

    # --- building ------------------------------------------------------------

    def add_rank(self, rank: int, hostname: str | None = None, cores: RankArg | None = "0",
                 gpus: RankArg | None = None) -> ResourceSet:
        """Add ``rank`` with a hostname, cores and gpus; returns self.

        Adding to an existing rank merges the resources; resources the rank
        already has, or a different hostname, raise ValueError.
        """
        children: _Children = {}
        for name, ids in (("core", cores), ("gpu", gpus)):
            if ids is not None:
                idset = _to_idset(ids, f"rank {rank} {name}")
                if len(idset):
                    children[name] = idset.copy()
        self._add(rank, hostname, children)
        return self

    def add_child(self, rank: int, name: str, ids: RankArg) -> ResourceSet:
        """Add child resources ``name`` (e.g. ``gpu``) with ``ids`` to ``rank``."""
        idset = _to_idset(ids, f"rank {rank} {name}")
        self._add(rank, None, {name: idset.copy()} if len(idset) else {})
        return self

    def _add(self, rank: int, hostname: str | None, children: _Children) -> None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
            raise ValueError(f"rank must be a non-negative integer, got {rank!r}")
        if hostname is not None:
            current = self._hosts.get(rank)
            if current is not None and current != hostname:
                raise ValueError(f"rank {rank}: hostname '{hostname}' conflicts with "
                                 f"'{current}'")
        old = self._kids.get(rank)
        self._kids[rank] = children if old is None else _merge_disjoint(old, children, rank)
        if hostname is not None:
            self._hosts[rank] = hostname
        self._changed()

    def add(self, *args: Any) -> ResourceSet:
        """Add to self the resources of each argument that self lacks; returns self.

        Unlike ``append``, resources already present are no error (adding a
        set twice changes nothing); hostnames and properties come along.  A
        rank named with a different hostname raises ValueError.
        """
        for arg in args:
            other = arg if isinstance(arg, ResourceSet) else ResourceSet(arg)
            merged = self._binary(other, "union")
            self._kids = merged._kids
            self._hosts = merged._hosts
            self._properties = merged._properties
            self._changed()
        return self

    def set_property(self, name: str, ranks: RankArg | None = None) -> ResourceSet:
        """Give property ``name`` to ``ranks`` (default: all ranks); returns self."""
        _check_property_name(name, "set_property")
        ids = self.ranks if ranks is None else _to_idset(ranks, f"property {name}")
        missing = ids.difference(self.ranks)
        if len(missing):
            raise ValueError(f"property {name}: ranks {missing} are not in this resource set")
        self._properties[name] = self._properties.get(name, IDset()).union(ids)
        return self

    @classmethod
    def from_config(cls, entries: Iterable[Mapping[str, Any]],
                    hostlist: str | Hostlist | Iterable[str] | None = None) -> ResourceSet:
        """Build R from ``[[resource.config]]`` entries.

        Each entry has ``hosts`` (RFC 29 hostlist, required), ``cores`` and
        ``gpus`` (RFC 22 idsets) and ``properties`` (list of names).  A host
        named in several entries gets the union of their resources.  Ranks
        follow ``hostlist`` (e.g. the bootstrap host order) when given, else
        the order in which hosts first appear.
        """
        order: dict[str, int] = {}
        if hostlist is not None:
            for host in (hostlist if isinstance(hostlist, Hostlist) else Hostlist(hostlist)):
                if host in order:
                    raise ValueError(f"hostlist: host '{host}' appears twice")
                order[host] = len(order)
        rset = cls()
        props: dict[str, set[int]] = {}
        for k, entry in enumerate(entries):
            where = f"resource.config[{k}]"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{where}: expected a table")
            unknown = entry.keys() - _CONFIG_KEYS
            if unknown:
                raise ValueError(f"{where}: unknown key '{sorted(unknown)[0]}'")
            hosts_value = entry.get("hosts")
            if not isinstance(hosts_value, str):
                raise ValueError(f"{where}.hosts: required hostlist string")
            try:
                hosts = Hostlist(hosts_value)
            except ValueError as exc:
                raise ValueError(f"{where}.hosts: {exc}") from None
            children: _Children = {}
            for key, child in (("cores", "core"), ("gpus", "gpu")):
                value = entry.get(key)
                if value is None:
                    continue
                if not isinstance(value, str):
                    raise ValueError(f"{where}.{key}: expected an idset string")
                try:
                    ids = IDset(value)
                except ValueError as exc:
                    raise ValueError(f"{where}.{key}: {exc}") from None
                if len(ids):
                    children[child] = ids
            names = entry.get("properties", [])
            if not isinstance(names, list):
                raise ValueError(f"{where}.properties: expected an array of strings")
            for name in names:
                _check_property_name(name, f"{where}.properties")
            for host in hosts:
                rank = order.get(host)
                if rank is None:
                    if hostlist is not None:
                        raise ValueError(f"{where}.hosts: host '{host}' is not in the hostlist")
                    rank = order[host] = len(order)
                old = rset._kids.get(rank)
                rset._kids[rank] = children if old is None else _combine(old, children, "union")
                rset._hosts[rank] = host
                for name in names:
                    props.setdefault(name, set()).add(rank)
        rset._properties = {name: IDset(ranks) for name, ranks in props.items()}
        rset._changed()
        return rset

    # --- combining -----------------------------------------------------------

    def copy(self) -> ResourceSet:
        """An independent copy."""
        return ResourceSet(self)

    def copy_ranks(self, ranks: RankArg) -> ResourceSet:
        """A copy holding only ``ranks`` (absent ranks are ignored)."""
        ids = _to_idset(ranks, "copy_ranks")
        result = self._empty_like()
        if len(ids) < len(self._kids):
            keep = [r for r in ids if r in self._kids]
        else:
            keep = [r for r in self._kids if r in ids]
        result._kids = {r: self._kids[r] for r in keep}
        result._hosts = {r: self._hosts[r] for r in keep if r in self._hosts}
        result._properties = self._props_for(result, self._properties)
        return result

    def remove_ranks(self, ranks: RankArg) -> ResourceSet:
        """Remove ``ranks`` (IDset, int or idset string) from this set; returns self."""
        ids = _to_idset(ranks, "remove_ranks")
        if len(ids) < len(self._kids):
            for rank in ids:
                self._kids.pop(rank, None)
                self._hosts.pop(rank, None)
        else:
            self._kids = {r: c for r, c in self._kids.items() if r not in ids}
            self._hosts = {r: h for r, h in self._hosts.items() if r not in ids}
        self._changed()
        self._properties = self._props_for(self, self._properties)
        return self

    def copy_constraint(self, constraint: Mapping[str, Any] | str) -> ResourceSet:
        """A new set of the ranks that match the RFC 31 ``constraint`` (dict or JSON text).

        See flux/resource/match.py for the operators; an invalid constraint
        raises ValueError ``copy_constraint: <what is wrong>``.  A property
        no rank has matches nothing.  The copy has no ``state``.
        """
        from flux.resource.match import compile_constraint

        try:
            match = compile_constraint(constraint)
        except ValueError as exc:
            raise ValueError(f"copy_constraint: {exc}") from None
        hosts = self._hosts
        props: dict[int, set[str]] = {}
        for name, ids in self._properties.items():
            for rank in ids:
                props.setdefault(rank, set()).add(name)
        none: frozenset[str] = frozenset()
        keep = [r for r in self._sorted_ranks() if match(r, hosts.get(r), props.get(r, none))]
        result = self.copy_ranks(IDset.from_sorted(keep))
        result.state = None
        return result

    def _empty_like(self) -> ResourceSet:
        """An empty set with self's time window and state."""
        result = ResourceSet()
        result._starttime = self._starttime
        result._expiration = self._expiration
        result.state = self.state
        return result

    @staticmethod
    def _props_for(target: ResourceSet, *maps: dict[str, IDset]) -> dict[str, IDset]:
        """The properties in ``maps``, limited to the ranks of ``target``."""
        if not any(maps):
            return {}
        present = target.ranks
        out: dict[str, IDset] = {}
        for props in maps:
            for name, ids in props.items():
                kept = ids.intersect(present)
                if len(kept):
                    out[name] = out[name].union(kept) if name in out else kept
        return out

    def _binary(self, other: ResourceSet, op: str) -> ResourceSet:
        """self op other; the work is proportional to ``other`` for union and
        diff and to the smaller set for intersect."""
        result = self._empty_like()
        mine, theirs = self._kids, other._kids
        if op == "intersect":
            small = theirs if len(theirs) < len(mine) else mine
            kids = {}
            for rank in small:
                a, b = mine.get(rank), theirs.get(rank)
                if a is not None and b is not None:
                    children = _combine(a, b, "intersect")
                    if children:
                        kids[rank] = children
            hosts = {r: self._hosts[r] for r in kids if r in self._hosts}
            maps: tuple[dict[str, IDset], ...] = (self._properties,)
        else:
            kids = dict(mine)
            hosts = dict(self._hosts)
            for rank, b in theirs.items():
                a = kids.get(rank)
                if op == "union":
                    name, theirs_name = hosts.get(rank), other._hosts.get(rank)
                    if theirs_name is not None:
                        if name is not None and name != theirs_name:
                            raise ValueError(f"rank {rank}: hostname '{theirs_name}' "
                                             f"conflicts with '{name}'")
                        hosts[rank] = theirs_name
                    kids[rank] = b if a is None else _combine(a, b, "union")
                elif a is not None:
                    children = _combine(a, b, "diff")
                    if children:
                        kids[rank] = children
                    else:
                        del kids[rank]
                        hosts.pop(rank, None)
            maps = (self._properties, other._properties) if op == "union" else (self._properties,)
        result._kids = kids
        result._hosts = hosts
        result._properties = self._props_for(result, *maps)
        return result

    def _run_op(self, op: str, args: tuple[Any, ...]) -> ResourceSet:
        result = self
        for arg in args:
            other = arg if isinstance(arg, ResourceSet) else ResourceSet(arg)
            result = result._binary(other, op)
        return result.copy() if result is self else result

    def union(self, *args: Any) -> ResourceSet:
        """A new set with the resources of self and every argument."""
        return self._run_op("union", args)

    def diff(self, *args: Any) -> ResourceSet:
        """A new set with the resources of self that are in no argument."""
        return self._run_op("diff", args)

    def intersect(self, *args: Any) -> ResourceSet:
        """A new set with the resources common to self and every argument."""
        return self._run_op("intersect", args)

    def append(self, *args: Any) -> ResourceSet:
        """Add the resources of each argument to self; returns self.

        Resources self already has raise ValueError naming the rank.
        """
        for arg in args:
            other = arg if isinstance(arg, ResourceSet) else ResourceSet(arg)
            for rank, children in other._kids.items():
                self._add(rank, other._hosts.get(rank), children)
            for name, ids in other._properties.items():
                self._properties[name] = self._properties.get(name, IDset()).union(ids)
        return self

    def __or__(self, other: Any) -> ResourceSet:
        return self.union(other)

    def __sub__(self, other: Any) -> ResourceSet:
        return self.diff(other)

    def __and__(self, other: Any) -> ResourceSet:
        return self.intersect(other)


class Rv1Implementation:
    """A ResourceSet seen through Flux's ``ResourceSetImplementation`` interface.

    ``rset.impl`` returns one: ``scheduling`` (R's opaque ``scheduling``
    object, kept only with ``keep_scheduling``; settable), ``version``, and
    the interface's methods, whose set results are implementations too.
    ``ResourceSet(impl)`` gives back a ResourceSet (a copy).
    """

    __slots__ = ("rset",)
    version = 1

    def __init__(self, rset: ResourceSet) -> None:
        self.rset = rset

    @property
    def scheduling(self) -> Any:
        return self.rset._scheduling

    @scheduling.setter
    def scheduling(self, value: Any) -> None:
        self.rset._scheduling = value

    def dumps(self) -> str:
        return self.rset.dumps()

    def encode(self) -> str:
        return self.rset.encode()

    def ranks(self) -> IDset:
        return self.rset.ranks

    def nodelist(self) -> Hostlist:
        return self.rset.nodelist

    def nnodes(self) -> int:
        return self.rset.nnodes

    def count(self, name: str) -> int:
        return self.rset.count(name)

    def copy(self) -> Rv1Implementation:
        return Rv1Implementation(self.rset.copy())

    def append(self, other: Rv1Implementation) -> Rv1Implementation:
        self.rset.append(_rset_of(other))
        return self

    def add(self, other: Rv1Implementation) -> Rv1Implementation:
        self.rset.add(_rset_of(other))
        return self

    def remove_ranks(self, ranks: RankArg) -> Rv1Implementation:
        self.rset.remove_ranks(ranks)
        return self

    def union(self, other: Rv1Implementation) -> Rv1Implementation:
        return Rv1Implementation(self.rset.union(_rset_of(other)))

    def diff(self, other: Rv1Implementation) -> Rv1Implementation:
        return Rv1Implementation(self.rset.diff(_rset_of(other)))

    def intersect(self, other: Rv1Implementation) -> Rv1Implementation:
        return Rv1Implementation(self.rset.intersect(_rset_of(other)))

    def get_properties(self) -> str:
        return self.rset.get_properties()


def _rset_of(other: Any) -> ResourceSet:
    return other.rset if isinstance(other, Rv1Implementation) else other
