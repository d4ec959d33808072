"""flux job-validator: run validator plugins over jobs (the job-ingest helper).

``--list-plugins`` prints the plugins there are.  Otherwise each line of
stdin is a job (``{"jobspec": ..., "userid": ..., "flags": ..., "urgency": ...}``,
an optional ``id`` is echoed back) and each gets one line of JSON on stdout:
``{"errnum": 0}`` or ``{"errnum": 22, "errstr": "why"}``.  ``--plugins=LIST``
chooses the plugins (default ``jobspec``); the plugins' own options
(``--require-instance-minsize=N``) follow.
"""
from __future__ import annotations

import errno
import sys
from collections.abc import Sequence

import click

from cli.common import die

__all__ = ["command", "plugin_lines"]


def plugin_lines(descriptions: Sequence[tuple[str, str]]) -> list[str]:
    """``--list-plugins`` text, as the Administrator's Guide shows it."""
    return ["Available plugins:"] + [f"{name:<22}{desc}" for name, desc in descriptions]


@click.command("job-validator", context_settings={"help_option_names": ["-h", "--help"],
                                                  "ignore_unknown_options": True})
@click.option("--list-plugins", is_flag=True, help="List the available plugins")
@click.option("--plugin-path", metavar="DIR", help="Also load plugins from DIR (':' list)")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(list_plugins: bool, plugin_path: str | None, args: Sequence[str]) -> None:
    """Validate jobs read from stdin with validator plugins (--plugins=LIST)."""
    import orjson

    from flux.job.validator import JobValidator

    try:
        validator = JobValidator(list(args), pluginpath=plugin_path)
    except (ImportError, SyntaxError, OSError) as exc:
        die("job-validator", f"cannot load plugins: {exc}")
    if list_plugins:
        click.echo("\n".join(plugin_lines(validator.plugin_descriptions())))
        return
    try:
        validator.start()
    except ValueError as exc:
        die("job-validator", str(exc), 2)
    out = sys.stdout
    for lineno, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            job = orjson.loads(line)
            if not isinstance(job, dict) or not isinstance(job.get("jobspec"), dict):
                raise ValueError("a job must be an object with a jobspec object")
            result = validator.validate(job).to_json()
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            result = {"errnum": errno.EPROTO, "errstr": f"line {lineno}: {exc}"}
            job = {}
        if isinstance(job, dict) and "id" in job:
            result = {"id": job["id"], **result}
        out.write(orjson.dumps(result).decode() + "\n")
        out.flush()
