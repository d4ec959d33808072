"""flux pkill: cancel the jobs whose name matches a pattern (flux-pgrep(1)).

Jobs are selected exactly as ``flux pgrep`` selects them (same options,
expressions and code, from cli/cmd_pgrep.py; no ``-a``, as an inactive
job cannot be canceled) and each is canceled with a ``cancel`` exception
(flux.job.kill.cancel_async), all requests in flight at once.  A cancel
that fails prints ``flux-pkill: JOBID: cancel: ERROR``; then
``flux-pkill: Canceled N jobs``.  ``--wait`` waits for the canceled jobs
to become inactive first.  Exit 1 when nothing matched or a cancel failed.
"""
from __future__ import annotations

import sys
from typing import Any

import click

from cli.cmd_pgrep import (
    parse_expression,
    select_jobs,
    selection_options,
    selection_query,
)
from cli.common import warn
from cli.job_common import open_handle, rpc_error_text


def _settle(pending: list[tuple[Any, Any]], what: str) -> list[Any]:
    """Wait for every (job, future); warn of each failure; the jobs whose future succeeded."""
    done = []
    for job, future in pending:
        try:
            future.get()
        except OSError as exc:
            warn("pkill", f"{job.id.f58}: {what}: {rpc_error_text(exc)}")
        else:
            done.append(job)
    return done


@click.command("pkill", context_settings={"help_option_names": ["-h", "--help"]})
@selection_options(all_states=False)
@click.option("-w", "--wait", is_flag=True, help="Wait for the jobs to finish after canceling")
def command(all_users: bool, user: str | None, filters: tuple[str, ...],
            queues: tuple[str, ...], count: int, max_entries: int,
            expressions: tuple[str, ...], wait: bool) -> None:
    """Cancel the jobs whose name matches a pattern, or whose id is in JOBID1..JOBID2."""
    from flux.job.kill import cancel_async
    from flux.job.wait import result_async

    expression = parse_expression("pkill", expressions)
    query = selection_query("pkill", False, all_users, user, filters, queues, max_entries, [])
    h = open_handle("pkill")
    jobs = select_jobs("pkill", h, query, expression, count)
    if not jobs:
        sys.exit(1)
    canceled = _settle([(job, cancel_async(h, job.id)) for job in jobs], "cancel")
    failed = len(canceled) < len(jobs)
    if wait:
        waited = _settle([(job, result_async(h, job.id)) for job in canceled], "wait")
        failed = failed or len(waited) < len(canceled)
    n = len(canceled)
    warn("pkill", f"Canceled {n} job{'' if n == 1 else 's'}")
    sys.exit(1 if failed else 0)
