"""flux pgrep: list the jobs whose name matches a pattern (flux-pgrep(1)).

An expression is a regular expression searched for in the job name, or
a job id range ``JOBID1..JOBID2`` (both ends included, any RFC 19
encoding); a pattern that looks like a range can be forced to be a
pattern with a ``name:`` prefix (``name:fr..123``).  With both a
pattern and a range, a job must match both.  At most one of each.

Jobs are fetched with one ``job-list.list`` request (``--max-entries``
of them, the current user's active jobs unless ``-a``/``-A``/``-u``/
``-f``/``-q`` say otherwise), matched here in job-list order, and the
first ``--count`` matches are printed with a ``flux jobs`` format: by
default only their ids, without a header.  Exit 1 when nothing matched.

``flux pkill`` (cli/cmd_pkill.py) selects jobs with the same options
and code (``select_jobs``) and cancels them.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

import click

from cli.common import die
from cli.job_common import (
    FLUX_USERID_UNKNOWN,
    open_handle,
    parse_jobid,
    parse_userid,
    rpc_error_text,
)

#: pgrep's named formats: ids only by default, the others shared with ``flux jobs``
DEFAULT_FORMAT = "{id.f58}"
NAMED_FORMATS_ENV = "FLUX_PGREP_FORMAT_DEFAULT"
#: what ``-o help`` says of each named format
FORMAT_DESCRIPTIONS = {
    "default": "Default flux-pgrep format string",
    "full": "full flux-pgrep format string",
    "long": "Extended flux-pgrep format string",
    "deps": "Show job urgency, priority, and dependencies",
}
QUOTES = "'\""


def named_formats() -> dict[str, str]:
    from cli.cmd_jobs import NAMED_FORMATS

    formats = {"default": DEFAULT_FORMAT}
    formats.update((name, fmt) for name, fmt in NAMED_FORMATS.items() if name != "default")
    return formats


class Expression:
    """The expressions of a command line: a name pattern and/or a job id range.

    ValueError names what is wrong with an expression (a bad regular
    expression, a second pattern or range).
    """

    def __init__(self, args: Iterable[str]) -> None:
        self.pattern: re.Pattern[str] | None = None
        self.range: tuple[int, int] | None = None
        for arg in args:
            span = self._as_range(arg)
            if span is not None:
                if self.range is not None:
                    raise ValueError("only one jobid range can be provided")
                self.range = span
                continue
            if self.pattern is not None:
                raise ValueError("only one pattern can be provided")
            arg = arg.removeprefix("name:")
            try:
                self.pattern = re.compile(arg)
            except re.error as exc:
                raise ValueError(f"{arg}: {exc}") from None

    @staticmethod
    def _as_range(arg: str) -> tuple[int, int] | None:
        """``A..B`` with two valid job ids (and no ``:``) -> (A, B); else None."""
        if ":" in arg or ".." not in arg:
            return None
        parts = arg.split("..")
        if len(parts) != 2:
            return None
        try:
            low, high = (int(parse_jobid(part)) for part in parts)
        except (ValueError, TypeError):
            return None
        return low, high

    def match(self, job: Any) -> bool:
        if self.pattern is not None and not self.pattern.search(job.name or ""):
            return False
        return self.range is None or self.range[0] <= int(job.id) <= self.range[1]


def _split_commas(values: Iterable[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def selection_options(all_states: bool) -> Callable[[Any], Any]:
    """The options pgrep and pkill share (``-a`` only for pgrep), then EXPRESSION..."""

    def deco(fn: Any) -> Any:
        decorators = []
        if all_states:
            decorators.append(click.option(
                "-a", "all_states", is_flag=True,
                help="Include jobs in all states (--filter=pending,running,inactive)"))
        decorators += [
            click.option("-A", "all_users", is_flag=True,
                         help="Include jobs of all users (--user=all)"),
            click.option("-u", "--user", metavar="USER", default=None,
                         help="Only jobs of USER (name or id; 'all' for every user)"),
            click.option("-f", "--filter", "filters", metavar="STATE|RESULT", multiple=True,
                         help="Only jobs in these states or with these results "
                              "(comma-separated; default pending,running)"),
            click.option("-q", "--queue", "queues", metavar="QUEUE[,...]", multiple=True,
                         help="Only jobs in these queues"),
            click.option("-c", "--count", type=click.IntRange(min=0), default=1000,
                         show_default=True, metavar="N",
                         help="Stop after the first N matches (0: no limit)"),
            click.option("--max-entries", type=click.IntRange(min=0), default=1000,
                         show_default=True, metavar="N",
                         help="Consider at most N jobs (0: no limit)"),
            click.argument("expressions", nargs=-1, required=True, metavar="EXPRESSION..."),
        ]
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return deco


def parse_expression(prog: str, expressions: Iterable[str]) -> Expression:
    """The command line's expressions; a bad one is a usage error (exit 2)."""
    try:
        return Expression(expressions)
    except ValueError as exc:
        die(prog, f"expression error: {exc}", 2)


