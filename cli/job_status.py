"""flux job status: wait for jobs to end, exit with the largest exit code (flux-job(1)).

Each job's result is folded from its main eventlog (flux.job.wait
``result_async``), so any job can be waited for, waitable or not.  A
job's exit code is that of its wait status (128+N for signal N), and a
job that a fatal exception ended counts at least ``--exception-exit-code``
(default 1), as in flux-core.
``--json`` prints each job's result object, one per line; ``-v`` says
on stderr how each job that did not end well ended (``-vv``: every job),
in Flux's words.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from cli.common import die, warn
from cli.job_common import open_handle, parse_jobid, rpc_error_text


def job_exit_code(result: dict[str, Any], exception_exit_code: int) -> tuple[int, str]:
    """(exit code, what ``-v`` says) for one job's result dict.

    As a shell would: the wait status's exit code, 128+N for signal N (none:
    0); a job a fatal exception ended counts at least ``exception_exit_code``.
    """
    status = result.get("waitstatus")
    fatal = bool(result.get("exception_occurred")) and result.get("exception_severity") == 0
    if isinstance(status, int) and os.WIFSIGNALED(status):
        code = 128 + os.WTERMSIG(status)
        why = f"job shell died by signal {os.WTERMSIG(status)}"
    else:
        code = os.WEXITSTATUS(status) if isinstance(status, int) else 0
        why = f"exited with exit code {code}"
    if fatal:
        if exception_exit_code > code:
            code = exception_exit_code
        if not (isinstance(status, int) and os.WIFSIGNALED(status)):
            why = f"exception type={result.get('exception_type')}"
    return code, why


@click.command("status", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Say on stderr how each job ended")
@click.option("-e", "--exception-exit-code", "exception_exit_code", type=int, default=1,
              show_default=True, metavar="N",
              help="Exit code for a job that ended with an exception and no exit code")
@click.option("-j", "--json", "as_json", is_flag=True,
              help="Print each job's result (from its eventlog) as JSON")
@click.argument("jobids", nargs=-1, metavar="JOBID...")
def command(verbose: int, exception_exit_code: int, as_json: bool,
            jobids: tuple[str, ...]) -> None:
    """Wait for each JOBID to end; exit with the largest exit code."""
    from flux.job.wait import result_async

    # flux-core exits 1 here, not with a usage error
    if not jobids:
        die("job", "at least one jobid is required")
    ids = []
    for text in jobids:
        try:
            ids.append(parse_jobid(text))
        except ValueError:
            die("job", f'error parsing jobid: "{text}"')
    h = open_handle("job")
    # every watch starts at once: the jobs end in any order
    futures = [(jobid, result_async(h, int(jobid))) for jobid in ids]
    if verbose and len(ids) > 1:
        warn("job", f"fetching status for {len(ids)} jobs")
    results = []
    for jobid, future in futures:
        try:
            result = future.get_dict()
        except OSError as exc:
            text = rpc_error_text(exc)
            # the service's text usually names the job already
            die("job", text if "job" in text else f"{jobid.orig}: {text}")
        results.append((jobid, result))
    if verbose and len(ids) > 1:
        warn("job", "all done.")
    worst = 0
    for jobid, result in results:
        code, why = job_exit_code(result, exception_exit_code)
        if as_json:
            import orjson

            click.echo(orjson.dumps(result).decode())
        # as Flux: a job that ended well is only mentioned with -vv
        if verbose > 1 or code != 0:
            warn("job", f"{jobid.orig}: {why}")
        worst = max(worst, code)
    sys.exit(worst)
