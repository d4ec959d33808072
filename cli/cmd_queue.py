"""flux queue: list and control job queues (flux-queue(1), RFC 33).

``enable``/``disable`` control submission, ``start``/``stop`` scheduling,
``status`` shows both, ``list`` the queues with their limits, ``drain``
waits for no active jobs and ``idle`` for no running ones.  Output follows
the Administrator's Guide::

    batch: Job submission is enabled
    batch: Scheduling is started
    0 alloc requests queued

With one anonymous queue the ``NAME: `` prefix is left out.  Positional
arguments: a configured queue name first, if any, then the reason words
(``flux queue disable maintenance today``, ``flux queue stop batch down``).
The text builders are pure functions of the RPC payloads.
"""
from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from typing import Any

import click

from cli.common import die, handle_errors
from flux.queue import QueueList
from flux.util.config import UtilConfig

__all__ = ["command", "status_lines", "verbose_lines", "queue_rows", "split_args"]

LIST_FORMAT = ("{queuem:<8.8} ?:{parent:<8.8} {enabled:>2} {started:>2} "
               "{defaults.timelimit!F:>8h} {limits.timelimit!F:>8h} {limits.range.nnodes:>10} "
               "{limits.range.ncores:>10} {limits.range.ngpus:>10}")
#: flux-queue(1)'s named formats (``-o NAME``, ``-o help``)
LIST_FORMATS = {
    "default": {"description": "Default flux-queue list format string",
                "format": LIST_FORMAT},
    "policy": {"description": "flux-queue list with policy limits only",
               "format": LIST_FORMAT},
    "effective": {"description": "flux-queue list with limits capped by the queue's resources",
                  "format": ("{queuem:<8.8} ?:{parent:<8.8} {enabled:>2} {started:>2} "
                             "{defaults.timelimit!F:>8h} {limits.timelimit!F:>8h} "
                             "{limits.range.effective.nnodes:>10} "
                             "{limits.range.effective.ncores:>10} "
                             "{limits.range.effective.ngpus:>10}")},
    "nodes": {"description": "Show queue status plus all/up/allocated/free nodes",
              "format": ("{queuem:<8.8} ?:{parent:<8.8} {enabled:>2} {started:>2} "
                         "{resources.all.nnodes:>6} {resources.up.nnodes:>10} "
                         "{resources.down.nnodes:>10} {resources.allocated.nnodes:>11} "
                         "{resources.free.nnodes:>10}")},
}
_STATES = ("all", "free", "allocated", "up", "down")
_COUNTS = ("nnodes", "ncores", "ngpus")
LIST_HEADINGS = {
    "queue": "QUEUE", "queuem": "QUEUE", "parent": "PARENT",
    "submission": "SUBMIT", "scheduling": "SCHED",
    "enabled": "EN", "started": "ST", "enabled.ascii": "EN", "started.ascii": "ST",
    "defaults.timelimit": "TDEFAULT", "limits.timelimit": "TLIMIT",
    "limits.range.nnodes": "NNODES", "limits.range.ncores": "NCORES",
    "limits.range.ngpus": "NGPUS",
    "limits.min.nnodes": "MINNODES", "limits.max.nnodes": "MAXNODES",
    "limits.min.ncores": "MINCORES", "limits.max.ncores": "MAXCORES",
    "limits.min.ngpus": "MINGPUS", "limits.max.ngpus": "MAXGPUS",
    **{f"limits.range.effective.{k}": k.upper() for k in _COUNTS},
    **{f"resources.{state}.{k}": k[1:].upper() + ("" if state == "all" else f":{state.upper()}")
       for state in _STATES for k in _COUNTS},
}
YES, NO = "\u2714", "\u2717"


def _prefix(name: str | None) -> str:
    return f"{name}: " if name else ""


def submission_line(name: str | None, status: Mapping[str, Any]) -> str:
    if status.get("enable", True):
        return f"{_prefix(name)}Job submission is enabled"
    reason = status.get("disable_reason")
    return f"{_prefix(name)}Job submission is disabled" + (f": {reason}" if reason else "")


