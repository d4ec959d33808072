"""flux overlay: status of the tree-based overlay network (flux-overlay(1))."""
from __future__ import annotations

import click

from cli.common import die, handle_errors


@click.group("overlay", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Show and manage the overlay network."""


def _walk(node: dict, out: list) -> None:
    out.append(node)
    for child in node.get("children", []):
        _walk(child, out)


@command.command("status")
@click.option("-r", "--rank", type=click.IntRange(min=0), default=0, metavar="N",
              help="Show the subtree rooted at rank N (default 0)")
@click.option("-v", "--verbose", count=True, help="Show time in the current state")
@click.option("-t", "--timeout", default="0.5s", metavar="FSD",
              help="RPC timeout for each subtree, 0 = none (default 0.5s)")
@click.option("--summary", is_flag=True, help="Show only the root subtree status")
@click.option("--down", is_flag=True, help="Show only partial/degraded/lost/offline nodes")
@click.option("--no-pretty", is_flag=True, help="No tree drawing")
@handle_errors("overlay")
def status(rank: int, verbose: int, timeout: str, summary: bool, down: bool,
           no_pretty: bool) -> None:
    """Show the status of the overlay subtree at RANK."""
    import flux
    from broker.overlay_status import render
    from flux.util.fsd import parse_fsd

    try:
        secs = parse_fsd(timeout)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--timeout'") from None
    tree = flux.Flux().rpc("overlay.status", {"timeout": secs}, nodeid=rank).get()
    if summary:
        click.echo(render({**tree, "children": []}, verbose)[0])
        return
    if down or no_pretty:
        nodes: list = []
        _walk(tree, nodes)
        for node in nodes:
            if down and node["status"] == "full":
                continue
            click.echo(render({**node, "children": []}, verbose)[0])
        return
    for line in render(tree, verbose):
        click.echo(line)


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
    hostmap = Hostlist(flux.Flux().attr_get("hostlist"))
    try:
        ranks = IDset(target)
    except ValueError:
        ranks = None
    if ranks is not None:
        hosts = Hostlist()
        for rank in ranks:
            if rank >= len(hostmap):
                die("overlay", f"rank {rank} is not in host map")
            hosts.append(hostmap[rank])
        click.echo(hosts.encode())
        return
    try:
        names = Hostlist(target)
    except ValueError:
        die("overlay", "target must be a valid idset or hostlist")
    found = IDset()
    for host in names:
        try:
            found.set(hostmap.find(host))
        except OSError:
            die("overlay", f"host {host} not found in host map")
    click.echo(found.encode(IDSET_FLAG_RANGE))


@command.command("disconnect")
@click.option("-r", "--parent", type=click.IntRange(min=0), default=None, metavar="NODEID",
              help="Parent rank (default: from the topology)")
@click.argument("rank", type=click.IntRange(min=1))
@handle_errors("overlay")
def disconnect(parent: int | None, rank: int) -> None:
    """Disconnect the subtree rooted at RANK from its parent."""
    import flux

    h = flux.Flux()
    if parent is None:
        parent = h.rpc("overlay.parentof", {"rank": rank}).get()["parent"]
    click.echo(f"flux-overlay: asking rank {parent} to disconnect child rank {rank}", err=True)
    h.rpc("overlay.disconnect", {"rank": rank}, nodeid=parent).get()
