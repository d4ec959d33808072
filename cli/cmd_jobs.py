"""flux jobs: list jobs (flux-jobs(1)).

By default the current user's pending and running jobs; ``-a`` adds
inactive jobs, ``-A`` lists every user's.  ``-f`` filters by state,
virtual state (pending, running, active) or result (completed, failed,
canceled, timeout).  ``-o`` takes a format string of ``flux jobs`` fields
(flux.job.info.JobInfoFormat) or a named format (``default``, ``long``,
``deps``, ``full`` and those of the ``flux-jobs.*`` config files; ``-o help``
lists them, ``FLUX_JOBS_FORMAT_DEFAULT`` replaces ``default``).
``--since`` keeps the jobs active since a time.  One ``job-list.list``
request fetches only the attributes the format needs; rows are rendered by
a per-field plan compiled once, so a thousand rows cost little more than
the request.

``-R`` lists jobs recursively: after the listing, each running job of the
user that is a Flux instance gets a blank line, its job id path
(``ƒA:``, ``ƒA/ƒB:``) and its own jobs (same filters and format), depth
first, down to ``-L N`` levels (``-L0`` is no recursion); ``--stats``
adds each instance's ``R running, C completed, F failed, P pending``
line under its path.  ``--recurse-all`` also descends into other users'
jobs.  The children's lists are fetched in parallel (``--threads``).
``instance.*`` fields are fetched from each running child instance, in
parallel too.  With ``--color``, a job that is a Flux instance is blue.

``--json`` prints the selected jobs' attributes instead of rows: one JSON
object ``{"jobs": [...]}`` holding each job's ``JobInfo.to_dict()`` (only
the attributes known now, so a pending job has no ``runtime`` or
``result``), or that job's object alone when one JOBID was given.  With
``-R`` a job that is a Flux instance gets its own jobs in a ``jobs``
array, and so on down.  ``--format`` is ignored; ``--stats`` and
``--stats-only`` are refused.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from string import Formatter
from typing import Any

import click

from cli.common import die, warn
from cli.optional_values import OptionalValueCommand
from cli.job_common import (
    FLUX_USERID_UNKNOWN,
    RESULT_BITS,
    STATE_BITS,
    VIRTUAL_STATES,
    parse_jobid,
    parse_userid,
    rpc_error_text,
)

DEFAULT_FORMAT = ("{id.f58:>12} {username:<8.8} {name:<10.10} {status_abbrev:>2.2} "
                  "{ntasks:>6} {nnodes:>6h} {runtime!F:>8h} {nodelist:h}")
NAMED_FORMATS = {
    "default": DEFAULT_FORMAT,
    "long": ("{id.f58:>12} ?:{queue:<8.8} {username:<8.8} {name:<10.10+} {status:>9.9} "
             "{ntasks:>6} {nnodes:>6h} {t_submit!d:%b%d %R::>12} {t_remaining!F:>12h} "
             "{runtime!F:>8h} {nodelist:h}"),
    "deps": ("{id.f58:>12} {username:<8.8} {name:<10.10+} {status:>9.9} "
             "{dependencies}"),
    "full": ("{id.f58:>12} ?:{queue:<8.8} {username:<8.8} {name:<10.10+} {status_abbrev:>2.2} "
             "{urgency:>3} {priority:>10h} {ntasks:>6} {ncores:>6h} {nnodes:>6h} "
             "{t_submit!D:>19} {runtime!F:>8h} {nodelist:h}"),
}

#: what ``--format=help`` says of each named format
FORMAT_DESCRIPTIONS = {
    "default": "Default flux-jobs format string",
    "long": "Extended flux-jobs format string",
    "deps": "Show job urgency, priority, and dependencies",
    "full": "Show urgency, priority, cores and submit time too",
}


def load_format(name: str, builtins: Mapping[str, str] | None = None,
                toolname: str = "flux-jobs",
                descriptions: Mapping[str, str] | None = None) -> str:
    """The format string of ``-o NAME``: a format (has ``{``) or a named format.

    Named formats are BUILTINS (default: ``flux jobs``'s, described by
    DESCRIPTIONS for ``help``) plus those of the
    ``flux-jobs.*`` config files (flux-jobs(1) CONFIGURATION); ``default``
    may be replaced by ``<TOOLNAME>_FORMAT_DEFAULT``.  ``help`` lists them
    and ``get-config=NAME`` prints NAME's config table, then exit 0.
    ValueError: ``--format: No such format NAME`` or a bad config file.
    """
    if "{" in name:
        return name
    from flux.util.config import UtilConfig

    formats = NAMED_FORMATS if builtins is None else builtins
    about = FORMAT_DESCRIPTIONS if descriptions is None else descriptions

    class _JobsConfig(UtilConfig):
        builtin_formats = {n: {"description": about.get(n, ""), "format": f}
                           for n, f in formats.items()}

        def validate(self, path: Any, conf: dict[str, Any]) -> None:
            for key, value in conf.items():
                if key != "formats":
                    raise ValueError(f"{path}: invalid key {key}")
                self.validate_formats(path, value)

    config = _JobsConfig("flux-jobs", toolname=toolname,
                         initial_dict={"formats": _JobsConfig.builtin_formats})
    try:
        loaded = config.load()
    except OSError as exc:      # an unreadable config file: say which, not a traceback
        raise ValueError(f"{exc.filename or 'config'}: {exc.strerror or exc}") from None
    return loaded.get_format_string(name)


# pending and running as flux-core counts them (NEW is neither)
_PENDING = VIRTUAL_STATES["pending"]
_RUNNING = VIRTUAL_STATES["running"]
_INACTIVE = STATE_BITS["inactive"]

# format field (before the first '.') -> job-list attributes it needs
_FIELD_ATTRS: dict[str, tuple[str, ...]] = {
    "id": (), "userid": ("userid",), "username": ("userid",), "user": ("annotations",),
    "status": ("state", "result"), "status_abbrev": ("state", "result"),
    "state": ("state",), "state_single": ("state",),
    "result": ("result",), "result_abbrev": ("result",),
    "runtime": ("t_run", "t_cleanup"), "t_remaining": ("expiration", "state"),
    "returncode": ("waitstatus", "result", "state"),
    "exception": ("exception_occurred", "exception_type", "exception_severity",
                  "exception_note"),
    "annotations": ("annotations",), "sched": ("annotations",),
    "uri": ("annotations",),
    # fetched from the child instance; whether it is one and running comes from these
    "instance": ("annotations", "state", "result"),
    # derived from several attributes, by state
    "contextual_info": ("state", "dependencies", "annotations", "nodelist", "urgency"),
    "contextual_time": ("state", "t_run", "t_cleanup", "duration"),
    "inactive_reason": ("state", "result", "waitstatus", "exception_occurred",
                        "exception_severity", "exception_type", "exception_note"),
}

# --color: a row's color by result
_COLORS = {"COMPLETED": "\033[01;32m", "FAILED": "\033[01;31m", "TIMEOUT": "\033[01;31m",
           "CANCELED": "\033[37m"}
_INSTANCE_COLOR = "\033[01;34m"  # a job that is a Flux instance (no result yet)
_RESET = "\033[0;0m"


def parse_filters(values: Iterable[str]) -> tuple[int, int]:
    """``-f`` values -> (states mask, results mask); ValueError names a bad one.

    A result alone also selects INACTIVE, so ``-f failed`` lists failed
    jobs and ``-f pending,failed`` pending plus failed ones.
    """
    states = results = 0
    for value in values:
        for name in value.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name in STATE_BITS:
                states |= STATE_BITS[name]
            elif name in VIRTUAL_STATES:
                states |= VIRTUAL_STATES[name] if name != "active" else _PENDING | _RUNNING | 1
            elif name in RESULT_BITS:
                results |= RESULT_BITS[name]
                states |= _INACTIVE
            else:
                raise ValueError(f"Invalid filter specified: {name}")
    return states, results


def attrs_for(fields: Iterable[str], color: bool) -> list[str]:
    """The job-list attributes a format's FIELDS need (besides ``id``)."""
    attrs: dict[str, None] = {}
    for field in fields:
        head = field.split(".", 1)[0]
        names = _FIELD_ATTRS.get(head, (head,))
        attrs.update(dict.fromkeys(names))
    if color:
        attrs["result"] = None
        attrs["annotations"] = None
    attrs.pop("id", None)
    return list(attrs)


def stats_line(stats: dict[str, Any], queue: str | None = None) -> tuple[str, int]:
    """The ``--stats`` summary line and the number of active jobs.

    ``N running, N completed, N failed, N pending``, then ``, N inactive
    purged`` once jobs were purged, as the hierarchies guide prints it
    ("failed" counts failed, canceled and timed-out jobs).  With QUEUE, that
    queue's counts (ValueError if it has none).
    """
    purged = int(stats.get("inactive_purged", 0))
    if queue is not None:
        by_name = {q.get("name"): q for q in stats.get("queues", [])}
        if queue not in by_name:
            raise ValueError(f"no stats available for queue {queue}")
        stats = by_name[queue]
        purged = int(stats.get("inactive_purged", 0))
    states = stats.get("job_states", {})
    pending = sum(int(states.get(s, 0)) for s in ("new", "depend", "priority", "sched"))
    running = sum(int(states.get(s, 0)) for s in ("run", "cleanup"))
    failed = sum(int(stats.get(k, 0)) for k in ("failed", "canceled", "timeout"))
    completed = int(stats.get("successful", 0))
    line = f"{running} running, {completed} completed, {failed} failed, {pending} pending"
    if purged:
        line += f", {purged} inactive purged"
    return line, pending + running


def instance_stats_line(stats: dict[str, Any]) -> str:
    """The ``--stats`` line of an instance under ``-R``: as ``stats_line``,
    without the purged count (as Flux prints it there)."""
    line = stats_line(stats)[0]
    return line.rsplit(", ", 1)[0] if line.endswith(" inactive purged") else line


class RowRenderer:
    """A format compiled once into per-field steps (same output as OutputFormat.format).

    Python's string.Formatter re-parses the format and walks it for every
    row; here each field becomes a C-level dotted attribute getter, a
    conversion (only if the field has one) and a format spec that goes
    straight to ``format()`` unless it uses the ``h``/``W``/``+``
    suffixes.  Mappings (not JobInfo objects) take the formatter's own
    field lookup.
    """

    def __init__(self, fmt: str, formatter: Any) -> None:
        from operator import attrgetter

        from flux.util.outputformat import UtilDatetime, empty_outputs

        self.formatter = formatter
        self._empty = frozenset(empty_outputs())
        self._datetime = UtilDatetime
        self.parts = []
        for text, field, spec, conv in Formatter().parse(fmt):
            if field is None:
                self.parts.append((text, None, None, None, None, None))
                continue
            spec = spec or ""
            path = field[2:] if field.startswith("0.") else field
            base = spec[:-1] if spec.endswith("+") else spec
            if spec.endswith(("W", "+")):
                kind = "formatter"
            elif base.endswith("h"):
                kind = "h"
                spec = base[:-1] + "s"
            else:
                kind = "plain"
            self.parts.append((text, field, attrgetter(path), conv, spec, kind))

    def render(self, obj: Any) -> str:
        formatter = self.formatter
        out = []
        for text, field, getter, conv, spec, kind in self.parts:
            if text:
                out.append(text)
            if field is None:
                continue
            try:
                value = getter(obj)
            except AttributeError:
                value, _ = formatter.get_field(field, (obj,), None)
            if conv:
                value = formatter.convert_field(value, conv)
            if kind == "plain":
                out.append(format(value, spec))
            elif kind == "h" and not isinstance(value, self._datetime):
                text = str(value)
                out.append(format("-" if text in self._empty else text, spec))
            else:
                out.append(formatter.format_field(value, spec if kind != "h" else spec[:-1] + "h"))
        return "".join(out)


def _fetch_list(h: Any, attrs: list[str], count: int, userid: int, states: int,
                results: int, name: str | None, queue: str | None,
                since: float = 0.0) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"max_entries": count, "attrs": attrs, "states": states,
                            "results": results}
    if since:
        body["since"] = since
    if userid != FLUX_USERID_UNKNOWN:    # no userid: every user's jobs
        body["userid"] = userid
    if name is not None:
        body["name"] = name
    if queue is not None:
        # -q takes a comma-separated list; several queues go as a constraint
        queues = [q for q in queue.split(",") if q]
        if len(queues) == 1:
            body["queue"] = queues[0]
        elif queues:
            body["constraint"] = {"queue": queues}
    return h.rpc("job-list.list", body).get()["jobs"]