def scheduling_line(name: str | None, status: Mapping[str, Any]) -> str:
    if status.get("start", True):
        return f"{_prefix(name)}Scheduling is started"
    reason = status.get("stop_reason")
    return f"{_prefix(name)}Scheduling is stopped" + (f": {reason}" if reason else "")


def status_lines(name: str | None, status: Mapping[str, Any]) -> list[str]:
    """The two ``flux queue status`` lines of one queue."""
    return [submission_line(name, status), scheduling_line(name, status)]


def verbose_lines(stats: Mapping[str, Any]) -> list[str]:
    """The job manager counters ``-v`` adds (``job-manager.alloc-query``)."""
    return [f"{stats.get('queue_length', 0)} alloc requests queued",
            f"{stats.get('alloc_pending', 0)} alloc requests pending to scheduler",
            f"{stats.get('free_pending', 0)} free requests pending to scheduler",
            f"{stats.get('running', 0)} running jobs"]


def split_args(args: Sequence[str], queues: Sequence[str],
               option_queue: str | None) -> tuple[str | None, str | None]:
    """(queue, reason) from the positional words: a queue name first, then the reason."""
    words = list(args)
    queue = option_queue
    if queue is None and words and words[0] in queues:
        queue = words.pop(0)
    reason = " ".join(words) if words else None
    return queue, reason


class _Flag(str):
    """A check mark whose ``.ascii`` is the y/n form (fields ``enabled``, ``enabled.ascii``)."""

    ascii: str

    def __new__(cls, on: bool) -> "_Flag":
        flag = super().__new__(cls, YES if on else NO)
        flag.ascii = "y" if on else "n"
        return flag


class _Ranges(dict):  # type: ignore[type-arg]
    """The policy ranges by count; ``["effective"]`` holds the effective ones (a field
    path, kept out of the items so the ranges compare as a plain dict)."""

    effective: dict[str, str]

    def __missing__(self, key: str) -> Any:
        if key == "effective":
            return self.effective
        raise KeyError(key)


def _range(low: int, high: int) -> str:
    top = "inf" if high < 0 else str(high)
    return f"{max(low, 0)}-{top}"


def _counts(rset: Any) -> dict[str, int]:
    return {k: getattr(rset, k) for k in _COUNTS} if rset is not None else dict.fromkeys(_COUNTS, 0)


def queue_rows(names: Sequence[str | None], statuses: Mapping[str | None, Mapping[str, Any]],
               policy: Any, default: str | None,
               infos: Mapping[str | None, Any] | None = None) -> list[dict[str, Any]]:
    """The ``flux queue list`` fields of each queue, nested as the field paths read.

    INFOS (``flux.queue.QueueInfo`` by name) give each queue's parent and
    resources: ``resources.STATE.COUNT`` and the effective ranges, whose
    maximum is the smaller of the limit and what the queue has (flux-queue(1)).
    """
    rows = []
    for name in names:
        info = (infos or {}).get(name)
        resources = {state: _counts(info.resources[state] if info is not None else None)
                     for state in _STATES}
        status = statuses[name]
        enabled, started = status.get("enable", True), status.get("start", True)
        pol = policy.policy_for(name)
        limits = pol.limits
        lows = {k: max(limits.min.get(k, -1), 0) for k in ("nnodes", "ncores", "ngpus")}
        highs = {k: ("inf" if limits.max.get(k, -1) < 0 else limits.max[k])
                 for k in ("nnodes", "ncores", "ngpus")}
        ranges = _Ranges({k: _range(limits.min.get(k, -1), limits.max.get(k, -1))
                          for k in _COUNTS})
        ranges.effective = dict(ranges)
        if info is not None:
            for k in _COUNTS:
                top, have = limits.max.get(k, -1), resources["all"][k]
                ranges.effective[k] = f"{lows[k]}-{have if top < 0 else min(top, have)}"
        rows.append({
            "queue": name or "",
            "parent": (info.parent or "") if info is not None else "",
            "queuem": (name or "") + ("*" if name is not None and name == default else ""),
            "submission": "enabled" if enabled else "disabled",
            "scheduling": "started" if started else "stopped",
            "enabled": _Flag(enabled),
            "started": _Flag(started),
            "defaults": {"timelimit": pol.default_duration or 0.0},
            "limits": {"timelimit": limits.duration or 0.0,
                       "range": ranges,
                       "min": lows, "max": highs},
            "resources": resources,
        })
    return rows


