"""flux hwloc: the instance's hardware topology (flux-hwloc(1)).

``info`` sums Machines, Cores and PUs over the brokers (``-r NODESET``:
those ranks; ``-l``: this host, no instance needed); ``topology`` prints
each rank's topology as an hwloc 2 style XML document (hwloc 2 has one
Machine per topology, so several ranks give several documents).  Each
rank's resource module answers ``resource.topology`` from Linux sysfs over
the CPUs it found (flux/resource/topology.py).
"""
from __future__ import annotations

import sys
from typing import Any

import click

from cli.common import die, handle_errors

_CTX = {"help_option_names": ["-h", "--help"]}


def _ranks(h: Any, nodeset: str | None) -> list[int]:
    from flux.idset import IDset

    size = int(h.attr_get("size"))
    if nodeset is None or nodeset == "all":
        return list(range(size))
    try:
        ranks = list(IDset(nodeset))
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(f"invalid NODESET {nodeset!r}: {exc}",
                                 param_hint="'--rank'") from None
    bad = [r for r in ranks if r >= size]
    if bad:
        die("hwloc", f"rank {bad[0]} is not in this instance (size {size})")
    return ranks


def _topologies(local: bool, nodeset: str | None) -> list[Any]:
    from flux.resource.topology import Topology, local_topology

    if local:
        if nodeset is not None:
            raise click.UsageError("--local and --rank cannot be used together")
        return [local_topology()]
    from cli.job_common import open_handle

    h = open_handle("hwloc")
    ranks = _ranks(h, nodeset)
    futures = [h.rpc("resource.topology", {}, nodeid=r) for r in ranks]
    return [Topology.from_dict(f.get()) for f in futures]


def _options(fn: Any) -> Any:
    fn = click.option("-r", "--rank", "nodeset", metavar="NODESET",
                      help="Only these broker ranks (an idset, or all)")(fn)
    return click.option("-l", "--local", is_flag=True,
                        help="This host's topology, not the instance's")(fn)


@click.group("hwloc", context_settings=_CTX)
def command() -> None:
    """Show the instance's hardware topology."""


@command.command("info", context_settings=_CTX)
@_options
@handle_errors("hwloc")
def info(local: bool, nodeset: str | None) -> None:
    """Sum Machines, Cores and PUs over the brokers."""
    from flux.resource.topology import info_line

    print(info_line(_topologies(local, nodeset)))


@command.command("topology", context_settings=_CTX)
@_options
@handle_errors("hwloc")
def topology(local: bool, nodeset: str | None) -> None:
    """Print each broker's topology as hwloc XML."""
    from flux.resource.topology import to_xml

    for top in _topologies(local, nodeset):
        sys.stdout.write(to_xml(top))
