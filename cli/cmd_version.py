"""flux version: versions of the commands, the library and (inside an instance) the broker."""
from __future__ import annotations

import os

import click


@click.command("version", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Print version information."""
    from flux import __version__

    click.echo(f"{'commands:':<16}{__version__}")
    click.echo(f"{'libflux-core:':<16}{__version__}")
    uri = os.environ.get("FLUX_URI")
    if uri:
        try:
            import flux

            broker = flux.Flux().attr_get("version")
        except OSError:
            return
        click.echo(f"{'broker:':<16}{broker}")
        click.echo(f"{'FLUX_URI:':<16}{uri}")
