"""flux env: print the environment as Flux sets it, or run COMMAND in it (flux-env(1))."""
from __future__ import annotations

import os
import shlex
import sys

import click

from cli.common import die


@click.command("env", context_settings={"allow_interspersed_args": False,
                                        "help_option_names": ["-h", "--help"]})
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
def command(cmd: tuple[str, ...]) -> None:
    """Without COMMAND, print the environment; with it, run COMMAND like env(1)."""
    if not cmd:
        for name in sorted(os.environ):
            click.echo(f"export {name}={shlex.quote(os.environ[name])}")
        return
    sys.stdout.flush()
    try:
        os.execvp(cmd[0], list(cmd))
    except OSError as exc:
        die("env", f"{cmd[0]}: {exc.strerror}", 127 if exc.errno == 2 else 126)
