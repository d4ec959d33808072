"""The operations behind ``flux R`` (flux-R(1)), as functions of resource sets.

``read_stream`` turns the text on stdin (one or more concatenated RFC 20
R objects) into ResourceSets; ``encode`` builds R from ranks, cores, gpus,
hosts and properties; ``append``, ``diff``, ``intersect``, ``remap``,
``rerank`` and ``set_properties`` combine or change sets; ``select`` is
``decode``'s --include/--exclude/--properties; ``verify`` compares an
expected R with the R a rank found; ``from_config`` is ``parse-config``.
R's opaque ``scheduling`` key is kept (from the first input) by every
operation.  Errors are ValueError (FluxError, an OSError, for files) whose
text names what is wrong.  The command itself is cli/cmd_R.py; see
specs/flux-R.md.
"""
# ruff: noqa: N999 - named like Rlist.py, the R it works on
from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flux.hostlist import Hostlist
from flux.idset import IDSET_FLAG_BRACKETS, IDSET_FLAG_RANGE, IDset
from flux.resource.ResourceSet import ResourceSet
from flux.resource.Rlist import Rlist

__all__ = ["append", "count", "diff", "encode", "from_config", "intersect", "load_R",
           "parse_property", "read_stream", "remap", "rerank", "select", "set_properties",
           "verify"]

_SHORT = IDSET_FLAG_RANGE | IDSET_FLAG_BRACKETS


def _scheduling(rset: ResourceSet) -> Any:
    return rset.impl.scheduling


def _with_scheduling(rset: ResourceSet, value: Any) -> ResourceSet:
    rset.impl.scheduling = value
    return rset


# -- input --------------------------------------------------------------------------------

def load_R(obj: Any, where: str = "R") -> ResourceSet:
    """One decoded R object as a ResourceSet (``scheduling`` kept).

    Beyond ResourceSet's checks, ``execution.R_lite`` must be present; an
    empty object there stands for an empty array.
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")  # noqa: TRY004 - callers catch ValueError
    if "version" in obj:
        execution = obj.get("execution")
        if not isinstance(execution, Mapping):
            raise ValueError(f"{where}: missing 'execution' object")
        if "R_lite" not in execution:
            raise ValueError(f"{where}: missing 'execution.R_lite'")
        if execution["R_lite"] == {}:
            obj = {**obj, "execution": {**execution, "R_lite": []}}
    try:
        return ResourceSet(obj, keep_scheduling=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def read_stream(text: str | bytes) -> list[ResourceSet]:
    """The R objects in TEXT, in order; ValueError if there is none or one is bad."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"input is not UTF-8 text: {exc.reason}") from None
    decoder = json.JSONDecoder()
    out: list[ResourceSet] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos == end:
            break
        where = f"R object {len(out) + 1}"
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: invalid JSON: {exc.msg} (offset {exc.pos})") from None
        out.append(load_R(obj, where))
    if not out:
        raise ValueError("no R object on input")
    return out


# -- encode -------------------------------------------------------------------------------

def parse_property(spec: str) -> tuple[str, IDset | None]:
    """``NAME[:RANKS]`` as (NAME, ranks or None for every rank)."""
    name, sep, ranks = spec.rpartition(":")
    if not sep:
        return spec, None
    try:
        return name, IDset(ranks)
    except ValueError as exc:
        raise ValueError(f"property '{spec}': {exc}") from None


def set_properties(rset: ResourceSet, specs: Iterable[str]) -> ResourceSet:
    """Give each ``NAME[:RANKS]`` of SPECS to its ranks (all without RANKS); returns RSET."""
    for spec in specs:
        name, ranks = parse_property(spec)
        if ranks is not None:
            missing = ranks.difference(rset.ranks)
            if len(missing):
                word = "ranks" if len(missing) > 1 else "rank"
                raise ValueError(f"property '{spec}': {word} {missing.encode()} not found")
        try:
            rset.set_property(name, ranks)
        except ValueError as exc:
            raise ValueError(f"property '{spec}': {exc}") from None
    return rset


