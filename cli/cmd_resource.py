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
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import click

from cli.common import handle_errors
from flux.idset import IDset
from flux.resource.list import SchedResourceList
from flux.util.config import UtilConfig
from flux.resource.status import ResourceStatus

LIST_STATES = ("up", "down", "allocated", "free", "all")
STATUS_STATES = ("avail", "exclude", "draining", "drained", "drain", "torpid", "allocated",
                 "housekeeping", "offline", "online", "all")
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
STATUS_HEADINGS = {"state": "STATE", "statex": "STATE", "status": "STATUS", "up": "UP",
                   "up.ascii": "UP", "nnodes": "NNODES", "ranks": "RANKS",
                   "nodelist": "NODELIST", "reason": "REASON", "timestamp": "TIME"}
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
    reason: str = ""
    timestamp: Any = ""

    @property
    def statex(self) -> str:
        """The state without the ``*`` of offline nodes."""
        return self.state.rstrip("*")

    @property
    def status(self) -> str:
        return "offline" if self.state.endswith("*") or self.state == "offline" else "online"


class _Up(str):
    """The ✔/✗ of field ``up``, whose ``.ascii`` is y/n (field ``up.ascii``)."""

    ascii: str

    def __new__(cls, mark: str) -> "_Up":
        up = super().__new__(cls, mark)
        up.ascii = {UP: "y", DOWN: "n"}.get(mark, "")
        return up


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
              qconf: Mapping[str, Sequence[str]] | None = None,
              fields: Sequence[str] | None = None) -> list[ListRow]:
    """Rows of ``flux resource list`` from a SchedResourceList (or the response it is
    built from); QCONF maps queue names to their required properties (default: the
    response's ``queues``).

    As in Flux, resources are combined into one row where the fields of
    the output format (FIELDS; default: state, queue and properties) that
    tell rows apart (``state``, ``queue``, ``properties``, ``propertiesx``)
    are equal; a format of one field other than ``state`` gives one row
    (``-no {nnodes}`` counts every node once).  A node in several queues
    has their names joined by commas as its queue, so it is counted once.
    """
    shown = list(fields) if fields is not None else ["state", "queue", "properties"]
    split = set(shown) if len(shown) > 1 or "state" in shown else set()
    by_state, by_queue = "state" in split, "queue" in split
    by_props = bool(split & {"properties", "propertiesx"})
    if qconf is None:
        qconf = dict(status.get("queues") or {}) if isinstance(status, Mapping) else {}
    rlist = status if isinstance(status, SchedResourceList) else SchedResourceList(status)
    if queues:
        for name in queues:
            if name not in qconf:
                raise ValueError(f"unknown queue '{name}'"
                                 + (f" (queues: {', '.join(qconf)})" if qconf else
                                    " (no queues are configured)"))
    # (state index, queue, properties) -> {state: ranks}
    groups: dict[tuple[int, str, tuple[str, ...]], dict[str, list[int]]] = {}
    empty: list[int] = []
    for index, state in enumerate(states):
        rset = rlist[state]
        props_of: dict[int, set[str]] = {}
        for name, ids in rset.property_ranks().items():
            for rank in ids:
                props_of.setdefault(rank, set()).add(name)
        found = False
        for rank in rset.ranks:
            props = frozenset(props_of.get(rank, ()))
            member = [q for q, req in qconf.items() if _in_queue(props, req)]
            if queues and not set(member) & set(queues):
                continue
            found = True
            key = (index if by_state else 0, ",".join(member) if by_queue else "",
                   tuple(sorted(props)) if by_props else ())
            groups.setdefault(key, {}).setdefault(state, []).append(rank)
        if not found:
            empty.append(index)
    rows: list[ListRow] = []
    for key in sorted(set(groups) | {(i if by_state else 0, "", ()) for i in empty}):
        index, queue, props = key
        if key not in groups:
            if key[0] not in {k[0] for k in groups}:
                rows.append(ListRow(state=states[index]))
            continue
        sub = None
        for state, ranks in groups[key].items():
            part = rlist[state].copy_ranks(IDset(ranks))
            sub = part if sub is None else sub.union(part)
        assert sub is not None
        if not by_props:
            # a combined row shows every property (and queue) of its resources
            props = tuple(sorted(sub.property_ranks()))
        if not by_queue and qconf:
            queue = ",".join(q for q, req in qconf.items() if _in_queue(frozenset(props), req))
        nodelist = sub.nodelist
        rows.append(ListRow(
            state=states[index] if by_state else next(iter(groups[key])), queue=queue,
            properties=",".join(props), propertiesx=",".join(p for p in props
                                                             if p not in qconf),
            nnodes=sub.nnodes, ncores=sub.ncores, ngpus=sub.ngpus,
            nodelist=nodelist.encode() if nodelist is not None else "",
            rlist=sub.dumps(), ranks=sub.ranks.encode()))
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


