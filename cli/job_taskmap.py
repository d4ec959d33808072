"""flux job taskmap: a job's RFC 34 task map, queried or converted (flux-job(1)).

The argument is a job id or a task map itself (RFC 34 JSON, wrapped or
bare; PMI ``(vector,...)``; or raw ``0-1;2-3``, node by node).  For a
job, the command waits until the job has started, then takes the map
from the ``taskmap`` context of the ``shell.start`` exec event if there
is one, else computes it from the job's jobspec and R the way exec lays
out tasks (flux.job.taskmap).  Hostnames are R's ``execution.nodelist``,
node i being the i-th rank of R.

At most one query or conversion per call: ``--taskids``, ``--ntasks``,
``--nodeid``, ``--hostname`` or ``--to=raw|pmi|multiline|hosts``;
without one the bare RFC 34 map (``[[0,2,2,1]]``) is printed.
"""
from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import Any

import click

from cli.common import die
from cli.job_common import open_handle, parse_jobid, rpc_error_text

FORMATS = ("raw", "pmi", "multiline", "hosts")


def encode_rfc34(nodeids: Sequence[int]) -> str:
    """The bare RFC 34 map array, as flux-core prints it."""
    import orjson

    from shell.pmi.mapping import encode_taskmap

    return orjson.dumps(orjson.loads(encode_taskmap(nodeids))["map"]).decode()


def decode_any(text: str) -> list[int]:
    """A task map given on the command line, in any of the formats we print."""
    from shell.pmi.mapping import decode_process_mapping, decode_raw_taskmap, decode_taskmap

    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        return decode_taskmap(stripped)
    if stripped.startswith("("):
        return decode_process_mapping(stripped)
    return decode_raw_taskmap(stripped)


def _shell_start_taskmap(h: Any, jobid: Any) -> list[int] | None:
    """The map the shell posted in its ``shell.start`` event, if it did."""
    import orjson

    from flux.eventlog import EventLogEvent
    from flux.job.kvslookup import job_info_lookup
    from shell.pmi.mapping import decode_taskmap

    try:
        log = job_info_lookup(h, jobid, ["guest.exec.eventlog"]).get()["guest.exec.eventlog"]
    except OSError:
        return None     # test mode runs no shell and writes no exec eventlog
    if isinstance(log, bytes):
        log = log.decode()
    for line in log.splitlines():
        if not line.strip():
            continue
        event = EventLogEvent(line)
        if event.name == "shell.start" and event.context.get("taskmap") is not None:
            return decode_taskmap(orjson.dumps(event.context["taskmap"]).decode())
    return None


def _wait_started(h: Any, jobid: Any) -> None:
    """Block until JOBID has started; die naming it if it ends (or is doomed) first."""
    from flux.job.event import event_watch

    try:
        for event in event_watch(h, int(jobid), "eventlog"):
            if event.name == "start":
                return
            if event.name == "exception" and event.context.get("severity") == 0:
                die("job", f"job {jobid.orig} has no task map: it got a fatal "
                           f"{event.context.get('type')} exception before it started")
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            die("job", f"job {jobid.orig} not found")
        die("job", f"{jobid.orig}: {rpc_error_text(exc)}")
    die("job", f"job {jobid.orig} has no task map: it ended without starting")


def job_taskmap(h: Any, jobid: Any) -> tuple[list[int], list[str] | None]:
    """(node id of each task, hostname of each node or None) of a started job."""
    from flux.hostlist import Hostlist
    from flux.job.kvslookup import job_kvs_lookup
    from flux.job.taskmap import layout
    from shell.pmi.mapping import block_nodeids

    _wait_started(h, jobid)
    try:
        data = job_kvs_lookup(h, jobid, ["jobspec", "R"])
    except OSError as exc:
        die("job", f"{jobid.orig}: {rpc_error_text(exc)}")
    if data is None or not data.get("R"):
        die("job", f"job {jobid.orig} has no R: it has not started")
    R = data["R"]
    nodeids = _shell_start_taskmap(h, jobid)
    if nodeids is None:
        try:
            _ranks, counts = layout(data["jobspec"], R)
        except (ValueError, TypeError, KeyError) as exc:
            die("job", f"{jobid.orig}: cannot lay out tasks: {exc}")
        nodeids = block_nodeids(counts)
    nodelist = (R.get("execution") or {}).get("nodelist")
    hosts = list(Hostlist(nodelist)) if nodelist else None
    return nodeids, hosts


