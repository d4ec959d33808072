"""flux job info: print values from a job's KVS directory (flux-job(1)).

``flux job info JOBID KEY...`` prints each key's value (``jobspec``,
``R``, ``eventlog``, ``J``, ``guest.exec.eventlog``, ...) followed by a
newline.  ``jobspec`` and ``R`` come with their updates applied
(``jobspec-update``/``resource-update``) unless ``--base``; ``--original``
prints the jobspec as submitted (from J).
"""
from __future__ import annotations

import errno
import sys
from typing import Any

import click

from cli.common import die
from cli.job_common import open_handle, parse_jobid, rpc_error_text

_LOOKUP_CURRENT = 2
_KEYS_HELP = """Some useful keys: J, R, eventlog, jobspec, guest.exec.eventlog,
guest.input, guest.output."""


def _text(value: Any) -> str:
    """A looked-up value as printed: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    import orjson

    return orjson.dumps(value).decode()


def _lookup(h: Any, jobid: int, keys: list[str], flags: int) -> dict[str, Any]:
    return h.rpc("job-info.lookup", {"id": jobid, "keys": keys, "flags": flags}).get()


def _missing_reason(h: Any, jobid: Any, keys: list[str], exc: OSError) -> str:
    """ENOENT: say whether the job or one of its keys is missing."""
    if exc.errno != errno.ENOENT:
        return rpc_error_text(exc)
    try:
        _lookup(h, int(jobid), ["eventlog"], 0)
    except OSError:
        return f"job {jobid.orig} not found"
    for key in keys:
        try:
            _lookup(h, int(jobid), [key], 0)
        except OSError:
            return f"job {jobid.orig}: key {key} not found"
    return rpc_error_text(exc)


def _original_jobspec(J: Any) -> str:
    import orjson

    try:
        doc = orjson.loads(J) if isinstance(J, (str, bytes)) else J
        return orjson.dumps(doc["jobspec"]).decode()
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"Failed to unwrap J to get jobspec: {exc}") from None


@click.command("info", context_settings={"help_option_names": ["-h", "--help"]},
               epilog=_KEYS_HELP)
@click.option("-o", "--original", is_flag=True,
              help="For key jobspec, print the jobspec as originally submitted")
@click.option("-b", "--base", is_flag=True,
              help="For keys jobspec and R, do not apply updates from the eventlog")
@click.argument("jobid")
@click.argument("keys", nargs=-1, required=True)
def command(original: bool, base: bool, jobid: str, keys: tuple[str, ...]) -> None:
    """Print the value of each KEY of JOBID's KVS directory."""
    try:
        id_ = parse_jobid(jobid)
    except ValueError:
        die("job", f'error parsing jobid: "{jobid}"')
    wanted = list(dict.fromkeys(keys))
    fetch = ["J" if (k == "jobspec" and original) else k for k in wanted]
    fetch = list(dict.fromkeys(fetch))
    current = not base and any(k in ("jobspec", "R") for k in fetch)
    h = open_handle("job")
    try:
        resp = _lookup(h, int(id_), fetch, _LOOKUP_CURRENT if current else 0)
    except OSError as exc:
        die("job", _missing_reason(h, id_, fetch, exc))
    out = []
    for key in keys:
        if key == "jobspec" and original:
            try:
                text = _original_jobspec(resp["J"])
            except ValueError as exc:
                die("job", str(exc))
        else:
            text = _text(resp[key])
        out.append(text if text.endswith("\n") else text + "\n")
    sys.stdout.write("".join(out))
