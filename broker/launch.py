"""Start a local instance (``flux start``): rank 0 in this process, ranks > 0 as children.

Size 1 runs the broker in the ``flux start`` process itself, so the
instance costs no second Python start-up.  For size N, an instance
directory holds the CURVE keypair and the brokers' endpoint files; rank r
uses ``<dir>/<r>`` as its rundir.  The exit code follows flux-start(1):
with ``--test-exit-mode=any`` (default) the exit of any broker starts the
exit timer (``--test-exit-timeout``, after which the rest are killed) and
the code is the highest of all brokers; with ``leader`` only rank 0
counts.  With ``pmi`` (flux start run as the tasks of a job) this process
runs one broker of an instance bootstrapped over PMI (broker.boot_pmi).
Otherwise, without ``--test-size``, a configuration with ``[bootstrap]
hosts`` makes it one broker of a system instance (broker.boot_config).
"""
from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from broker.broker import Broker, BrokerOptions
from broker.config import Config


@dataclass(slots=True)
class LaunchOptions:
    size: int = 1
    setattrs: list[tuple[str, str]] = field(default_factory=list)
    config_path: str | None = None
    config: Config = field(default_factory=Config)
    initial_program: list[str] = field(default_factory=list)
    rundir: str | None = None          # --rundir: created if missing, removed unless it existed
    test_rundir: str | None = None     # --test-rundir: must exist, kept unless cleanup
    test_rundir_cleanup: bool = False
    exit_timeout: float = 20.0
    exit_mode: str = "any"
    start_mode: str = "all"
    verbose: int = 0
    noexec: bool = False
    pmi: bool = False                  # one broker per PMI task (no --test-size, PMI_FD set)
    test: bool = False                 # --test-size was given: never a configured bootstrap
    #: --wrap: what each broker's command runs under (a debugger, valgrind); rank 0 then
    #: runs in a process of its own too
    wrap: list[str] = field(default_factory=list)
    #: --test-hosts: each broker's FLUX_FAKE_HOSTNAME, in rank order; with a configured
    #: [bootstrap], each broker bootstraps from it under that name
    test_hosts: list[str] = field(default_factory=list)


def broker_argv(opts: LaunchOptions, rank: int, instance_dir: str | None) -> list[str]:
    """The command line that runs broker RANK (what -v shows)."""
    argv = list(opts.wrap) + [sys.executable, "-P", "-m", "broker"]
    if _config_hosts(opts):
        # bootstraps from the configuration, as the host FLUX_FAKE_HOSTNAME names
        argv += [f"--setattr={name}={value}" for name, value in opts.setattrs]
        argv.append(f"--config-path={opts.config_path}")
        return argv + (opts.initial_program if rank == 0 else [])
    if opts.size > 1:
        argv += [f"--rank={rank}", f"--size={opts.size}", f"--boot-dir={instance_dir}"]
    for name, value in opts.setattrs:
        argv.append(f"--setattr={name}={value}")
    if opts.size > 1:
        argv.append(f"--setattr=rundir={os.path.join(instance_dir or '', str(rank))}")
    elif opts.rundir or opts.test_rundir:
        argv.append(f"--setattr=rundir={opts.rundir or opts.test_rundir}")
    if opts.config_path:
        argv.append(f"--config-path={opts.config_path}")
    if rank == 0:
        argv += opts.initial_program
    return argv


def _prepare_dir(opts: LaunchOptions) -> tuple[str | None, bool]:
    """The instance directory and whether we remove it at the end."""
    if opts.test_rundir:
        if not os.path.isdir(opts.test_rundir):
            raise OSError(2, f"--test-rundir {opts.test_rundir}: no such directory")
        return opts.test_rundir, opts.test_rundir_cleanup
    if opts.rundir:
        existed = os.path.isdir(opts.rundir)
        os.makedirs(opts.rundir, exist_ok=True)
        return opts.rundir, not existed
    if opts.size == 1:
        return None, False  # the broker makes (and removes) its own rundir
    return tempfile.mkdtemp(prefix=f"flux-{os.getpid()}-"), True


