"""flux content: load and store raw blobs in the content store (flux-content(1)).

``load BLOBREF`` writes the blob to stdout; ``store`` reads a blob from
stdin and prints its blobref; ``flush`` returns once everything stored is
on stable storage; ``dropcache`` asks the content module to drop cached
data; ``gc`` runs an online garbage collection and says what it freed.
``-b/--bypass-cache`` is accepted for compatibility: the store has
no separate cache to bypass.
"""
from __future__ import annotations

import errno
import os
import sys

import click

from cli.common import die, handle_errors

_CTX = {"help_option_names": ["-h", "--help"]}


@click.group("content", context_settings=_CTX)
def command() -> None:
    """Access the content store."""


@command.command("load")
@click.option("-b", "--bypass-cache", is_flag=True, help="Read from the store directly")
@click.argument("blobref")
@handle_errors("content")
def load(bypass_cache: bool, blobref: str) -> None:
    """Write the blob BLOBREF to standard output."""
    import flux

    try:
        data = flux.Flux().rpc("content.load", blobref).get_raw() or b""
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            die("content", f"{blobref}: {os.strerror(errno.ENOENT)}")
        raise
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


@command.command("store")
@click.option("-b", "--bypass-cache", is_flag=True, help="Write to the store directly")
@handle_errors("content")
def store(bypass_cache: bool) -> None:
    """Store standard input as one blob and print its blobref."""
    import flux

    data = sys.stdin.buffer.read()
    click.echo(flux.Flux().rpc("content.store", data).get()["blobref"])


@command.command("flush")
@handle_errors("content")
def flush() -> None:
    """Wait until everything stored is on stable storage."""
    import flux

    flux.Flux().rpc("content.flush", {}).get()


@command.command("dropcache")
@handle_errors("content")
def dropcache() -> None:
    """Drop cached content."""
    import flux

    flux.Flux().rpc("content.dropcache", {}).get()


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@command.command("gc")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing")
@handle_errors("content")
def gc(quiet: bool) -> None:
    """Reclaim blobs nothing live refers to, while the instance runs."""
    import flux

    rep = flux.Flux().rpc("content.gc", {}).get()
    if not quiet:
        click.echo(f"freed {rep['freed_blobs']} blobs ({_size(rep['freed_bytes'])}), "
                   f"kept {rep['kept_blobs']} blobs ({_size(rep['kept_bytes'])}) "
                   f"in {rep['duration']:.3f}s; longest pause "
                   f"{rep['longest_pause'] * 1000:.1f} ms")
