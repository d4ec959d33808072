"""flux update: change attributes of an active job, all or none (flux-update(1)).

``flux update JOBID KEY=VALUE...`` sends every update in one
``job-manager.update`` request.  Keys are jobspec paths; one that does not
start with ``attributes.``, ``tasks.`` or ``resources.`` means
``attributes.system.KEY``, and ``name`` means ``attributes.system.job.name``.
Values are JSON when they parse as JSON, else strings; a duration takes
an RFC 23 duration, relative to the job's current one when it starts with
``+`` or ``-``.  ``--dry-run`` prints the updates as JSON and sends nothing.
Exit 0 when every update is applied, 1 when any is refused (then none is),
2 for bad usage.
"""
from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import click

from cli.common import die
from cli.job_common import open_handle, parse_jobid, rpc_error_text

KEY_ALIASES = {"name": "attributes.system.job.name"}
_PREFIXES = ("attributes.", "resources.", "tasks.")
DURATION = "attributes.system.duration"


def expand_key(key: str) -> str:
    """The jobspec path a command-line key names."""
    key = KEY_ALIASES.get(key, key)
    return key if key.startswith(_PREFIXES) else f"attributes.system.{key}"


def parse_value(text: str) -> Any:
    """JSON when the text is JSON, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def new_duration(value: str, current: Any, jobid: str) -> float:
    """A duration update's seconds: absolute, or relative to CURRENT with +/-."""
    from flux.util.fsd import fsd, parse_fsd

    def seconds(text: str) -> float:
        try:
            return parse_fsd(text)
        except ValueError as exc:
            raise ValueError(f"{DURATION}: {exc}") from None

    if value.startswith(("+", "-")):
        delta = seconds(value[1:])
        current = float(current() if callable(current) else current)
        if current == 0:
            raise ValueError(f"duration for {jobid} is unlimited, can't update by {value}")
        if value.startswith("-"):
            result = current - delta
            if result <= 0:
                raise ValueError(f"current duration for {jobid} ({fsd(current)}) cannot be "
                                 f"reduced by {value[1:]}")
        else:
            result = current + delta
    else:
        result = seconds(value)
    # jobspec says "unlimited" with 0
    return 0.0 if math.isinf(result) else result


def _current_duration(h: Any, jobid: Any) -> float:
    from flux.job.kvslookup import job_kvs_lookup

    try:
        data = job_kvs_lookup(h, jobid, keys=["jobspec"])
    except OSError as exc:
        raise ValueError(rpc_error_text(exc)) from None
    if data is None:
        raise ValueError(f"{jobid.orig}: unknown job id")
    system = (data["jobspec"].get("attributes") or {}).get("system") or {}
    return float(system.get("duration") or 0.0)


def build_updates(pairs: tuple[str, ...], jobid: Any, handle: Any) -> dict[str, Any]:
    """KEY=VALUE arguments -> the request's updates (ValueError for a bad value)."""
    updates: dict[str, Any] = {}
    for arg in pairs:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise click.UsageError(f"updates must be KEY=VALUE, got {arg!r}")
        path = expand_key(key)
        if path == DURATION:
            updates[path] = new_duration(value, lambda: _current_duration(handle(), jobid),
                                         jobid.orig)
        else:
            updates[path] = parse_value(value)
    return updates


def _wait_for_event(h: Any, jobid: Any, updates: dict[str, Any], t0: float) -> None:
    from flux.job.event import event_watch

    for event in event_watch(h, jobid):
        if event.name == "jobspec-update" and event.timestamp >= t0 \
                and updates.items() <= (event.context or {}).items():
            return


@click.command("update", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-n", "--dry-run", is_flag=True,
              help="Do not send the updates: print them as JSON")
@click.option("-v", "--verbose", is_flag=True, help="Print the updated keys on success")
@click.option("--wait", is_flag=True,
              help="Wait until the update is in the job's eventlog before exiting")
@click.argument("jobid_text", metavar="JOBID")
@click.argument("pairs", metavar="KEY=VALUE...", nargs=-1, required=True)
def command(dry_run: bool, verbose: bool, wait: bool, jobid_text: str,
            pairs: tuple[str, ...]) -> None:
    """Update attributes of an active job, all or none."""
    t0 = time.time()
    try:
        # an invalid JOBID is exit 1 in flux-update(1), like an inactive one
        jobid = parse_jobid(jobid_text)
    except (ValueError, TypeError) as exc:
        die("update", str(exc))
    handle: Any = None

    def get_handle() -> Any:
        nonlocal handle
        if handle is None:
            handle = open_handle("update")
        return handle

    try:
        updates = build_updates(pairs, jobid, get_handle)
    except ValueError as exc:
        die("update", str(exc))
    if dry_run:
        click.echo(json.dumps(updates))
        sys.exit(0)
    h = get_handle()
    try:
        h.rpc("job-manager.update", {"id": int(jobid), "updates": updates}).get()
        if wait:
            _wait_for_event(h, jobid, updates, t0)
    except OSError as exc:
        die("update", rpc_error_text(exc))
    if verbose:
        for key, value in updates.items():
            text = value if isinstance(value, str) else json.dumps(value)
            click.echo(f"flux-update: updated {key} to {text}", err=True)
