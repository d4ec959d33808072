"""flux bulksubmit: one job per combination of inputs, GNU parallel style (flux-bulksubmit(1)).

``flux bulksubmit [OPTIONS] COMMAND... [::: ITEMS] [:::+ ITEMS] [:::: FILE]
[::::+ FILE]``.  The options are ``flux submit``'s (``--cc``/``--bcc``,
``--wait``/``--watch``/``--progress``/``--jps``, ``--quiet``, ``--log``,
``--dry-run`` and every job option) plus ``--define=NAME=CODE``,
``--shuffle`` and ``--sep=STRING``.  The inputs and their substitution are
``cli/bulk_inputs.py``'s; each job's arguments, options included, are
formatted first and then parsed as ``flux submit``'s, so ``-n {}`` works
like ``-n 4``.  ``--dry-run`` prints ``bulksubmit: submit ARGS`` per job
instead of submitting; otherwise the job ids are printed as ``flux
submit`` prints them, through the same pipeline.
"""
from __future__ import annotations

import itertools
import random
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import click

from cli import bulk_inputs
from cli.cmd_submit import (Request, cc_ids, check_input, copy_jobspecs, log_name,
                             submit_requests)
from cli.cmd_submit import command as submit_command
from cli.common import die
from cli.submitopts import SubmitArgs, SubmitCommand

_BULK_VALUE_OPTIONS = {"--define", "--sep"}
_BULK_FLAG_OPTIONS = {"--shuffle"}


def _options_command() -> click.Command:
    """flux submit's options and bulksubmit's own, for parsing a job's arguments and
    for ``--help``."""
    params = [p for p in submit_command.params if p.name != "command_"]
    own = [click.Option(["--define"], metavar="NAME=CODE", multiple=True,
                        help="Define attribute NAME for substitutions: CODE, a Python "
                             "expression of the input x, e.g. --define=p2='2**int(x)' "
                             "then {.p2}"),
           click.Option(["--shuffle"], is_flag=True,
                        help="Submit the jobs in random order"),
           click.Option(["--sep"], metavar="STRING", default=None,
                        help="Split input files (and stdin) on STRING instead of newlines; "
                             "'none': on any whitespace")]
    command_arg = click.Argument(["command_"], metavar="COMMAND... [::: INPUTS ...]", nargs=-1,
                                 type=click.UNPROCESSED)
    return SubmitCommand("bulksubmit", prog="bulksubmit", params=[*params, *own, command_arg],
                         context_settings={"allow_interspersed_args": False,
                                           "help_option_names": ["-h", "--help"]},
                         help="Submit a job per input: substitute each input (from "
                              "::: lists, :::: files or stdin) into COMMAND and options.")


def _takes_value(params: Sequence[click.Parameter]) -> dict[str, bool]:
    """Each option string -> whether it takes a value (flags and counts do not)."""
    table: dict[str, bool] = {}
    for p in params:
        if isinstance(p, click.Option):
            flag = p.is_flag or p.count
            for opt in (*p.opts, *p.secondary_opts):
                table[opt] = not flag
    return table


def split_bulk_options(tokens: Sequence[str], takes_value: dict[str, bool]
                       ) -> tuple[dict[str, Any], list[str]]:
    """Take --define/--shuffle/--sep out of the options before COMMAND (they are not
    substituted); the rest of TOKENS as they are."""
    bulk: dict[str, Any] = {"define": [], "shuffle": False, "sep": None, "help": False}
    rest: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--" or not tok.startswith("-") or tok == "-":
            rest.extend(tokens[i:])
            break
        if tok.startswith("--"):
            name, eq, value = tok.partition("=")
            if name in _BULK_VALUE_OPTIONS or name in _BULK_FLAG_OPTIONS:
                if name in _BULK_FLAG_OPTIONS:
                    bulk[name[2:]] = True
                else:
                    if not eq:
                        if i + 1 >= len(tokens):
                            raise click.UsageError(f"Option '{name}' requires an argument.")
                        i += 1
                        value = tokens[i]
                    if name == "--define":
                        bulk["define"].append(value)
                    else:
                        bulk["sep"] = value
                i += 1
                continue
            if name == "--help":
                bulk["help"] = True
            rest.append(tok)
            if not eq and takes_value.get(name) and i + 1 < len(tokens):
                rest.append(tokens[i + 1])
                i += 1
            i += 1
            continue
        # a cluster of short options: the first that takes a value ends it
        rest.append(tok)
        for pos in range(1, len(tok)):
            opt = "-" + tok[pos]
            if opt == "-h":
                bulk["help"] = True
            if takes_value.get(opt):
                if pos == len(tok) - 1 and i + 1 < len(tokens):
                    rest.append(tokens[i + 1])
                    i += 1
                break
        i += 1
    return bulk, rest


