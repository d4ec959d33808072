"""flux job id: convert job ids between RFC 19 encodings (no instance needed)."""
from __future__ import annotations

import sys

import click

from cli.common import die

_ENCODINGS = ("dec", "hex", "dothex", "kvs", "words", "f58", "f58plain", "emoji")


def convert(text: str, to: str) -> str:
    """Parse TEXT (any encoding) and return it encoded as TO; ValueError if malformed."""
    from flux.job.JobID import JobID

    try:
        jobid = JobID(text.strip())
    except (ValueError, TypeError):
        raise ValueError(f"{text.strip()}: malformed input") from None
    return jobid.encode(to)


@click.command("id", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-t", "--to", "to", type=click.Choice(_ENCODINGS, case_sensitive=False),
              default="dec", show_default=True, help="Convert to this encoding")
@click.argument("jobids", nargs=-1)
def command(to: str, jobids: tuple[str, ...]) -> None:
    """Convert JOBIDs (or lines of stdin) to another encoding.

    Exit status is 1 if no id was converted or one was malformed.
    """
    to = to.lower()
    source = jobids if jobids else (line for line in sys.stdin if line.strip())
    converted = 0
    for text in source:
        try:
            click.echo(convert(text, to))
        except ValueError as exc:
            die("job", str(exc))
        converted += 1
    if converted == 0:
        die("job", "id: no job id given on the command line or stdin")