def _handle() -> Any:
    import flux

    return flux.Flux()


def _queue_names(h: Any) -> list[str]:
    return list(h.rpc("job-manager.queue-list", {}).get().get("queues", []))


def _show(h: Any, names: Sequence[str | None], which: str, verbose: bool) -> None:
    for name in names:
        status = h.rpc("job-manager.queue-status", {"name": name} if name else {}).get()
        if which in ("submission", "both"):
            click.echo(submission_line(name, status))
        if which in ("scheduling", "both"):
            click.echo(scheduling_line(name, status))
    if verbose:
        for line in verbose_lines(h.rpc("job-manager.alloc-query", {}).get()):
            click.echo(line)


def _targets(h: Any, queue: str | None, all_: bool) -> list[str | None]:
    names = _queue_names(h)
    if not names:
        if queue is not None:
            raise OSError(errno.EINVAL, f"queue '{queue}' does not exist: no queues are "
                                        "configured")
        return [None]
    if all_:
        return list(names)
    if queue is None:
        if len(names) > 1:
            raise click.UsageError("several queues are configured: name one or use --all")
        return [names[0]]
    if queue not in names:
        raise OSError(errno.EINVAL, f"queue '{queue}' does not exist "
                                    f"(queues: {', '.join(names)})")
    return [queue]


_CTX = {"help_option_names": ["-h", "--help"]}


@click.group("queue", context_settings=_CTX)
def command() -> None:
    """List and control job queues."""


@command.command("status", context_settings=_CTX)
@click.option("-q", "--queue", "option_queue", metavar="NAME", help="Show only this queue")
@click.option("-a", "--all", "all_", is_flag=True, help="Show every queue (the default)")
@click.option("-v", "--verbose", is_flag=True, help="Also show job manager counters")
@click.argument("queue", required=False)
@handle_errors("queue")
def status_cmd(option_queue: str | None, all_: bool, verbose: bool, queue: str | None) -> None:
    """Show whether submission is enabled and scheduling started."""
    h = _handle()
    name = option_queue or queue
    names = _queue_names(h)
    if name is not None and not all_:
        targets = _targets(h, name, False)
    else:
        targets = list(names) or [None]
    _show(h, targets, "both", verbose)


def _change(action: str, flag: str, value: bool, which: str, option_queue: str | None,
            all_: bool, verbose: bool, quiet: bool, nocheckpoint: bool, message: str | None,
            args: Sequence[str]) -> None:
    h = _handle()
    names = _queue_names(h)
    queue, reason = split_args(args, names, option_queue)
    if message:
        reason = message if reason is None else f"{message} {reason}"
    if reason is not None and value:
        raise click.UsageError(f"{action} takes no reason: unknown queue '{args[0]}'")
    targets = _targets(h, queue, all_)
    payload: dict[str, Any] = {flag: value, "nocheckpoint": nocheckpoint}
    if all_:
        payload["all"] = True
    elif targets[0] is not None:
        payload["name"] = targets[0]
    if reason:
        payload["reason"] = reason
    topic = "job-manager.queue-enable" if flag == "enable" else "job-manager.queue-start"
    h.rpc(topic, payload).get()
    if not quiet:
        _show(h, targets, which, verbose)


def _change_command(action: str, flag: str, value: bool, which: str, helptext: str,
                    takes_reason: bool) -> None:
    params = [
        click.Option(["-q", "--queue", "option_queue"], metavar="NAME", help="Queue name"),
        click.Option(["-a", "--all", "all_"], is_flag=True, help="Every queue"),
        click.Option(["-v", "--verbose"], is_flag=True, help="Also show job manager counters"),
        click.Option(["--quiet"], is_flag=True, help="Print only errors"),
        click.Option(["--nocheckpoint"], is_flag=True,
                     help="Do not keep this state across a restart"),
        click.Option(["-m", "--message"], metavar="REASON", help="Why (shown to users)"),
        click.Argument(["args"], nargs=-1),
    ]
    if not takes_reason:
        params = [p for p in params if p.name not in ("nocheckpoint", "message")]

    @handle_errors("queue")
    def callback(option_queue: str | None = None, all_: bool = False, verbose: bool = False,
                 quiet: bool = False, nocheckpoint: bool = False, message: str | None = None,
                 args: tuple[str, ...] = ()) -> None:
        _change(action, flag, value, which, option_queue, all_, verbose, quiet, nocheckpoint,
                message, args)

    command.add_command(click.Command(action, params=params, callback=callback,
                                      help=helptext, context_settings=_CTX))


