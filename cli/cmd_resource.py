"""flux resource: list, status, drain and undrain the instance's resources.

``list`` shows the scheduler's view (``sched.resource-status``: free,
allocated and down resources by queue and properties, as a
``flux.resource.SchedResourceList``); ``status`` the resource module's
(``resource.status``: avail, exclude, draining, drained, torpid, offline,
as a ``flux.resource.ResourceStatus``), where a drained rank still running
a job is ``draining``; ``drain``/``undrain`` change it (owner only).  The
row builders are pure functions of those objects (see
specs/resource-service.md for the formats).
"""
from __future__ import annotations

import errno
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import click

from cli.common import handle_errors
from flux.idset import IDset
from flux.resource.list import SchedResourceList
from flux.resource.status import ResourceStatus

LIST_STATES = ("free", "allocated", "down", "all")
STATUS_STATES = ("avail", "exclude", "draining", "drained", "torpid", "offline", "online",
                 "all")
NODE_STATES = ("avail", "exclude", "draining", "drained", "torpid")

LIST_FORMATS = {
    "default": ("{state:>10} ?:{queue:<10.10} ?:{propertiesx:<10.10+} {nnodes:>6} "
                "{ncores:>8} ?:{ngpus:>8} {nodelist}"),
    "rlist": ("{state:>10} ?:{queue:<8.8} ?:{propertiesx:<10.10+} {nnodes:>6} "
              "{ncores:>8} {ngpus:>8} {rlist}"),
}
LIST_HEADINGS = {"state": "STATE", "queue": "QUEUE", "properties": "PROPERTIES",
                 "propertiesx": "PROPERTIES", "nnodes": "NNODES", "ncores": "NCORES",
                 "ngpus": "NGPUS", "nodelist": "NODELIST", "rlist": "LIST", "ranks": "RANKS"}
STATUS_FORMAT = "{state:>10} {up:>2} {nnodes:>6} {nodelist}"
STATUS_HEADINGS = {"state": "STATE", "up": "UP", "nnodes": "NNODES", "ranks": "RANKS",
                   "nodelist": "NODELIST"}
DRAIN_FORMAT = ("{timestamp!d:%Y-%m-%dT%H:%M:%S::<20} {state:<8.8} {ranks:<8.8+} "
                "{reason:<30.30+} {nodelist}")
DRAIN_HEADINGS = {"timestamp": "TIMESTAMP", "state": "STATE", "ranks": "RANK",
                  "reason": "REASON", "nodelist": "NODELIST"}

UP, DOWN = "\u2714", "\u2717"


@dataclass(frozen=True, slots=True)
class ListRow:
    state: str
    queue: str = ""
    properties: str = ""
    propertiesx: str = ""
    nnodes: Any = 0
    ncores: Any = 0
    ngpus: Any = 0
    nodelist: str = ""
    rlist: str = ""
    ranks: str = ""


@dataclass(frozen=True, slots=True)
class StatusRow:
    state: str
    up: str
    nnodes: int
    ranks: str
    nodelist: str


@dataclass(frozen=True, slots=True)
class DrainRow:
    timestamp: float
    state: str
    ranks: str
    reason: str
    nodelist: str


def _split_states(text: str, valid: Sequence[str], what: str) -> list[str]:
    states = [s.strip() for s in text.split(",") if s.strip()]
    if not states:
        raise ValueError(f"no {what} given")
    for state in states:
        if state not in valid:
            raise ValueError(f"invalid resource state '{state}' (valid: {', '.join(valid)})")
    return states


# -- flux resource list ------------------------------------------------------------

def _in_queue(props: frozenset[str], requires: Iterable[str]) -> bool:
    for prop in requires:
        if prop.startswith("^"):
            if prop[1:] in props:
                return False
        elif prop not in props:
            return False
    return True


def list_rows(status: Mapping[str, Any] | SchedResourceList, states: Sequence[str],
              queues: Sequence[str] | None = None,
              qconf: Mapping[str, Sequence[str]] | None = None) -> list[ListRow]:
    """Rows of ``flux resource list`` from a SchedResourceList (or the response it is
    built from); QCONF maps queue names to their required properties (default: the
    response's ``queues``)."""
    if qconf is None:
        qconf = dict(status.get("queues") or {}) if isinstance(status, Mapping) else {}
    rlist = status if isinstance(status, SchedResourceList) else SchedResourceList(status)
    if queues:
        for name in queues:
            if name not in qconf:
                raise ValueError(f"unknown queue '{name}'"
                                 + (f" (queues: {', '.join(qconf)})" if qconf else
                                    " (no queues are configured)"))
    rows: list[ListRow] = []
    for state in states:
        rset = rlist[state]
        props_of: dict[int, set[str]] = {}
        for name, ids in rset.property_ranks().items():
            for rank in ids:
                props_of.setdefault(rank, set()).add(name)
        groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for rank in rset.ranks:
            props = frozenset(props_of.get(rank, ()))
            member = [q for q, req in qconf.items() if _in_queue(props, req)] if qconf else [""]
            if qconf and not member:
                member = [""]
            for queue in member:
                if queues and queue not in queues:
                    continue
                groups.setdefault((queue, tuple(sorted(props))), []).append(rank)
        state_rows = []
        for (queue, props), ranks in sorted(groups.items()):
            sub = rset.copy_ranks(IDset(ranks))
            nodelist = sub.nodelist
            shown = [p for p in props if p not in qconf]
            state_rows.append(ListRow(
                state=state, queue=queue, properties=",".join(props),
                propertiesx=",".join(shown), nnodes=sub.nnodes, ncores=sub.ncores,
                ngpus=sub.ngpus, nodelist=nodelist.encode() if nodelist is not None else "",
                rlist=sub.dumps(), ranks=sub.ranks.encode()))
        rows.extend(state_rows or [ListRow(state=state)])
    return rows


