"""flux jobtap: list, load and remove job manager plugins (flux-jobtap(1)).

``list [-a]`` prints the loaded plugins one per line (``-a``: the builtins,
which start with ``.``, first); ``load [-r NAME] PLUGIN [KEY=VAL...]`` loads a
Python plugin file (a relative path is taken from the current directory when
it exists there), a builtin by name, or an importable module, with KEY=VAL
as its config (VAL is JSON when it parses); ``remove NAME`` takes away the
plugins the glob NAME matches (``all``: every non-builtin one); ``query NAME``
prints what the job manager knows of a plugin as JSON.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from cli.common import handle_errors
from jobmgr.jobtap_conf import parse_keyvals

__all__ = ["command", "plugin_spec"]

_CTX = {"help_option_names": ["-h", "--help"]}


def plugin_spec(spec: str, cwd: str) -> str:
    """SPEC as the job manager should see it: a file relative to CWD made absolute."""
    if spec.startswith(".") and "/" not in spec and not spec.endswith(".py"):
        return spec                                   # a builtin's name
    path = os.path.join(cwd, spec)
    if not os.path.isabs(spec) and os.path.isfile(path):
        return os.path.normpath(path)
    return spec


def _rpc(payload: dict[str, Any]) -> Any:
    import flux

    return flux.Flux().rpc("job-manager.jobtap", payload).get()


@click.group("jobtap", context_settings=_CTX)
def command() -> None:
    """List, load and remove job manager (jobtap) plugins."""


@command.command("list", context_settings=_CTX)
@click.option("-a", "--all", "all_", is_flag=True, help="Also list builtin plugins")
@handle_errors("jobtap")
def list_cmd(all_: bool) -> None:
    """List the loaded plugins."""
    resp = _rpc({"op": "list"})
    names = (list(resp.get("builtins", [])) if all_ else []) + list(resp.get("plugins", []))
    for name in names:
        click.echo(name)


@command.command("load", context_settings=_CTX)
@click.option("-r", "--remove", "remove", metavar="NAME",
              help="First remove plugins matching NAME (a glob)")
@click.argument("plugin")
@click.argument("keyvals", nargs=-1, metavar="[KEY=VAL...]")
@handle_errors("jobtap")
def load_cmd(remove: str | None, plugin: str, keyvals: Sequence[str]) -> None:
    """Load PLUGIN, with KEY=VAL set in its config."""
    try:
        conf = parse_keyvals(keyvals)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    payload: dict[str, Any] = {"op": "load", "plugin": plugin_spec(plugin, os.getcwd()),
                               "conf": conf}
    if remove is not None:
        payload["remove"] = remove
    _rpc(payload)


@command.command("remove", context_settings=_CTX)
@click.argument("name")
@handle_errors("jobtap")
def remove_cmd(name: str) -> None:
    """Remove the plugins NAME matches (a glob, or all)."""
    _rpc({"op": "remove", "name": name})


@command.command("query", context_settings=_CTX)
@click.argument("name")
@handle_errors("jobtap")
def query_cmd(name: str) -> None:
    """Print information about plugin NAME as JSON."""
    import json

    click.echo(json.dumps(_rpc({"op": "query", "name": name})))