def _fetch_ids(h: Any, ids: list[Any], attrs: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    futures = [(jobid, h.rpc("job-list.list-id", {"id": int(jobid), "attrs": attrs}))
               for jobid in dict.fromkeys(ids)]
    jobs, errors = [], []
    for jobid, future in futures:
        try:
            jobs.append(future.get()["job"])
        except OSError as exc:
            import errno

            # flux-core's texts (flux.job.list), printed without a prefix
            if exc.errno == errno.ENOENT:
                errors.append(f"JobID {jobid.orig} unknown")
            else:
                errors.append(f"rpc: {rpc_error_text(exc)}")
    return jobs, errors


def _parse_since(when: str) -> float:
    """``--since WHEN`` as a timestamp: ``-FSD`` before now, a date, or seconds.

    ValueError: a WHEN that is no time, or one in the future.
    """
    from flux.util.timeparse import parse_datetime

    try:
        since = parse_datetime(when).timestamp()
    except ValueError:
        try:
            since = float(when)
        except ValueError:
            raise ValueError(f"--since: invalid datetime: {when}") from None
    if since > time.time():
        raise ValueError(f"--since={when} appears to be in the future")
    return since


def _given(param: str) -> bool:
    """Whether PARAM was given on the command line (not its default)."""
    source = click.get_current_context().get_parameter_source(param)
    return source is not None and source.name == "COMMANDLINE"


def _user_id(all_users: bool, user: str | None) -> int:
    if all_users:
        return FLUX_USERID_UNKNOWN
    if user is None:
        return os.getuid()
    try:
        return parse_userid(user)
    except ValueError:
        raise ValueError(f"Invalid user {user} specified") from None


def _color_wanted(when: str) -> bool:
    if when == "always":
        return True
    if when == "never":
        return False
    return sys.stdout.isatty()


def _row_color(job: Any) -> str:
    result = job.result
    if result:
        return _COLORS.get(result, "")
    return _INSTANCE_COLOR if job.uri else ""


def render_rows(fmt: Any, jobs: list[Any], color: bool) -> list[str]:
    """The rows of JOBS in FMT (sorted by its sort keys; blank rows dropped)."""
    if fmt.sort_keys:
        fmt.sort_items(jobs)
    render = RowRenderer(fmt.get_format(include_sort_prefix=False), fmt.formatter()).render
    lines = []
    for job in jobs:
        line = render(job)
        if not line or line.isspace():
            continue
        if color:
            code = _row_color(job)
            if code:
                line = code + line + _RESET
        lines.append(line)
    return lines


def print_jobs(fmt: Any, jobs: list[Any], no_header: bool, color: bool, out: Any) -> Any:
    """Apply the format's ``?:``/``+:`` prefixes over JOBS, sort, print header and rows.

    Returns the format used for the rows (children of ``-R`` use it too).
    """
    newfmt = type(fmt)(fmt.filter(jobs, no_header=no_header))
    lines = []
    if not no_header:
        lines.append(newfmt.header())
    lines.extend(render_rows(newfmt, jobs, color))
    if lines:
        out.write("\n".join(lines) + "\n")
    return newfmt


def _error_text(exc: Exception) -> str:
    """EXC's text; a KeyError's without the quotes Python puts around it."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)


def wants_instance(fields: Iterable[str]) -> bool:
    """Whether a format shows ``instance.*`` fields (fetched from child instances)."""
    return any(field.startswith("instance.") for field in fields)


def fetch_instance_info(jobs: list[Any], threads: int | None = None) -> None:
    """Fetch ``instance`` for every running job that is a Flux instance, in parallel."""
    targets = [job for job in jobs if job.uri and job.state_single == "R"]
    if not targets:
        return
    if len(targets) == 1:
        targets[0].get_instance_info()
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda job: job.get_instance_info(), targets))


def print_json(fmt: Any, jobs: list[Any], single: bool, recursion: Recursion | None,
               out: Any) -> None:
    """``--json``: ``{"jobs": [...]}``, or with SINGLE (one JOBID asked for) that
    job's object alone (nothing if it was not found)."""
    import json

    entries = json_entries(fmt, jobs, recursion)
    if single:
        if entries:
            out.write(json.dumps(entries[0]) + "\n")
    else:
        out.write(json.dumps({"jobs": entries}) + "\n")
    out.flush()


class Recursion:
    """``-R``: list the jobs of each child instance below the listing, depth first."""

    def __init__(self, query: dict[str, Any], fields: list[str], max_level: int,
                 recurse_all: bool, stats: bool, threads: int | None, color: bool,
                 out: Any) -> None:
        self.query = query
        self.instance_fields = wants_instance(fields)
        self.max_level = max_level
        self.recurse_all = recurse_all
        self.stats = stats
        self.threads = threads
        self.color = color
        self.out = out
        self.uid = os.getuid()

    def descends_into(self, job: Any) -> bool:
        """A running Flux instance of this user (any user's with --recurse-all)."""
        return bool(job.uri) and job.status_abbrev == "R" and (
            self.recurse_all or job.userid == self.uid)

    def fetch(self, job: Any) -> tuple[Any, list[Any], dict[str, Any] | None]:
        """JOB's own jobs (and stats); none when it cannot be reached (not up
        yet, gone, or not ours), which is not an error."""
        from flux.core.handle import Flux
        from flux.job.info import JobInfo
        from flux.uri import JobURI

        try:
            h = Flux(JobURI(str(job.uri)).local)
        except (OSError, ValueError):
            return job, [], None
        try:
            stats_future = h.rpc("job-list.job-stats", {}) if self.stats else None
            raw = _fetch_list(h, **self.query)
            stats = stats_future.get() if stats_future is not None else None
        except (OSError, ValueError):
            return job, [], None
        finally:
            h.close()
        jobs = [JobInfo(entry) for entry in raw]
        if self.instance_fields:
            fetch_instance_info(jobs, self.threads)
        return job, jobs, stats

    def fetch_all(self, children: list[Any]) -> list[tuple[Any, list[Any], dict[str, Any] | None]]:
        """``fetch`` for each of CHILDREN, in parallel when there are several."""
        if len(children) <= 1:
            return [self.fetch(job) for job in children]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(self.fetch, children))

    def run(self, fmt: Any, jobs: list[Any], path: str = "", level: int = 0) -> None:
        if level >= self.max_level:
            return
        children = [job for job in jobs if self.descends_into(job)]
        if not children:
            return
        for job, child_jobs, stats in self.fetch_all(children):
            this_path = f"{path}/{job.id.f58}" if path else job.id.f58
            lines = ["", f"{this_path}:"]
            if stats is not None:
                lines.append(instance_stats_line(stats))
            lines.extend(render_rows(fmt, child_jobs, self.color))
            self.out.write("\n".join(lines) + "\n")
            self.run(fmt, child_jobs, this_path, level + 1)


