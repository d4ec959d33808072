"""flux startlog: when the instance's store was started and stopped, crashes included.

One line per start, in local time: ``START - FINISH (DURATION)`` for a
clean stop, ``START - crashed`` for a run that never recorded its finish
(killed, or the machine went down) and ``START - running (DURATION)`` for
the current run.  ``--check`` exits 1 if the run before this one crashed;
``--quiet`` prints nothing (useful with ``--check``); ``-v,
--show-version`` puts each start's software version, right-aligned in 25
columns, before it (blank when the record has none).  As flux-startlog(1)
says, the command is not available to guest users.
"""
from __future__ import annotations

import sys
import time

import click

from cli.common import die, error_text, handle_errors


def _duration(secs: float) -> str:
    """A short duration with two significant digits: 53s, 1.2m, 3.5h, 2d."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if secs >= size:
            return f"{secs / size:.2g}{unit}"
    return f"{max(secs, 0.0):.2g}s"


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def startlog_lines(records: list[dict], now: float,
                   show_version: bool = False) -> tuple[list[str], bool]:
    """(lines to print, whether the run before the last one crashed)."""
    lines = []
    crashed = False
    last = len(records) - 1
    for i, rec in enumerate(records):
        start, finish = rec["start"], rec.get("finish")
        head = f"{rec.get('version') or '':>25}  " if show_version else ""
        if finish is not None:
            lines.append(f"{head}{_stamp(start)} - {_stamp(finish)} "
                         f"({_duration(finish - start)})")
        elif i == last:
            lines.append(f"{head}{_stamp(start)} - running ({_duration(now - start)})")
        else:
            lines.append(f"{head}{_stamp(start)} - crashed")
        if i == last - 1:
            crashed = finish is None
    return lines, crashed


@click.command("startlog", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--check", is_flag=True, help="Exit 1 if the instance was not shut down properly")
@click.option("--quiet", is_flag=True, help="Print nothing (useful with --check)")
@click.option("-v", "--show-version", is_flag=True,
              help="Show the flux-core version string in output")
@handle_errors("startlog")
def command(check: bool, quiet: bool, show_version: bool) -> None:
    """List the starts and stops of this instance."""
    import flux

    try:
        records = flux.Flux().rpc("content.startlog", {}).get()["records"]
    except OSError as exc:
        # flux-core's wording; a guest is refused (owner credentials needed)
        die("startlog", f"Error fetching eventlog: {error_text(exc)}")
    lines, crashed = startlog_lines(records, time.time(), show_version)
    if not quiet and lines:
        click.echo("\n".join(lines))
    if check and crashed:
        sys.exit(1)