def _format(text: str | None, subcommand: str, named: Mapping[str, str],
            headings: Mapping[str, str]) -> Any:
    """The OutputFormat of ``-o TEXT``: a format string or a named format (the
    built-in NAMED, or the user's ``flux-resource.toml`` ``[SUBCOMMAND.formats]``);
    ``-o help`` lists them and ``FLUX_RESOURCE_SUBCOMMAND_FORMAT_DEFAULT``
    replaces ``default`` (flux-resource(1), OUTPUT FORMAT)."""
    from flux.util.outputformat import OutputFormat

    formats = {name: {"description": f"{name.capitalize()} flux-resource {subcommand} format "
                                     "string", "format": fmt} for name, fmt in named.items()}
    config = UtilConfig("flux-resource", subcommand=subcommand,
                        initial_dict={subcommand: {"formats": formats}})
    config.builtin_formats = {subcommand: formats}
    try:
        fmt = config.load().get_format_string(text or "default")
        return OutputFormat(fmt, headings=headings)
    except ValueError as exc:
        text = str(exc)
        raise click.UsageError(text if text.startswith("--format") else f"--format: {text}") \
            from None


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


def status_rows(rs: ResourceStatus, states: Sequence[str] | None = None,
                show_empty: bool = False, split_drain: bool = False) -> list[StatusRow]:
    """Rows of ``flux resource status``.

    Without STATES: every node state, split into up and down rows (a down
    row's state gets ``*``).  ``online``, ``offline`` and ``all`` rows are
    not split; ``allocated`` and ``housekeeping`` rows are extra (their ranks
    are also in a node state).  ``drain`` stands for ``draining,drained``.
    An empty state is left out unless SHOW_EMPTY (flux-resource(1): empty
    lines are skipped "unless the -s, --states option is used"), which gives
    it one row of 0 nodes.  Drained ranks have their drain ``reason`` and
    ``timestamp``; SPLIT_DRAIN (the format shows them) splits their rows by
    them.
    """
    wanted = set(states or NODE_STATES)
    if "drain" in wanted:
        wanted |= {"draining", "drained"}
    groups: dict[tuple[str, bool, Any], list[int]] = {}
    for rank in rs.all:
        state = _node_state(rs, rank)
        info = None
        if split_drain and state in ("draining", "drained"):
            drain = rs.get_drain_info(rank)
            info = (drain.timestamp, drain.reason) if drain is not None else None
        groups.setdefault((state, rank in rs.online, info), []).append(rank)
    order = {name: i for i, name in enumerate(NODE_STATES)}
    rows = []
    for (state, up, info), ranks in sorted(groups.items(), key=lambda kv: (
            order[kv[0][0]], not kv[0][1], kv[0][2] or (0.0, ""))):
        if state not in wanted:
            continue
        if info is None and state in ("draining", "drained"):
            drain = rs.get_drain_info(ranks[0])
            info = (drain.timestamp, drain.reason) if drain is not None else ("", "")
        timestamp, reason = info if info is not None else ("", "")
        rows.append(StatusRow(state + ("" if up else "*"), _Up(UP if up else DOWN), len(ranks),
                              IDset(ranks).encode(), _nodelist(rs, ranks), reason, timestamp))
    if show_empty:
        shown = {row.state.rstrip("*") for row in rows}
        for state in NODE_STATES:
            if state in wanted and state not in shown:
                rows.append(StatusRow(state, _Up(UP), 0, "", ""))
        rows.sort(key=lambda row: order[row.state.rstrip("*")])
    for name in ("allocated", "housekeeping"):
        if name not in wanted:
            continue
        ranks = list(rs.all.intersect(rs[name]))
        for up in (True, False):
            mine = [r for r in ranks if (r in rs.online) == up]
            if mine:
                rows.append(StatusRow(name + ("" if up else "*"), _Up(UP if up else DOWN),
                                      len(mine), IDset(mine).encode(), _nodelist(rs, mine)))
            elif up and show_empty and not ranks:
                rows.append(StatusRow(name, _Up(UP), 0, "", ""))
    for name in ("offline", "online", "all"):
        ranks = list(rs.all.intersect(rs[name]) if name != "all" else rs.all)
        if name in wanted and ranks:
            up = {"online": UP, "offline": DOWN}.get(name, "")
            rows.append(StatusRow(name, _Up(up), len(ranks), IDset(ranks).encode(),
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


def _resource_view(h: Any) -> Any:
    """The scheduler's view: ``sched.resource-status`` (or ``$FLUX_RESOURCE_LIST_RPC``),
    which also names the queues; with no scheduler loaded (ENOSYS) the resource
    module's ``resource.sched-status``, as ``flux.resource.resource_list`` uses
    (nothing allocated), so ``flux resource list`` works without a scheduler."""
    topic = os.environ.get("FLUX_RESOURCE_LIST_RPC") or "sched.resource-status"
    try:
        return h.rpc(topic, {}, nodeid=0).get()
    except OSError as exc:
        if exc.errno != errno.ENOSYS or topic == "resource.sched-status":
            raise
        try:
            return h.rpc("resource.sched-status", {}, nodeid=0).get()
        except OSError as again:
            if again.errno == errno.ENOSYS:
                raise exc from None
            raise


def _queue_config(h: Any, view: Any) -> dict[str, list[str]]:
    """Each queue's required properties: the view's ``queues`` if it has them (the
    scheduler's answer), else the instance config's ``[queues.NAME] requires``."""
    if isinstance(view, Mapping) and "queues" in view:
        return dict(view.get("queues") or {})
    try:
        config = h.rpc("config.get", None, nodeid=0).get()
    except OSError:
        return {}
    table = config.get("queues") if isinstance(config, Mapping) else None
    if not isinstance(table, Mapping):
        return {}
    return {name: list(q.get("requires") or []) if isinstance(q, Mapping) else []
            for name, q in table.items()}


def _busy_ranks(future: Any) -> IDset:
    """Ranks with allocated resources, from a sched.resource-status future."""
    try:
        rlist = SchedResourceList(future.get())
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EAGAIN):
            return IDset()
        raise
    return rlist.allocated.ranks


def _status(h: Any, include: str | None = None, queues: Sequence[str] | None = None
            ) -> ResourceStatus:
    """The resource module's view, kept to the ranks of INCLUDE (an idset or
    hostlist; unknown ones are ignored) and of QUEUES."""
    status_f = h.rpc("resource.status", {}, nodeid=0)
    sched_f = h.rpc("sched.resource-status", {}, nodeid=0)
    rs = resource_state(status_f.get(), _busy_ranks(sched_f))
    if queues:
        try:
            sched = sched_f.get()
        except OSError:
            sched = {}
        rs.filter(_queue_ranks(rs.rset, _queue_config(h, sched), queues))
    if include is not None:
        try:
            rs.filter(include)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"--include: {exc}") from None
    return rs


