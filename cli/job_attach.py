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
from cli.job_follow import (  # noqa: F401  (re-exported: they lived here)
    JobFollower, StdinForwarder, attach, decode_output, exit_code_of, follow_jobs, label_lines)


@click.command("attach", context_settings={"help_option_names": ["-h", "--help"]})
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
@click.argument("jobid")
def command(show_events: bool, show_exec: bool, label_io: bool, quiet: bool, read_only: bool,
            stdin_ranks: str | None, unbuffered: bool, verbose: int, jobid: str) -> None:
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
    if stdin_ranks != "all" and not read_only:
        sys.exit(_attach_stdin_ranks(h, id_, stdin_ranks, show_events=show_events,
                                     show_exec=show_exec, label_io=label_io, quiet=quiet,
                                     label=jobid))
    sys.exit(attach(h, id_, "job", show_events=show_events, show_exec=show_exec,
                    label_io=label_io, quiet=quiet, read_only=read_only, label=jobid,
                    stdin_ranks=stdin_ranks))


class _StdinRanksFollower(JobFollower):
    """A follower for ``--stdin-ranks``: "the standard input for tasks not in
    RANKS will be closed" (flux-job(1)), once the job's tasks are known (exec's
    ``shell.start``); RANKS outside the job are dropped with a warning."""

    stdin_ranks = "all"

    def _on_exec(self, entry: Any) -> None:
        if entry.name == "shell.start" and self.stdin is not None:
            self._close_others(entry.context or {})
        super()._on_exec(entry)

    def _close_others(self, context: dict[str, Any]) -> None:
        from flux.idset import IDset

        ntasks = context.get("task-count")
        if not isinstance(ntasks, int):
            ntasks = _taskmap_size(context.get("taskmap"))
        if ntasks is None or self.stdin is None:
            return
        everyone = set(range(ntasks))
        wanted = set(IDset(self.stdin_ranks).expand())
        if not wanted <= everyone:
            adjusted = IDset(sorted(wanted & everyone)).encode() if wanted & everyone else ""
            sys.stderr.write(f"flux-job: warning: adjusting --stdin-ranks from "
                             f"{self.stdin_ranks} to {adjusted}\n")
            self.stdin.ranks = self.stdin_ranks = adjusted
        others = everyone - wanted
        if others:
            self.stdin._queue({"stream": "stdin", "rank": IDset(sorted(others)).encode(),
                               "eof": True})


def _taskmap_size(taskmap: Any) -> int | None:
    """The number of tasks in an RFC 34 task map (None if it is not one)."""
    try:
        return sum(int(nnodes) * int(ppn) * int(repeat)
                   for _nodeid, nnodes, ppn, repeat in taskmap["map"])
    except (KeyError, TypeError, ValueError):
        return None


def _attach_stdin_ranks(h: Any, jobid: Any, stdin_ranks: str, **options: Any) -> int:
    """``attach()`` with stdin for STDIN_RANKS only, the other tasks' closed."""
    def make(on_done: Any) -> list[JobFollower]:
        follower = _StdinRanksFollower(h, jobid, "job", on_done=on_done, **options)
        follower.stdin = StdinForwarder(h, int(jobid), stdin_ranks)
        follower.stdin_ranks = stdin_ranks
        return [follower]

    followers = follow_jobs(h, make, jobid, "job")
    return 0 if followers[0].detached else followers[0].exit_code


def _jobspec(h: Any, jobid: Any) -> Any:
    """JOBID's jobspec (None if it cannot be read: attach then as usual)."""
    from flux.job.kvslookup import job_kvs_lookup

    try:
        return job_kvs_lookup(h, jobid, keys=["jobspec"]).get("jobspec")
    except (OSError, AttributeError, TypeError, ValueError):
        return None
