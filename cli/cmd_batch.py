"""flux batch: submit a script to run as the initial program of a new Flux instance.

``flux batch [OPTIONS] SCRIPT [ARGS...]``, ``flux batch [OPTIONS] --wrap
COMMAND...`` or ``flux batch [OPTIONS] < SCRIPT`` (flux-batch(1)).  The
script (a file, our stdin, or with ``--wrap`` the command or stdin after
``#!/bin/sh``) must start with ``#!``; it travels in the jobspec as the
RFC 37 file ``script`` (``attributes.system.files``), which the job shell
writes to the job's tmpdir on every node, and the job runs ``flux broker
[BROKER_OPTS] {{tmpdir}}/script ARGS`` there: one broker per node, rank 0
running the script.  When the script exits the instance shuts down and
the job's exit code is the script's.

Size options count slots (``-n/--nslots``, required unless ``-N``;
``-c/--cores-per-slot``, ``-g/--gpus-per-slot``), ``-B/--broker-opts`` and
``--conf`` configure the instance, the other options are ``flux
submit``'s and CLI plugins see ``prog`` "batch" (``cli/submitopts.py``).
Output goes to ``flux-{{id}}.out`` in the working directory unless
``--output`` says otherwise.  Prints the new job id (``--quiet``: not);
``--dry-run`` prints the jobspec instead.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from cli.common import die
from cli.submitopts import (
    SubmitArgs,
    SubmitCommand,
    build_instance_jobspec,
    submission_options,
    submit_instance,
)
from flux.job.directives import DirectiveError, directive_words

_CTX = {"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}


def read_script(script: tuple[str, ...], wrap: bool, stdin: Any = None) -> tuple[str, str, list[str]]:
    """(script text, job name, script arguments) for the command line SCRIPT.

    OSError/ValueError name what could not be read.
    """
    if script and wrap:
        # named after the wrapped command (its first word: ``--wrap "a; b"`` is ``a``)
        name = (script[0].split() or ["batch"])[0]
        return "#!/bin/sh\n" + " ".join(script) + "\n", name, []
    if script:
        path = script[0]
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise OSError(exc.errno, f"{path}: {exc.strerror}") from None
        name, args = os.path.basename(path) or path, list(script[1:])
    else:
        stream = stdin if stdin is not None else sys.stdin.buffer
        raw = stream.read()
        name, args = "batch", []
        path = "stdin"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} does not appear to be a script, or failed to encode "
                         "as utf-8") from None
    if wrap:
        text = "#!/bin/sh\n" + text
    if not text.startswith("#!"):
        raise ValueError(f"{path} does not appear to start with '#!'")
    return text, name, args


_SCRIPT_META = "batch.script"


class BatchCommand(SubmitCommand):
    """``flux batch``: the script's submission directives (RFC 36) are options that
    come before the command line's, so the command line overrides them.

    The script is read (once: it may be our stdin) before the real parse, from
    a lenient first parse that finds it; what was read, or why it could not
    be, waits in ``ctx.meta`` for the command.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        # a first parse finds the script; it fails (and the real parse says why, or shows
        # the help) for bad usage or a -h/--help before the script, and reads nothing
        probe = self._probe(ctx, args)
        if probe is None:
            return super().parse_args(ctx, args)
        script, wrap = tuple(probe.params.get("script") or ()), bool(probe.params.get("wrap"))
        where = script[0] if script and not wrap else "the script"
        try:
            read = read_script(script, wrap)
            words = directive_words(read[0])
        except DirectiveError as exc:
            ctx.meta[_SCRIPT_META] = ValueError(f"{where}: {exc}")
            return super().parse_args(ctx, args)
        except (ValueError, OSError) as exc:
            ctx.meta[_SCRIPT_META] = exc
            return super().parse_args(ctx, args)
        ctx.meta[_SCRIPT_META] = read
        if not words:
            return super().parse_args(ctx, args)
        try:
            # the directives alone first: an option missing its value must not take
            # the command line's first word
            alone = self._probe(ctx, words, strict=True)
            if alone is not None and alone.params.get("script"):
                raise click.UsageError(f"not an option: {alone.params['script'][0]}")
            return super().parse_args(ctx, words + args)
        except click.UsageError as exc:
            # the command line alone parsed: the directives are to blame
            exc.message = f"{where}: submission directives: {exc.message}"
            raise

    def _probe(self, ctx: click.Context, args: list[str],
               strict: bool = False) -> click.Context | None:
        """A throw-away parse of ARGS without help options (None if it fails, or with
        STRICT, the usage error it raised)."""
        probe = self.context_class(self, info_name=ctx.info_name, parent=ctx.parent,
                                   help_option_names=[])
        try:
            SubmitCommand.parse_args(self, probe, list(args))
        except click.UsageError:
            if strict:
                raise
            return None
        except (click.exceptions.Exit, click.ClickException):
            return None
        return probe


@click.command("batch", cls=BatchCommand, prog="batch", context_settings=_CTX)
@submission_options(kind="batch")
@click.option("--wrap", is_flag=True,
              help="Wrap the arguments (or stdin) in a #!/bin/sh script")
@click.option("--quiet", is_flag=True, help="Do not print the job id")
@click.argument("script", metavar="[SCRIPT [ARGS...]]", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def command(ctx: click.Context, wrap: bool, quiet: bool, script: tuple[str, ...],
            **_options: Any) -> None:
    """Submit SCRIPT (or stdin) to run as the initial program of a new Flux instance."""
    registry, _options = ctx.command.plugins(ctx)
    read = ctx.meta.get(_SCRIPT_META)
    if isinstance(read, Exception):
        die("batch", read.strerror if isinstance(read, OSError) and read.strerror else str(read))
    if ctx.params["nslots"] is None and ctx.params["nodes"] is None:
        raise click.UsageError("Number of slots to allocate must be specified (-n or -N)")
    try:
        text, name, script_args = read if read is not None else read_script(script, wrap)
        args = SubmitArgs.from_click(ctx, script_args)
        jobspec = build_instance_jobspec(args, script=text, jobname=name,
                                         registry=registry).jobspec
    except (ValueError, TypeError, OSError) as exc:
        die("batch", exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
    submitted = submit_instance("batch", args, jobspec, ctx.params["dry_run"])
    if submitted is None:
        return
    h, jobid = submitted
    if not quiet:
        sys.stdout.write(jobid.f58 + "\n")
        sys.stdout.flush()
