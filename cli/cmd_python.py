"""flux python [ARGS...]: the Python interpreter this ``flux`` runs on, so scripts
find the same ``flux`` package (flux-core's flux-python(1)); every argument goes to
Python."""
from __future__ import annotations

import os
import sys

import click


@click.command("python", add_help_option=False,
               context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """Run the Python interpreter that flux's bindings use, with ARGS."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable, *args])
    except OSError as exc:
        click.echo(f"flux-python: {sys.executable}: {exc.strerror}", err=True)
        sys.exit(1)
