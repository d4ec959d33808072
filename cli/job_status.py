"""flux job status: wait for jobs to end, exit with the largest exit code (flux-job(1)).

Each job's result is folded from its main eventlog (flux.job.wait
``result_async``), so any job can be waited for, waitable or not.  A
job's exit code is that of its wait status (128+N for signal N); a job
that ended with an exception and no wait status (canceled or refused
before it ran) counts as ``--exception-exit-code`` (default 1).
``--json`` prints each job's result object, one per line; ``-v`` says
on stderr how each job ended.
"""
from __future__ import annotations

import sys
from typing import Any

import click

from cli.common import die, warn
from cli.job_common import open_handle, parse_jobid, rpc_error_text


def job_exit_code(result: dict[str, Any], exception_exit_code: int) -> tuple[int, str]:
    """(exit code, why) for one job's result dict."""
    from cli.job_follow import exit_code_of

    if "waitstatus" in result:
        code, reason = exit_code_of(int(result["waitstatus"]))
        return code, reason or "completed successfully"
    if result.get("exception_occurred"):
        return exception_exit_code, "ended by an exception before it ran"
    # an inactive job has a wait status or a fatal exception; anything else failed
    return 1, "ended without a wait status"


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
    from flux.job.JobID import JobID
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
    worst = 0
    for jobid, future in futures:
        try:
            result = future.get_dict()
        except OSError as exc:
            text = rpc_error_text(exc)
            # the service's text usually names the job already
            die("job", text if "job" in text else f"{jobid.orig}: {text}")
        code, reason = job_exit_code(result, exception_exit_code)
        if as_json:
            import orjson

            click.echo(orjson.dumps(result).decode())
        if verbose:
            name = JobID(result["id"]).f58
            if result.get("exception_occurred"):
                note = result.get("exception_note") or ""
                warn("job", f"{name}: exception type={result.get('exception_type')}"
                            + (f" note={note}" if note else ""))
            warn("job", f"{name}: {reason}" + (f" (exit code {code})" if verbose > 1 else ""))
        worst = max(worst, code)
    sys.exit(worst)
