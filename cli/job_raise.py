"""flux job cancel/cancelall/kill/killall/raise/raiseall (flux-job(1)).

Single-job commands take job ids followed by an optional note (``--``
forces the split) and send one request per id, all in flight at once;
each failure prints ``flux-job: VERB ID: error`` and the exit status is 1
if any failed.  The ``*all`` commands send one job-manager request that
selects jobs by user and state; without ``-f`` it is a dry run that only
reports how many jobs matched.
"""
from __future__ import annotations

import signal
import sys
from typing import Any

import click

from cli.common import die
from cli.job_common import (
    END_OF_IDS,
    STATE_BITS,
    open_handle,
    parse_signal,
    parse_states,
    parse_userid,
    rpc_error_text,
    split_ids_and_note,
)

_CTX = {"help_option_names": ["-h", "--help"]}


class _NoteCommand(click.Command):
    """A command taking ``JOBID... [--] [NOTE...]``: click swallows ``--``, so it
    is kept as END_OF_IDS, and what follows is the note even if it reads as a job id."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            i = args.index("--")
            args = [*args[:i], "--", END_OF_IDS, *args[i + 1:]]
        return super().parse_args(ctx, args)


def _ids_and_note(verb: str, args: tuple[str, ...], message: str | None,
                  note_allowed: bool = True) -> tuple[list[Any], str | None]:
    ids, note = split_ids_and_note(args)
    if not ids:
        if args:
            die("job", f"invalid jobid: {args[0]}")
        raise click.UsageError(f"{verb}: at least one JOBID is required")
    if note is not None and not note_allowed:
        die("job", f"invalid jobid: {note.split()[0]}")
    if note is not None and message is not None:
        die("job", "Do not set note on command line and with --message")
    return ids, note if note is not None else message


def _send_each(verb: str, send: Any, ids: list[Any]) -> None:
    """SEND(h, jobid) for each id, all in flight; print each failure; exit 1 if any failed."""
    h = open_handle("job")
    futures = []
    for jobid in ids:
        try:
            futures.append((jobid, send(h, jobid)))
        except OSError as exc:   # refused before sending (bad argument)
            die("job", f"{verb}: {rpc_error_text(exc)}")
    failed = False
    for jobid, future in futures:
        try:
            future.get()
        except OSError as exc:
            click.echo(f"flux-job: {verb} {jobid.orig}: {rpc_error_text(exc)}", err=True)
            failed = True
    if failed:
        sys.exit(1)


def _selection(user: str | None, states: tuple[str, ...], default_states: int,
               refuse_inactive: str | None) -> tuple[int, int]:
    import os

    try:
        userid = parse_userid(user) if user is not None else os.getuid()
        mask = parse_states(states) if states else default_states
    except ValueError as exc:
        die("job", str(exc))
    if refuse_inactive and mask & STATE_BITS["inactive"]:
        die("job", refuse_inactive)
    return userid, mask


def _bulk(topic: str, body: dict[str, Any], verb: str) -> tuple[int, int]:
    h = open_handle("job")
    try:
        resp = h.rpc(topic, body).get()
    except OSError as exc:
        die("job", f"{verb}: {rpc_error_text(exc)}")
    return int(resp["count"]), int(resp.get("errors", 0))


def _report(count: int, dry_run: bool, done: str, quiet: bool) -> None:
    if count > 0 and dry_run:
        click.echo(f"flux-job: Command matched {count} jobs (-f to confirm)", err=True)
    elif count > 0:
        click.echo(f"flux-job: {done}", err=True)
    elif not quiet:
        click.echo("flux-job: Command matched 0 jobs", err=True)


_ACTIVE = 1 | 2 | 4 | 8 | 16 | 32


@click.command("cancel", cls=_NoteCommand, context_settings=_CTX)
@click.option("-m", "--message", metavar="NOTE", default=None, help="Set the cancel note")
@click.argument("args", nargs=-1, metavar="JOBID... [MESSAGE...]")
def cancel(message: str | None, args: tuple[str, ...]) -> None:
    """Cancel jobs (a fatal exception of type cancel)."""
    from flux.job.kill import cancel_async

    ids, note = _ids_and_note("cancel", args, message)
    _send_each("cancel", lambda h, jobid: cancel_async(h, jobid, note), ids)


@click.command("raise", cls=_NoteCommand, context_settings=_CTX)
@click.option("-s", "--severity", type=click.IntRange(0, 7), default=0, show_default=True,
              help="Exception severity, 0 (fatal) to 7")
@click.option("-t", "--type", "type_", metavar="TYPE", default="cancel", show_default=True,
              help="Exception type")
@click.option("-m", "--message", metavar="NOTE", default=None, help="Set the exception note")
@click.argument("args", nargs=-1, metavar="JOBID... [MESSAGE...]")
def raise_(severity: int, type_: str, message: str | None, args: tuple[str, ...]) -> None:
    """Raise an exception on jobs."""
    if not type_ or any(c.isspace() for c in type_) or "=" in type_:
        die("job", f"invalid exception type '{type_}'")
    from flux.job.kill import raise_async

    ids, note = _ids_and_note("raise", args, message)
    _send_each("raise", lambda h, jobid: raise_async(h, jobid, type_, severity, note), ids)


@click.command("kill", context_settings=_CTX)
@click.option("-s", "--signal", "signame", metavar="SIG", default="SIGTERM", show_default=True,
              help="Signal to send")
@click.argument("args", nargs=-1, metavar="JOBID...")
def kill(signame: str, args: tuple[str, ...]) -> None:
    """Send a signal to running jobs."""
    try:
        signum = parse_signal(signame)
    except ValueError as exc:
        die("job", f"kill: {exc}")
    from flux.job.kill import kill_async

    ids, _ = _ids_and_note("kill", args, None, note_allowed=False)
    _send_each("kill", lambda h, jobid: kill_async(h, jobid, signum), ids)


@click.command("cancelall", context_settings=_CTX)
@click.option("-u", "--user", metavar="USER", default=None,
              help="Target user, or 'all' (instance owner only)")
@click.option("-S", "--states", multiple=True, metavar="STATES",
              help="Target job states (default: active)")
@click.option("-f", "--force", is_flag=True, help="Confirm the command")
@click.option("-q", "--quiet", is_flag=True, help="Suppress output if no jobs match")
@click.argument("message", nargs=-1)
def cancelall(user: str | None, states: tuple[str, ...], force: bool, quiet: bool,
              message: tuple[str, ...]) -> None:
    """Cancel all matching jobs (a dry run unless -f)."""
    userid, mask = _selection(user, states, _ACTIVE, "Inactive jobs cannot be canceled")
    count, errors = _bulk("job-manager.raiseall",
                          {"dry_run": not force, "userid": userid, "states": mask,
                           "severity": 0, "type": "cancel", "note": " ".join(message)},
                          "cancelall")
    _report(count, not force, f"Canceled {count} jobs ({errors} errors)", quiet)


@click.command("raiseall", context_settings=_CTX)
@click.option("-s", "--severity", type=click.IntRange(0, 7), default=7, show_default=True,
              help="Exception severity, 0 (fatal) to 7")
@click.option("-u", "--user", metavar="USER", default=None,
              help="Target user, or 'all' (instance owner only)")
@click.option("-S", "--states", multiple=True, metavar="STATES",
              help="Target job states (default: active)")
@click.option("-f", "--force", is_flag=True, help="Confirm the command")
@click.argument("type_", metavar="TYPE")
@click.argument("message", nargs=-1)
def raiseall(severity: int, user: str | None, states: tuple[str, ...], force: bool,
             type_: str, message: tuple[str, ...]) -> None:
    """Raise an exception of TYPE on all matching jobs (a dry run unless -f)."""
    userid, mask = _selection(user, states, _ACTIVE,
                              "Exceptions cannot be raised on inactive jobs")
    count, errors = _bulk("job-manager.raiseall",
                          {"dry_run": not force, "userid": userid, "states": mask,
                           "severity": severity, "type": type_, "note": " ".join(message)},
                          "raiseall")
    _report(count, not force, f"Raised exception on {count} jobs ({errors} errors)", False)


@click.command("killall", context_settings=_CTX)
@click.option("-s", "--signal", "signame", metavar="SIG", default="SIGTERM", show_default=True,
              help="Signal to send")
@click.option("-u", "--user", metavar="USER", default=None,
              help="Target user, or 'all' (instance owner only)")
@click.option("-f", "--force", is_flag=True, help="Confirm the command")
@click.option("-q", "--quiet", is_flag=True, help="Suppress output if no jobs match")
def killall(signame: str, user: str | None, force: bool, quiet: bool) -> None:
    """Send a signal to all running jobs of a user (a dry run unless -f)."""
    try:
        signum = parse_signal(signame)
    except ValueError as exc:
        die("job", f"killall: {exc}")
    userid, _ = _selection(user, (), 0, None)
    count, errors = _bulk("job-manager.killall",
                          {"dry_run": not force, "userid": userid, "signum": signum},
                          "killall")
    what = signal.strsignal(signum) or f"Signal {signum}"
    _report(count, not force, f"{what} {count} jobs ({errors} errors)", quiet)