def _print(fmt: Any, rows: list[Any], no_header: bool, filter_rows: list[Any] | None = None
           ) -> None:
    """Print ROWS; FILTER_ROWS decide which ``?:`` columns are empty."""
    from flux.util.outputformat import OutputFormat

    newfmt = OutputFormat(fmt.filter(rows if filter_rows is None else filter_rows,
                                     no_header=no_header), headings=fmt.headings)
    fmt.sort_items(rows)
    if not no_header:
        click.echo(newfmt.header().rstrip())
    for row in rows:
        click.echo(newfmt.format(row).rstrip())


def _format(text: str | None, named: Mapping[str, str], default: str,
            headings: Mapping[str, str]) -> Any:
    from flux.util.outputformat import OutputFormat

    fmt = named.get(text or default, text or named.get(default, default))
    try:
        return OutputFormat(fmt, headings=headings)
    except ValueError as exc:
        raise click.UsageError(f"--format: {exc}") from None


def _flux() -> Any:
    import flux

    return flux.Flux()


# -- flux resource status / drain listing ---------------------------------------------

def resource_state(status: Mapping[str, Any], allocated: Any = None) -> ResourceStatus:
    """A ResourceStatus from a ``resource.status`` payload and the allocated ranks."""
    return ResourceStatus(status, allocated)


def _nodelist(rs: ResourceStatus, ranks: Iterable[int]) -> str:
    from flux.hostlist import Hostlist

    hosts = [rs.rset.hostname(r) for r in ranks]
    return Hostlist([h for h in hosts if h]).encode()


def _node_state(rs: ResourceStatus, rank: int) -> str:
    for state in NODE_STATES[1:]:
        if rank in rs[state]:
            return state
    return "avail"


def status_rows(rs: ResourceStatus, states: Sequence[str] | None = None) -> list[StatusRow]:
    """Rows of ``flux resource status`` (empty states left out).

    Without STATES: every node state, split into up and down rows (a down
    row's state gets ``*``).  ``online``, ``offline`` and ``all`` rows are
    not split.
    """
    wanted = set(states or NODE_STATES)
    groups: dict[tuple[str, bool], list[int]] = {}
    for rank in rs.all:
        groups.setdefault((_node_state(rs, rank), rank in rs.online), []).append(rank)
    order = {name: i for i, name in enumerate(NODE_STATES)}
    rows = []
    for (state, up), ranks in sorted(groups.items(), key=lambda kv: (order[kv[0][0]],
                                                                      not kv[0][1])):
        if state not in wanted:
            continue
        rows.append(StatusRow(state + ("" if up else "*"), UP if up else DOWN, len(ranks),
                              IDset(ranks).encode(), _nodelist(rs, ranks)))
    for name in ("offline", "online", "all"):
        ranks = list(rs.all.intersect(rs[name]) if name != "all" else rs.all)
        if name in wanted and ranks:
            up = {"online": UP, "offline": DOWN}.get(name, "")
            rows.append(StatusRow(name, up, len(ranks), IDset(ranks).encode(),
                                  _nodelist(rs, ranks)))
    return rows


def drain_rows(rs: ResourceStatus) -> list[DrainRow]:
    """Rows of ``flux resource drain``: drained ranks by (time, state, reason)."""
    groups: dict[tuple[float, str, str], list[int]] = {}
    for info in rs.drain_info:
        for rank in info.ranks:
            state = "draining" if rank in rs.draining else "drained"
            groups.setdefault((info.timestamp, state, info.reason), []).append(rank)
    return [DrainRow(ts, state, IDset(ranks).encode(), reason, _nodelist(rs, sorted(ranks)))
            for (ts, state, reason), ranks in sorted(groups.items())]


def _busy_ranks(future: Any) -> IDset:
    """Ranks with allocated resources, from a sched.resource-status future."""
    try:
        rlist = SchedResourceList(future.get())
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EAGAIN):
            return IDset()
        raise
    return rlist.allocated.ranks


