"""flux dmesg: print (and optionally clear or follow) the broker log ring (flux-dmesg(1))."""
from __future__ import annotations

import errno
import sys

import click

from cli.common import handle_errors


@click.command("dmesg", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "--clear", "clear_only", is_flag=True, help="Clear the ring buffer")
@click.option("-c", "--read-clear", is_flag=True, help="Clear the ring after printing it")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new entries")
@click.option("-n", "--new", "new_only", is_flag=True, help="Follow only new entries")
@click.option("-H", "--human", is_flag=True, help="Human-readable timestamps")
@click.option("-d", "--delta", is_flag=True, help="With -H, print deltas between entries")
@click.option("-L", "--color", type=click.Choice(["auto", "never", "always"]), default="auto",
              help="Colorize output (accepted, not used)")
@handle_errors("dmesg")
def command(clear_only: bool, read_clear: bool, follow: bool, new_only: bool, human: bool,
            delta: bool, color: str) -> None:
    """Print the local broker's log ring."""
    import flux
    from broker.logring import HumanFormatter, format_entry
    from flux.constants import FLUX_RPC_STREAMING

    h = flux.Flux()
    if clear_only:
        h.rpc("log.clear").get()
        return
    fmt = HumanFormatter(delta=delta).format if human else format_entry
    rpc = h.rpc("log.dmesg", {"follow": follow or new_only, "nobacklog": new_only},
                flags=FLUX_RPC_STREAMING)
    try:
        for entry in rpc:
            click.echo(fmt(entry))
            if follow or new_only:
                sys.stdout.flush()
    except OSError as exc:
        if exc.errno != errno.ECONNRESET or not (follow or new_only):
            raise
    if read_clear:
        h.rpc("log.clear").get()
