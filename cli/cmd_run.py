"""flux run: submit a job and follow it to the end, exiting with its exit code.

Options are flux-mini(1)'s (``cli/submitopts.py``), plus those of CLI
plugins (``flux.cli.plugin``); the jobspec is ``JobspecV1.from_submit``'s
(plugins see ``prog`` "run").  The job's output is
copied to our stdout/stderr as it comes and our stdin is copied to the
job (unless ``--input`` gives it a file; ``--input=RANKS``, an idset: to those
task ranks only, the others' stdin closed); ``-v`` prints the job id on
stderr, ``-vv`` also the job's events, ``-vvv`` its exec events too;
``--wait-event=NAME`` is passed to the follower as ``flux job attach -w``.
ctrl-C warns, a second within two seconds cancels the job, ctrl-Z within
two seconds of a ctrl-C detaches; SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 are
forwarded to it.  ``--dry-run`` prints the jobspec instead.
"""
from __future__ import annotations

import sys
from typing import Any

import click

from cli.common import die
from cli.submitopts import SubmitArgs, SubmitCommand, build_jobspec, submission_options

_CTX = {"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}


@click.command("run", cls=SubmitCommand, prog="run", context_settings=_CTX)
@submission_options
@click.option("--wait-event", metavar="NAME", default=None,
              help="Stop following the job's eventlog at event NAME (flux job attach -w; "
                   "default finish): the output is still copied, the exit code is 1 "
                   "unless the job finished by then")
@click.argument("command_", metavar="COMMAND...", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def command(ctx: click.Context, command_: tuple[str, ...], **_options: Any) -> None:
    """Run COMMAND as a job, waiting for it to finish."""
    import orjson

    if not command_:
        raise click.UsageError("job command and arguments are missing")
    registry, _options = ctx.command.plugins(ctx)
    try:
        args = SubmitArgs.from_click(ctx, command_)
        stdin_ranks = _stdin_ranks(args)
        jobspec = build_jobspec(args, registry).jobspec
    except (ValueError, TypeError, OSError) as exc:
        die("run", str(exc))
    if ctx.params["dry_run"]:
        sys.stdout.write(orjson.dumps(jobspec).decode() + "\n")
        return
    from cli.run_job import submit_and_follow

    submit_and_follow(args, jobspec, ctx.params["verbose"], stdin_ranks,
                      wait_event=ctx.params["wait_event"])


def _stdin_ranks(args: SubmitArgs) -> str:
    """``--input=RANKS`` (flux-run(1): "the argument may specify an idset of task
    ranks in to which to direct standard input"): those ranks, and no input file."""
    value = args.input
    if value is None:
        return "all"
    if value != "all":
        from flux.idset import IDset

        try:
            IDset(value)
        except (ValueError, TypeError):
            return "all"            # a file name
    args.input = None
    return value
