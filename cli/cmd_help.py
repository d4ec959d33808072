"""flux help [COMMAND]: help on COMMAND, or the list of commands (flux(1)).

flux-core shows the manual page ``flux-COMMAND(1)``; we show it too when
``man`` has one, else the command's own ``--help`` (ours are written from
those pages).  An external ``flux-COMMAND`` on the sub-command search path
is asked for its ``--help``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import click

from cli.common import die


def _has_man_page(name: str) -> bool:
    man = shutil.which("man")
    if man is None:
        return False
    r = subprocess.run([man, "-w", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


@click.command("help", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("cmd", required=False)
@click.pass_context
def command(ctx: click.Context, cmd: str | None) -> None:
    """Show help on COMMAND (without it, list the commands)."""
    root = ctx.find_root()
    if cmd is None:
        click.echo(root.get_help())
        return
    if _has_man_page(f"flux-{cmd}"):
        sys.stdout.flush()
        os.execvp("man", ["man", f"flux-{cmd}"])
    sub = root.command.get_command(root, cmd)  # type: ignore[attr-defined]
    if sub is not None:
        with click.Context(sub, info_name=cmd, parent=root) as sub_ctx:
            click.echo(sub.get_help(sub_ctx))
        return
    from cli import frontend

    path = frontend.search_path(os.environ.get("FLUX_EXEC_PATH_PREPEND"),
                                frontend.install_exec_dir(), os.environ.get("FLUX_EXEC_PATH"))
    found = frontend.find_subcommand(cmd, path)
    if found is None:
        die("help", f"No manual entry for flux-{cmd}")
    sys.stdout.flush()
    sys.exit(subprocess.run([*found, "--help"]).returncode)
