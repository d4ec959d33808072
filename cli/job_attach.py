"""flux job attach JOBID: follow a job until it ends, printing its output.

The follower itself (``JobFollower``, ``attach``) is ``cli/job_follow.py``,
shared with ``flux run`` and ``flux submit --wait``.
"""
from __future__ import annotations

import sys
from typing import Any

import click

from cli.common import die
from cli.job_common import parse_jobid
from cli.submitopts import OrderedCommand
from cli.job_follow import (  # noqa: F401  (re-exported: they lived here)
    JobFollower, StdinForwarder, attach, decode_output, exit_code_of, follow_jobs, label_lines)


# OrderedCommand: a short option's value may follow "=" (-w=start), as in flux-core
@click.command("attach", cls=OrderedCommand,
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-E", "--show-events", is_flag=True, help="Show job events on stderr")
@click.option("-X", "--show-exec", is_flag=True, help="Show exec events on stderr")
@click.option("-l", "--label-io", is_flag=True, help="Label output by rank")
@click.option("-q", "--quiet", is_flag=True, help="Suppress warnings on stderr")
@click.option("-r", "--read-only", is_flag=True,
              help="Do not forward stdin or signals to the job")
@click.option("-i", "--stdin-ranks", metavar="RANKS",
              help="Send stdin to task RANKS only (an idset, default all)")
# flux-job(1) documents these two; stdin is forwarded as it is read (never held
# for a whole line), and the shell's log messages carry no file:line for -v to add
@click.option("-u", "--unbuffered", is_flag=True,
              help="Do not buffer stdin (it never is: sent as it is read)")
@click.option("-v", "--verbose", count=True, help="Increase verbosity")
@click.option("-w", "--wait-event", metavar="EVENT", default="finish", show_default=True,
              help="Wait for EVENT before detaching from the eventlog")
@click.option("--show-status", is_flag=True,
              help="Show the status line at once (by default: while the job is pending "
                   "after 2s, when stdin, stdout and stderr are all terminals)")
@click.argument("jobid")
def command(show_events: bool, show_exec: bool, label_io: bool, quiet: bool, read_only: bool,
            stdin_ranks: str | None, unbuffered: bool, verbose: int, wait_event: str,
            show_status: bool, jobid: str) -> None:
    """Follow JOBID until it ends, printing its output; exit with its exit code."""
    from cli.job_common import open_handle

    if stdin_ranks is not None and read_only:
        die("job", "Do not use --stdin-ranks with --read-only")   # flux-core's words
    stdin_ranks = stdin_ranks or "all"
    try:
        id_ = parse_jobid(jobid)
    except ValueError:
        die("job", f'error parsing jobid: "{jobid}"')
    h = open_handle("job")
    if stdin_ranks != "all":
        from flux.idset import IDset

        try:
            stdin_ranks = IDset(stdin_ranks).encode()
        except ValueError:
            raise click.BadParameter(f"invalid idset {stdin_ranks!r}",
                                     param_hint="--stdin-ranks") from None
    from cli.job_terminal import attach_terminal, is_terminal, wants_terminal

    if not read_only and is_terminal(0) and wants_terminal(_jobspec(h, id_)):
        # a job with an interactive terminal (flux alloc's, -o pty.interactive): ours,
        # raw, becomes it, as flux-core's attach does
        sys.exit(attach_terminal(h, id_, show_events=show_events, prog="job"))
    sys.exit(attach(h, id_, "job", show_events=show_events, show_exec=show_exec,
                    label_io=label_io, quiet=quiet, read_only=read_only, label=jobid,
                    stdin_ranks=stdin_ranks, wait_event=wait_event,
                    show_status=True if show_status else None))


def _jobspec(h: Any, jobid: Any) -> Any:
    """JOBID's jobspec (None if it cannot be read: attach then as usual)."""
    from flux.job.kvslookup import job_kvs_lookup

    try:
        return job_kvs_lookup(h, jobid, keys=["jobspec"]).get("jobspec")
    except (OSError, AttributeError, TypeError, ValueError):
        return None
