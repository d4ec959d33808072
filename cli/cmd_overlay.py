"""flux overlay: status of the tree-based overlay network (flux-overlay(1))."""
from __future__ import annotations

import errno
import os
from typing import Any

import click

from cli.common import die, handle_errors
from cli.optional_values import OptionalValueCommand

#: broker.overlay_status.STATUSES (not imported here: it loads the broker's topology)
STATUSES = ("full", "partial", "degraded", "lost", "offline")


@click.group("overlay", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Show and manage the overlay network."""


def _targets(h: Any, target: str, hostmap: Any = None) -> list[int]:
    """The ranks of an idset or hostlist TARGET (``--highlight``, ``lookup``), in its
    order, by the broker's hostlist attribute (HOSTMAP, if the caller has it); exits
    1 on a rank or host not in it."""
    from flux.hostlist import Hostlist
    from flux.idset import IDset

    if hostmap is None:
        hostmap = Hostlist(h.attr_get("hostlist"))
    try:
        ranks = IDset(target)
    except ValueError:
        ranks = None
    if ranks is not None:
        for rank in ranks:
            if rank >= len(hostmap):
                die("overlay", f"rank {rank} is not in host map")
        return list(ranks)
    try:
        names = Hostlist(target)
    except ValueError:
        die("overlay", "target must be a valid idset or hostlist")
    found: list[int] = []
    for host in names:
        try:
            found.append(hostmap.find(host))
        except OSError:
            die("overlay", f"host {host} not found in host map")
    return found


def _fetch(h: Any, rank: int, secs: float, wait: str | None) -> dict:
    """The subtree status at RANK; with WAIT, asked again until its status is
    WAIT, within SECS (0: no limit) or exit 1 ``Connection timed out``."""
    import time

    # without WAIT the service bounds its own probes by SECS and always answers
    deadline = time.monotonic() + secs if secs and wait else None
    # while waiting, each ask is bounded even with --timeout=0, so that a hung
    # broker below shows as lost instead of stalling the wait
    probe = secs or (0.5 if wait else 0)
    while True:
        left = deadline - time.monotonic() if deadline is not None else None
        if left is not None and left <= 0:
            die("overlay", os.strerror(errno.ETIMEDOUT))
        try:
            future = h.rpc("overlay.status", {"timeout": probe}, nodeid=rank)
            tree = future.wait_for(-1.0 if left is None else left).get()
        except TimeoutError:
            die("overlay", os.strerror(errno.ETIMEDOUT))
        if wait is None or tree["status"] == wait:
            return tree
        time.sleep(0.1)


@command.command("status", cls=OptionalValueCommand)
@click.option("-r", "--rank", type=click.IntRange(min=0), default=0, metavar="N",
              help="Show the subtree rooted at rank N (default 0)")
@click.option("-v", "--verbose", count=True, help="Show time in the current state")
@click.option("-t", "--timeout", default="0.5s", metavar="FSD",
              help="RPC timeout for each subtree, 0 = none (default 0.5s)")
@click.option("--summary", is_flag=True, help="Show only the root subtree status")
@click.option("--down", is_flag=True, help="Show only partial/degraded/lost/offline nodes")
@click.option("--no-pretty", is_flag=True, help="No tree drawing")
@click.option("--no-ghost", is_flag=True,
              help="Do not fill in presumed state of nodes behind offline/lost parents")
@click.option("-L", "--color", metavar="WHEN", is_flag=False, flag_value="always",
              type=click.Choice(["auto", "never", "always"]), default="auto",
              help="Colorize output; WHEN can be 'always' (default if omitted), "
                   "'never', or 'auto' (default)")
@click.option("-H", "--highlight", "highlights", multiple=True, metavar="TARGET",
              help="Highlight one or more targets (idset or hostlist) and their ancestors")
@click.option("-w", "--wait", type=click.Choice(STATUSES), default=None, metavar="STATE",
              help="Wait until the subtree enters STATE before reporting "
                   "(full, partial, offline, degraded, lost)")
@handle_errors("overlay")
def status(rank: int, verbose: int, timeout: str, summary: bool, down: bool,
           no_pretty: bool, no_ghost: bool, color: str, highlights: tuple[str, ...],
           wait: str | None) -> None:
    """Show the status of the overlay subtree at RANK."""
    import sys

    import flux
    from broker.overlay_status import label, lit, nodes, render
    from flux.util.fsd import parse_fsd

    try:
        secs = parse_fsd(timeout)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--timeout'") from None
    use_color = color == "always" or (color == "auto" and sys.stdout.isatty())
    h = flux.Flux()
    targets: set[int] = set()
    for target in highlights:
        targets.update(_targets(h, target))
    tree = _fetch(h, rank, secs, wait)
    marked = lit(tree, targets)
    if summary:
        # flux-overlay(1) --summary: only the subtree's status word
        click.echo(label(tree, color=use_color).rsplit(": ", 1)[1], color=use_color)
        return
    if down or no_pretty:
        for node, ghost in nodes(tree, ghosts=not no_ghost):
            if down and node["status"] == "full":
                continue
            click.echo(label(node, verbose, color=use_color, highlight=marked, ghost=ghost),
                       color=use_color)
        return
    for line in render(tree, verbose, color=use_color, highlight=marked, ghosts=not no_ghost):
        click.echo(line, color=use_color)


@command.command("errors")
@click.option("-t", "--timeout", default="0.5s", metavar="FSD",
              help="RPC timeout for each subtree, 0 = none (default 0.5s)")
@handle_errors("overlay")
def errors(timeout: str) -> None:
    """Summarize the errors recorded for lost or offline nodes: one line per
    unique error, prefixed with the hostlist of the nodes that have it."""
    import flux
    from broker.overlay_status import nodes
    from flux.hostlist import Hostlist
    from flux.util.fsd import parse_fsd

    try:
        secs = parse_fsd(timeout)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--timeout'") from None
    tree = _fetch(flux.Flux(), 0, secs, None)
    hosts: dict[str, list[str]] = {}
    for node, _ghost in nodes(tree):
        if node.get("error"):
            hosts.setdefault(node["error"], []).append(node["host"])
    for error, names in hosts.items():
        click.echo(f"{Hostlist(names).encode()}: {error}")


@command.command("parentof")
@click.argument("rank", type=click.IntRange(min=0))
@handle_errors("overlay")
def parentof(rank: int) -> None:
    """Print the overlay parent of RANK."""
    import flux

    click.echo(flux.Flux().rpc("overlay.parentof", {"rank": rank}).get()["parent"])


@command.command("lookup")
@click.argument("target")
@handle_errors("overlay")
def lookup(target: str) -> None:
    """Translate a rank idset TARGET to hostnames, or a hostlist TARGET to ranks."""
    import flux
    from flux.hostlist import Hostlist
    from flux.idset import IDSET_FLAG_RANGE, IDset

    # the map is the broker's rank-ordered hostlist attribute (flux_hostmap_lookup(3))
    h = flux.Flux()
    try:
        ranks = IDset(target)
    except ValueError:
        ranks = None
    if ranks is None:
        click.echo(IDset(sorted(_targets(h, target))).encode(IDSET_FLAG_RANGE))
        return
    hostmap = Hostlist(h.attr_get("hostlist"))
    hosts = Hostlist()
    for rank in _targets(h, target, hostmap):
        hosts.append(hostmap[rank])
    click.echo(hosts.encode())


@command.command("disconnect")
@click.option("-r", "--parent", type=click.IntRange(min=0), default=None, metavar="NODEID",
              help="Parent rank (default: from the topology)")
@click.argument("target")
@handle_errors("overlay")
def disconnect(parent: int | None, target: str) -> None:
    """Disconnect the subtree rooted at TARGET (a rank or hostname) from its parent."""
    import flux
    from flux.hostlist import Hostlist

    h = flux.Flux()
    hostmap = Hostlist(h.attr_get("hostlist"))
    # as flux-overlay(1): a TARGET that is not entirely a rank is a hostname
    if target.isdigit():
        rank = int(target)
    else:
        try:
            rank = hostmap.find(target)
        except (OSError, ValueError):
            die("overlay", "TARGET must be a valid rank or hostname")
    if parent is None:
        if rank >= int(h.attr_get("size")):
            die("overlay", f"{rank} is not a valid rank in this instance")
        if rank == 0:
            die("overlay", f"{rank} has no parent")
        parent = h.rpc("overlay.parentof", {"rank": rank}).get()["parent"]

    def host(r: int) -> str:
        return hostmap[r] if r < len(hostmap) else f"rank{r}"

    click.echo(f"flux-overlay: asking {host(parent)} (rank {parent}) to disconnect child "
               f"{host(rank)} (rank {rank})", err=True)
    h.rpc("overlay.disconnect", {"rank": rank}, nodeid=parent).get()
