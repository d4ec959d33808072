"""flux job eventlog / flux job wait-event: print or wait on a job eventlog.

``eventlog`` prints the log once (``job-info.lookup``), or with
``-F/--follow`` every entry as it is appended until the log ends.
``wait-event`` watches the log until EVENT (optionally with a matching
context key, the COUNTth time) appears and prints it; it fails (exit 1)
when the log ends without it or the timeout passes.  ``-p`` picks another
log: ``exec`` (guest.exec.eventlog), ``output``, ``input`` or any key of
the job directory.
"""
from __future__ import annotations

import errno
import sys
from typing import Any

import click

from cli.common import die
from cli.optional_values import OptionalValueCommand
from cli.job_common import open_handle, parse_jobid, rpc_error_text
from cli.job_watch import WAITCREATE, Deadline, EventlogWatch, eventlog_path

_CTX = {"help_option_names": ["-h", "--help"]}


def _formatter_options(fn: Any) -> Any:
    options = [
        click.option("-f", "--format", "entry_format", default="text", show_default=True,
                     metavar="text|json", help="Output format"),
        click.option("-T", "--time-format", default="raw", show_default=True,
                     metavar="raw|iso|offset|human", help="Timestamp format"),
        click.option("-H", "--human", is_flag=True,
                     help="Human-readable output (text, human timestamps, color if a tty)"),
        click.option("-L", "--color", is_flag=False, flag_value="always", default="auto",
                     show_default=True, metavar="[WHEN]",
                     help="Colorize output: always (default if WHEN is omitted), never, auto"),
        click.option("-p", "--path", default="eventlog", show_default=True,
                     help="Eventlog name or key: exec, output, input, guest.exec.eventlog..."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def make_formatter(entry_format: str, time_format: str, human: bool, color: str) -> Any:
    """The EventLogFormatter the options ask for; exits 1 naming a bad value."""
    from flux.eventlog import EventLogFormatter

    if human:
        entry_format, time_format, color = "text", "human", "auto"
    if entry_format not in ("text", "json"):
        die("job", f"invalid format type '{entry_format}'")
    if time_format not in ("raw", "iso", "offset", "human", "reltime"):
        die("job", f"invalid time-format type '{time_format}'")
    if color not in ("always", "never", "auto"):
        die("job", f"invalid value: --color={color}")
    return EventLogFormatter(format=entry_format, timestamp_format=time_format, color=color)


def _jobid(text: str) -> Any:
    try:
        return parse_jobid(text)
    except ValueError:
        die("job", f'error parsing jobid: "{text}"')


def _not_found(jobid: Any, path: str, exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        if path == "eventlog":
            return f"job {jobid.orig} not found"
        return f"eventlog path {path} not found"
    if exc.errno == errno.EPERM:
        return f"job {jobid.orig}: {rpc_error_text(exc)}"
    return rpc_error_text(exc)


@click.command("eventlog", cls=OptionalValueCommand, context_settings=_CTX)
@_formatter_options
@click.option("-F", "--follow", is_flag=True, help="Print new entries until the log ends")
@click.argument("jobid")
def eventlog(entry_format: str, time_format: str, human: bool, color: str, path: str,
             follow: bool, jobid: str) -> None:
    """Print the eventlog of JOBID."""
    from cli.job_watch import parse_eventlog_text

    id_ = _jobid(jobid)
    formatter = make_formatter(entry_format, time_format, human, color)
    path = eventlog_path(path)
    h = open_handle("job")
    out = sys.stdout
    if follow:
        watch = EventlogWatch(h, int(id_), path, WAITCREATE if path != "eventlog" else 0)
        while True:
            try:
                entry = watch.next()
            except OSError as exc:
                die("job", _not_found(id_, path, exc))
            if entry is None:
                return
            out.write(formatter.format(entry) + "\n")
            out.flush()
    try:
        resp = h.rpc("job-info.lookup", {"id": int(id_), "keys": [path], "flags": 0}).get()
    except OSError as exc:
        die("job", _not_found(id_, path, exc))
    value = resp[path]
    if not isinstance(value, str):
        die("job", f"{path} is not an eventlog")
    try:
        entries = parse_eventlog_text(value)
    except (ValueError, TypeError) as exc:
        die("job", f"{path}: {exc}")
    out.write("".join(formatter.format(entry) + "\n" for entry in entries))


def context_matches(context: dict[str, Any], key: str, value: str) -> bool:
    """``-m KEY=VALUE``: the context value's compact JSON, or the string itself, equals VALUE."""
    if key not in context:
        return False
    import orjson

    item = context[key]
    if orjson.dumps(item).decode() == value:
        return True
    return isinstance(item, str) and item == value


@click.command("wait-event", cls=OptionalValueCommand, context_settings=_CTX)
@_formatter_options
@click.option("-t", "--timeout", metavar="DURATION", default=None,
              help="Fail after DURATION (FSD)")
@click.option("-m", "--match-context", metavar="KEY=VAL", default=None,
              help="Only match an event whose context has KEY=VAL")
@click.option("-c", "--count", type=int, default=1, show_default=True,
              help="Wait for the COUNTth matching event")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the matched event")
@click.option("-v", "--verbose", is_flag=True, help="Also print the events before the match")
@click.option("-W", "--waitcreate", is_flag=True, help="Wait for the eventlog to be created")
@click.argument("jobid")
@click.argument("event")
def wait_event(entry_format: str, time_format: str, human: bool, color: str, path: str,
               timeout: str | None, match_context: str | None, count: int, quiet: bool,
               verbose: bool, waitcreate: bool, jobid: str, event: str) -> None:
    """Wait for EVENT in the eventlog of JOBID."""
    from flux.util.fsd import parse_fsd

    id_ = _jobid(jobid)
    formatter = make_formatter(entry_format, time_format, human, color)
    path = eventlog_path(path)
    if count <= 0:
        die("job", "count must be > 0")
    seconds = None
    if timeout is not None:
        try:
            seconds = parse_fsd(timeout)
        except ValueError:
            die("job", f"invalid timeout '{timeout}'")
    key = value = None
    if match_context is not None:
        key, sep, value = match_context.partition("=")
        if not sep or not key:
            die("job", "must specify a context test as key=value")
    h = open_handle("job")
    watch = EventlogWatch(h, int(id_), path, WAITCREATE if waitcreate else 0)
    deadline = Deadline(seconds)
    matched = 0
    out = sys.stdout
    while True:
        try:
            entry = watch.next(deadline.remaining())
        except OSError as exc:
            if exc.errno == errno.ETIMEDOUT:
                die("job", f"wait-event timeout on event '{event}'")
            die("job", _not_found(id_, path, exc))
        if entry is None:
            die("job", f"event '{event}' never received")
        hit = entry.name == event and (key is None or context_matches(entry.context, key, value))
        text = formatter.format(entry)  # keeps the formatter's time origin at the first entry
        if hit:
            matched += 1
            if matched == count:
                if not quiet:
                    out.write(text + "\n")
                    out.flush()
                watch.cancel()
                return
        if verbose:
            out.write(text + "\n")
            out.flush()
