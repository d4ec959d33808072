"""flux job wait: wait for waitable jobs to finish (flux-job(1)).

``flux job wait JOBID``: exit 0 if the job succeeded, else print why and
exit 1.  Without JOBID: wait for any one waitable job and print its id.
``--all``: wait for every waitable job, printing each failure; exit 1 if
any failed.  No waitable job left (ECHILD) exits 2 when waiting for one.
"""
from __future__ import annotations

import errno
import sys

import click

from cli.common import die
from cli.job_common import FLUX_JOBID_ANY, open_handle, parse_jobid, rpc_error_text


def _wait(h, jobid: int) -> dict:
    return h.rpc("job-manager.wait", {"id": jobid}).get()


@click.command("wait", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-a", "--all", "all_", is_flag=True, help="Wait for all waitable jobs")
@click.option("-v", "--verbose", is_flag=True,
              help="With --all, also report jobs that completed successfully")
@click.argument("jobid", required=False)
def command(all_: bool, verbose: bool, jobid: str | None) -> None:
    """Wait for JOBID (or any/all waitable jobs) to complete."""
    from flux.job.JobID import JobID

    target = FLUX_JOBID_ANY
    if jobid is not None:
        try:
            target = int(parse_jobid(jobid))
        except ValueError:
            die("job", f'error parsing jobid: "{jobid}"')
        if all_:
            die("job", "jobid not supported with --all")
    h = open_handle("job")
    if all_:
        failed = False
        while True:
            try:
                resp = _wait(h, FLUX_JOBID_ANY)
            except OSError as exc:
                if exc.errno == errno.ECHILD:
                    break
                die("job", f"wait: {rpc_error_text(exc)}")
            if not resp["success"]:
                click.echo(f"{JobID(resp['id']).f58}: {resp.get('errstr', '')}", err=True)
                failed = True
            elif verbose:
                click.echo(f"{JobID(resp['id']).f58}: job completed successfully", err=True)
        sys.exit(1 if failed else 0)
    try:
        resp = _wait(h, target)
    except OSError as exc:
        die("job", rpc_error_text(exc), 2 if exc.errno == errno.ECHILD else 1)
    if target == FLUX_JOBID_ANY:
        click.echo(JobID(resp["id"]).f58)
    if not resp["success"]:
        die("job", resp.get("errstr") or "job failed")
