"""Submit a job and follow it to its end, as ``flux run`` does (without click).

``cli/cmd_run.py`` is the command; ``cli/main.py`` uses this directly for
the plain form ``flux run COMMAND...`` (no options), which is what scripts
run in loops and where click's import would be most of the cost.
"""
from __future__ import annotations

import sys
from typing import Any, NoReturn

from cli.submitargs import SubmitArgs


def submit_and_follow(args: SubmitArgs, jobspec: Any, verbose: int = 0,
                      stdin_ranks: str = "all", wait_event: str | None = None) -> NoReturn:
    """Submit JOBSPEC with ARGS' urgency and flags, follow it, exit with its exit code
    (our stdin goes to task STDIN_RANKS, the others' is closed; WAIT_EVENT: the
    main eventlog is followed only up to that event, as ``flux job attach -w``)."""
    from cli.common import die
    from cli.job_common import open_handle, rpc_error_text
    from cli.job_follow import attach
    from cli.job_submit import Submitter

    h = open_handle("run")
    try:
        jobid = Submitter(h, args.urgency, args.flags).submit(jobspec).get_id()
    except OSError as exc:
        die("run", rpc_error_text(exc))
    if verbose:
        sys.stdout.flush()
        sys.stderr.write(f"jobid: {jobid.f58}\n")
        sys.stderr.flush()
    from cli.job_terminal import attach_terminal, is_terminal, wants_terminal

    if args.input is None and wants_terminal(jobspec) and is_terminal(0):
        # -o pty.interactive: our terminal, raw, is the job's (ctrl-C reaches its
        # foreground, the window size follows), as flux alloc does
        code = attach_terminal(h, jobid, show_events=verbose >= 2, prog="run")
    else:
        code = attach(h, jobid, "run", show_events=verbose >= 2, show_exec=verbose >= 3,
                      label_io=args.label_io, stdin=args.input is None,
                      stdin_ranks=stdin_ranks, wait_event=wait_event)
    exit_now(code)


def exit_now(code: int) -> NoReturn:
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