def _host(hosts: list[str] | None, node: int) -> str:
    if hosts is None:
        die("job", "no hostnames: a task map argument names nodes, not hosts")
    if node >= len(hosts):
        die("job", f"node {node} has no hostname in the job's R")
    return hosts[node]


@click.command("taskmap", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--taskids", type=click.IntRange(min=0), metavar="NODEID",
              help="Print an idset of the tasks that ran on node NODEID")
@click.option("--ntasks", type=click.IntRange(min=0), metavar="NODEID",
              help="Print how many tasks ran on node NODEID")
@click.option("--nodeid", type=click.IntRange(min=0), metavar="TASKID",
              help="Print the node id that ran task TASKID")
@click.option("--hostname", type=click.IntRange(min=0), metavar="TASKID",
              help="Print the hostname of the node that ran task TASKID")
@click.option("--to", "to", type=click.Choice(FORMATS), metavar="|".join(FORMATS),
              help="Convert the task map: raw, pmi, multiline (the node id of each "
                   "task) or hosts (each host's tasks)")
@click.argument("target", metavar="JOBID|TASKMAP")
def command(taskids: int | None, ntasks: int | None, nodeid: int | None,
            hostname: int | None, to: str | None, target: str) -> None:
    """Print the RFC 34 task map of a job (or of a task map), or query it."""
    from flux.idset import IDset
    from shell.pmi.mapping import encode_process_mapping, encode_raw_taskmap, tasks_by_node

    chosen = [name for name, value in (("--taskids", taskids), ("--ntasks", ntasks),
                                       ("--nodeid", nodeid), ("--hostname", hostname),
                                       ("--to", to)) if value is not None]
    if len(chosen) > 1:
        raise click.UsageError(f"only one of {', '.join(chosen)} may be used")
    hosts: list[str] | None = None
    try:
        jobid = parse_jobid(target)
    except ValueError:
        jobid = None
    if jobid is not None:
        nodeids, hosts = job_taskmap(open_handle("job"), jobid)
    else:
        try:
            nodeids = decode_any(target)
        except ValueError as exc:
            die("job", f"'{target}' is neither a jobid nor a task map: {exc}")
    nodes = tasks_by_node(nodeids)
    if taskids is not None or ntasks is not None:
        node = taskids if taskids is not None else ntasks
        assert node is not None
        if node >= len(nodes):
            die("job", f"invalid nodeid {node}: the task map has {len(nodes)} node(s)")
        click.echo(IDset(nodes[node]).encode() if taskids is not None else len(nodes[node]))
    elif nodeid is not None or hostname is not None:
        task = nodeid if nodeid is not None else hostname
        assert task is not None
        if task >= len(nodeids):
            die("job", f"invalid taskid {task}: the task map has {len(nodeids)} task(s)")
        node = nodeids[task]
        click.echo(node if nodeid is not None else _host(hosts, node))
    elif to == "raw":
        click.echo(encode_raw_taskmap(nodeids))
    elif to == "pmi":
        click.echo(encode_process_mapping(nodeids))
    elif to == "multiline":
        click.echo("\n".join(str(node) for node in nodeids))
    elif to == "hosts":
        for node, tasks in enumerate(nodes):
            click.echo(f"{_host(hosts, node)}: {IDset(tasks).encode()}")
    else:
        click.echo(encode_rfc34(nodeids))
