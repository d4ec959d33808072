"""flux run: submit a job and follow it to the end, exiting with its exit code.

Options are flux-mini(1)'s (``cli/submitopts.py``), plus those of CLI
plugins (``flux.cli.plugin``); the jobspec is ``JobspecV1.from_submit``'s
(plugins see ``prog`` "run").  The job's output is
copied to our stdout/stderr as it comes and our stdin is copied to the
job (unless ``--input`` gives it a file); ``-v`` prints the job id on
stderr, ``-vv`` also the job's events, ``-vvv`` its exec events too.
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
        jobspec = build_jobspec(args, registry).jobspec
    except (ValueError, TypeError, OSError) as exc:
        die("run", str(exc))
    if ctx.params["dry_run"]:
        sys.stdout.write(orjson.dumps(jobspec).decode() + "\n")
        return
    from cli.job_attach import attach
    from cli.job_common import open_handle, rpc_error_text
    from cli.job_submit import Submitter

    verbose = ctx.params["verbose"]
    h = open_handle("run")
    try:
        jobid = Submitter(h, args.urgency, args.flags).submit(jobspec).get_id()
    except OSError as exc:
        die("run", rpc_error_text(exc))
    if verbose:
        click.echo(f"jobid: {jobid.f58}", err=True)
    code = attach(h, jobid, "run", show_events=verbose >= 2, show_exec=verbose >= 3,
                  label_io=args.label_io, stdin=args.input is None)
    exit_now(code)


def exit_now(code: int) -> None:
    """Exit with CODE, skipping the interpreter's teardown when nothing needs it.

    Tearing down the modules a job follower imported takes longer than
    following a short job (``flux run true``), and nothing is left to do:
    our output is flushed here and the broker sees the connection close.
    Run in-process (stdio replaced, as click's test runner does), with
    exit handlers registered (a CLI plugin's) or other threads, this is
    ``sys.exit``.
    """
    import atexit
    import os

    ncallbacks = getattr(atexit, "_ncallbacks", None)
    threading = sys.modules.get("threading")
    if sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__ \
            and ncallbacks is not None and ncallbacks() == 0 \
            and (threading is None or threading.active_count() == 1):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass                 # as at a normal exit: the interpreter reports it
        else:
            os._exit(code)
    sys.exit(code)