def _render(tokens: Sequence[str], takes_value: dict[str, bool]) -> str:
    """A job's arguments as flux-bulksubmit(1) prints them: ``-n4`` for ``-n 4``."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in takes_value and takes_value[tok] and i + 1 < len(tokens):
            nxt = tokens[i + 1]
            out.append(f"{tok}{nxt}" if not tok.startswith("--") else f"{tok}={nxt}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return " ".join(out)


@click.command("bulksubmit", add_help_option=False,
               context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@click.argument("tokens", nargs=-1, type=click.UNPROCESSED)
def command(tokens: tuple[str, ...]) -> None:
    """Submit a job per input: substitute each input (from ::: lists, :::: files or
    stdin) into COMMAND and options."""
    options_cmd = _options_command()
    takes_value = _takes_value(options_cmd.params)
    bulk, rest = split_bulk_options(tokens, takes_value)
    if bulk["help"]:
        options_cmd.main(["--help"], prog_name="flux bulksubmit")
    try:
        template, specs = bulk_inputs.split_inputs(rest)
        defines = bulk_inputs.compile_defines(bulk["define"])
        lists = bulk_inputs.load_lists(specs, bulk["sep"], sys.stdin.read)
    except ValueError as exc:
        die("bulksubmit", str(exc))
    combos = bulk_inputs.combinations(lists)
    if bulk["shuffle"]:
        random.shuffle(combos)
    jobs = []   # (arguments, click context) per job, checked before anything is sent
    # (the jobs' contexts share the root's meta: CLI plugins are loaded once)
    root = click.Context(click.Command("flux"), info_name="flux")
    for seq, inputs in enumerate(combos):
        try:
            argv = bulk_inputs.substitute(template, inputs, seq, defines)
        except ValueError as exc:
            die("bulksubmit", str(exc))
        try:
            ctx = options_cmd.make_context("bulksubmit", list(argv), parent=root)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        if not ctx.params["command_"]:
            # no COMMAND: the inputs are the command (flux-bulksubmit(1): ":::: inputs")
            ctx.params["command_"] = tuple(inputs)
            argv = [*argv, *inputs]
        jobs.append((argv, ctx))
    if not jobs:
        die("bulksubmit", "no inputs: nothing to submit")
    first = jobs[0][1].params
    if first["dry_run"]:
        # flux-mini(1) in the seeds shows its own name there
        parent = click.get_current_context().parent
        mini = parent is not None and parent.info_name == "mini"
        _dry_run(jobs, takes_value, "flux-mini" if mini else "bulksubmit")
        return
    requests, total = _requests(jobs)
    sys.exit(submit_requests("bulksubmit", requests, total, quiet=first["quiet"],
                             wait=first["wait"], watch=first["watch"],
                             progress=first["progress"], jps=first["jps"],
                             label_io=bool(first.get("label_io"))))


def _job_ids(ctx: click.Context) -> tuple[list[int] | None, bool]:
    try:
        return cc_ids(ctx.params["cc"], ctx.params["bcc"])
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


def _dry_run(jobs: list[tuple[list[str], click.Context]], takes_value: dict[str, bool],
             prog: str) -> None:
    for argv, ctx in jobs:
        ids, _set_cc = _job_ids(ctx)
        shown = [t for t in argv if t != "--dry-run"]
        for cc in ids or [None]:
            args = bulk_inputs.substitute_cc(shown, cc)
            sys.stdout.write(f"{prog}: submit {_render(args, takes_value)}\n")


def _requests(jobs: list[tuple[list[str], click.Context]]) -> tuple[Iterator[Request], int]:
    """Each job's jobspecs (one per --cc id) as submission requests, and their number.

    Every job's arguments are checked here, before the first is sent; the
    jobspecs themselves are built as they are sent.
    """
    prepared = []
    total = 0
    for _argv, ctx in jobs:
        ids, set_cc = _job_ids(ctx)
        command_ = ctx.params["command_"]
        registry, _options = ctx.command.plugins(ctx)  # type: ignore[attr-defined]
        try:
            args = SubmitArgs.from_click(ctx, command_)
            check_input(args)
        except (ValueError, TypeError, OSError) as exc:
            die("bulksubmit", str(exc))
        if ids is None and args.uses_cc():
            args = args.with_cc("")  # without --cc/--bcc, {cc} is "" (flux-bulksubmit(1))
        specs = copy_jobspecs(args, ids, set_cc, registry)
        try:
            first = next(specs)  # every job's options are checked before one is sent
        except (ValueError, TypeError, OSError) as exc:
            die("bulksubmit", str(exc))
        prepared.append((args, ids, first, specs, ctx.params["log"], ctx.params["log_stderr"]))
        total += len(ids) if ids is not None else 1

    def requests() -> Iterator[Request]:
        for args, ids, first, specs, log, log_stderr in prepared:
            try:
                for jobspec, cc in zip(itertools.chain([first], specs), ids or [None]):
                    yield (jobspec, args.urgency, args.flags, log_name(log, cc),
                           log_name(log_stderr, cc))
            except (ValueError, TypeError, OSError) as exc:
                die("bulksubmit", str(exc))

    return requests(), total