def _status(h: Any) -> ResourceStatus:
    status_f = h.rpc("resource.status", {}, nodeid=0)
    sched_f = h.rpc("sched.resource-status", {}, nodeid=0)
    return resource_state(status_f.get(), _busy_ranks(sched_f))


# -- commands ---------------------------------------------------------------------------

@click.group("resource", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """List and manipulate the instance's resources."""


@command.command("list")
@click.option("-o", "--format", "fmt", metavar="FORMAT",
              help="Output format: a format string, or 'default' or 'rlist'")
@click.option("-s", "--states", default="free,allocated,down", show_default=True,
              metavar="STATES", help="States to list (free, allocated, down, all)")
@click.option("-q", "--queue", metavar="QUEUE", help="Only resources of these queues")
@click.option("-n", "--no-header", is_flag=True, help="Do not print a header")
@handle_errors("resource")
def list_cmd(fmt: str | None, states: str, queue: str | None, no_header: bool) -> None:
    """Show the scheduler's view of free, allocated and down resources."""
    state_list = _split_states(states, LIST_STATES, "states")
    oformat = _format(fmt, LIST_FORMATS, "default", LIST_HEADINGS)
    status = _flux().rpc("sched.resource-status", {}, nodeid=0).get()
    queues = [q.strip() for q in queue.split(",") if q.strip()] if queue else None
    rows = list_rows(SchedResourceList(status), state_list, queues,
                     dict(status.get("queues") or {}))
    # a zero count is an empty column for '?:' (so NGPUS goes away with no gpus)
    filt = [replace(r, nnodes=r.nnodes or "", ncores=r.ncores or "", ngpus=r.ngpus or "")
            for r in rows]
    _print(oformat, rows, no_header, filt)


def _status_states(text: str | None) -> list[str] | None:
    if text is None:
        return None
    if text.strip() == "help":
        click.echo("valid states: " + ", ".join(STATUS_STATES))
        raise SystemExit(0)
    states = _split_states(text, STATUS_STATES, "states")
    if "all" in states and len(states) == 1:
        return ["all"]
    return states


@command.command("status")
@click.option("-s", "--states", metavar="STATES",
              help="States to show ('help' lists them)")
@click.option("-o", "--format", "fmt", metavar="FORMAT", help="Output format")
@click.option("-n", "--no-header", is_flag=True, help="Do not print a header")
@handle_errors("resource")
def status_cmd(states: str | None, fmt: str | None, no_header: bool) -> None:
    """Show the state of each node: avail, exclude, draining, drained, offline..."""
    wanted = _status_states(states)
    oformat = _format(fmt, {"default": STATUS_FORMAT}, "default", STATUS_HEADINGS)
    _print(oformat, status_rows(_status(_flux()), wanted), no_header)


def _drain_list(fmt: str | None, no_header: bool) -> None:
    oformat = _format(fmt, {"default": DRAIN_FORMAT}, "default", DRAIN_HEADINGS)
    _print(oformat, drain_rows(_status(_flux())), no_header)


@command.command("drain")
@click.option("-f", "--force", is_flag=True,
              help="Replace the reason of targets already drained")
@click.option("-u", "--update", is_flag=True,
              help="Drain only targets not already drained (keep their reason)")
@click.option("-o", "--format", "fmt", metavar="FORMAT", help="Listing format")
@click.option("-n", "--no-header", is_flag=True, help="Do not print a header when listing")
@click.argument("targets", required=False)
@click.argument("reason", nargs=-1)
@handle_errors("resource")
def drain_cmd(force: bool, update: bool, fmt: str | None, no_header: bool,
              targets: str | None, reason: tuple[str, ...]) -> None:
    """Drain TARGETS (ranks or hosts) with an optional REASON; list drained nodes
    when no TARGETS are given."""
    if targets is None:
        _drain_list(fmt, no_header)
        return
    if force and update:
        raise click.UsageError("--force and --update are mutually exclusive")
    payload: dict[str, Any] = {"targets": targets, "reason": " ".join(reason)}
    if force:
        payload["mode"] = "overwrite"
    elif update:
        payload["mode"] = "update"
    _flux().rpc("resource.drain", payload, nodeid=0).get()


@command.command("undrain")
@click.option("-f", "--force", is_flag=True, help="Ignore targets that are not drained")
@click.argument("targets")
@click.argument("reason", nargs=-1)
@handle_errors("resource")
def undrain_cmd(force: bool, targets: str, reason: tuple[str, ...]) -> None:
    """Return drained TARGETS (ranks or hosts) to service."""
    payload: dict[str, Any] = {"targets": targets}
    if reason:
        payload["reason"] = " ".join(reason)
    if force:
        payload["force"] = True
    _flux().rpc("resource.undrain", payload, nodeid=0).get()


__all__ = ["command", "list_rows", "status_rows", "drain_rows", "resource_state", "ListRow",
           "StatusRow", "DrainRow"]