def encode(ranks: str | None = None, cores: str | None = None, gpus: str | None = None,
           hosts: str | None = None, properties: Sequence[str] = (),
           local: tuple[str, str] | None = None) -> ResourceSet:
    """R with the same CORES and GPUS on each of RANKS (default ``0``).

    HOSTS (a hostlist) names the ranks in order; without RANKS it also sets
    them (0..n-1).  LOCAL is (hostname, cores) of this machine: every rank
    gets those cores and, without HOSTS, that hostname.  Without CORES and
    GPUS (and LOCAL) each rank has core 0.
    """
    hostlist = Hostlist(hosts) if hosts is not None else None
    if ranks is None:
        ids = IDset(range(len(hostlist))) if hostlist is not None else IDset("0")
    else:
        try:
            ids = IDset(ranks)
        except ValueError as exc:
            raise ValueError(f"--ranks: {exc}") from None
    if hostlist is not None and len(hostlist) != len(ids):
        raise ValueError(f"--hosts: {len(hostlist)} hosts for {len(ids)} ranks ({ids})")
    if local is not None:
        if cores is not None or gpus is not None:
            raise ValueError("--local cannot be combined with --cores or --gpus")
        cores = local[1]
    elif cores is None and gpus is None:
        cores = "0"
    names: list[str | None]
    if hostlist is not None:
        names = list(hostlist)
    else:
        names = [local[0] if local is not None else None] * len(ids)
    rset = ResourceSet()
    try:
        core_ids = IDset(cores or "")
        gpu_ids = IDset(gpus or "")
    except ValueError as exc:
        raise ValueError(f"--cores/--gpus: {exc}") from None
    for rank, host in zip(ids, names):
        rset.add_rank(rank, host, cores=core_ids, gpus=gpu_ids)
    return set_properties(rset, properties)


# -- combining ----------------------------------------------------------------------------

def append(rsets: Sequence[ResourceSet]) -> ResourceSet:
    """The union of RSETS; resources in more than one raise ValueError naming the rank."""
    result = rsets[0].copy()
    for k, other in enumerate(rsets[1:], 2):
        try:
            result.append(other)
        except ValueError as exc:
            raise ValueError(f"R object {k} overlaps the ones before it: {exc}") from None
    return result


def diff(rsets: Sequence[ResourceSet]) -> ResourceSet:
    """The resources of the first set that none of the others has."""
    return _with_scheduling(rsets[0].diff(*rsets[1:]), _scheduling(rsets[0]))


def intersect(rsets: Sequence[ResourceSet]) -> ResourceSet:
    """The resources every set has."""
    return _with_scheduling(rsets[0].intersect(*rsets[1:]), _scheduling(rsets[0]))


def remap(rset: ResourceSet) -> ResourceSet:
    """RSET with its ranks renumbered 0..n-1 in order."""
    rl = Rlist()
    rl.rset = rset.copy()
    return _with_scheduling(rl.remap().rset, _scheduling(rset))


def rerank(rset: ResourceSet, hosts: str) -> ResourceSet:
    """RSET with rank i given to the i-th host of HOSTS (a hostlist of RSET's hosts).

    A host that several ranks share takes the ranks in order, one per
    mention in HOSTS.
    """
    order = Hostlist(hosts)
    if len(order) != rset.nnodes:
        raise ValueError(f"rerank: hostlist has {len(order)} hosts, R has {rset.nnodes} ranks")
    slots: dict[str, deque[int]] = {}
    for i, host in enumerate(order):
        slots.setdefault(host, deque()).append(i)
    new_of: dict[int, int] = {}
    for rank in rset.ranks:
        host = rset.hostname(rank)
        if host is None:
            raise ValueError(f"rerank: rank {rank} has no hostname")
        free = slots.get(host)
        if not free:
            raise ValueError(f"rerank: host {host} (rank {rank}) is not in {hosts}")
        new_of[rank] = free.popleft()
    out = ResourceSet()
    for rank in sorted(new_of, key=new_of.__getitem__):
        out.add_rank(new_of[rank], rset.hostname(rank), cores=None)
        for name, ids in rset.children(rank).items():
            out.add_child(new_of[rank], name, ids)
    for prop, ranks in rset.property_ranks().items():
        out.set_property(prop, IDset([new_of[r] for r in ranks]))
    out.starttime, out.expiration = rset.starttime, rset.expiration
    return _with_scheduling(out, _scheduling(rset))


# -- decode -------------------------------------------------------------------------------

def _target_ranks(rset: ResourceSet, text: str, what: str) -> IDset:
    """The ranks TEXT names: an idset, or a hostlist (each host: all its ranks).
    Ranks or hosts not in RSET name nothing."""
    from jobmgr.resource.config import is_idset_text

    try:
        if is_idset_text(text.strip()):
            return IDset(text.strip())
        hosts = set(Hostlist(text))
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    return IDset([r for r in rset.ranks if rset.hostname(r) in hosts])


