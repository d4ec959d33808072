"""flux submit: enqueue a job (or ``--cc`` copies of it) and print the job ids.

Options are flux-mini(1)'s (see ``cli/submitopts.py``), plus those of
CLI plugins (``flux.cli.plugin``); the jobspec is ``JobspecV1.from_submit``'s.  ``--cc``/``--bcc
IDSET`` submit one copy per id (``{cc}`` in arguments becomes the id;
``--cc`` also sets FLUX_JOB_CC in the job's environment).  ``--wait-event=NAME``
waits until every job has posted event NAME (``exec.NAME``: in its exec
eventlog; exit 1 if a job ended without it).  ``--wait``
waits for every job and exits with the largest job exit code; ``--watch``
also copies the jobs' output; ``--progress`` draws a progress bar on
stderr (``--jps`` adds jobs per second).  ``--log=FILE`` writes the job
ids and messages to FILE (``{cc}`` in it: a file per copy), and with one
such file for all, the ``--watch`` output too; ``--log-stderr=FILE``
takes the messages.  ``--dry-run`` prints the jobspec (one line per copy)
instead of submitting.  ``submit_requests`` is the pipeline ``flux bulksubmit`` shares.
"""
from __future__ import annotations

import errno
import itertools
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any, TextIO

import click

from cli.common import die
from cli.submitopts import SubmitArgs, SubmitCommand, build_jobspec, submission_options