def _config_hosts(opts: LaunchOptions) -> bool:
    """--test-hosts with a configured [bootstrap]: every broker bootstraps from it."""
    if not (opts.test and opts.test_hosts):
        return False
    from broker.boot_config import has_bootstrap

    return has_bootstrap(opts.config)


def _host_ranks(opts: LaunchOptions) -> list[int]:
    """Rank (in the configured instance) of each --test-hosts name, in order."""
    from broker.boot_config import resolve

    return [resolve(opts.config, opts.setattrs, hostname=h).rank
            for h in opts.test_hosts[:opts.size]]


def launch(opts: LaunchOptions) -> int:
    """Run the instance to completion; returns the flux-start exit code."""
    from broker.pmi_client import clean_environ

    if opts.test_hosts and len(opts.test_hosts) < opts.size:
        raise OSError(22, f"--test-hosts names {len(opts.test_hosts)} host(s) for "
                          f"{opts.size} broker(s)")

    if opts.pmi:
        if opts.noexec:
            return 0
        from broker.boot_pmi import launch_pmi

        return launch_pmi(opts)
    if not opts.test:
        from broker.boot_config import has_bootstrap, launch_config

        if has_bootstrap(opts.config):
            # one broker of a system instance: rank and size from [bootstrap] hosts
            return launch_config(opts)
    # our brokers and programs must not use a PMI descriptor meant for us
    clean_environ()
    instance_dir = None
    by_config = _config_hosts(opts)
    # in config mode, broker i is the one named test_hosts[i]; its rank is the config's
    ranks = _host_ranks(opts) if by_config else list(range(opts.size))
    if opts.verbose or opts.noexec:
        shown_dir = instance_dir or "<instance-dir>"
        for i, rank in enumerate(ranks):
            host = f"FLUX_FAKE_HOSTNAME={opts.test_hosts[i]} " if opts.test_hosts else ""
            print("flux-start: " + host + shlex.join(broker_argv(opts, rank, shown_dir)),
                  file=sys.stderr)
    if opts.noexec:
        return 0
    if by_config:
        return asyncio.run(_run_children(opts, ranks, None))
    instance_dir, remove_dir = _prepare_dir(opts)
    try:
        if opts.wrap:
            return asyncio.run(_run_children(opts, ranks, instance_dir))
        return asyncio.run(_run(opts, instance_dir))
    finally:
        if remove_dir and instance_dir:
            shutil.rmtree(instance_dir, ignore_errors=True)


def _test_hostnames(opts: LaunchOptions) -> list[str]:
    """Each test broker's hostname, rank order: --test-hosts, else this host's name."""
    if opts.test_hosts:
        return list(opts.test_hosts[:opts.size])
    import socket

    return [os.environ.get("FLUX_FAKE_HOSTNAME") or socket.gethostname()] * opts.size


def _flux_path_env() -> None:
    """Let the initial program find the ``flux`` that started it."""
    bindir = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(bindir, "flux")):
        path = os.environ.get("PATH", "")
        if bindir not in path.split(os.pathsep):
            os.environ["PATH"] = bindir + (os.pathsep + path if path else "")


