"""flux config: query and reload the broker configuration (flux-config(1)).

``flux config get [NAME]`` prints the value at dotted NAME (the whole
table without NAME) as JSON; strings print without quotes.  With
``--config-path=DIR`` the files are read directly, without a broker.
"""
from __future__ import annotations

import errno

import click

from cli.common import die, handle_errors

_TYPES = ("string", "integer", "real", "boolean", "object", "array", "fsd", "fsd-integer",
          "fsd-real")


#: --config-path names that mean the system's own directories (the Administrator's Guide)
_NAMED_PATHS = {name: f"/etc/flux/{name}/conf.d" for name in ("system", "security", "imp")}


def named_config_path(path: str) -> str:
    """PATH, or the system directory its name stands for (``system`` and so on)."""
    return _NAMED_PATHS.get(path, path)


def _check_type(name: str, value: object, want: str) -> object:
    from flux.util.fsd import parse_fsd

    ok = {"string": isinstance(value, str),
          "integer": isinstance(value, int) and not isinstance(value, bool),
          "real": isinstance(value, (int, float)) and not isinstance(value, bool),
          "boolean": isinstance(value, bool),
          "object": isinstance(value, dict),
          "array": isinstance(value, list)}.get(want)
    if ok is not None:
        if not ok:
            die("config", f"{name}: value is not of type {want}")
        return value
    if not isinstance(value, str):
        die("config", f"{name}: value is not a Flux Standard Duration string")
    try:
        secs = parse_fsd(value)
    except ValueError as exc:
        die("config", f"{name}: {exc}")
    if want == "fsd-integer":
        return int(secs)
    if want == "fsd-real":
        return secs
    return value


def _print(value: object) -> None:
    import orjson

    if isinstance(value, str):
        click.echo(value)
    else:
        click.echo(orjson.dumps(value).decode())


@click.group("config", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Query and reload the Flux configuration."""


@command.command("get")
@click.option("-d", "--default", "default", default=None, metavar="VALUE",
              help="Print VALUE if NAME is not set")
@click.option("-q", "--quiet", is_flag=True, help="No error message if NAME is not set")
@click.option("-t", "--type", "want", type=click.Choice(_TYPES), default=None,
              help="Require the value to have this type")
@click.option("--config-path", metavar="DIR",
              help="Read DIR/*.toml instead of asking the broker (system, security, imp: "
                   "/etc/flux/NAME/conf.d)")
@click.argument("name", required=False)
@handle_errors("config")
def get(default: str | None, quiet: bool, want: str | None, config_path: str | None,
        name: str | None) -> None:
    """Print the configuration value at NAME (default: all of it)."""
    missing = object()
    if config_path:
        from broker.config import load_dir

        value = load_dir(named_config_path(config_path)).get(name, missing)
    else:
        import flux

        try:
            value = flux.Flux().rpc("config.get").get()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            value = missing
        for part in (name.split(".") if name else ()):
            value = value.get(part, missing) if isinstance(value, dict) else missing
    if value is missing:
        if default is not None:
            click.echo(default)
            return
        if quiet:
            raise SystemExit(1)
        die("config", f"{name} is not set")
    if want is not None:
        value = _check_type(name or "config", value, want)
    _print(value)


@command.command("reload")
@handle_errors("config")
def reload() -> None:
    """Tell the broker to re-read its configuration files."""
    import flux

    flux.Flux().rpc("config.reload").get()
