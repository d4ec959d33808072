"""flux startlog: when the instance's store was started and stopped, crashes included.

One line per start, in local time: ``START - FINISH (DURATION)`` for a
clean stop, ``START - crashed`` for a run that never recorded its finish
(killed, or the machine went down) and ``START - running (DURATION)`` for
the current run.  ``--check`` exits 1 if the run before this one crashed;
``--quiet`` prints nothing (useful with ``--check``).
"""
from __future__ import annotations

import sys
import time

import click

from cli.common import handle_errors


def _duration(secs: float) -> str:
    """A short duration with two significant digits: 53s, 1.2m, 3.5h, 2d."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if secs >= size:
            return f"{secs / size:.2g}{unit}"
    return f"{max(secs, 0.0):.2g}s"


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def startlog_lines(records: list[dict], now: float) -> tuple[list[str], bool]:
    """(lines to print, whether the run before the last one crashed)."""
    lines = []
    crashed = False
    last = len(records) - 1
    for i, rec in enumerate(records):
        start, finish = rec["start"], rec.get("finish")
        if finish is not None:
            lines.append(f"{_stamp(start)} - {_stamp(finish)} ({_duration(finish - start)})")
        elif i == last:
            lines.append(f"{_stamp(start)} - running ({_duration(now - start)})")
        else:
            lines.append(f"{_stamp(start)} - crashed")
        if i == last - 1:
            crashed = finish is None
    return lines, crashed


@click.command("startlog", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--check", is_flag=True, help="Exit 1 if the instance was not shut down properly")
@click.option("--quiet", is_flag=True, help="Print nothing (useful with --check)")
@handle_errors("startlog")
def command(check: bool, quiet: bool) -> None:
    """List the starts and stops of this instance."""
    import flux

    records = flux.Flux().rpc("content.startlog", {}).get()["records"]
    lines, crashed = startlog_lines(records, time.time())
    if not quiet and lines:
        click.echo("\n".join(lines))
    if check and crashed:
        sys.exit(1)
