"""flux job urgency: change the urgency of a pending job (flux-job(1)).

``flux job urgency JOBID N|hold|default|expedite``; prints nothing on
success, the previous urgency on stderr with ``-v``.
"""
from __future__ import annotations

import click

from cli.common import die
from cli.job_common import open_handle, parse_jobid, rpc_error_text


@click.command("urgency", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Print the old urgency on stderr")
@click.argument("jobid")
@click.argument("urgency")
def command(verbose: bool, jobid: str, urgency: str) -> None:
    """Set the urgency of JOBID to N (0-31), hold, default or expedite."""
    from cli.submitopts import parse_urgency

    try:
        id_ = parse_jobid(jobid)
    except ValueError:
        die("job", f'error parsing jobid: "{jobid}"')
    try:
        value = parse_urgency(urgency)
    except ValueError:
        die("job", f'error parsing urgency: "{urgency}"')
    h = open_handle("job")
    try:
        resp = h.rpc("job-manager.urgency", {"id": int(id_), "urgency": value}).get()
    except OSError as exc:
        die("job", f"{jobid}: {rpc_error_text(exc)}")
    if verbose:
        old = resp["old_urgency"]
        if old == 0:
            click.echo("old urgency: job held", err=True)
        elif old == 31:
            click.echo("old urgency: job expedited", err=True)
        else:
            click.echo(f"old urgency: {old}", err=True)
