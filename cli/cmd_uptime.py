"""flux uptime: one line about the instance (flux-uptime(1)).

`` 07:42:52 run 3.8s,  owner flux,  depth 0,  size 8,  1 drained,  7 offline``

Drained nodes (flux-uptime(1): "not eligible to run new jobs, although
they may be online, and may currently be running a job") count drained
and draining ranks, as ``flux resource status`` reports them.

A second line carries flux-core's notices, when they apply:
``  submit disabled`` (job submission is disabled on all queues) and
``  scheduler stopped`` (scheduling is stopped on all queues), joined by
``,  `` when both do.
"""
from __future__ import annotations

from typing import Any

import click

from cli.common import handle_errors


def short_duration(seconds: float) -> str:
    """RFC 23 duration with two significant digits: 3.8s, 4.3m, 2.1h, 1.5d."""
    for unit, scale in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= scale:
            return f"{seconds / scale:.2g}{unit}"
    return f"{seconds:.2g}s"


def owner_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def uptime_line(now: float, local: dict, leader: dict, drained: int = 0) -> str:
    import time

    duration = local["run_duration"] if local["state"] == "run" else local["state_duration"]
    parts = [f" {time.strftime('%H:%M:%S', time.localtime(now))} {local['state']} "
             f"{short_duration(duration or 0.0)}",
             f"owner {owner_name(local['owner'])}",
             f"depth {local['instance_level']}",
             f"size {local['size']}"]
    if drained > 0:
        parts.append(f"{drained} drained")
    offline = leader["size"] - len(leader["online"])
    if offline > 0:
        parts.append(f"{offline} offline")
    return ",  ".join(parts)


@click.command("uptime", context_settings={"help_option_names": ["-h", "--help"]})
@handle_errors("uptime")
def command() -> None:
    """Show how long the instance has been running, and its state."""
    import time

    import flux

    h = flux.Flux()
    f_status = h.rpc("resource.status", nodeid=0)
    local = h.rpc("broker.state").get()
    leader = local if local["rank"] == 0 else h.rpc("broker.state", nodeid=0).get()
    click.echo(uptime_line(time.time(), local, leader, _drained(f_status)))
    if local["state"] == "run":
        notices = queue_notices(h)
        if notices:
            click.echo("  " + ",  ".join(notices))


def queue_notices(h: Any) -> list[str]:
    """flux-uptime(1)'s notices: submission disabled, scheduling stopped, each
    only when true of every queue (none if the job manager cannot say)."""
    try:
        names = h.rpc("job-manager.queue-list", {}).get().get("queues") or [None]
        statuses = [h.rpc("job-manager.queue-status", {"name": name} if name else {}).get()
                    for name in names]
    except OSError:
        return []
    notices = []
    if not any(st.get("enable", True) for st in statuses):
        notices.append("submit disabled")
    if not any(st.get("start", True) for st in statuses):
        notices.append("scheduler stopped")
    return notices


def _drained(future: object) -> int:
    """Drained (and draining) ranks from a resource.status answer; 0 if there is none
    (no resource module yet, or a guest may not ask)."""
    from flux.idset import IDset

    try:
        drain = future.get().get("drain") or {}  # type: ignore[attr-defined]
    except OSError:
        return 0
    ranks = IDset()
    for key in drain:
        try:
            ranks = ranks.union(IDset(key))
        except ValueError:
            continue
    return len(ranks)