def json_entries(fmt: Any, jobs: list[Any], recursion: Recursion | None = None,
                 level: int = 0) -> list[dict[str, Any]]:
    """``--json``: JOBS (sorted by FMT's sort keys, if any) as ``to_dict()`` dicts,
    with RECURSION the jobs of each child instance under its ``jobs`` key."""
    if fmt.sort_keys:
        fmt.sort_items(jobs)
    entries = [job.to_dict() for job in jobs]
    if recursion is None or level >= recursion.max_level:
        return entries
    where = {id(job): i for i, job in enumerate(jobs)}
    children = [job for job in jobs if recursion.descends_into(job)]
    for job, child_jobs, _stats in recursion.fetch_all(children):
        entries[where[id(job)]]["jobs"] = json_entries(fmt, child_jobs, recursion, level + 1)
    return entries


@click.command("jobs", cls=OptionalValueCommand,
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-a", "all_states", is_flag=True,
              help="List jobs in all states, including inactive")
@click.option("-A", "all_users", is_flag=True, help="List all jobs of all users (-a --user=all)")
@click.option("-n", "--no-header", "--suppress-header", "no_header", is_flag=True,
              help="Do not print the header")
@click.option("-u", "--user", metavar="USER", default=None,
              help="List jobs of USER (name or id), or 'all'")