def selection_query(prog: str, all_states: bool, all_users: bool, user: str | None,
                    filters: Iterable[str], queues: Iterable[str], max_entries: int,
                    attrs: Iterable[str]) -> dict[str, Any]:
    """The ``job-list.list`` request for these options; a bad one is a usage error (exit 2)."""
    from cli.cmd_jobs import _INACTIVE, _PENDING, _RUNNING, parse_filters

    filters = list(filters)
    try:
        states, results = parse_filters(filters) if filters else (_PENDING | _RUNNING, 0)
    except ValueError as exc:
        die(prog, str(exc), 2)
    if all_states:
        states |= _PENDING | _RUNNING | _INACTIVE
    if all_users:
        userid = FLUX_USERID_UNKNOWN
    elif user is not None:
        try:
            userid = parse_userid(user)
        except ValueError as exc:
            die(prog, str(exc), 2)
    else:
        userid = os.getuid()
    body: dict[str, Any] = {"max_entries": max_entries,
                            "attrs": list(dict.fromkeys(["name", *attrs])),
                            "states": states, "results": results}
    if userid != FLUX_USERID_UNKNOWN:
        body["userid"] = userid
    names = list(dict.fromkeys(_split_commas(queues)))
    if len(names) == 1:
        body["queue"] = names[0]
    elif names:
        body["constraint"] = {"queue": names}
    return body


def select_jobs(prog: str, h: Any, query: dict[str, Any], expression: Expression,
                count: int) -> list[Any]:
    """The first COUNT (0: all) jobs of the QUERY's answer that EXPRESSION matches."""
    from flux.job.info import JobInfo

    try:
        raw = h.rpc("job-list.list", query).get()["jobs"]
    except OSError as exc:
        die(prog, rpc_error_text(exc))
    matched = []
    for entry in raw:
        job = JobInfo(entry)
        if expression.match(job):
            matched.append(job)
            if count and len(matched) == count:
                break
    return matched


@click.command("pgrep", context_settings={"help_option_names": ["-h", "--help"]})
@selection_options(all_states=True)
@click.option("-o", "--format", "fmt", metavar="NAME|FORMAT", default=None,
              help="Output format, or a named format: default (ids only), full, long, deps; "
                   "'help' lists them")
@click.option("-n", "--no-header", is_flag=True, help="Do not print the header line")
def command(all_states: bool, all_users: bool, user: str | None, filters: tuple[str, ...],
            queues: tuple[str, ...], count: int, max_entries: int,
            expressions: tuple[str, ...], fmt: str | None, no_header: bool) -> None:
    """List the jobs whose name matches a pattern, or whose id is in JOBID1..JOBID2."""
    from cli.cmd_jobs import attrs_for, print_jobs
    from flux.job.info import JobInfoFormat

    from cli.cmd_jobs import load_format

    if fmt is None:
        fmt = "default"
    try:
        # the named formats of flux jobs and its config files, but bare ids by default
        fmt_text = load_format(fmt, named_formats(), "flux-pgrep", FORMAT_DESCRIPTIONS)
    except ValueError as exc:
        die("pgrep", str(exc))
    if fmt == "default" and not os.environ.get(NAMED_FORMATS_ENV):
        no_header = True     # the default format is the bare ids
    try:
        formatter = JobInfoFormat(fmt_text)
    except (ValueError, KeyError) as exc:
        die("pgrep", f"Error in user format: {str(exc).strip(QUOTES)}", 2)
    expression = parse_expression("pgrep", expressions)
    query = selection_query("pgrep", all_states, all_users, user, filters, queues, max_entries,
                            attrs_for(formatter.fields, False))
    h = open_handle("pgrep")
    jobs = select_jobs("pgrep", h, query, expression, count)
    if not jobs:
        sys.exit(1)
    try:
        print_jobs(formatter, jobs, no_header, False, sys.stdout)
    except (ValueError, KeyError) as exc:
        die("pgrep", str(exc).strip("'\""))
    sys.stdout.flush()
