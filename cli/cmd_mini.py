"""flux mini submit|run|batch|alloc|bulksubmit: the job submission commands under their
older names (flux-mini(1) in the seeds), each exactly the command of the same name."""
from __future__ import annotations

import importlib

import click

_COMMANDS = ("alloc", "batch", "bulksubmit", "run", "submit")


class _MiniGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        return importlib.import_module(f"cli.cmd_{cmd_name}").command


@click.group("mini", cls=_MiniGroup, context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Submit jobs (older names of flux submit, run, batch, alloc and bulksubmit)."""
