"""flux dmesg: print (and optionally clear or follow) the broker log ring (flux-dmesg(1)).

``-L, --color[=WHEN]`` colours as flux-core's dmesg does: the name
(``app.severity[rank]``) yellow, the time green (an absolute ``-H`` stamp
bold green), and the message by severity: emerg and alert reversed red,
crit bold red, err red, warning bold, debug blue.
"""
from __future__ import annotations

import errno
import sys
from typing import Any, Callable

import click

from cli.common import die, handle_errors
from cli.optional_values import OptionalValueCommand

_RESET = "\033[0m"
_NAME = "\033[33m"
_TIME = "\033[32m"
_TIMEBREAK = "\033[1m\033[32m"
#: the message's colour by severity (notice and info: none)
_SEVERITY = {0: "\033[7m\033[31m", 1: "\033[7m\033[31m", 2: "\033[1m\033[31m",
             3: "\033[31m", 4: "\033[1m", 7: "\033[34m"}


def _formatter(human: bool, delta: bool, color: bool) -> Callable[[dict[str, Any]], str]:
    """The function turning one ring entry into its output line."""
    from broker.logring import HumanFormatter, format_entry, iso_time, severity_name

    if not color:
        return HumanFormatter(delta=delta).format if human else format_entry
    human_fmt = HumanFormatter(delta=delta)

    def fmt(entry: dict[str, Any]) -> str:
        if human:
            stamp, absolute = human_fmt.stamp(entry["timestamp"])
            when = (_TIMEBREAK if absolute else _TIME) + stamp + _RESET
        else:
            when = _TIME + iso_time(entry["timestamp"]) + _RESET
        name = f"{entry['appname']}.{severity_name(entry['level'])}[{entry['rank']}]"
        sev = _SEVERITY.get(int(entry["level"]), "")
        return f"{when} {_NAME}{name}{_RESET}: {sev}{entry['message']}{_RESET}"

    return fmt


@click.command("dmesg", cls=OptionalValueCommand,
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "--clear", "clear_only", is_flag=True, help="Clear the ring buffer")
@click.option("-c", "--read-clear", is_flag=True, help="Clear the ring after printing it")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new entries")
@click.option("-n", "--new", "new_only", is_flag=True, help="Follow only new entries")
@click.option("-H", "--human", is_flag=True, help="Human-readable timestamps")
@click.option("-d", "--delta", is_flag=True, help="With -H, print deltas between entries")
@click.option("-L", "--color", metavar="WHEN", is_flag=False, flag_value="always",
              type=click.Choice(["auto", "never", "always"]), default="auto",
              help="Colorize output; WHEN can be 'always' (default if omitted), "
                   "'never', or 'auto' (default)")
@handle_errors("dmesg")
def command(clear_only: bool, read_clear: bool, follow: bool, new_only: bool, human: bool,
            delta: bool, color: str) -> None:
    """Print the local broker's log ring."""
    import flux
    from flux.constants import FLUX_RPC_STREAMING

    if delta and not human:
        die("dmesg", "--delta can only be used with --human")
    use_color = color == "always" or (color == "auto" and sys.stdout.isatty())
    h = flux.Flux()
    if clear_only:
        h.rpc("log.clear").get()
        return
    fmt = _formatter(human, delta, use_color)
    rpc = h.rpc("log.dmesg", {"follow": follow or new_only, "nobacklog": new_only},
                flags=FLUX_RPC_STREAMING)
    try:
        for entry in rpc:
            click.echo(fmt(entry), color=use_color)
            if follow or new_only:
                sys.stdout.flush()
    except OSError as exc:
        if exc.errno != errno.ECONNRESET or not (follow or new_only):
            raise
    if read_clear:
        h.rpc("log.clear").get()
