"""flux job submit [-u N] [-f FLAGS] [FILE]: submit a jobspec as it is (flux-job(1)).

The jobspec (JSON or YAML, RFC 14/25) is read from FILE or standard input
and sent to job-ingest unchanged; the new job's id is printed.  ``--flags``
takes a comma-separated list of ``waitable``, ``debug``, ``novalidate``
and ``signed`` (the input is already a signed J).
"""
from __future__ import annotations

import sys

import click

from cli.common import die, handle_errors

_FLAGS = ("waitable", "debug", "novalidate", "signed")


@click.command("submit", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-u", "--urgency", type=click.IntRange(0, 31), default=16, show_default=True,
              help="Urgency (0-31)")
@click.option("-f", "--flags", default="", help="Comma-separated: " + ", ".join(_FLAGS))
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@handle_errors("job")
def command(urgency: int, flags: str, file: str | None) -> None:
    """Submit the jobspec in FILE (default: standard input) and print the job id."""
    import flux
    from flux.job import submit

    wanted = [f for f in flags.split(",") if f]
    for name in wanted:
        if name not in _FLAGS:
            raise click.BadParameter(f"unknown flag '{name}' (choose from {', '.join(_FLAGS)})",
                                     param_hint="'--flags'")
    try:
        if file is None or file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(file, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        die("job", f"{file}: {exc.strerror}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        die("job", f"jobspec is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                   f"{exc.start})")
    if not text.strip():
        die("job", "jobspec is empty")
    if not text.lstrip().startswith("{") and "signed" not in wanted:
        # YAML: what Flux's command accepts too; sent as the JSON it means

        from flux.job.Jobspec import Jobspec

        try:
            text = Jobspec.from_yaml_stream(text).dumps()
        except Exception as exc:  # noqa: BLE001 - any YAML problem is the user's input
            die("job", f"jobspec: {exc}")
    jobid = submit(flux.Flux(), text, urgency=urgency, waitable="waitable" in wanted,
                   debug="debug" in wanted, novalidate="novalidate" in wanted,
                   pre_signed="signed" in wanted)
    click.echo(jobid.f58)