# -- commands ---------------------------------------------------------------------------

@click.group("resource", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """List and manipulate the instance's resources."""


def _queue_names(queue: str | None) -> list[str] | None:
    return [q.strip() for q in queue.split(",") if q.strip()] if queue else None


def _sched_list(include: str | None, queues: Sequence[str] | None
                ) -> tuple[SchedResourceList, dict[str, Any]]:
    """The scheduler's view (with its queues' requirements), kept to the ranks of
    INCLUDE (an idset or hostlist; unknown ones are ignored) and of QUEUES."""
    h = _flux()
    status = _resource_view(h)
    qconf = _queue_config(h, status)
    rlist = SchedResourceList(status)
    if include is not None:
        try:
            rlist.filter(include)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"--include: {exc}") from None
    if queues:
        rlist.filter(_queue_ranks(rlist.all, qconf, queues))
    return rlist, qconf


def _queue_ranks(rset: Any, qconf: Mapping[str, Sequence[str]], queues: Sequence[str]) -> IDset:
    """Ranks of RSET in any of QUEUES (ValueError naming an unknown queue)."""
    for name in queues:
        if name not in qconf:
            raise ValueError(f"unknown queue '{name}'"
                             + (f" (queues: {', '.join(qconf)})" if qconf else
                                " (no queues are configured)"))
    props_of: dict[int, set[str]] = {}
    for name, ids in rset.property_ranks().items():
        for rank in ids:
            props_of.setdefault(rank, set()).add(name)
    return IDset([r for r in rset.ranks
                  if any(_in_queue(frozenset(props_of.get(r, ())), qconf[q]) for q in queues)])


