"""flux setattr: set or remove a broker attribute (flux-setattr(1))."""
from __future__ import annotations

import click

from cli.common import handle_errors


@click.command("setattr", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-e", "--expunge", is_flag=True, help="Remove the attribute")
@click.argument("name")
@click.argument("value", required=False)
@handle_errors("setattr")
def command(expunge: bool, name: str, value: str | None) -> None:
    """Set broker attribute NAME to VALUE, or remove it with --expunge."""
    if expunge == (value is not None):
        raise click.UsageError("give either NAME VALUE or --expunge NAME")
    import flux

    h = flux.Flux()
    if expunge:
        h.attr_remove(name)
    else:
        h.attr_set(name, value)
