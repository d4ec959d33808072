"""flux lsattr: list broker attributes, optionally with values (flux-lsattr(1))."""
from __future__ import annotations

import click

from cli.common import handle_errors


@click.command("lsattr", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--values", is_flag=True, help="Show values too")
@handle_errors("lsattr")
def command(values: bool) -> None:
    """List the attributes of the local broker."""
    import flux

    attrs = flux.Flux().rpc("attr.list").get()["attrs"]
    if not values:
        for name, _value, _imm in attrs:
            click.echo(name)
        return
    width = max((len(a[0]) for a in attrs), default=0)
    for name, value, _imm in attrs:
        click.echo(f"{name:<{width}} {'-' if value is None else value}")
