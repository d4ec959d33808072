"""flux job last: the current user's most recently submitted job ids (flux-job(1)).

``flux job last`` prints the newest job id; ``flux job last N`` the N
newest, newest first; ``flux job last [START:STOP:STEP]`` a Python slice
of the user's job history ordered newest first (``[::-1]`` is submission
order).  The history is the user's jobs in the job list, sorted by
submit time.  No jobs: ``flux-job: job history is empty``, exit 1.
"""
from __future__ import annotations

import os
import re
from typing import Any

import click

from cli.common import die
from cli.job_common import open_handle, rpc_error_text

_SLICE = re.compile(r"\[\s*(-?\d*)\s*(?::\s*(-?\d*)\s*)?(?::\s*(-?\d*)\s*)?\]")


def parse_selection(text: str) -> slice:
    """``N`` -> the first N entries; ``[a:b:c]`` (or ``[i]``) -> that slice.

    ValueError names what is wrong.
    """
    text = text.strip()
    if not text.startswith("["):
        try:
            count = int(text, 10)
        except ValueError:
            raise ValueError(f"invalid argument '{text}': expected N or [START:STOP:STEP]") \
                from None
        if count < 1:
            raise ValueError(f"invalid count '{text}': must be 1 or more")
        return slice(0, count)
    m = _SLICE.fullmatch(text)
    if m is None:
        raise ValueError(f"invalid slice '{text}': expected [START:STOP:STEP]")
    start, stop, step = (int(g) if g else None for g in m.groups())
    if ":" not in text:
        # [i] names one entry; as a slice, a missing entry prints nothing
        if start is None:
            raise ValueError(f"invalid slice '{text}': expected [START:STOP:STEP]")
        return slice(start, start + 1 if start != -1 else None)
    if step == 0:
        raise ValueError(f"invalid slice '{text}': step cannot be zero")
    return slice(start, stop, step)


def user_history(h: Any) -> list[int]:
    """The current user's job ids, most recently submitted first."""
    from flux.job.list import job_list

    jobs = job_list(h, max_entries=0, attrs=["t_submit"], userid=os.getuid()).get_jobs()
    # ids are issued in submission order, so they break ties in t_submit
    jobs.sort(key=lambda job: (job.get("t_submit", 0.0), job["id"]), reverse=True)
    return [job["id"] for job in jobs]


@click.command("last", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("selection", metavar="[N|SLICE]", required=False)
def command(selection: str | None) -> None:
    """Print the most recently submitted job id(s), newest first."""
    from flux.job.JobID import JobID

    try:
        chosen = parse_selection(selection) if selection is not None else slice(0, 1)
    except ValueError as exc:
        die("job", str(exc))
    h = open_handle("job")
    try:
        history = user_history(h)
    except OSError as exc:
        die("job", f"error fetching job history: {rpc_error_text(exc)}")
    if not history:
        die("job", "job history is empty")
    for jobid in history[chosen]:
        click.echo(JobID(jobid).f58)
