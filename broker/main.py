"""Command line of the broker: ``python -m broker [OPTIONS] [initial-program [args...]]``.

Options follow flux-broker(1): ``-S/--setattr ATTR=VAL`` (repeatable),
``--config-path DIR`` (also FLUX_CONF_DIR), ``-v``.  ``--rank``,
``--size`` and ``--boot-dir`` are set by ``flux start`` for test
instances of more than one broker.  Without them, a configuration with
``[bootstrap] hosts`` makes this one broker of that instance
(broker/boot_config.py), as ``flux start`` does.
"""
from __future__ import annotations

import argparse
import sys

from broker.attrs import check_cmdline
from broker.broker import BrokerOptions, run_broker
from broker.config import Config, load_path
from flux.errors import FluxError


def parse_setattr(text: str) -> tuple[str, str]:
    """``ATTR=VAL`` -> (ATTR, VAL); a bare ``ATTR`` (a flag such as broker.rc2_none, as
    flux-core's own systemd unit passes it) means "1".  An attribute the broker sets
    itself (rank, size, ...) is refused (argparse.ArgumentTypeError: a usage error)."""
    name, sep, value = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"bad attribute setting '{text}' (expected ATTR=VAL)")
    try:
        check_cmdline(name)
    except FluxError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, value if sep else "1"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flux-broker", description="Flux message broker")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("-S", "--setattr", action="append", type=parse_setattr, default=[],
                   metavar="ATTR=VAL", help="set initial value of a broker attribute")
    p.add_argument("--config-path", metavar="DIR",
                   help="read *.toml configuration from DIR (default: $FLUX_CONF_DIR)")
    p.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--boot-dir", help=argparse.SUPPRESS)
    p.add_argument("initial_program", nargs=argparse.REMAINDER)
    return p


def load_config(path: str | None) -> Config:
    """The configuration from PATH (or $FLUX_CONF_DIR): a directory of ``*.toml``,
    or one ``.toml``/``.json`` file; empty when neither is set."""
    return load_path(path)


def options_from_args(args: argparse.Namespace) -> BrokerOptions:
    config = load_config(args.config_path)
    if args.boot_dir is None and args.size == 1:
        from broker.boot_config import config_broker_options, has_bootstrap

        if has_bootstrap(config):
            # one broker of a system instance: rank and size from [bootstrap] hosts
            return config_broker_options(config, list(args.setattr),
                                         list(args.initial_program), args.verbose)
    return BrokerOptions(rank=args.rank, size=args.size, setattrs=list(args.setattr),
                         config=config, initial_program=list(args.initial_program),
                         boot_dir=args.boot_dir, verbose=args.verbose)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = options_from_args(args)
    except FluxError as exc:
        print(f"flux-broker: {exc}", file=sys.stderr)
        return 1
    return run_broker(options)


__all__ = ["main", "build_parser", "load_config", "options_from_args", "parse_setattr"]