_change_command("enable", "enable", True, "submission", "Allow jobs to be submitted.", False)
_change_command("disable", "enable", False, "submission",
                "Refuse job submission, with a reason shown to submitters.", True)
_change_command("start", "start", True, "scheduling", "Start allocating resources to jobs.",
                False)
_change_command("stop", "start", False, "scheduling",
                "Stop allocating resources to jobs (they stay queued).", True)


@command.command("list", context_settings=_CTX)
@click.option("-q", "--queue", "queues", metavar="QUEUE,...", help="Only these queues")
@click.option("-n", "--no-header", is_flag=True, help="Leave out the column titles")
@click.option("-o", "--format", "fmt", metavar="FORMAT", help="Output format")
@handle_errors("queue")
def list_cmd(queues: str | None, no_header: bool, fmt: str | None) -> None:
    """List queues with their state, defaults and limits."""
    from flux.util.outputformat import OutputFormat
    from jobmgr.policy import parse_job_policy

    config_file = UtilConfig("flux-queue", subcommand="list",
                             initial_dict={"list": {"formats": LIST_FORMATS}})
    config_file.builtin_formats = {"list": LIST_FORMATS}
    try:
        fmt = config_file.load().get_format_string(fmt or "default")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    h = _handle()
    info = h.rpc("job-manager.queue-list", {}).get()
    names: list[str | None] = list(info.get("queues", [])) or [None]
    if queues:
        wanted = [q for q in queues.split(",") if q]
        unknown = [q for q in wanted if q not in names]
        if unknown:
            die("queue", f"unknown queue: {', '.join(unknown)}")
        names = [n for n in names if n in wanted]
    config = h.rpc("config.get").get() or {}
    policy = parse_job_policy(config)
    statuses = {name: h.rpc("job-manager.queue-status", {"name": name} if name else {}).get()
                for name in names}
    qlist = QueueList(h, [n for n in names if n] or None)
    infos = {name: qlist[name] for name in names}
    rows = queue_rows(names, statuses, policy, info.get("default"), infos)
    try:
        formatter = OutputFormat(fmt, headings=LIST_HEADINGS)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    formatter.print_items(rows, no_header=no_header)


def _wait(topic: str, timeout: str | None) -> Any:
    from flux.util.fsd import parse_fsd

    secs = -1.0
    if timeout is not None:
        try:
            secs = parse_fsd(timeout)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--timeout") from None
    h = _handle()
    future = h.rpc(topic, {})
    try:
        future.wait_for(secs)
    except OSError as exc:
        if exc.errno == errno.ETIMEDOUT:
            die("queue", f"{topic.split('.')[1]}: timeout waiting after {timeout}")
        raise
    return future.get()


@command.command("drain", context_settings=_CTX)
@click.option("--timeout", metavar="FSD", help="Give up after this long")
@handle_errors("queue")
def drain_cmd(timeout: str | None) -> None:
    """Wait until there are no active jobs."""
    _wait("job-manager.drain", timeout)


@command.command("idle", context_settings=_CTX)
@click.option("--timeout", metavar="FSD", help="Give up after this long")
@click.option("--quiet", is_flag=True, help="Do not print the pending job count")
@handle_errors("queue")
def idle_cmd(timeout: str | None, quiet: bool) -> None:
    """Wait until no job is running (pending jobs may remain)."""
    reply = _wait("job-manager.idle", timeout)
    if not quiet:
        pending = reply.get("pending", 0)
        click.echo(f"{pending} pending job{'s' if pending != 1 else ''}")