def _union(rlist: SchedResourceList, states: Sequence[str]) -> Any:
    """One ResourceSet of the resources in any of STATES."""
    from flux.resource import ResourceSet

    out = ResourceSet()
    for state in states:
        out = out.union(rlist[state])
    return out


@command.command("list")
@click.option("-o", "--format", "fmt", metavar="FORMAT",
              help="Output format: a format string, or 'default' or 'rlist'")
@click.option("-s", "--states", default="free,allocated,down", show_default=True,
              metavar="STATES", help="States to list (up, down, allocated, free, all)")
@click.option("-q", "--queue", metavar="QUEUE,...", help="Only resources of these queues")
@click.option("-i", "--include", metavar="TARGETS",
              help="Only these ranks or hosts (an idset or a hostlist)")
@click.option("--skip-empty", is_flag=True, help="Skip empty lines (the default with -i)")
@click.option("--no-skip-empty", is_flag=True, help="Do not skip empty lines, even with -i")
@click.option("-n", "--no-header", is_flag=True, help="Do not print a header")
@handle_errors("resource")
def list_cmd(fmt: str | None, states: str, queue: str | None, include: str | None,
             skip_empty: bool, no_skip_empty: bool, no_header: bool) -> None:
    """Show the scheduler's view of free, allocated and down resources."""
    state_list = _split_states(states, LIST_STATES, "states")
    oformat = _format(fmt, "list", LIST_FORMATS, LIST_HEADINGS)
    queues = _queue_names(queue)
    rlist, qconf = _sched_list(include, queues)
    rows = list_rows(rlist, state_list, queues, qconf, oformat.fields)
    if skip_empty or (include is not None and not no_skip_empty):
        rows = [r for r in rows if r.nnodes]
    # a zero count is an empty column for '?:' (so NGPUS goes away with no gpus)
    filt = [replace(r, nnodes=r.nnodes or "", ncores=r.ncores or "", ngpus=r.ngpus or "")
            for r in rows]
    _print(oformat, rows, no_header, filt)


def _view_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """-s/-q/-i of ``info`` and ``R``: which part of the scheduler's view."""
    for option in reversed((
            click.option("-s", "--states", default="all", show_default=True,
                         metavar="STATES", help="States to include (up, down, allocated, "
                                                "free, all)"),
            click.option("-q", "--queue", metavar="QUEUE,...",
                         help="Only resources of these queues"),
            click.option("-i", "--include", metavar="TARGETS",
                         help="Only these ranks or hosts (an idset or a hostlist)"))):
        fn = option(fn)
    return fn


def _view(states: str, queue: str | None, include: str | None) -> Any:
    """The union of the scheduler's view of resources in STATES, QUEUE and INCLUDE."""
    state_list = _split_states(states, LIST_STATES, "states")
    rlist, _ = _sched_list(include, _queue_names(queue))
    return _union(rlist, state_list)


@command.command("info")
@_view_options
@handle_errors("resource")
def info_cmd(states: str, queue: str | None, include: str | None) -> None:
    """Show a one-line summary of the scheduler's view of resources."""
    rset = _view(states, queue, include)
    click.echo(f"{rset.nnodes} Nodes, {rset.ncores} Cores, {rset.ngpus} GPUs")


@command.command("R")
@_view_options
@handle_errors("resource")
def R_cmd(states: str, queue: str | None, include: str | None) -> None:
    """Emit the RFC 20 R of the scheduler's view of resources."""
    click.echo(_view(states, queue, include).encode())


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
@click.option("-q", "--queue", metavar="QUEUE,...", help="Only nodes of these queues")
@click.option("-i", "--include", metavar="TARGETS",
              help="Only these ranks or hosts (an idset or a hostlist)")