async def _run(opts: LaunchOptions, instance_dir: str | None) -> int:
    from broker.initprog import spawn, wait_process

    _flux_path_env()
    setattrs = list(opts.setattrs)
    if opts.size > 1:
        assert instance_dir is not None
        from broker.overlay import write_hosts, write_keys

        write_keys(instance_dir)
        write_hosts(instance_dir, _test_hostnames(opts))
        setattrs.append(("rundir", os.path.join(instance_dir, "0")))
    elif instance_dir is not None:
        setattrs.append(("rundir", instance_dir))
    if opts.test_hosts:
        # rank 0 is this process: its modules and its initial program see the name too
        os.environ["FLUX_FAKE_HOSTNAME"] = opts.test_hosts[0]
    broker = Broker(BrokerOptions(rank=0, size=opts.size, setattrs=setattrs, config=opts.config,
                                  initial_program=list(opts.initial_program),
                                  boot_dir=instance_dir, verbose=opts.verbose,
                                  hostname=opts.test_hosts[0] if opts.test_hosts else None))
    children: dict[int, subprocess.Popen[bytes]] = {}
    if opts.size > 1 and opts.start_mode == "all":
        for rank in range(1, opts.size):
            children[rank] = spawn(broker_argv(opts, rank, instance_dir), _env(opts, rank),
                                   pdeathsig=True, stdin=subprocess.DEVNULL)
    codes: dict[int, int] = {}
    exit_timer: list[asyncio.TimerHandle] = []
    loop = asyncio.get_running_loop()

    def kill_all() -> None:
        for proc in children.values():
            if proc.poll() is None:
                proc.kill()
        broker.request_shutdown("exit timeout")

    def arm_timer() -> None:
        if not exit_timer:
            exit_timer.append(loop.call_later(opts.exit_timeout, kill_all))

    async def watch(rank: int, proc: subprocess.Popen[bytes]) -> None:
        codes[rank] = await wait_process(proc)
        if opts.exit_mode == "any":
            arm_timer()

    watchers = [asyncio.ensure_future(watch(r, p)) for r, p in children.items()]
    codes[0] = await broker.run()
    if exit_timer:
        exit_timer[0].cancel()
    if watchers:
        done, pending = await asyncio.wait(watchers, timeout=opts.exit_timeout)
        if pending:
            for proc in children.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
            await asyncio.wait(pending)
    if opts.exit_mode == "leader":
        return codes[0]
    return max(codes.values())


def _env(opts: LaunchOptions, index: int) -> dict[str, str]:
    env = dict(os.environ)
    if opts.test_hosts:
        env["FLUX_FAKE_HOSTNAME"] = opts.test_hosts[index]
    return env


async def _run_children(opts: LaunchOptions, ranks: list[int], instance_dir: str | None) -> int:
    """Every broker in a process of its own (--wrap, or --test-hosts bootstrapping from
    the configuration); the exit code as _run() computes it.  RANKS: each broker's rank."""
    from broker.initprog import spawn, wait_process

    _flux_path_env()
    if opts.size > 1 and instance_dir is not None:
        from broker.overlay import write_hosts, write_keys

        write_keys(instance_dir)
        write_hosts(instance_dir, _test_hostnames(opts))
    order = sorted(range(len(ranks)), key=lambda i: ranks[i])
    if opts.start_mode == "leader":
        order = order[:1]
    procs: dict[int, subprocess.Popen[bytes]] = {}
    for i in order:
        rank = ranks[i]
        procs[rank] = spawn(broker_argv(opts, rank, instance_dir), _env(opts, i),
                            pdeathsig=True, stdin=None if rank == 0 else subprocess.DEVNULL)
    loop = asyncio.get_running_loop()
    codes: dict[int, int] = {}
    exit_timer: list[asyncio.TimerHandle] = []

    def kill_all() -> None:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()

    async def watch(rank: int, proc: subprocess.Popen[bytes]) -> None:
        codes[rank] = await wait_process(proc)
        if (opts.exit_mode == "any" or rank == 0) and not exit_timer:
            exit_timer.append(loop.call_later(opts.exit_timeout, kill_all))

    # the terminal's ctrl-C is for the initial program (it has the same process group)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        await asyncio.gather(*(watch(r, p) for r, p in procs.items()))
    finally:
        signal.signal(signal.SIGINT, previous)
        if exit_timer:
            exit_timer[0].cancel()
    if opts.exit_mode == "leader" or len(codes) == 1:
        return codes.get(0, 1)
    return max(codes.values())


__all__ = ["LaunchOptions", "launch", "broker_argv"]
