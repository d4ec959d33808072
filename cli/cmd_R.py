"""flux R: encode, decode and combine RFC 20 resource sets (flux-R(1)).

Every subcommand but ``encode`` and ``parse-config`` reads one or more
concatenated R objects on stdin; those that produce R print it as one line
of compact JSON.  ``append``/``diff``/``intersect`` combine all the inputs,
``verify`` takes two (expected, then actual), the others exactly one.  Exit
codes: 0 ok, 1 bad input or a failed check (``flux-R: <what>`` on stderr),
2 usage.  The operations are flux/resource/Rcmd.py; see specs/flux-R.md.
"""
# ruff: noqa: N999 - cli/main.py finds "flux R" as cli/cmd_R.py
from __future__ import annotations

import sys

import click

from cli.common import die, handle_errors, warn
from flux.resource import Rcmd
from flux.resource.ResourceSet import ResourceSet

__all__ = ["command"]

_CTX = {"help_option_names": ["-h", "--help"]}


def _read(want: int | None = None, at_least: int = 1) -> list[ResourceSet]:
    """The R objects on stdin: exactly WANT of them, or AT_LEAST."""
    rsets = Rcmd.read_stream(getattr(sys.stdin, "buffer", sys.stdin).read())
    if want is not None and len(rsets) != want:
        raise ValueError(f"expected {want} R object{'s' if want > 1 else ''} on stdin, "
                         f"got {len(rsets)}")
    if len(rsets) < at_least:
        raise ValueError(f"expected at least {at_least} R objects on stdin, got {len(rsets)}")
    return rsets


def _emit(rset: ResourceSet) -> None:
    click.echo(rset.encode())


@click.group("R", context_settings=_CTX)
def command() -> None:
    """Encode, decode and combine RFC 20 resource sets (R)."""


@command.command("encode")
@click.option("-r", "--ranks", metavar="IDSET", help="Ranks (default: 0, or one per host)")
@click.option("-c", "--cores", metavar="IDS", help="Core ids of each rank (default: 0)")
@click.option("-g", "--gpus", metavar="IDS", help="GPU ids of each rank")
@click.option("-H", "--hosts", metavar="HOSTLIST", help="Hostnames of the ranks, in order")
@click.option("-p", "--property", "properties", multiple=True, metavar="NAME[:RANKS]",
              help="Give property NAME to RANKS (default: all ranks); repeatable")
@click.option("-l", "--local", is_flag=True,
              help="The cores and hostname of this machine (its CPU affinity mask)")
@handle_errors("R")
def encode(ranks: str | None, cores: str | None, gpus: str | None, hosts: str | None,
           properties: tuple[str, ...], local: bool) -> None:
    """Print R built from the options."""
    here = None
    if local:
        from jobmgr.resource.config import discover_local

        found = discover_local(0)
        here = (found.hostname, found.cores)
    _emit(Rcmd.encode(ranks, cores, gpus, hosts, properties, here))


@command.command("append")
@handle_errors("R")
def append() -> None:
    """Print the union of the R objects on stdin (which must not overlap)."""
    _emit(Rcmd.append(_read()))


@command.command("diff")
@handle_errors("R")
def diff() -> None:
    """Print the first R on stdin less the others."""
    _emit(Rcmd.diff(_read()))


@command.command("intersect")
@handle_errors("R")
def intersect() -> None:
    """Print the resources every R on stdin has."""
    _emit(Rcmd.intersect(_read()))


@command.command("remap")
@handle_errors("R")
def remap() -> None:
    """Print R with its ranks renumbered 0..n-1."""
    _emit(Rcmd.remap(_read(1)[0]))


@command.command("rerank")
@click.argument("hostlist")
@handle_errors("R")
def rerank(hostlist: str) -> None:
    """Print R with ranks renumbered to follow the host order of HOSTLIST."""
    _emit(Rcmd.rerank(_read(1)[0], hostlist))


@command.command("set-property")
@click.argument("specs", nargs=-1, required=True, metavar="NAME[:RANKS]...")
@handle_errors("R")
def set_property(specs: tuple[str, ...]) -> None:
    """Print R with each property NAME given to RANKS (default: all ranks)."""
    _emit(Rcmd.set_properties(_read(1)[0], specs))


@command.command("decode")
@click.option("-s", "--short", is_flag=True, help="Print the short form (rank0/core[0-3])")
@click.option("-n", "--nodelist", is_flag=True, help="Print the hostlist")
@click.option("-r", "--ranks", is_flag=True, help="Print the idset of ranks")
@click.option("-c", "--count", "kind", metavar="TYPE",
              help="Print how many resources of TYPE (node, core, gpu)")
@click.option("-i", "--include", metavar="TARGETS", help="Keep only these ranks or hosts")
@click.option("-x", "--exclude", metavar="TARGETS", help="Leave out these ranks or hosts")
@click.option("-p", "--properties", metavar="LIST",
              help="Keep only ranks with these properties (a,b; ^a: without a)")
@handle_errors("R")
def decode(short: bool, nodelist: bool, ranks: bool, kind: str | None, include: str | None,
           exclude: str | None, properties: str | None) -> None:
    """Print R (or the parts asked for) after --include, --exclude, --properties."""
    rset = Rcmd.select(_read(1)[0], include, exclude, properties)
    lines = []
    if short:
        lines.append(rset.dumps())
    if nodelist:
        lines.append(rset.nodelist.encode())
    if ranks:
        lines.append(rset.ranks.encode())
    if kind is not None:
        lines.append(str(Rcmd.count(rset, kind)))
    if not lines:
        lines.append(rset.encode())
    for line in lines:
        click.echo(line)


@command.command("verify")
@handle_errors("R")
def verify() -> None:
    """Check the second R on stdin (actual) against the first (expected)."""
    expected, actual = _read(2)
    problems, extras = Rcmd.verify(expected, actual)
    for text in extras:
        warn("R", f"note: {text}")
    if problems:
        for text in problems[:-1]:
            warn("R", text)
        die("R", problems[-1])


@command.command("parse-config")
@click.argument("path", type=click.Path())
@handle_errors("R")
def parse_config(path: str) -> None:
    """Print R from the [resource] table of the config at PATH (a directory or file)."""
    _emit(Rcmd.from_config(path))
