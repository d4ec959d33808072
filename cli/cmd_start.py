"""flux start: launch a local Flux instance and run the initial program in it.

``flux start [OPTIONS] [initial-program [args...]]`` (flux-start(1)).
Without a program, an interactive shell ($SHELL or /bin/sh) is started.
The exit code is the initial program's (128+N if killed by signal N).
Run as the tasks of a job (PMI_FD in the environment) without
``--test-size``, each task runs one broker of a single instance whose
rank and size come from PMI (broker/boot_pmi.py).
"""
from __future__ import annotations

import os
import sys

import click

from cli.common import die


def _split_broker_opts(values: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for value in values:
        out.extend(v for v in value.split(",") if v)
    return out


#: options of ours that take a value (a separate word unless given as --opt=value)
_VALUED = {"-s", "--test-size", "-o", "--broker-opts", "-S", "--setattr", "--config-path",
           "--rundir", "--test-rundir", "--test-exit-timeout", "--test-exit-mode",
           "--test-start-mode", "--wrap", "--test-hosts", "--test-pmi-clique",
           "--caliper-profile"}


class _StartCommand(click.Command):
    """``-v/--verbose[=LEVEL]`` as flux-start(1) has it: ``-v`` counts, ``--verbose=2``
    and ``-v2`` set a level.  Rewritten to repeated ``-v`` before click parses, and
    only among our own options (not the initial program's)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--" or not arg.startswith("-") or arg == "-":
                out.extend(args[i:])
                break
            level = None
            if arg.startswith("--verbose="):
                level = arg.partition("=")[2]
            elif arg.startswith("-v") and arg[2:].isdigit():
                level = arg[2:]
            if level is not None:
                if not level.isdigit():
                    raise click.BadParameter(f"{level!r} is not a verbosity level",
                                             param_hint="'--verbose'")
                out.extend(["-v"] * int(level))
            else:
                out.append(arg)
                if arg in _VALUED and i + 1 < len(args):
                    out.append(args[i + 1])
                    i += 1
            i += 1
        return super().parse_args(ctx, out)


@click.command("start", cls=_StartCommand,
               context_settings={"allow_interspersed_args": False,
                                 "help_option_names": ["-h", "--help"]})
@click.option("-s", "--test-size", type=click.IntRange(min=1), default=None,
              help="Start an instance of N brokers on this host")
@click.option("-o", "--broker-opts", multiple=True, metavar="OPTS",
              help="Comma-separated broker options, e.g. -o,-Slog-stderr-level=7")
@click.option("-S", "--setattr", "setattrs", multiple=True, metavar="ATTR=VAL",
              help="Set a broker attribute")
@click.option("--config-path", metavar="DIR", help="Read broker configuration from DIR/*.toml")
@click.option("--rundir", metavar="DIR",
              help="Use DIR as the instance rundir (only with --test-size)")
@click.option("--test-rundir", metavar="DIR", help="Use existing DIR as rundir (kept)")
@click.option("--test-rundir-cleanup", is_flag=True, help="Remove --test-rundir at the end")
@click.option("--test-exit-timeout", default="20s", metavar="FSD",
              help="After a broker exits, kill the others after FSD (default 20s)")
@click.option("--test-exit-mode", type=click.Choice(["any", "leader"]), default="any",
              help="Which broker exits start the exit timer (default any)")
@click.option("--test-start-mode", type=click.Choice(["all", "leader"]), default="all",
              help="Start all brokers, or only the leader (default all)")
@click.option("--wrap", "wrap", multiple=True, metavar="ARGS,...",
              help="Run each broker under these comma-separated words (a debugger, valgrind)")
@click.option("--test-hosts", metavar="HOSTLIST",
              help="Each broker's FLUX_FAKE_HOSTNAME, in rank order (with [bootstrap] "
                   "hosts configured, each broker bootstraps from it by that name)")
@click.option("--test-pmi-clique", type=click.Choice(["single", "none"]), default="single",
              help="PMI_process_mapping of the brokers' bootstrap (default single)")
@click.option("--caliper-profile", metavar="PROFILE",
              help="Profile the brokers with Caliper (not in this build)")
@click.option("-v", "--verbose", count=True,
              help="-v (or --verbose=1): show the broker commands; 2: trace bootstrap")
@click.option("-X", "--noexec", is_flag=True, help="Do not run anything (use with -v)")
@click.option("-r", "--recovery", is_flag=False, flag_value="", default=None, metavar="TARGET",
              help="Start one broker in recovery mode on TARGET: a statedir, or a flux "
                   "dump archive (restored into a temporary one)")
@click.argument("initial_program", nargs=-1, type=click.UNPROCESSED)
def command(test_size: int | None, broker_opts: tuple[str, ...], setattrs: tuple[str, ...],
            config_path: str | None, rundir: str | None, test_rundir: str | None,
            test_rundir_cleanup: bool, test_exit_timeout: str, test_exit_mode: str,
            test_start_mode: str, wrap: tuple[str, ...], test_hosts: str | None,
            test_pmi_clique: str, caliper_profile: str | None, verbose: int, noexec: bool,
            recovery: str | None, initial_program: tuple[str, ...]) -> None:
    """Start a Flux instance and run INITIAL_PROGRAM (default: a shell) in it."""
    from broker.launch import LaunchOptions, launch
    from broker.main import build_parser, load_config, parse_setattr
    from flux.errors import FluxError
    from flux.util.fsd import parse_fsd

    try:
        exit_timeout = parse_fsd(test_exit_timeout)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--test-exit-timeout'") from None
    if rundir and test_rundir:
        raise click.UsageError("--rundir and --test-rundir cannot be used together")
    if caliper_profile is not None:
        die("start", "--caliper-profile: this Flux was built without Caliper support")
    hosts: list[str] = []
    if test_hosts is not None:
        if test_size is None:
            raise click.UsageError("--test-hosts needs --test-size")
        from flux.hostlist import Hostlist

        try:
            hosts = list(Hostlist(test_hosts))
        except (ValueError, TypeError) as exc:
            raise click.BadParameter(f"{test_hosts!r}: {exc}",
                                     param_hint="'--test-hosts'") from None
        if len(hosts) < test_size:
            raise click.BadParameter(f"{test_hosts!r} names {len(hosts)} host(s) for "
                                     f"{test_size} broker(s)", param_hint="'--test-hosts'")
    # test-size brokers bootstrap from files in the instance directory, not over PMI,
    # so there is no PMI_process_mapping to set: the option is checked and has no effect
    del test_pmi_clique
    pmi = test_size is None and "PMI_FD" in os.environ
    if pmi and (rundir or test_rundir):
        raise click.UsageError("--rundir and --test-rundir need --test-size (each broker "
                               "started by PMI makes its own rundir)")
    if rundir and test_size is None:
        # flux-start(1): --rundir is "only with --test-size"
        raise click.UsageError("--rundir only works with --test-size")
    extra = _split_broker_opts(broker_opts)
    parser = build_parser()
    known, unknown = parser.parse_known_args(extra)
    if unknown or known.initial_program:
        raise click.UsageError(f"unsupported broker option(s): {' '.join(unknown or known.initial_program)}")
    attrs: list[tuple[str, str]] = list(known.setattr)
    for text in setattrs:
        try:
            attrs.append(parse_setattr(text))
        except Exception as exc:  # argparse.ArgumentTypeError
            raise click.BadParameter(str(exc), param_hint="'-S'") from None
    config_path = config_path or known.config_path
    if (test_size or 1) > 1 and rundir is None and test_rundir is None \
            and any(name == "rundir" for name, _v in attrs):
        # -Srundir=DIR for test brokers: the directory they share (each its own DIR/RANK,
        # as with --rundir), not one rundir every broker would bind its socket in
        rundir = [v for name, v in attrs if name == "rundir"][-1]
        attrs = [(name, v) for name, v in attrs if name != "rundir"]
    scratch = None
    if recovery is not None:
        if test_size not in (None, 1) or pmi:
            raise click.UsageError("--recovery starts one broker (rank 0 alone)")
        attrs, scratch = _recovery_attrs(recovery, attrs)
        test_size = 1
    try:
        config = load_config(config_path)
    except FluxError as exc:
        die("start", str(exc))
    opts = LaunchOptions(size=test_size or 1, setattrs=attrs, config_path=config_path,
                         config=config, initial_program=list(initial_program), rundir=rundir,
                         test_rundir=test_rundir, test_rundir_cleanup=test_rundir_cleanup,
                         exit_timeout=exit_timeout, exit_mode=test_exit_mode,
                         start_mode=test_start_mode, verbose=verbose + known.verbose,
                         noexec=noexec, pmi=pmi, test=test_size is not None,
                         wrap=_split_broker_opts(wrap), test_hosts=hosts)
    try:
        rc = launch(opts)
    except OSError as exc:
        die("start", exc.strerror or str(exc))
    finally:
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(rc)


def _recovery_attrs(target: str, attrs: list[tuple[str, str]]
                    ) -> tuple[list[tuple[str, str]], str | None]:
    """The attributes of a recovery-mode broker on TARGET (a statedir, or a dump file
    restored into a scratch statedir, which the caller removes at the end)."""
    if not target:
        die("start", "--recovery needs a TARGET here (the statedir of the instance, or a "
                     "flux dump archive): a system instance's place is not known")
    if any(name in ("statedir", "content.restore") for name, _v in attrs):
        raise click.UsageError("--recovery sets statedir (and content.restore) itself")
    scratch = None
    if os.path.isdir(target):
        if not os.path.exists(os.path.join(target, "content.lmdb")):
            die("start", f"--recovery: {target}: no Flux state here (no content.lmdb)")
        extra = [("statedir", target)]
    elif os.path.isfile(target):
        import tempfile

        scratch = tempfile.mkdtemp(prefix="flux-recovery-")
        extra = [("statedir", scratch), ("content.restore", os.path.abspath(target))]
    else:
        die("start", f"--recovery: {target}: no such directory or file")
    return [*attrs, *extra, ("broker.recovery-mode", "1")], scratch
