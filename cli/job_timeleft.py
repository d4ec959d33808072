"""flux job timeleft: whole seconds left before a job's time limit (flux-job(1)).

Without JOBID: the job this process runs in (``FLUX_JOB_ID``), else the
job that is the enclosing instance (its ``jobid`` and ``parent-uri``
attributes), as flux.job.timeleft finds it.  A job that has ended or
run out of time has 0 left; one without a time limit has UINT_MAX
(``infinity`` with ``-H``, which prints Flux Standard Duration).
"""
from __future__ import annotations

import math

import click

from cli.common import die, error_text
from cli.job_common import open_handle

UINT_MAX = 2**32 - 1


def format_timeleft(seconds: float, human: bool) -> str:
    """SECONDS as printed: whole seconds, or FSD with HUMAN."""
    from flux.util.fsd import fsd

    if math.isinf(seconds):
        # RFC 23 names an unlimited duration "infinity"; flux-core prints UINT_MAX
        return "infinity" if human else str(UINT_MAX)
    whole = max(0, int(seconds))
    return fsd(float(whole)) if human else str(whole)


@click.command("timeleft", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-H", "--human", is_flag=True, help="Print Flux Standard Duration")
@click.argument("jobid", required=False)
def command(human: bool, jobid: str | None) -> None:
    """Print the seconds left before JOBID (or the current job) reaches its time limit."""
    from flux.job.timeleft import job_timeleft, timeleft

    h = open_handle("job")
    try:
        seconds = timeleft(h) if jobid is None else job_timeleft(h, jobid)
    except OSError as exc:
        die("job", error_text(exc))
    click.echo(format_timeleft(seconds, human))
