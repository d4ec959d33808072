"""flux module: list, load, remove, reload and show broker modules, their message
counters (``stats``) and debug flags (``debug``) (flux-module(1))."""
from __future__ import annotations

import errno
from typing import Any

import click

from cli.common import handle_errors


def _rank(value: str | None) -> int:
    from flux.constants import FLUX_NODEID_ANY

    if value is None or value == "any":
        return FLUX_NODEID_ANY
    if not value.isdigit():
        raise click.BadParameter(f"'{value}' is not a rank", param_hint="'--rank'")
    return int(value)


@click.group("module", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Manage broker modules."""


@command.command("list")
@click.option("-r", "--rank", default=None, metavar="N", help="Ask broker rank N")
@click.argument("service", required=False)
@handle_errors("module")
def list_(rank: str | None, service: str | None) -> None:
    """List loaded modules: Module, Size, Digest, Idle (seconds), Service."""
    import flux

    mods = flux.Flux().rpc("module.list", {}, nodeid=_rank(rank)).get()["modules"]
    click.echo(f"{'Module':<20} {'Size':>7} {'Digest':<7} {'Idle':>4} Service")
    for m in mods:
        # every module is the broker's: "broker" (flux-core's default service) lists all
        if service and service != "broker" and service not in m["services"]:
            continue
        idle = "idle" if m["idle"] > 9999 else str(m["idle"])
        click.echo(f"{m['name']:<20} {m['size']:>7} {m['digest'][-7:]:<7} {idle:>4} "
                   f"{','.join(m['services'])}")


@command.command("info")
@click.argument("name")
@handle_errors("module")
def info(name: str) -> None:
    """Show module NAME (a known name or package.module:Class): where its code is,
    its size and digest (as module list shows them), its services, where rc1 loads it."""
    from broker.module import module_digest, resolve_target
    from broker.rc import RC1, known_target

    target = known_target(name) or (name if ":" in name else None)
    if target is None:
        raise FileNotFoundError(2, f"module '{name}' not found (not in broker.rc and not "
                                   "package.module:Class)")
    cls = resolve_target(target)
    import inspect

    size, digest = module_digest(cls)
    rc1 = next((m for m in RC1 if m.target == target), None)
    rows = [("Module", name if ":" not in name else (cls.name or cls.__name__.lower())),
            ("Target", target), ("File", inspect.getsourcefile(cls) or "-"),
            ("Size", str(size)), ("Digest", digest or "-"),
            ("Services", ",".join(cls.service_names()) or "-"),
            ("Loaded by rc1", f"on {rc1.ranks} ranks" if rc1 else "no (flux module load)")]
    for key, value in rows:
        click.echo(f"{key + ':':<15}{value}")


@command.command("load", context_settings={"ignore_unknown_options": True})
@click.option("-r", "--rank", default=None, metavar="N", help="Load on broker rank N")
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@handle_errors("module")
def load(rank: str | None, name: str, args: tuple[str, ...]) -> None:
    """Load module NAME (a known name or package.module:Class) with ARGS."""
    import flux

    flux.Flux().rpc("module.load", {"name": name, "args": list(args)}, nodeid=_rank(rank)).get()


@command.command("remove")
@click.option("-r", "--rank", default=None, metavar="N", help="Remove on broker rank N")
@click.option("-f", "--force", is_flag=True, help="No error if the module is not loaded")
@click.argument("name")
@handle_errors("module")
def remove(rank: str | None, force: bool, name: str) -> None:
    """Unload module NAME."""
    import flux

    flux.Flux().rpc("module.remove", {"name": name, "force": force}, nodeid=_rank(rank)).get()


@command.command("reload", context_settings={"ignore_unknown_options": True})
@click.option("-r", "--rank", default=None, metavar="N", help="Reload on broker rank N")
@click.option("-f", "--force", is_flag=True, help="No error if the module is not loaded")
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@handle_errors("module")
def reload(rank: str | None, force: bool, name: str, args: tuple[str, ...]) -> None:
    """Remove then load module NAME."""
    import flux

    h = flux.Flux()
    nodeid = _rank(rank)
    h.rpc("module.remove", {"name": name, "force": force}, nodeid=nodeid).get()
    h.rpc("module.load", {"name": name, "args": list(args)}, nodeid=nodeid).get()


def _mask(value: str) -> int:
    """A debug mask: ``0x`` hex, leading ``0`` octal, else decimal."""
    try:
        return int(value, 0) if not (value.startswith("0") and value[1:].isdigit()) \
            else int(value, 8)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a number (0x hex, 0 octal, decimal)") \
            from None


def walk(obj: Any, path: str) -> Any:
    """The value at PATH (``a.b.c``) in OBJ; KeyError naming the first missing field."""
    for name in path.split("."):
        if not isinstance(obj, dict) or name not in obj:
            raise KeyError(name)
        obj = obj[name]
    return obj


def stats_text(obj: Any, parse: str | None, kind: str | None, scale: float | None) -> str:
    """``flux module stats`` output: OBJ, or the value PARSE names, converted and scaled."""
    import json

    value = walk(obj, parse) if parse else obj
    if kind is not None or scale is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{parse or 'the stats'} is not a number")
        value = value * (scale if scale is not None else 1)
        value = int(value) if kind == "int" or (kind is None and isinstance(value, int)) \
            else float(value)
    if isinstance(value, float):
        return f"{value:f}"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


@command.command("stats")
@click.option("-r", "--rank", default=None, metavar="N", help="Ask broker rank N")
@click.option("-p", "--parse", metavar="OBJNAME", help="Print only this field (a.b.c)")
@click.option("-t", "--type", "kind", type=click.Choice(["int", "double"]),
              help="Convert the value")
@click.option("-s", "--scale", type=float, metavar="N", help="Multiply the value by N")
@click.option("-R", "--rusage", is_flag=True, help="The broker's getrusage(2) instead")
@click.option("-c", "--clear", is_flag=True, help="Clear the module's counters")
@click.option("-C", "--clear-all", is_flag=True, help="Clear them on every rank")
@click.argument("name")
@handle_errors("module")
def stats(rank: str | None, parse: str | None, kind: str | None, scale: float | None,
          rusage: bool, clear: bool, clear_all: bool, name: str) -> None:
    """Message counters of module NAME (JSON), or one field of them."""
    import flux

    h = flux.Flux()
    if clear_all:
        size = int(h.attr_get("size"))
        for r in range(size):
            try:
                h.rpc(f"{name}.stats-clear", {}, nodeid=r).get()
            except OSError as exc:
                if exc.errno != errno.ENOSYS:
                    raise
        return
    if clear:
        h.rpc(f"{name}.stats-clear", {}, nodeid=_rank(rank)).get()
        return
    obj = h.rpc(f"{name}.rusage" if rusage else f"{name}.stats-get", {},
                nodeid=_rank(rank)).get()
    try:
        click.echo(stats_text(obj, parse, kind, scale))
    except KeyError as exc:
        raise ValueError(f"'{parse}': no field {exc}") from None


@command.command("debug")
@click.option("-r", "--rank", default=None, metavar="N", help="Ask broker rank N")
@click.option("-c", "--clear", is_flag=True, help="Set the debug flags to 0")
@click.option("-S", "--set", "set_", metavar="MASK", help="Set the debug flags to MASK")
@click.option("--clearbit", metavar="MASK", help="Clear the bits of MASK")
@click.option("-s", "--setbit", metavar="MASK", help="Set the bits of MASK")
@click.argument("name")
@handle_errors("module")
def debug(rank: str | None, clear: bool, set_: str | None, clearbit: str | None,
          setbit: str | None, name: str) -> None:
    """Show or change the debug flags of module NAME (printed in hex)."""
    import flux

    chosen = [(op, value) for op, value in (("clr", "0" if clear else None), ("set", set_),
                                            ("clrbit", clearbit), ("setbit", setbit))
              if value is not None]
    if len(chosen) > 1:
        raise click.UsageError("use one of --clear, --set, --clearbit, --setbit")
    op, mask = chosen[0] if chosen else ("get", "0")
    resp = flux.Flux().rpc(f"{name}.debug", {"op": op, "flags": _mask(mask)},
                           nodeid=_rank(rank)).get()
    if op == "get":
        click.echo(f"0x{resp['flags']:x}")