@click.option("-c", "--count", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Limit output to N jobs (0: no limit)")
@click.option("-f", "--filter", "filters", metavar="STATE|RESULT", multiple=True,
              help="List jobs in these states or with these results (default pending,running)")
@click.option("-o", "--format", "fmt", metavar="NAME|FORMAT", default=None,
              help="Output format, or a named format ('help' lists them)")
@click.option("-q", "--queue", metavar="QUEUE[,...]", default=None,
              help="List jobs of these queues only")
@click.option("--name", metavar="NAME", default=None, help="List jobs named NAME only")
@click.option("--since", metavar="WHEN", default=None,
              help="List jobs active since WHEN (-FSD: that long ago, or a date); "
                   "implies -a without -f")
@click.option("--sort", metavar="[-]KEY,...", default=None,
              help="Sort by these fields ('-' for descending)")
@click.option("--color", "color", is_flag=False, flag_value="always", default="auto",
              metavar="[WHEN]", help="Color output: never, always (if WHEN is omitted), auto")
@click.option("-R", "--recursive", is_flag=True,
              help="List jobs recursively (into jobs that are Flux instances)")
@click.option("-L", "--level", type=click.IntRange(min=0), default=9999, metavar="N",
              help="With --recursive, only descend N levels")
@click.option("--recurse-all", is_flag=True,
              help="With --recursive, descend into the jobs of every user, not just yours")
@click.option("--threads", type=click.IntRange(min=1), default=None, metavar="N",
              help="Worker threads for fetching child instances' jobs (default: Python's)")
@click.option("--stats", is_flag=True, help="Print job statistics before the header")
@click.option("--stats-only", is_flag=True,
              help="Print only job statistics; exit 1 if there are no active jobs")
@click.option("--json", "json_out", is_flag=True,
              help="Print the jobs' attributes as JSON (a 'jobs' array, or one job's "
                   "object for a single JOBID); --format is ignored")
@click.argument("jobids", nargs=-1, metavar="[JOBID...]")
def command(all_states: bool, all_users: bool, no_header: bool, user: str | None, count: int,
            filters: tuple[str, ...], fmt: str | None, queue: str | None, name: str | None,
            since: str | None, sort: str | None, color: str, recursive: bool, level: int,
            recurse_all: bool, threads: int | None, stats: bool, stats_only: bool, json_out: bool,
            jobids: tuple[str, ...]) -> None:
    """List jobs (default: your pending and running jobs)."""
    from cli.job_common import open_handle

    if color not in ("never", "always", "auto"):
        raise click.BadParameter(f"'{color}' is not never, always or auto", param_hint="'--color'")
    if json_out and (stats or stats_only):
        die("jobs", "--json incompatible with --stats or --stats-only")
    if stats_only:
        h = open_handle("jobs")
        try:
            line, active = stats_line(h.rpc("job-list.job-stats", {}).get(), queue)
        except OSError as exc:
            die("jobs", rpc_error_text(exc))
        except ValueError as exc:
            die("jobs", str(exc))
        click.echo(line)
        sys.exit(0 if active else 1)
    if jobids and not recursive and (all_states or all_users or user is not None or filters
                                     or since is not None or name is not None
                                     or queue is not None or _given("count")):
        warn("jobs", "WARNING: Filtering options ignored with jobid list")
    ids = []
    for text in jobids:
        try:
            ids.append(parse_jobid(text))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'JOBID'") from None
    try:
        states, results = parse_filters(filters) if filters else (_PENDING | _RUNNING, 0)
        since_ts = _parse_since(since) if since is not None else 0.0
        if all_states and filters:
            warn("jobs", "WARNING: Both -a and --filter specified, ignoring -a")
        elif all_states or all_users or (since is not None and not filters):
            states |= _PENDING | _RUNNING | _INACTIVE
        userid = _user_id(all_users, user)
        from flux.job.info import JobInfoFormat

        # --json ignores --format (but follows --sort)
        fmt_text = "{id}" if json_out else load_format(fmt or "default")
        formatter = JobInfoFormat(fmt_text)
        if sort:
            formatter.set_sort_keys(sort)
    except (ValueError, KeyError) as exc:
        die("jobs", _error_text(exc))
    want_color = _color_wanted(color)
    recursive = recursive or recurse_all
    attrs = ["all"] if json_out else attrs_for(formatter.fields, want_color)
    if recursive:
        attrs.extend(a for a in ("annotations", "state", "result", "userid") if a not in attrs)
    query = {"attrs": attrs, "count": count, "userid": userid, "states": states,
             "results": results, "name": name, "queue": queue, "since": since_ts}
    h = open_handle("jobs")
    errors: list[str] = []
    try:
        stats_future = h.rpc("job-list.job-stats", {}) if stats else None  # in flight with the list
        truncated = False
        if ids:
            raw, errors = _fetch_ids(h, ids, attrs)
        else:
            # one more than -c N tells whether the listing was cut short
            raw = _fetch_list(h, **dict(query, count=count + 1 if count else 0))
            if count and len(raw) > count:
                raw, truncated = raw[:count], True
        if stats_future is not None:
            click.echo(stats_line(stats_future.get(), queue)[0])
    except OSError as exc:
        die("jobs", rpc_error_text(exc))
    except ValueError as exc:
        die("jobs", str(exc))
    # unknown JOBIDs are reported before the listing; only when none of the
    # JOBIDs is known does the command fail (and print nothing else)
    for text in errors:
        click.echo(text, err=True)
    if ids and not raw:
        sys.exit(1)
    from flux.job.info import JobInfo

    jobs = [JobInfo(job) for job in raw]
    if json_out:
        print_json(formatter, jobs, len(ids) == 1,
                   Recursion(query, [], level, recurse_all, False, threads, False, sys.stdout)
                   if recursive else None, sys.stdout)
        sys.exit(0)
    try:
        if wants_instance(formatter.fields):
            fetch_instance_info(jobs, threads)
        rowfmt = print_jobs(formatter, jobs, no_header, want_color, sys.stdout)
        if recursive:
            Recursion(query, formatter.fields, level, recurse_all, stats, threads,
                      want_color, sys.stdout).run(rowfmt, jobs)
    except (ValueError, KeyError) as exc:
        die("jobs", _error_text(exc))
    sys.stdout.flush()
    if truncated and not no_header:
        click.echo(f"warning: output truncated at {count} jobs.\n"
                   "Use --count to increase returned results or use filters to alter results.",
                   err=True)
