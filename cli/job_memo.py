"""flux job memo: attach KEY=VALUE notes to a job (flux-job(1)).

``flux job memo [--volatile] JOBID KEY=VALUE...``: values are JSON when
they parse as JSON, else strings; ``null`` removes a key.  They show up
in ``flux jobs -o '{user.KEY}'`` (annotations.user).  ``--volatile``
memos are not written to the job's eventlog.
"""
from __future__ import annotations

import json
from typing import Any

import click

from cli.common import die
from cli.job_common import JobIDParam, open_handle, rpc_error_text


def parse_memo(pairs: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE arguments -> the memo object (UsageError for a bad one)."""
    memo: dict[str, Any] = {}
    for arg in pairs:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise click.UsageError(f"memo must be KEY=VALUE, got {arg!r}")
        try:
            memo[key] = json.loads(value)
        except ValueError:
            memo[key] = value
    return memo


@click.command("memo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--volatile", is_flag=True, help="Do not record the memo in the job eventlog")
@click.argument("jobid", type=JobIDParam())
@click.argument("pairs", metavar="KEY=VALUE...", nargs=-1, required=True)
def command(volatile: bool, jobid: Any, pairs: tuple[str, ...]) -> None:
    """Post a memo (KEY=VALUE...) to JOBID."""
    memo = parse_memo(pairs)
    h = open_handle("job")
    try:
        h.rpc("job-manager.memo", {"id": int(jobid), "memo": memo,
                                   "volatile": volatile}).get()
    except OSError as exc:
        die("job", f"{jobid.orig}: {rpc_error_text(exc)}")
