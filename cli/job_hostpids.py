"""flux job hostpids: ``HOST:PID`` of each task of a running job (flux-job(1)).

The pids are those the shells report when every task has started: exec
logs them in the ``shell.start`` event (``pids``, by task rank).  The
command waits for that event (``-t``: at most that long), then pairs each
task with the host of the node the task map puts it on (R's
``execution.nodelist``).  A job that ends before its tasks started, or
that has ended, is an error: its pids no longer name its tasks.
"""
from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import Any

import click

from cli.common import die, unescape
from cli.job_common import open_handle, parse_jobid, rpc_error_text

__all__ = ["command", "host_pids"]


def host_pids(pids: Sequence[int], nodeids: Sequence[int], hosts: Sequence[str],
              ranks: Sequence[int] | None = None) -> list[str]:
    """``HOST:PID`` for each task rank (in RANKS, default all), in rank order.

    ValueError names a rank the job does not have, or a task that did not start.
    """
    wanted = range(len(pids)) if ranks is None else ranks
    out = []
    for rank in wanted:
        if not 0 <= rank < len(pids):
            raise ValueError(f"task rank {rank} is not in the job (ranks 0-{len(pids) - 1})")
        if not pids[rank]:
            raise ValueError(f"task {rank} did not start")
        node = nodeids[rank] if rank < len(nodeids) else None
        host = hosts[node] if node is not None and node < len(hosts) else "?"
        out.append(f"{host}:{pids[rank]}")
    return out


def _shell_start(h: Any, jobid: Any, timeout: float | None) -> dict[str, Any]:
    """The context of JOBID's ``shell.start`` exec event, once it is logged."""
    from cli.job_watch import WAITCREATE, Deadline, EventlogWatch

    watch = EventlogWatch(h, int(jobid), "guest.exec.eventlog", WAITCREATE)
    deadline = Deadline(timeout)
    try:
        while True:
            try:
                entry = watch.next(deadline.remaining())
            except OSError as exc:
                if exc.errno == errno.ETIMEDOUT:
                    die("job", f"hostpids: timeout waiting for the tasks of {jobid.orig} "
                               "to start")
                if exc.errno == errno.ENOENT:
                    die("job", f"job {jobid.orig} not found")
                die("job", f"{jobid.orig}: {rpc_error_text(exc)}")
            if entry is None or entry.name in ("complete", "done"):
                die("job", f"job {jobid.orig} ended before its tasks started")
            if entry.name == "shell.start":
                return dict(entry.context)
    finally:
        watch.cancel()


@click.command("hostpids", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-d", "--delimiter", default=",", metavar="STRING",
              help='Output delimiter (default: ",")')
@click.option("-r", "--ranks", metavar="IDSET", help="Only the task ranks in IDSET")
@click.option("-t", "--timeout", metavar="DURATION",
              help="Give up after DURATION (FSD) if the tasks have not started")
@click.argument("jobid_arg", metavar="JOBID")
def command(delimiter: str, ranks: str | None, timeout: str | None, jobid_arg: str) -> None:
    """Print HOST:PID of each task of a running job (waiting for them to start)."""
    from flux.hostlist import Hostlist
    from flux.idset import IDset
    from flux.job.kvslookup import job_kvs_lookup
    from flux.util.fsd import parse_fsd
    from shell.pmi.mapping import decode_taskmap

    try:
        jobid = parse_jobid(jobid_arg)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="JOBID") from None
    try:
        wanted = None if ranks is None else IDset(ranks).expand()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--ranks'") from None
    try:
        seconds = None if timeout is None else parse_fsd(timeout)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--timeout'") from None
    h = open_handle("job")
    context = _shell_start(h, jobid, seconds)
    pids = context.get("pids")
    if not isinstance(pids, list) or not pids:
        die("job", f"hostpids: {jobid.orig}: its shells did not report task pids")
    try:
        import orjson

        nodeids = decode_taskmap(orjson.dumps(context.get("taskmap")).decode())
        data = job_kvs_lookup(h, jobid, ["R"]) or {}
    except (OSError, ValueError, TypeError) as exc:
        die("job", f"hostpids: {jobid.orig}: {exc}")
    from flux.job import get_job

    info = get_job(h, jobid) or {}
    if info.get("state") == "INACTIVE":
        die("job", f"hostpids: job {jobid.orig} has ended")
    nodelist = ((data.get("R") or {}).get("execution") or {}).get("nodelist")
    hosts = list(Hostlist(nodelist)) if nodelist else []
    try:
        pairs = host_pids(pids, nodeids, hosts, wanted)
    except ValueError as exc:
        die("job", f"hostpids: {exc}")
    click.echo(unescape(delimiter).join(pairs))
