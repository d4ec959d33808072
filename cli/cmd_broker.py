"""flux broker: run one broker of an instance (flux-broker(1)).

``flux broker [-v] [-S ATTR=VAL]... [-c PATH] [initial-program [args...]]``.
This is the command a job runs to become a Flux instance (``flux batch``
and ``flux alloc`` jobspecs run ``flux broker`` on every node of the
job): with ``PMI_FD`` in the environment (the job shell's PMI-1) the
broker's rank and size come from PMI and the brokers of the job find each
other through it (broker/boot_pmi.py); without it the broker is an
instance of size 1.  Rank 0 runs the initial program (an interactive
shell when none is given); the exit code is the initial program's.

``-c/--config-path`` takes a directory of ``*.toml`` files, or one
``.toml`` or ``.json`` file (``flux batch --conf`` ships ``conf.json``).
"""
from __future__ import annotations

import os
import sys

import click

from cli.common import die


@click.command("broker", context_settings={"allow_interspersed_args": False,
                                           "help_option_names": ["-h", "--help"]})
@click.option("-S", "--setattr", "setattrs", multiple=True, metavar="ATTR=VAL",
              help="Set a broker attribute")
@click.option("-c", "--config-path", metavar="PATH",
              help="Read the configuration from PATH (a directory of *.toml, or a .toml "
                   "or .json file)")
@click.option("-v", "--verbose", count=True, help="Be chatty on stderr")
@click.argument("initial_program", nargs=-1, type=click.UNPROCESSED)
def command(setattrs: tuple[str, ...], config_path: str | None, verbose: int,
            initial_program: tuple[str, ...]) -> None:
    """Run a Flux broker; rank 0 runs INITIAL_PROGRAM (default: a shell)."""
    from broker.launch import LaunchOptions, launch
    from broker.main import load_config
    from broker.main import parse_setattr
    from flux.errors import FluxError

    attrs: list[tuple[str, str]] = []
    for text in setattrs:
        try:
            attrs.append(parse_setattr(text))
        except Exception as exc:  # argparse.ArgumentTypeError
            raise click.BadParameter(str(exc), param_hint="'-S'") from None
    try:
        config = load_config(config_path)
    except FluxError as exc:
        die("broker", str(exc))
    opts = LaunchOptions(size=1, setattrs=attrs, config_path=None, config=config,
                         initial_program=list(initial_program), verbose=verbose,
                         pmi="PMI_FD" in os.environ)
    try:
        rc = launch(opts)
    except OSError as exc:
        die("broker", exc.strerror or str(exc))
    sys.exit(rc)