def select(rset: ResourceSet, include: str | None = None, exclude: str | None = None,
           properties: str | None = None) -> ResourceSet:
    """RSET limited to the ranks of INCLUDE, less those of EXCLUDE, then to the ranks
    that match PROPERTIES (comma-separated names, ``^name`` for ranks without)."""
    sched = _scheduling(rset)
    if include is not None:
        rset = rset.copy_ranks(_target_ranks(rset, include, "--include"))
    if exclude is not None:
        rset = rset.copy().remove_ranks(_target_ranks(rset, exclude, "--exclude"))
    if properties is not None:
        names = [p for p in properties.split(",") if p]
        try:
            rset = rset.copy_constraint({"properties": names})
        except ValueError as exc:
            raise ValueError(f"--properties: {exc}") from None
    return _with_scheduling(rset, sched)


def count(rset: ResourceSet, kind: str) -> int:
    """How many resources of type KIND (``node``, ``core``, ``gpu``; 0 for a type R lacks)."""
    return rset.count(kind)


# -- verify -------------------------------------------------------------------------------

def _show(children: Mapping[str, IDset]) -> str:
    return ",".join(name + ids.encode(_SHORT) for name, ids in children.items())


def verify(expected: ResourceSet, actual: ResourceSet) -> tuple[list[str], list[str]]:
    """Check each rank of ACTUAL against EXPECTED: (problems, extras).

    A problem is a rank EXPECTED lacks, a hostname that differs, or
    resources EXPECTED gives the rank that ACTUAL lacks; extras are
    resources ACTUAL has beyond EXPECTED (not an error).  Ranks of EXPECTED
    that ACTUAL does not mention are not checked.
    """
    problems: list[str] = []
    extras: list[str] = []
    unknown = actual.ranks.difference(expected.ranks)
    if len(unknown):
        problems.append(f"rank{'s' if len(unknown) > 1 else ''} {unknown.encode()} not in "
                        f"expected ranks {expected.ranks.encode() or '(none)'}")
    for rank in actual.ranks.difference(unknown):
        want_host, got_host = expected.hostname(rank), actual.hostname(rank)
        who = f"rank {rank}" + (f" ({want_host or got_host})" if want_host or got_host else "")
        if want_host is not None and got_host is not None and want_host != got_host:
            problems.append(f"rank {rank}: hostname {got_host}, expected {want_host}")
        want, got = expected.children(rank), actual.children(rank)
        missing = {n: ids.difference(got.get(n, IDset())) for n, ids in want.items()}
        missing = {n: ids for n, ids in missing.items() if len(ids)}
        extra = {n: ids.difference(want.get(n, IDset())) for n, ids in got.items()}
        extra = {n: ids for n, ids in extra.items() if len(ids)}
        if missing:
            problems.append(f"{who}: missing {_show(missing)}")
        if extra:
            extras.append(f"{who}: extra {_show(extra)}")
    return problems, extras


# -- parse-config -------------------------------------------------------------------------

def from_config(path: str) -> ResourceSet:
    """R from the ``[resource]`` table of the configuration at PATH (a directory of
    ``*.toml``, or one ``.toml``/``.json`` file): ``[[resource.config]]`` entries or
    the R file at ``resource.path``; ``resource.scheduling`` names a JSON file whose
    contents become R's ``scheduling`` key."""
    from broker.config import load_path
    from jobmgr.resource.config import configured_R, parse_config

    table = load_path(path).get("resource")
    if table is None:
        raise ValueError(f"{path}: no [resource] table")
    if not isinstance(table, Mapping):
        raise ValueError(f"{path}: resource: expected a table")  # noqa: TRY004 - as above
    table = dict(table)
    sched_path = table.pop("scheduling", None)
    cfg = parse_config(table)
    if cfg.config is None and cfg.path is None:
        raise ValueError(f"{path}: resource.config is missing (and resource.path is not set)")
    for k, entry in enumerate(cfg.config or ()):
        hosts = entry.get("hosts")
        if isinstance(hosts, str) and not hosts.strip():
            raise ValueError(f"resource.config[{k}].hosts: empty hostlist")
    rset = configured_R(cfg)
    if cfg.config is not None:
        bare = [rset.hostname(r) or str(r) for r in rset.ranks if not rset.children(r)]
        if bare:
            raise ValueError(f"resource.config: no cores or gpus for "
                             f"{Hostlist(bare).encode()}")
    if sched_path is not None:
        if not isinstance(sched_path, str) or not sched_path:
            raise ValueError("resource.scheduling: expected a file name (string)")
        try:
            with open(sched_path, encoding="utf-8") as fh:
                rset.impl.scheduling = json.load(fh)
        except OSError as exc:
            raise ValueError(f"resource.scheduling: {sched_path}: "
                             f"{exc.strerror or exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"resource.scheduling: {sched_path}: invalid JSON: {exc}") from None
    return rset