@click.option("--skip-empty", is_flag=True, help="Skip empty lines even with --states")
@click.option("-n", "--no-header", is_flag=True, help="Do not print a header")
@handle_errors("resource")
def status_cmd(states: str | None, fmt: str | None, queue: str | None, include: str | None,
               skip_empty: bool, no_header: bool) -> None:
    """Show the state of each node: avail, exclude, draining, drained, offline..."""
    wanted = _status_states(states)
    oformat = _format(fmt, "status", {"default": STATUS_FORMAT}, STATUS_HEADINGS)
    rs = _status(_flux(), include, _queue_names(queue))
    rows = status_rows(rs, wanted, show_empty=states is not None and not skip_empty,
                       split_drain=bool({"reason", "timestamp"} & set(oformat.fields)))
    _print(oformat, rows, no_header)


def _drain_list(fmt: str | None, no_header: bool, include: str | None = None,
                queue: str | None = None) -> None:
    oformat = _format(fmt, "drain", {"default": DRAIN_FORMAT}, DRAIN_HEADINGS)
    _print(oformat, drain_rows(_status(_flux(), include, _queue_names(queue))), no_header)


@command.command("drain")
@click.option("-f", "--force", count=True,
              help="Replace the reason of targets already drained (twice: and the time)")
@click.option("-u", "--update", is_flag=True,
              help="Drain only targets not already drained (keep their reason)")
@click.option("-o", "--format", "fmt", metavar="FORMAT", help="Listing format")
@click.option("-n", "--no-header", is_flag=True, help="Do not print a header when listing")
@click.option("-q", "--queue", metavar="QUEUE,...", help="List only nodes of these queues")
@click.option("-i", "--include", metavar="TARGETS",
              help="List only these ranks or hosts (an idset or a hostlist)")
@click.argument("targets", required=False)
@click.argument("reason", nargs=-1)
@handle_errors("resource")
def drain_cmd(force: int, update: bool, fmt: str | None, no_header: bool, queue: str | None,
              include: str | None, targets: str | None, reason: tuple[str, ...]) -> None:
    """Drain TARGETS (ranks or hosts) with an optional REASON; list drained nodes
    when no TARGETS are given."""
    if targets is None:
        _drain_list(fmt, no_header, include, queue)
        return
    if force and update:
        raise click.UsageError("--force and --update are mutually exclusive")
    payload: dict[str, Any] = {"targets": targets, "reason": " ".join(reason)}
    if force:
        payload["mode"] = "overwrite" if force == 1 else "force-overwrite"
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


@command.command("eventlog")
@click.option("-f", "--format", "entry_format", default="text", show_default=True,
              metavar="text|json", help="Output format")
@click.option("-T", "--time-format", default="raw", show_default=True,
              metavar="raw|iso|offset|human", help="Timestamp format")
@click.option("-H", "--human", is_flag=True, help="Human-readable output (-T human -f text)")
@click.option("-L", "--color", is_flag=False, flag_value="always", default="auto",
              show_default=True, metavar="[WHEN]",
              help="Colorize output: always (default if WHEN is omitted), never, auto")
@click.option("-F", "--follow", is_flag=True, help="Print new events as they are posted")
@click.option("-w", "--wait", "wait_for", metavar="EVENT",
              help="Wait for EVENT to be posted, print it, then quit")
@handle_errors("resource")
def eventlog_cmd(entry_format: str, time_format: str, human: bool, color: str, follow: bool,
                 wait_for: str | None) -> None:
    """Show the resource journal (the resource eventlog, RFC 44)."""
    from flux.eventlog import EventLogFormatter
    from flux.resource import ResourceJournalConsumer

    if human:
        entry_format, time_format = "text", "human"
    for value, valid, what in ((entry_format, ("text", "json"), "format type"),
                               (time_format, ("raw", "iso", "offset", "human"),
                                "time-format type"),
                               (color, ("always", "never", "auto"), "--color value")):
        if value not in valid:
            raise click.UsageError(f"invalid {what} '{value}'")
    evf = EventLogFormatter(format=entry_format, timestamp_format=time_format, color=color)
    # the end of the history ends the command unless it is to follow or wait
    consumer = ResourceJournalConsumer(_flux(),
                                       include_sentinel=not (follow or wait_for)).start()
    try:
        while True:
            event = consumer.poll()
            if event is None or event.is_empty():
                break
            click.echo(evf.format(dict(event)))
            if wait_for is not None and event.name == wait_for:
                break
    finally:
        consumer.stop()


__all__ = ["command", "list_rows", "status_rows", "drain_rows", "resource_state", "ListRow",
           "StatusRow", "DrainRow"]
