"""flux cron: commands run on a time interval, an event, a crontab line or a date
(flux-cron(1)), by the ``cron`` module on rank 0.

``interval``, ``event``, ``tab`` and ``at`` create entries; ``list``, ``dump``,
``stop``, ``start``, ``delete`` and ``sync`` look at and manage them.  The
text builders (``list_lines``, ``dump_lines``) are pure functions of the
module's entry objects.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import click

from cli.common import die, handle_errors

__all__ = ["command", "list_lines", "dump_lines", "flatten"]

_CTX = {"help_option_names": ["-h", "--help"]}


# -- pure ---------------------------------------------------------------------------------

def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))


def _state(entry: Mapping[str, Any]) -> str:
    tasks = entry.get("tasks") or []
    if tasks and tasks[-1].get("state") == "Running":
        return "R"
    return "S" if entry.get("stopped") else "W"


def _status(entry: Mapping[str, Any]) -> str:
    tasks = entry.get("tasks") or []
    if not tasks:
        return "-"
    last = tasks[-1]
    if last.get("state") == "Running":
        return "running"
    if "code" in last:
        return f"exit {last['code']}"
    return str(last.get("error") or last.get("state", "-")).lower()


def list_lines(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """``flux cron list``: one line per entry under a heading."""
    out = [f"{'ID':>4} {'NAME':<12} {'TYPE':<8} S {'RUNS':>5} {'FAIL':>4} "
           f"{'LASTRUN':<19} {'NEXT':<19} {'STATUS':<10} COMMAND"]
    for e in entries:
        stats = e.get("stats") or {}
        out.append(f"{e['id']:>4} {str(e.get('name'))[:12]:<12} {e.get('type', ''):<8} "
                   f"{_state(e)} {stats.get('count', 0):>5} {stats.get('failure', 0):>4} "
                   f"{_when(stats.get('lastrun')):<19} {_when(e.get('next')):<19} "
                   f"{_status(e):<10} {e.get('command', '')}")
    return out


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts and lists as dotted ``key = value`` pairs (lists by index)."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            out.extend(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out.extend(flatten(value, f"{prefix}.{i}"))
    else:
        out.append((prefix, obj))
    return out


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def dump_lines(entry: Mapping[str, Any], key: str | None = None) -> list[str]:
    """``flux cron dump``: ``key = value`` lines, or KEY's value (KeyError if none)."""
    pairs = [(k, v) for k, v in flatten(entry) if k not in ("id",)]
    pairs.insert(0, ("id", entry.get("id")))
    if key is None:
        return [f"{k} = {_value(v)}" for k, v in pairs]
    leaves = dict(pairs)
    if key in leaves:
        return [_value(leaves[key])]
    below = [f"{k} = {_value(v)}" for k, v in pairs if k.startswith(key + ".")]
    if not below:
        raise KeyError(key)
    return below


# -- commands -----------------------------------------------------------------------------

def _rpc(topic: str, payload: dict[str, Any]) -> Any:
    import flux

    return flux.Flux().rpc(topic, payload, nodeid=0).get()


def _options(text: str | None) -> dict[str, Any]:
    from broker.cron.triggers import parse_options

    try:
        return parse_options(text)
    except ValueError as exc:
        raise click.UsageError(f"--options: {exc}") from None


def _create(kind: str, args: dict[str, Any], command: Sequence[str], name: str | None,
            options: str | None, preserve_env: bool, workdir: str | None,
            repeat: int = 0) -> dict[str, Any]:
    if not command:
        raise click.UsageError("a command is required")
    payload: dict[str, Any] = {"type": kind, "args": args, "command": " ".join(command),
                               "repeat": repeat, **_options(options)}
    if name:
        payload["name"] = name
    if preserve_env:
        payload["environ"] = dict(os.environ)
    if workdir:
        payload["cwd"] = os.path.abspath(workdir)
    return _rpc("cron.create", payload)


def _seconds(text: str, what: str) -> float:
    from flux.util.fsd import parse_fsd

    try:
        return parse_fsd(text)
    except ValueError:
        raise click.UsageError(f"invalid {what} {text!r}: use a number with an optional "
                               "s, m, h or d suffix") from None


