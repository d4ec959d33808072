"""flux alloc: start a new Flux instance as a job and attach to it.

``flux alloc [OPTIONS] [COMMAND...]`` (flux-alloc(1)): the job is ``flux
broker`` on every node of the allocation (``JobspecV1.from_alloc`` then
``apply_options``, the sizes in slots as ``flux batch``'s,
``cli/submitopts.py``); the initial program of the new instance is
COMMAND, or an interactive shell without one.  ``flux alloc`` waits for
the job, copies its output here and our stdin to it, and exits with the
initial program's exit code.  ``-v`` prints the job id on stderr.
``--bg`` does not attach: it prints the job id once the instance is up
(its URI recorded in the job) and exits; without COMMAND the instance
then runs until it is canceled or its time limit comes.  With ``-v`` it
logs its progress on stderr (``JOBID: 0.000s: waiting for resources``,
``resources allocated``, ``waiting for instance``, ``ready``); ctrl-C
while it waits cancels the job (exit code 1), so no instance is left to
start later with nobody to use it.

On a terminal (our stdin is a tty) the job's initial program gets a
pseudo-terminal of its own (the ``pty.interactive`` shell option): our
terminal goes to raw mode, so every key (ctrl-C, ctrl-D, ctrl-Z too) is
copied as it is typed to the job, whose terminal makes of it a signal or
an EOF for the program in its foreground; our window size goes with it at
the start and on every SIGWINCH (``resize`` events in the job's input
log, shell/plugins/input.py).  Our terminal is restored when the job ends
or we are signalled; SIGTERM or SIGHUP here cancels the job.
"""
from __future__ import annotations

import sys
import time
from typing import Any

import click

from cli.common import die
from cli.job_terminal import attach_terminal, is_terminal
from cli.submitopts import (
    SubmitArgs,
    SubmitCommand,
    build_instance_jobspec,
    submission_options,
    submit_instance,
)

_CTX = {"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}
#: on a terminal: a pty for the initial program, and its output as it comes (an echo
#: or a prompt is not a whole line, and a keystroke's echo should not wait a batch)
_TERMINAL_OPTIONS = {"pty.interactive": 1, "output.stdout.buffer.type": "none",
                     "output.batch-timeout": 0.02}


@click.command("alloc", cls=SubmitCommand, prog="alloc", context_settings=_CTX)
@submission_options(kind="alloc")
@click.option("--bg", is_flag=True,
              help="Do not attach: print the job id once the new instance is ready for "
                   "jobs (it runs until canceled, its time limit, or COMMAND ends)")
@click.argument("command_", metavar="[COMMAND...]", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def command(ctx: click.Context, bg: bool, command_: tuple[str, ...], **_options: Any) -> None:
    """Start a new Flux instance as a job and run COMMAND (default: a shell) in it."""
    registry, _options = ctx.command.plugins(ctx)
    if ctx.params["nslots"] is None and ctx.params["nodes"] is None:
        raise click.UsageError("Number of slots to allocate must be specified (-n or -N)")
    terminal = is_terminal(0) and not bg
    try:
        args = SubmitArgs.from_click(ctx, command_)
        jobspec = build_instance_jobspec(
            args, shell_options=_TERMINAL_OPTIONS if terminal else None,
            broker_opts=["-Sbroker.rc2_none=1"] if bg and not command_ else (),
            registry=registry).jobspec
    except (ValueError, TypeError, OSError) as exc:
        die("alloc", exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
    submitted = submit_instance("alloc", args, jobspec, ctx.params["dry_run"])
    if submitted is None:
        return
    h, jobid = submitted
    verbose = ctx.params["verbose"]
    if bg:
        sys.exit(wait_ready(h, jobid, verbose=verbose > 0))
    if verbose:
        click.echo(f"jobid: {jobid.f58}", err=True)
    if terminal:
        sys.exit(attach_terminal(h, jobid, show_events=verbose >= 2))
    from cli.job_follow import attach

    sys.exit(attach(h, jobid, "alloc", show_events=verbose >= 2, stdin_ranks="0"))


def wait_ready(h: Any, jobid: Any, interval: float = 0.1, verbose: bool = False) -> int:
    """``--bg``: print JOBID once its instance has recorded its URI in the job (its rank
    0 does so when the instance is up: ready for jobs); 1 if the job ends first or
    we are interrupted (the job is canceled then)."""
    from flux.job.list import job_list_id

    t0 = time.time()

    def log(msg: str) -> None:
        if verbose:
            sys.stderr.write(f"{jobid.f58}: {time.time() - t0:6.3f}s: {msg}\n")
            sys.stderr.flush()

    log("waiting for resources")
    allocated = False
    try:
        while True:
            try:
                job = job_list_id(h, jobid, ["state", "annotations", "result"]).get_job()
            except OSError as exc:
                die("alloc", f"{jobid.f58}: {exc.strerror or exc}")
            state = job.get("state") or 0
            if not allocated and state >= 16:     # RUN or later: resources allocated
                allocated = True
                log("resources allocated")
                log("waiting for instance")
            uri = ((job.get("annotations") or {}).get("user") or {}).get("uri")
            if uri:
                log("ready")
                sys.stdout.write(jobid.f58 + "\n")
                sys.stdout.flush()
                return 0
            if state == 64:       # INACTIVE
                die("alloc", f"{jobid.f58}: the job ended before its instance was ready")
            time.sleep(interval)
    except KeyboardInterrupt:
        # a job left pending would start an instance later that nobody waits for
        sys.stderr.write(f"\r{jobid.f58}: Interrupt: canceling job\n")
        sys.stderr.flush()
        from flux.job import cancel

        try:
            cancel(h, jobid)
        except OSError as exc:
            die("alloc", f"{jobid.f58}: cancel: {exc.strerror or exc}")
        return 1