_CTX = {"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}


def cc_ids(cc: str | None, bcc: str | None) -> tuple[list[int] | None, bool]:
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


def check_input(args: SubmitArgs) -> None:
    """``--input`` names a file here: an idset of task ranks is ``flux run``'s
    alone (flux-submit(1)); ValueError with Flux's words for one."""
    if args.input is None:
        return
    from flux.idset import IDset

    try:
        IDset(args.input)
    except (ValueError, TypeError, OSError):
        return
    raise ValueError("per-task input not supported for submit")


def copy_jobspecs(args: SubmitArgs, ids: list[int] | None, set_cc: bool, registry: Any) -> Any:
    """Jobspec dicts to submit: built once unless ``{cc}`` must be substituted."""
    from cli.job_submit import copies

    if ids is not None and args.uses_cc():
        for cc in ids:
            jobspec = build_jobspec(args.with_cc(cc), registry).jobspec
            yield from copies(jobspec, [cc], set_cc)
        return
    yield from copies(build_jobspec(args, registry).jobspec, ids, set_cc)


def log_name(template: str | None, cc: int | None) -> str | None:
    """A --log/--log-stderr file name for the copy CC (``{cc}``: the id, or nothing)."""
    if template is None:
        return None
    return template.replace("{cc}", "" if cc is None else str(cc))


class OutputFiles:
    """Where a submission's job ids and messages go: the terminal, or the
    ``--log`` / ``--log-stderr`` files (each name opened once, truncated)."""

    def __init__(self) -> None:
        self.files: dict[str, TextIO] = {}

    def _open(self, name: str) -> TextIO:
        fh = self.files.get(name)
        if fh is None:
            try:
                fh = self.files[name] = open(name, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                die("submit", f"{name}: {exc.strerror}")
        return fh

    def out(self, log: str | None) -> TextIO:
        return sys.stdout if log is None else self._open(log)

    def err(self, log: str | None, log_stderr: str | None) -> TextIO:
        if log_stderr is not None:
            return self._open(log_stderr)
        return sys.stderr if log is None else self._open(log)

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
        self.files.clear()


#: one job to submit: jobspec, urgency, flags, --log file, --log-stderr file
Request = tuple[dict[str, Any], int, int, "str | None", "str | None"]


def submit_requests(prog: str, requests: Iterator[Request], total: int, *, quiet: bool = False,
                    wait: bool = False, watch: bool = False, progress: bool = False,
                    jps: bool = False, label_io: bool = False,
                    wait_event: str | None = None) -> int:
    """Submit REQUESTS in a pipeline, print each job id (or log it), then with
    WAIT/WATCH follow the jobs; the exit code (``flux submit``, ``flux bulksubmit``).

    The first request has been checked already (its jobspec built): an error
    building a later one stops the submission with ``flux-PROG: error``.
    """
    from cli.job_common import open_handle
    from cli.job_submit import Submitter

    wait = wait or watch
    bar = None
    if progress and not wait:
        # with --wait the watcher draws the bar (jobs' states, not submissions)
        from cli.job_progress import ProgressBar

        bar = ProgressBar()
    h = open_handle(prog)
    jobids: list[Any] = []
    errors: list[tuple[str, TextIO]] = []
    files = OutputFiles()
    logs: deque[tuple[str | None, str | None]] = deque()
    log_names: set[tuple[str | None, str | None]] = set()

    def sent() -> Iterator[tuple[dict[str, Any], int, int]]:
        for jobspec, urgency, flags, log, log_stderr in requests:
            for name in (log, log_stderr):
                if name is not None:
                    files.out(name)  # each log file exists once its job is sent
            logs.append((log, log_stderr))
            log_names.add((log, log_stderr))
            yield jobspec, urgency, flags

    def on_result(jobid: Any, exc: OSError | None) -> bool:
        log, log_stderr = logs.popleft()
        if exc is not None:
            errors.append((exc.strerror or str(exc), files.err(log, log_stderr)))
            return False
        jobids.append(jobid)
        if not quiet:
            if bar is not None:
                bar.clear()
            files.out(log).write(jobid.f58 + "\n")
        if bar is not None and not wait:
            from cli.job_progress import render_submit

            bar.update(render_submit(len(jobids), total, bar.elapsed(), jps, fill=bar.fill))
        return True

    try:
        Submitter(h, 16, 0).submit_all(sent(), on_result)
    except (ValueError, TypeError, OSError) as exc:
        # (refused before it was sent: the request's own --log files say so)
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        stream = files.err(*(logs[-1] if logs else (None, None)))
        if stream is sys.stderr:
            sys.stdout.flush()
        stream.write(f"flux-{prog}: {text}\n")
        files.close()
        sys.exit(1)
    sys.stdout.flush()
    if bar is not None and not wait:
        from cli.job_progress import render_submit

        bar.finish(render_submit(len(jobids), total, bar.elapsed(), jps, fill=bar.fill))
    for text, stream in dict.fromkeys(errors):
        if stream is sys.stderr:
            sys.stdout.flush()
        stream.write(f"flux-{prog}: {text}\n")
        stream.flush()
    code = 1 if errors else 0
    if wait_event and jobids:
        code = max(code, _wait_event(h, prog, jobids, wait_event))
    if wait and jobids:
        from flux.job.watcher import watch_jobs

        # one --log for every job: the jobs' output goes there too
        stdout = stderr = None
        if len(log_names) == 1:
            log, log_stderr = next(iter(log_names))
            if log is not None or log_stderr is not None:
                stdout, stderr = files.out(log), files.err(log, log_stderr)
        code = max(code, watch_jobs(h, jobids, watch=watch, labelio=label_io,
                                    progress=progress, jps=jps, stdout=stdout, stderr=stderr))
    files.close()
    return code


def _wait_event(h: Any, prog: str, jobids: list[Any], name: str) -> int:
    """Wait until every job has posted event NAME (``exec.NAME``: in its exec
    eventlog); 1 if some job's log ended without it."""
    from flux.job.event import event_wait

    path, event = "eventlog", name
    if name.startswith("exec."):
        path, event = "guest.exec.eventlog", name[len("exec."):]
    code = 0
    for jobid in jobids:
        try:
            event_wait(h, int(jobid), event, eventlog=path, raiseJobException=False)
        except OSError as exc:
            why = f"the job ended without event {name}" if exc.errno == errno.ENODATA \
                else exc.strerror or str(exc)
            sys.stdout.flush()
            sys.stderr.write(f"flux-{prog}: {jobid.f58}: {why}\n")
            code = 1
    return code


@click.command("submit", cls=SubmitCommand, prog="submit", context_settings=_CTX)
@submission_options
@click.option("--cc", metavar="IDSET", default=None,
              help="Submit one copy per id in IDSET, setting FLUX_JOB_CC={cc}")
@click.option("--bcc", metavar="IDSET", default=None,
              help="Like --cc, without setting FLUX_JOB_CC")
@click.option("--quiet", is_flag=True, help="Do not print job ids")
@click.option("--wait", is_flag=True, help="Wait for all jobs to complete")
@click.option("--watch", is_flag=True, help="Copy the jobs' output (implies --wait)")
@click.option("--wait-event", "wait_event", metavar="NAME", default=None,
              help="Wait for each job's event NAME (exec.NAME: in its exec eventlog)")
@click.option("--progress", is_flag=True, help="Show a progress bar on stderr")
@click.option("--jps", is_flag=True, help="With --progress, show jobs per second")
@click.option("--log", metavar="FILE", default=None,
              help="Write job ids and messages to FILE instead of the terminal "
                   "({cc} in FILE: one file per copy)")
@click.option("--log-stderr", "log_stderr", metavar="FILE", default=None,
              help="Write messages to FILE instead of the terminal or --log's FILE")
@click.argument("command_", metavar="COMMAND...", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def command(ctx: click.Context, cc: str | None, bcc: str | None, quiet: bool, wait: bool,
            watch: bool, wait_event: str | None, progress: bool, jps: bool, log: str | None,
            log_stderr: str | None, command_: tuple[str, ...], **_options: Any) -> None:
    """Submit COMMAND as a job and print its job id."""
    import orjson

    ids, set_cc = cc_ids(cc, bcc)
    if not command_:
        raise click.UsageError("job command and arguments are missing")
    registry, _options = ctx.command.plugins(ctx)
    try:
        args = SubmitArgs.from_click(ctx, command_)
        check_input(args)
        if ctx.params["dry_run"]:
            for jobspec in copy_jobspecs(args, ids, set_cc, registry):
                sys.stdout.write(orjson.dumps(jobspec).decode() + "\n")
            return
        specs = copy_jobspecs(args, ids, set_cc, registry)
        first = next(specs)
    except (ValueError, TypeError, OSError) as exc:
        die("submit", str(exc))

    def requests() -> Iterator[Request]:
        # (the copies come in the order of IDS; {cc} in a log name is the copy's id)
        for jobspec, cc in zip(itertools.chain([first], specs), ids or [None]):
            yield (jobspec, args.urgency, args.flags, log_name(log, cc),
                   log_name(log_stderr, cc))

    total = len(ids) if ids is not None else 1
    sys.exit(submit_requests("submit", requests(), total, quiet=quiet, wait=wait, watch=watch,
                             progress=progress, jps=jps, label_io=args.label_io,
                             wait_event=wait_event))
