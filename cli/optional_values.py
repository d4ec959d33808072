"""Options whose value is optional, as Flux parses them: ``-L, --color[=WHEN]`` takes
WHEN only attached (``-LWHEN``, ``--color=WHEN``), never as the next argument."""
from __future__ import annotations

import click

__all__ = ["OptionalValueCommand", "attach_optional_values"]


def attach_optional_values(cmd: click.Command, args: list[str]) -> list[str]:
    """ARGS with each option whose value is optional given its value attached.

    Flux's ``-L, --color[=WHEN]`` takes WHEN only as ``-LWHEN`` or
    ``--color=WHEN``, so ``-L KEY`` is the option without WHEN, then KEY;
    click would take KEY as WHEN.
    """
    optional: dict[str, str] = {}  # option string -> its value when none is attached
    flags: set[str] = set()  # short options that take no value
    valued: set[str] = set()  # options whose value may be the next argument
    for p in cmd.params:
        if not isinstance(p, click.Option):
            continue
        if not p.is_flag and not p.count and isinstance(p.flag_value, str):
            optional.update((name, p.flag_value) for name in p.opts)
        elif p.is_flag or p.count:
            flags.update(n for n in p.opts + p.secondary_opts if len(n) == 2)
        else:
            valued.update(p.opts)
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out.extend(args[i - 1:])
            break
        if arg in optional:
            arg += ("=" if arg.startswith("--") else "") + optional[arg]
        elif arg in valued:
            out.append(arg)
            if i < len(args):
                arg = args[i]
                i += 1
        elif arg.startswith("-") and not arg.startswith("--"):
            for pos in range(1, len(arg)):
                opt = "-" + arg[pos]
                if opt in flags:
                    continue
                if opt in optional and pos == len(arg) - 1:
                    arg += optional[opt]
                break
        out.append(arg)
    return out


class OptionalValueCommand(click.Command):
    """A command whose optional option values must be attached (``-LWHEN``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, attach_optional_values(self, args))
