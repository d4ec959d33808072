"""Entry point of the ``flux`` command.

Subcommands live one per module as ``cli/cmd_<name>.py`` (dashes in the
command name become underscores) and expose a click command named
``command``.  They are imported only when invoked, so ``flux jobs`` does
not pay for ``flux start``'s imports.
"""
from __future__ import annotations

import importlib
import os
import sys

import click

from flux import __version__

_HERE = os.path.dirname(os.path.abspath(__file__))


def _command_names() -> list[str]:
    names = []
    for fn in os.listdir(_HERE):
        if fn.startswith("cmd_") and fn.endswith(".py"):
            names.append(fn[4:-3].replace("_", "-"))
    return sorted(names)


class LazyGroup(click.Group):
    """A group that imports ``cli.cmd_<name>`` on first use of ``name``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return _command_names()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        modname = "cli.cmd_" + cmd_name.replace("-", "_")
        if not os.path.exists(os.path.join(_HERE, modname[4:] + ".py")):
            return None
        mod = importlib.import_module(modname)
        return mod.command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="flux")
def main() -> None:
    """Flux: an event-sourced resource manager core.

    Run "flux COMMAND --help" for help on a command.
    """


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
