"""flux resource: list, status, drain and undrain the instance's resources.

``list`` shows the scheduler's view (``sched.resource-status``: free,
allocated and down resources by queue and properties); ``status`` the
resource module's (``resource.status``: avail, exclude, draining, drained,
torpid, offline), where a drained rank still running a job is
``draining``; ``drain``/``undrain`` change it (owner only).  The row
builders are pure functions of the RPC payloads (see
specs/resource-service.md for the formats).
"""
from __future__ import annotations

import errno
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import click

from cli.common import handle_errors

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


def list_rows(status: Mapping[str, Any], states: Sequence[str],
              queues: Sequence[str] | None = None) -> list[ListRow]:
    """Rows of ``flux resource list`` from a ``sched.resource-status`` payload."""
    from flux.idset import IDset
    from flux.resource import ResourceSet

    qconf: dict[str, list[str]] = dict(status.get("queues") or {})
    if queues:
        for name in queues:
            if name not in qconf:
                raise ValueError(f"unknown queue '{name}'"
                                 + (f" (queues: {', '.join(qconf)})" if qconf else
                                    " (no queues are configured)"))
    rows: list[ListRow] = []
    for state in states:
        rset = ResourceSet(status[state]) if status.get(state) else ResourceSet()
        props_of: dict[int, set[str]] = {}
        for name, ids in rset.properties.items():
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

def _hostnames(R: Any) -> dict[int, str]:
    if not R:
        return {}
    from flux.resource import ResourceSet

    rset = ResourceSet(R)
    return {r: h for r in rset.ranks if (h := rset.hostname(r))}


def resource_state(status: Mapping[str, Any]) -> Any:
    """A ResourceState from a ``resource.status`` payload."""
    from flux.idset import IDset
    from jobmgr.resource.state import DrainInfo, ResourceState

    st = ResourceState(IDset(status.get("all") or "").expand(), _hostnames(status.get("R")))
    st.online = set(IDset(status.get("online") or "").expand())
    st.excluded = set(IDset(status.get("exclude") or "").expand())
    st.torpid = set(IDset(status.get("torpid") or "").expand())
    for ids, info in (status.get("drain") or {}).items():
        entry = DrainInfo(float(info.get("timestamp", 0.0)), str(info.get("reason", "")))
        for rank in IDset(ids).expand():
            st.drained[rank] = entry
    return st


def _nodelist(st: Any, ranks: Iterable[int]) -> str:
    from flux.hostlist import Hostlist

    hosts = [st.hostnames[r] for r in ranks if r in st.hostnames]
    return Hostlist(hosts).encode()


def status_rows(st: Any, busy: Iterable[int], states: Sequence[str] | None = None
                ) -> list[StatusRow]:
    """Rows of ``flux resource status`` (empty states left out).

    Without STATES: every node state, split into up and down rows (a down
    row's state gets ``*``).  ``online``, ``offline`` and ``all`` rows are
    not split.
    """
    from flux.idset import IDset

    wanted = set(states or NODE_STATES)
    rows = []
    for group in st.status_groups(busy):
        if group.state not in wanted:
            continue
        rows.append(StatusRow(group.state + ("" if group.up else "*"), UP if group.up else DOWN,
                              len(group.ranks), IDset(group.ranks).encode(),
                              _nodelist(st, group.ranks)))
    sets = st.states(busy)
    for name in ("offline", "online", "all"):
        if name in wanted and sets[name]:
            up = {"online": UP, "offline": DOWN}.get(name, "")
            rows.append(StatusRow(name, up, len(sets[name]), IDset(sets[name]).encode(),
                                  _nodelist(st, sets[name])))
    return rows


def drain_rows(st: Any, busy: Iterable[int]) -> list[DrainRow]:
    from flux.idset import IDset

    return [DrainRow(e.timestamp, e.state, IDset(e.ranks).encode(), e.reason,
                     _nodelist(st, e.ranks)) for e in st.drain_entries(busy)]


def _busy_ranks(future: Any) -> set[int]:
    """Ranks with allocated resources, from a sched.resource-status future."""
    from flux.resource import ResourceSet

    try:
        allocated = future.get().get("allocated")
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EAGAIN):
            return set()
        raise
    return set(ResourceSet(allocated).ranks) if allocated else set()


def _state_and_busy(h: Any) -> tuple[Any, set[int]]:
    status_f = h.rpc("resource.status", {}, nodeid=0)
    sched_f = h.rpc("sched.resource-status", {}, nodeid=0)
    st = resource_state(status_f.get())
    return st, _busy_ranks(sched_f)


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
    rows = list_rows(status, state_list, queues)
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
    st, busy = _state_and_busy(_flux())
    _print(oformat, status_rows(st, busy, wanted), no_header)


def _drain_list(fmt: str | None, no_header: bool) -> None:
    oformat = _format(fmt, {"default": DRAIN_FORMAT}, "default", DRAIN_HEADINGS)
    st, busy = _state_and_busy(_flux())
    _print(oformat, drain_rows(st, busy), no_header)


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
