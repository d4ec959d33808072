"""flux submit: enqueue a job (or ``--cc`` copies of it) and print the job ids.

Options are flux-mini(1)'s (see ``cli/submitopts.py``), plus those of
CLI plugins (``flux.cli.plugin``); the jobspec is ``JobspecV1.from_submit``'s.  ``--cc``/``--bcc
IDSET`` submit one copy per id (``{cc}`` in arguments becomes the id;
``--cc`` also sets FLUX_JOB_CC in the job's environment).  ``--wait``
waits for every job and exits with the largest job exit code; ``--watch``
also copies the jobs' output; ``--progress`` draws a progress bar on
stderr (``--jps`` adds jobs per second).  ``--dry-run`` prints the
jobspec (one line per copy) instead of submitting.
"""
from __future__ import annotations

import sys
from typing import Any

import click

from cli.common import die
from cli.submitopts import SubmitArgs, SubmitCommand, build_jobspec, submission_options

_CTX = {"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}


def _cc_ids(cc: str | None, bcc: str | None) -> tuple[list[int] | None, bool]:
    if cc is not None and bcc is not None:
        raise click.UsageError("Do not specify both --cc and --bcc")
    text = cc if cc is not None else bcc
    if text is None:
        return None, False
    from flux.idset import IDset

    try:
        ids = IDset(text).expand()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--cc'" if cc else "'--bcc'") from None
    if not ids:
        raise click.BadParameter(f"empty idset '{text}'", param_hint="'--cc'")
    return ids, cc is not None


def _jobspecs(args: SubmitArgs, ids: list[int] | None, set_cc: bool, registry: Any) -> Any:
    """Jobspec dicts to submit: built once unless ``{cc}`` must be substituted."""
    from cli.job_submit import copies

    if ids is not None and args.uses_cc():
        for cc in ids:
            jobspec = build_jobspec(args.with_cc(cc), registry).jobspec
            yield from copies(jobspec, [cc], set_cc)
        return
    yield from copies(build_jobspec(args, registry).jobspec, ids, set_cc)


@click.command("submit", cls=SubmitCommand, prog="submit", context_settings=_CTX)
@submission_options
@click.option("--cc", metavar="IDSET", default=None,
              help="Submit one copy per id in IDSET, setting FLUX_JOB_CC={cc}")
@click.option("--bcc", metavar="IDSET", default=None,
              help="Like --cc, without setting FLUX_JOB_CC")
@click.option("--quiet", is_flag=True, help="Do not print job ids")
@click.option("--wait", is_flag=True, help="Wait for all jobs to complete")
@click.option("--watch", is_flag=True, help="Copy the jobs' output (implies --wait)")
@click.option("--progress", is_flag=True, help="Show a progress bar on stderr")
@click.option("--jps", is_flag=True, help="With --progress, show jobs per second")
@click.argument("command_", metavar="COMMAND...", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def command(ctx: click.Context, cc: str | None, bcc: str | None, quiet: bool, wait: bool,
            watch: bool, progress: bool, jps: bool, command_: tuple[str, ...],
            **_options: Any) -> None:
    """Submit COMMAND as a job and print its job id."""
    import orjson

    ids, set_cc = _cc_ids(cc, bcc)
    if not command_:
        raise click.UsageError("job command and arguments are missing")
    registry, _options = ctx.command.plugins(ctx)
    try:
        args = SubmitArgs.from_click(ctx, command_)
        if ctx.params["dry_run"]:
            for jobspec in _jobspecs(args, ids, set_cc, registry):
                sys.stdout.write(orjson.dumps(jobspec).decode() + "\n")
            return
        specs = _jobspecs(args, ids, set_cc, registry)
        first = next(specs)
    except (ValueError, TypeError, OSError) as exc:
        die("submit", str(exc))
    from cli.job_common import open_handle
    from cli.job_submit import Submitter

    def all_specs() -> Any:
        yield first
        yield from specs

    total = len(ids) if ids is not None else 1
    wait = wait or watch
    bar = None
    if progress and not wait:
        # with --wait the watcher draws the bar (jobs' states, not submissions)
        from cli.job_progress import ProgressBar

        bar = ProgressBar()
    h = open_handle("submit")
    jobids: list[Any] = []
    errors: list[str] = []
    out = sys.stdout

    def on_result(jobid: Any, exc: OSError | None) -> bool:
        if exc is not None:
            errors.append(exc.strerror or str(exc))
            return False
        jobids.append(jobid)
        if not quiet:
            if bar is not None:
                bar.clear()
            out.write(jobid.f58 + "\n")
        if bar is not None and not wait:
            from cli.job_progress import render_submit

            bar.update(render_submit(len(jobids), total, bar.elapsed(), jps, fill=bar.fill))
        return True

    try:
        Submitter(h, args.urgency, args.flags).submit_all(all_specs(), on_result)
    except (ValueError, TypeError, OSError) as exc:
        die("submit", exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
    out.flush()
    if bar is not None and not wait:
        from cli.job_progress import render_submit

        bar.finish(render_submit(len(jobids), total, bar.elapsed(), jps, fill=bar.fill))
    for text in dict.fromkeys(errors):
        click.echo(f"flux-submit: {text}", err=True)
    code = 1 if errors else 0
    if wait and jobids:
        from flux.job.watcher import watch_jobs

        code = max(code, watch_jobs(h, jobids, watch=watch, labelio=args.label_io,
                                    progress=progress, jps=jps))
    sys.exit(code)
