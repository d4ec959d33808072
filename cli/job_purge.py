"""flux job purge: remove inactive jobs from the store (flux-job(1)).

Without ``-f`` only reports how many jobs would go.  Selection: jobs
inactive longer than ``--age-limit``, the oldest beyond ``--num-limit``,
or the job ids given.
"""
from __future__ import annotations

import click

from cli.common import die
from cli.job_common import open_handle, parse_jobid, rpc_error_text


@click.command("purge", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--age-limit", metavar="FSD", default=None,
              help="Purge jobs that became inactive longer ago than FSD")
@click.option("--num-limit", type=click.IntRange(min=0), default=None, metavar="COUNT",
              help="Purge the oldest inactive jobs until COUNT are left")
@click.option("-f", "--force", is_flag=True, help="Perform the irreversible purge")
@click.argument("ids", nargs=-1, metavar="[JOBID...]")
def command(age_limit: str | None, num_limit: int | None, force: bool,
            ids: tuple[str, ...]) -> None:
    """Purge inactive jobs (reports the count unless -f)."""
    from flux.util.fsd import parse_fsd

    body: dict = {"age_limit": -1.0, "num_limit": -1 if num_limit is None else num_limit,
                  "force": force}
    if age_limit is not None:
        try:
            body["age_limit"] = parse_fsd(age_limit)
        except ValueError as exc:
            die("job", f"--age-limit: {exc}")
    if ids:
        jobids = []
        for text in ids:
            try:
                jobids.append(int(parse_jobid(text)))
            except ValueError:
                die("job", f'error parsing jobid: "{text}"')
        body["ids"] = jobids
    h = open_handle("job")
    try:
        count = int(h.rpc("job-manager.purge", body).get()["count"])
    except OSError as exc:
        die("job", f"purge: {rpc_error_text(exc)}")
    if force:
        click.echo(f"purged {count} inactive jobs")
    else:
        click.echo(f"use --force to purge {count} inactive jobs")
