"""flux getattr: print the value of a broker attribute (flux-getattr(1))."""
from __future__ import annotations

import click

from cli.common import handle_errors


@click.command("getattr", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name")
@handle_errors("getattr")
def command(name: str) -> None:
    """Print the value of broker attribute NAME."""
    import flux

    click.echo(flux.Flux().attr_get(name))
