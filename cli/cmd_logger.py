"""flux logger: append a message to the broker log ring (flux-logger(1))."""
from __future__ import annotations

import click

from cli.common import handle_errors


@click.command("logger", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "--severity", default="info", metavar="SEVERITY",
              help="emerg, alert, crit, err, warning, notice, info (default) or debug")
@click.option("-n", "--appname", default="logger", metavar="NAME",
              help="Application name (default: logger)")
@click.argument("message", nargs=-1, required=True)
@handle_errors("logger")
def command(severity: str, appname: str, message: tuple[str, ...]) -> None:
    """Log MESSAGE to the local broker."""
    import time

    import flux
    from broker.logring import parse_severity

    try:
        level = parse_severity(severity)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--severity'") from None
    h = flux.Flux()
    h.rpc("log.append", {"level": level, "appname": appname, "message": " ".join(message),
                         "timestamp": time.time()}).get()
