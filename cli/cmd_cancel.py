"""flux cancel: cancel jobs by id, or every job matching a user and states.

``flux cancel JOBID...`` cancels those jobs (one failure line per job
that could not be canceled, exit 1 if any).  ``--all``, ``--user`` and
``--states`` select jobs instead (default: the caller's active jobs);
the job manager counts and cancels them in one request and we print
``flux-cancel: Canceled N jobs (E errors)``, or with ``--dry-run``
``flux-cancel: Would cancel N jobs``.  The instance owner may cancel
any job; a guest only their own.
"""
from __future__ import annotations

import os
import sys

import click

from cli.common import die
from cli.job_common import (
    STATE_BITS,
    VIRTUAL_STATES,
    JobIDParam,
    open_handle,
    parse_states,
    parse_userid,
    rpc_error_text,
)


@click.command("cancel", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--all", "all_", is_flag=True, help="Target all of the user's active jobs")
@click.option("-u", "--user", metavar="USER", default=None,
              help="Target jobs of USER, or 'all' (instance owner only)")
@click.option("-S", "-s", "--states", multiple=True, metavar="STATES",
              help="Target jobs in these states (default: active)")
@click.option("-n", "--dry-run", is_flag=True, help="Only report how many jobs would be canceled")
@click.option("-m", "--message", metavar="NOTE", default=None, help="Set the cancel note")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing if no jobs match")
@click.argument("jobids", nargs=-1, type=JobIDParam())
def command(all_: bool, user: str | None, states: tuple[str, ...], dry_run: bool,
            message: str | None, quiet: bool, jobids: tuple) -> None:
    """Cancel JOBIDs, or all matching jobs with --all/--user/--states."""
    selecting = all_ or user is not None or bool(states)
    if jobids and selecting:
        raise click.UsageError("Do not specify job ids with --all, --user, or --states")
    if not jobids and not selecting:
        raise click.UsageError("specify at least one JOBID, or --all, --user or --states")
    note = message or ""
    if jobids:
        h = open_handle("cancel")
        if dry_run:
            click.echo(f"flux-cancel: Would cancel {len(jobids)} jobs", err=True)
            return
        from flux.job.kill import cancel_async

        futures = [(jobid, cancel_async(h, jobid, note or None))
                   for jobid in dict.fromkeys(jobids)]
        failed = False
        for jobid, future in futures:
            try:
                future.get()
            except OSError as exc:
                click.echo(f"flux-cancel: {jobid.orig}: {rpc_error_text(exc)}", err=True)
                failed = True
        sys.exit(1 if failed else 0)
    try:
        userid = parse_userid(user) if user is not None else os.getuid()
        mask = parse_states(states) if states else VIRTUAL_STATES["active"]
    except ValueError as exc:
        die("cancel", str(exc))
    if mask & STATE_BITS["inactive"]:
        die("cancel", "Inactive jobs cannot be canceled")
    h = open_handle("cancel")
    try:
        resp = h.rpc("job-manager.raiseall",
                     {"dry_run": dry_run, "userid": userid, "states": mask, "severity": 0,
                      "type": "cancel", "note": note}).get()
    except OSError as exc:
        die("cancel", rpc_error_text(exc))
    count, errors = int(resp["count"]), int(resp.get("errors", 0))
    if count == 0:
        if not quiet:
            click.echo("flux-cancel: Command matched 0 jobs", err=True)
    elif dry_run:
        click.echo(f"flux-cancel: Would cancel {count} jobs", err=True)
    else:
        click.echo(f"flux-cancel: Canceled {count} jobs ({errors} errors)", err=True)
    sys.exit(1 if errors else 0)
