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
then runs until it is canceled or its time limit comes.

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

import os
import signal
import sys
import time
from typing import Any

import click

from cli.common import die
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
    terminal = _is_terminal(0) and not bg
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
    if verbose:
        click.echo(f"jobid: {jobid.f58}", err=True)
    if bg:
        sys.exit(wait_ready(h, jobid))
    if terminal:
        sys.exit(attach_terminal(h, jobid, show_events=verbose >= 2))
    from cli.job_follow import attach

    sys.exit(attach(h, jobid, "alloc", show_events=verbose >= 2, stdin_ranks="0"))


def wait_ready(h: Any, jobid: Any, interval: float = 0.1) -> int:
    """``--bg``: print JOBID once its instance has recorded its URI in the job (its rank
    0 does so when the instance is up: ready for jobs); 1 if the job ends first."""
    from flux.job.list import job_list_id

    while True:
        try:
            job = job_list_id(h, jobid, ["state", "annotations", "result"]).get_job()
        except OSError as exc:
            die("alloc", f"{jobid.f58}: {exc.strerror or exc}")
        uri = ((job.get("annotations") or {}).get("user") or {}).get("uri")
        if uri:
            sys.stdout.write(jobid.f58 + "\n")
            sys.stdout.flush()
            return 0
        if job.get("state") == 64:       # INACTIVE
            die("alloc", f"{jobid.f58}: the job ended before its instance was ready")
        time.sleep(interval)


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _window_size(fd: int) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


def attach_terminal(h: Any, jobid: Any, fd: int = 0, *, show_events: bool = False) -> int:
    """Follow JOBID with our terminal FD in raw mode as the job's terminal; its exit code."""
    import termios
    import tty

    from cli.job_follow import JobFollower, StdinForwarder, follow_jobs

    class TerminalInput(StdinForwarder):
        """Our keystrokes to the job's rank 0 task, and our window size with them."""

        def start(self) -> None:
            if not self.started:
                self.resize()
            super().start()

        def resize(self) -> None:
            size = _window_size(self.fd)
            if size is None or self.stopped:
                return
            self.pending.append({"timestamp": time.time(), "name": "resize",
                                 "context": {"rank": "0", "rows": size[0], "cols": size[1]}})
            self._commit()

    forwarder = TerminalInput(h, int(jobid), "0", fd)

    def make(on_done: Any) -> list[Any]:
        follower = JobFollower(h, jobid, "alloc", show_events=show_events, on_done=on_done)
        follower.stdin = forwarder
        return [follower]

    def on_winch(*_args: Any) -> None:
        if forwarder.started:
            forwarder.resize()

    def on_end(*_args: Any) -> None:
        from flux.job.kill import cancel_async

        cancel_async(h, jobid, "flux alloc was signalled")

    watchers = [h.signal_watcher_create(signal.SIGWINCH, on_winch)]
    watchers += [h.signal_watcher_create(s, on_end) for s in (signal.SIGTERM, signal.SIGHUP)]
    saved = termios.tcgetattr(fd)
    stderr = sys.stderr
    try:
        tty.setraw(fd, termios.TCSANOW)
        # the job's terminal already ends its lines with CR LF; our own messages
        # (exceptions, the exit reason) need the CR the raw terminal no longer adds
        sys.stderr = _CRLF(stderr)
        for watcher in watchers:
            watcher.start()
        followers = follow_jobs(h, make)
    finally:
        for watcher in watchers:
            watcher.stop()
        sys.stderr = stderr
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    return followers[0].exit_code


class _CRLF:
    """A text stream writing LF as CR LF (for a terminal in raw mode)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(text.replace("\n", "\r\n"))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
