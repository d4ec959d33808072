"""flux module: list, load, remove, reload and show broker modules (flux-module(1))."""
from __future__ import annotations

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
        if service and service not in m["services"]:
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