_common = [
    click.option("-o", "--options", metavar="LIST",
                 help="timeout=N,rank=R,task-history-count=N,stop-on-failure=N"),
    click.option("-E", "--preserve-env", is_flag=True,
                 help="Run the command in this environment (default: the broker's)"),
    click.option("-d", "--working-dir", "workdir", metavar="DIR",
                 help="Run the command in DIR (default: the broker's directory)"),
]


def common(fn: Any) -> Any:
    for opt in reversed(_common):
        fn = opt(fn)
    return fn


@click.group("cron", context_settings=_CTX)
def command() -> None:
    """Run commands on an interval, on events, from a crontab, or at a time."""


@command.command("help", context_settings=_CTX)
@click.argument("cmd", required=False)
@click.pass_context
def help_cmd(ctx: click.Context, cmd: str | None) -> None:
    """Print help, for CMD if given."""
    group = ctx.parent.command if ctx.parent else command
    sub = group.get_command(ctx, cmd) if cmd else None  # type: ignore[union-attr]
    if cmd and sub is None:
        die("cron", f"help: unknown command {cmd!r}", 2)
    target = sub or group
    with click.Context(target, info_name=f"flux cron {cmd}" if cmd else "flux cron") as c:
        click.echo(target.get_help(c))


@command.command("interval", context_settings=_CTX)
@click.option("-n", "--name", metavar="STRING", help="Name the entry")
@click.option("-a", "--after", metavar="TIME", help="The first run after TIME, not INTERVAL")
@click.option("-c", "--count", type=click.IntRange(min=1), metavar="N",
              help="Run N times, then stop")
@common
@click.argument("interval")
@click.argument("cmd", nargs=-1, required=True, metavar="COMMAND...")
@handle_errors("cron")
def interval_cmd(name: str | None, after: str | None, count: int | None, options: str | None,
                 preserve_env: bool, workdir: str | None, interval: str,
                 cmd: tuple[str, ...]) -> None:
    """Run COMMAND every INTERVAL (seconds, or with an s/m/h/d suffix)."""
    seconds = _seconds(interval, "interval")
    if seconds <= 0:
        raise click.UsageError("interval must be greater than 0")
    args: dict[str, Any] = {"interval": seconds}
    if after is not None:
        args["after"] = _seconds(after, "--after time")
    _create("interval", args, cmd, name, options, preserve_env, workdir, count or 0)


@command.command("event", context_settings=_CTX)
@click.option("-n", "--name", metavar="STRING", help="Name the entry")
@click.option("--nth", type=click.IntRange(min=1), default=1, metavar="N",
              help="Run after every N matching events")
@click.option("-a", "--after", type=click.IntRange(min=0), default=0, metavar="N",
              help="The first run at the Nth matching event")
@click.option("-i", "--min-interval", metavar="T", help="Never run closer than T apart")
@click.option("-c", "--count", type=click.IntRange(min=1), metavar="N",
              help="Run N times, then stop")
@common
@click.argument("topic")
@click.argument("cmd", nargs=-1, required=True, metavar="COMMAND...")
@handle_errors("cron")
def event_cmd(name: str | None, nth: int, after: int, min_interval: str | None,
              count: int | None, options: str | None, preserve_env: bool,
              workdir: str | None, topic: str, cmd: tuple[str, ...]) -> None:
    """Run COMMAND after events whose topic starts with TOPIC."""
    args = {"topic": topic, "nth": nth, "after": after,
            "min_interval": _seconds(min_interval, "--min-interval") if min_interval else 0.0}
    _create("event", args, cmd, name, options, preserve_env, workdir, count or 0)


