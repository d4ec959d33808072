"""flux shutdown: end the run state of an instance (flux-shutdown(1)).

The initial program gets SIGHUP, so ``flux start`` then exits with 129.
Broker log messages are shown on stderr until the instance is gone
(severity <= info; ``--quiet``: <= warning; ``-v, --verbose[=LEVEL]``, level
1 or more: all).  LEVEL is taken only attached (``--verbose=1``, ``-v1``).
``--gc`` is passed to the broker as the shutdown option ``{"gc": true}``,
which modules read from ``ctx.shutdown_options`` when they stop: the
content module then runs the offline garbage collection of the store
after the final flush and logs what it freed, which is shown here.
``--dump=PATH`` has the content module write a ``flux dump --checkpoint``
archive to PATH once the kvs is unloaded (specs/dump-restore.md);
``--dump=auto`` is ``--gc``, as flux-shutdown(1) says.
"""
from __future__ import annotations

import errno
import os
import sys

import click

from cli.common import handle_errors
from cli.optional_values import OptionalValueCommand


@click.command("shutdown", cls=OptionalValueCommand,
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--background", is_flag=True, help="Start the shutdown and exit at once")
@click.option("--quiet", is_flag=True, help="Show only warnings and errors")
@click.option("-v", "--verbose", metavar="[LEVEL]", type=click.IntRange(min=0), is_flag=False,
              flag_value="1", default=0,
              help="Increase output verbosity (1: show all log messages)")
@click.option("--gc", is_flag=True, help="Ask for offline KVS garbage collection")
@click.option("--dump", metavar="PATH", help="Ask for a KVS dump to PATH")
@click.option("-y", "--yes", is_flag=True, help="Answer yes to any question")
@click.option("-n", "--no", is_flag=True, help="Answer no to any question")
@click.argument("target", required=False)
@handle_errors("shutdown")
def command(background: bool, quiet: bool, verbose: int, gc: bool, dump: str | None,
            yes: bool, no: bool, target: str | None) -> None:
    """Shut down the instance at TARGET (a URI; default FLUX_URI)."""
    import flux
    from broker.logring import format_entry
    from flux.constants import FLUX_RPC_STREAMING

    h = flux.Flux(target)
    options: dict[str, object] = {}
    if gc or dump == "auto":
        options["gc"] = True
    elif dump:
        # the broker writes it (after the kvs is unloaded), from its own directory
        options["dump"] = os.path.abspath(dump)
    logs = None
    if not background:
        logs = h.rpc("log.dmesg", {"follow": True, "nobacklog": True}, nodeid=0,
                     flags=FLUX_RPC_STREAMING)
    h.rpc("broker.shutdown", options, nodeid=0).get()
    if logs is None:
        return
    level = 7 if verbose else (4 if quiet else 6)
    try:
        for entry in logs:
            if entry["level"] <= level:
                click.echo(format_entry(entry), err=True)
    except OSError as exc:
        if exc.errno not in (errno.ECONNRESET, errno.ENOSYS):
            raise
    sys.stderr.flush()