@command.command("tab", context_settings=_CTX)
@click.option("-o", "--options", metavar="LIST", help="EXTRA OPTIONS for every entry")
@click.argument("file", type=click.File("r"), default="-")
@handle_errors("cron")
def tab_cmd(options: str | None, file: Any) -> None:
    """One entry per crontab line of FILE (default: stdin): m h dom mon(0-11) dow cmd."""
    from broker.cron.triggers import parse_crontab_line

    entries = []
    name = getattr(file, "name", "-")
    for lineno, line in enumerate(file, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            fields_cmd = parse_crontab_line(text)
        except ValueError as exc:
            die("cron", f"{name}:{lineno}: {exc}")
        words = text.split(None, 5)
        entries.append((" ".join(words[:5]), fields_cmd[1]))
    for spec, cmd in entries:
        _create("datetime", {"crontab": spec}, [cmd], None, options, False, None)


@command.command("at", context_settings=_CTX)
@common
@click.argument("when")
@click.argument("cmd", nargs=-1, required=True, metavar="COMMAND...")
@handle_errors("cron")
def at_cmd(options: str | None, preserve_env: bool, workdir: str | None, when: str,
           cmd: tuple[str, ...]) -> None:
    """Run COMMAND once, at the time WHEN names ("in 5 minutes", "2026-12-24 18:00")."""
    from flux.util.timeparse import parse_datetime

    try:
        at = parse_datetime(when).timestamp()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _create("datetime", {"at": at}, cmd, None, options, preserve_env, workdir, 1)


@command.command("list", context_settings=_CTX)
@handle_errors("cron")
def list_cmd() -> None:
    """List the entries, their state and last run."""
    for line in list_lines(_rpc("cron.list", {}).get("entries", [])):
        click.echo(line)


def _id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise click.UsageError(f"invalid cron entry id {text!r}") from None


@command.command("stop", context_settings=_CTX)
@click.argument("entry_id", metavar="ID")
@handle_errors("cron")
def stop_cmd(entry_id: str) -> None:
    """Stop entry ID (it stays listed until deleted)."""
    _rpc("cron.stop", {"id": _id(entry_id)})


@command.command("start", context_settings=_CTX)
@click.argument("entry_id", metavar="ID")
@handle_errors("cron")
def start_cmd(entry_id: str) -> None:
    """Start stopped entry ID again (its repeat and failure counts restart)."""
    _rpc("cron.start", {"id": _id(entry_id)})


@command.command("delete", context_settings=_CTX)
@click.option("-k", "--kill", is_flag=True, help="Also kill its running command")
@click.argument("entry_id", metavar="ID")
@handle_errors("cron")
def delete_cmd(kill: bool, entry_id: str) -> None:
    """Delete entry ID."""
    _rpc("cron.delete", {"id": _id(entry_id), "kill": kill})


@command.command("dump", context_settings=_CTX)
@click.option("-k", "--key", metavar="KEY", help="Print only KEY's value")
@click.argument("entry_id", metavar="ID")
@handle_errors("cron")
def dump_cmd(key: str | None, entry_id: str) -> None:
    """Print everything about entry ID as key = value lines."""
    wanted = _id(entry_id)
    entries = _rpc("cron.list", {}).get("entries", [])
    entry = next((e for e in entries if e.get("id") == wanted), None)
    if entry is None:
        die("cron", f"cron-{wanted}: no such entry")
    try:
        lines = dump_lines(entry, key)
    except KeyError:
        die("cron", f"cron-{wanted}: no key {key!r}")
    sys.stdout.write("".join(line + "\n" for line in lines))


@command.command("sync", context_settings=_CTX)
@click.option("-e", "--epsilon", metavar="DELAY",
              help="Do not defer a run due within DELAY of the event")
@click.option("-d", "--disable", is_flag=True, help="Run at once again, without a sync event")
@click.argument("topic", required=False)
@handle_errors("cron")
def sync_cmd(epsilon: str | None, disable: bool, topic: str | None) -> None:
    """Show or set the event that runs wait for."""
    payload: dict[str, Any] = {}
    if disable:
        payload["disable"] = True
    elif topic:
        payload["topic"] = topic
    if epsilon is not None:
        payload["epsilon"] = _seconds(epsilon, "epsilon")
    resp = _rpc("cron.sync", payload)
    if resp.get("sync_event"):
        click.echo(f"cron: sync to {resp['sync_event']}, epsilon={resp['sync_epsilon']:g}s")
    else:
        click.echo("cron: sync disabled")
