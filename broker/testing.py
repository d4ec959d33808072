"""Real instances for tests: start ``flux start`` in the background, talk to it, stop it.

Used by the broker's tests and meant for any test that needs a live
instance (KVS, job modules)::

    inst = TestInstance(size=3).start()
    try:
        h = inst.handle()
        ...
        inst.flux("getattr", "size")      # a real `flux` subprocess
    finally:
        inst.stop()

The instance runs without an initial program (``broker.rc2_none``) until
``stop()`` shuts it down (``flux shutdown``), so its exit code is 0 unless
something failed.  ``live_pids()`` lists broker processes still running,
which tests use to prove nothing is left behind.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

from flux.errors import FluxError
from shell.procs import PR_SET_PDEATHSIG, prctl

#: every instance started in this process, for leak checks
STARTED: list["TestInstance"] = []
#: every instance made in this process: whatever a test did not stop (or never
#: started) is removed from /tmp when the process exits
_MADE: list["TestInstance"] = []


@atexit.register
def _remove_leftovers() -> None:
    for inst in _MADE:
        if inst.proc is not None and inst.proc.poll() is None:
            inst.kill()
        else:
            inst._cleanup()


def flux_command() -> list[str]:
    """How to run the ``flux`` command of this installation."""
    script = os.path.join(os.path.dirname(sys.executable), "flux")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "cli.main"]


def _die_with_parent() -> None:
    # a test run killed outright (SIGKILL, a CI timeout) must not leave its
    # instances running: the broker gets SIGTERM and shuts down cleanly
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class TestInstance:
    __test__ = False  # not a pytest class

    def __init__(self, size: int = 1, setattrs: Sequence[str] = (),
                 config_path: str | None = None, args: Sequence[str] = (),
                 env: dict[str, str] | None = None, rc2: Sequence[str] | None = None) -> None:
        self.size = size
        self.setattrs = list(setattrs)
        self.config_path = config_path
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.rc2 = list(rc2) if rc2 is not None else None
        # world-traversable, so tests may connect as another user
        self.root = tempfile.mkdtemp(prefix="flux-test-", dir="/tmp")
        os.chmod(self.root, 0o755)
        _MADE.append(self)
        self.rundir = os.path.join(self.root, "rundir")
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = os.path.join(self.root, "stderr.log")
        self._stderr: Any = None
        self.broker_pids: list[int] = []
        self.returncode: int | None = None

    @property
    def socket_path(self) -> str:
        sub = "0" if self.size > 1 else ""
        return os.path.join(self.rundir, sub, "local")

    @property
    def uri(self) -> str:
        return "local://" + self.socket_path

    @property
    def env(self) -> dict[str, str]:
        """The environment for commands run against this instance (``flux`` on PATH)."""
        env = dict(os.environ)
        env.update(self.extra_env)
        env["FLUX_URI"] = self.uri
        bindir = os.path.dirname(sys.executable)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        return env

    def start_command(self) -> list[str]:
        cmd = flux_command() + ["start", f"--test-size={self.size}", f"--rundir={self.rundir}",
                                "--test-exit-timeout=30s"]
        if self.rc2 is None:
            cmd.append("-Sbroker.rc2_none")
        for setting in self.setattrs:
            cmd.append(f"-S{setting}")
        if self.config_path:
            cmd.append(f"--config-path={self.config_path}")
        cmd += self.args
        if self.rc2:
            cmd += self.rc2
        return cmd

    def start(self, timeout: float = 30.0) -> "TestInstance":
        """Start the instance and wait until every broker is in run state."""
        env = dict(os.environ)
        env.update(self.extra_env)
        env.pop("FLUX_URI", None)
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.start_command(), env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        STARTED.append(self)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                text = self.stderr_text()
                self._cleanup()         # nothing of a failed start is left in /tmp
                raise RuntimeError(f"flux start exited with {self.proc.returncode}:\n" + text)
            if os.path.exists(self.socket_path):
                try:
                    h = self.handle()
                    state = h.rpc("broker.state", nodeid=0).get()
                    if state["state"] == "run" and len(state["online"]) == self.size:
                        self.broker_pids = [int(h.rpc("attr.get", {"name": "broker.pid"},
                                                      nodeid=r).get()["value"])
                                            for r in range(self.size)]
                        h.close()
                        return self
                    h.close()
                except OSError:
                    pass
            if time.monotonic() > deadline:
                text = self.stderr_text()     # before kill() removes it
                self.kill()
                raise RuntimeError("instance did not reach run state:\n" + text)
            time.sleep(0.02)

    def handle(self) -> Any:
        import flux

        return flux.Flux(self.uri)

    def flux(self, *args: str, input: str | None = None, timeout: float = 30.0,
             check: bool = False, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
        """Run ``flux ARGS...`` against the instance; returns the completed process."""
        full_env = self.env
        if env:
            full_env.update(env)
        return subprocess.run(flux_command() + list(args), env=full_env, input=input,
                              capture_output=True, text=True, timeout=timeout, check=check)

    def stderr_text(self) -> str:
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return self.returncode

    def stop(self, timeout: float = 30.0) -> int:
        """Shut the instance down cleanly (killing it if that fails); returns its exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            try:
                h = self.handle()
                h.rpc("broker.shutdown", {}, nodeid=0).get()
                h.close()
            except (OSError, FluxError):
                pass
        try:
            code = self.wait(timeout)
        finally:
            self._cleanup()
        return code

    def kill(self) -> None:
        """Kill every process of the instance at once."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        for pid in self.broker_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self._cleanup()

    def _cleanup(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        shutil.rmtree(self.root, ignore_errors=True)

    def live_pids(self) -> list[int]:
        """Broker (and flux start) processes of this instance still running."""
        pids = list(self.broker_pids)
        if self.proc is not None:
            pids.append(self.proc.pid)
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                pass
            # a zombie is not a running broker
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                    if fh.read().split(") ", 1)[1].startswith("Z"):
                        continue
            except OSError:
                continue
            alive.append(pid)
        return alive


def stray_brokers() -> list[int]:
    """PIDs of any instance started here that is still running."""
    out: list[int] = []
    for inst in STARTED:
        out.extend(inst.live_pids())
    for system in SYSTEMS:
        out.extend(system.live_pids())
    return out


__all__ = ["TestInstance", "SystemInstance", "flux_command", "stray_brokers", "free_port",
           "STARTED", "SYSTEMS"]


# -- system instances: one broker per fake host, from one shared configuration -------------

def free_port(addresses: Sequence[str]) -> int:
    """A TCP port free on every one of ADDRESSES (loopback addresses) right now."""
    import random
    import socket as _socket

    for _ in range(200):
        port = random.randint(20000, 60000)
        socks = []
        try:
            for addr in addresses:
                s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
                socks.append(s)
                s.bind((addr, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port found")


class SystemInstance:
    """A configured (``[bootstrap]``) instance of SIZE brokers, each its own process.

    Broker r runs ``flux broker --config-path=CONF`` as host ``node<r>``
    (FLUX_FAKE_HOSTNAME) on loopback address 127.0.0.<r+2>, with its own
    rundir (and ``statedir`` for rank 0).  Like a service manager with
    ``Restart=always`` and ``RestartPreventExitStatus=42``, ``poll()``
    starts again a broker that exited with another code (when ``restart``
    is on), at most ``max_restarts`` times each.  Every broker gets
    PR_SET_PDEATHSIG (SIGKILL), and ``stop()``/``kill()`` leave none behind.
    """

    __test__ = False
    NORESTART = 42

    def __init__(self, size: int, topo: str | None = "kary:2", extra_toml: str = "",
                 setattrs: Sequence[str] = (), cert: bool = True, restart: bool = True,
                 hosts_toml: str | None = None, max_restarts: int = 10) -> None:
        self.size = size
        self.root = tempfile.mkdtemp(prefix="flux-sys-", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.conf = os.path.join(self.root, "conf")
        os.makedirs(self.conf)
        self.cert = os.path.join(self.root, "curve.cert")
        if cert:
            from broker.cert import write_cert

            write_cert(self.cert)
        self.addrs = [f"127.0.0.{r + 2}" for r in range(size)]
        self.port = free_port(self.addrs)
        self.setattrs = ["broker.rc2_none", "broker.quorum=1", "broker.quorum-timeout=none",
                         f"broker.exit-norestart={self.NORESTART}"] + list(setattrs)
        self.restart = restart
        self.max_restarts = max_restarts
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.codes: dict[int, list[int]] = {r: [] for r in range(size)}
        self.exit_times: dict[int, float] = {}
        self.restarts: dict[int, int] = {r: 0 for r in range(size)}
        self.held: set[int] = set()      # not restarted by poll()
        self.argv: dict[int, list[str]] = {}   # a rank's own command line (start(argv=))
        self.extra_env: dict[int, dict[str, str]] = {}   # a rank's own environment additions
        self._logs: dict[int, Any] = {}
        self.write_config(topo, extra_toml, hosts_toml)

    def hostname(self, rank: int) -> str:
        return f"node{rank}"

    def endpoint(self, rank: int) -> str:
        return f"tcp://{self.addrs[rank]}:{self.port}"

    def write_config(self, topo: str | None, extra_toml: str = "",
                     hosts_toml: str | None = None) -> None:
        lines = ["[bootstrap]", f'curve_cert = "{self.cert}"', "hosts = ["]
        if hosts_toml is None:
            for r in range(self.size):
                lines.append(f'  {{ host = "{self.hostname(r)}", bind = "{self.endpoint(r)}", '
                             f'connect = "{self.endpoint(r)}" }},')
        else:
            lines.append(hosts_toml)
        lines.append("]")
        if topo:
            lines += ["[tbon]", f'topo = "{topo}"']
        text = "\n".join(lines) + "\n" + extra_toml + "\n"
        with open(os.path.join(self.conf, "system.toml"), "w", encoding="utf-8") as fh:
            fh.write(text)

    def rundir(self, rank: int) -> str:
        return os.path.join(self.root, f"run{rank}")

    def uri(self, rank: int = 0) -> str:
        return "local://" + os.path.join(self.rundir(rank), "local")

    def log_path(self, rank: int) -> str:
        return os.path.join(self.root, f"broker{rank}.log")

    def command(self, rank: int) -> list[str]:
        cmd = flux_command() + ["broker", f"--config-path={self.conf}"]
        cmd += [f"-S{s}" for s in self.setattrs]
        cmd.append(f"-Srundir={self.rundir(rank)}")
        if rank == 0:
            cmd.append(f"-Sstatedir={os.path.join(self.root, 'state')}")
        return cmd

    def env(self, rank: int) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("FLUX_URI", None)
        env["FLUX_FAKE_HOSTNAME"] = self.hostname(rank)
        env.update(self.extra_env.get(rank, {}))
        bindir = os.path.dirname(sys.executable)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        return env

    def start(self, rank: int, extra: Sequence[str] = (),
              argv: Sequence[str] | None = None) -> subprocess.Popen[bytes]:
        """Start broker RANK (as a service manager would); ARGV replaces the command."""
        old = self.procs.get(rank)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"broker {rank} is already running")
        log = open(self.log_path(rank), "ab")
        if rank in self._logs:
            self._logs[rank].close()
        self._logs[rank] = log

        def pre() -> None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

        if argv is not None:
            self.argv[rank] = list(argv)
        cmd = self.argv.get(rank) or self.command(rank)
        proc = subprocess.Popen(cmd + list(extra), env=self.env(rank),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                preexec_fn=pre, start_new_session=True)
        self.procs[rank] = proc
        self.held.discard(rank)
        if self not in SYSTEMS:
            SYSTEMS.append(self)
        return proc

    def start_all(self, order: Sequence[int] | None = None, delay: float = 0.0) -> None:
        for rank in (order if order is not None else range(self.size)):
            self.start(rank)
            if delay:
                time.sleep(delay)

    def poll(self) -> None:
        """Record exits; restart brokers that should be (see the class doc)."""
        for rank, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None or getattr(proc, "_seen", False):
                continue
            proc._seen = True  # type: ignore[attr-defined]
            self.codes[rank].append(code)
            self.exit_times[rank] = time.monotonic()
            if (self.restart and code != self.NORESTART and rank not in self.held
                    and self.restarts[rank] < self.max_restarts):
                self.restarts[rank] += 1
                time.sleep(0.05)
                self.start(rank)

    def running(self, rank: int) -> bool:
        proc = self.procs.get(rank)
        return proc is not None and proc.poll() is None

    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "condition",
                 interval: float = 0.05) -> Any:
        """Poll (restarting brokers as needed) until PREDICATE() is truthy; its value."""
        deadline = time.monotonic() + timeout
        last_exc: BaseException | None = None
        while time.monotonic() < deadline:
            self.poll()
            try:
                value = predicate()
                last_exc = None
                if value:
                    return value
            except (OSError, FluxError, ValueError, KeyError) as exc:
                last_exc = exc
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} "
                             f"(last error: {last_exc})\n" + self.logs())

    def handle(self, rank: int = 0) -> Any:
        import flux

        return flux.Flux(self.uri(rank))

    def state(self) -> dict[str, Any]:
        h = self.handle(0)
        try:
            return h.rpc("broker.state", nodeid=0).get()
        finally:
            h.close()

    def online(self) -> list[int]:
        try:
            return sorted(self.state()["online"])
        except (OSError, FluxError):
            return []

    def wait_full(self, timeout: float = 60.0) -> None:
        self.wait_for(lambda: self.state()["state"] == "run"
                      and len(self.state()["online"]) == self.size, timeout, "all brokers online")

    def flux(self, *args: str, rank: int = 0, timeout: float = 30.0,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = self.env(rank)
        env["FLUX_URI"] = self.uri(rank)
        return subprocess.run(flux_command() + list(args), env=env, input=input,
                              capture_output=True, text=True, timeout=timeout)

    def signal(self, rank: int, signum: int) -> None:
        proc = self.procs[rank]
        if proc.poll() is None:
            os.kill(proc.pid, signum)

    def kill_broker(self, rank: int, hold: bool = True) -> int:
        """SIGKILL broker RANK and reap it; with HOLD, poll() does not restart it."""
        if hold:
            self.held.add(rank)
        proc = self.procs[rank]
        if proc.poll() is None:
            proc.kill()
        code = proc.wait(10)
        self.poll()
        return code

    def wait_exit(self, rank: int, timeout: float = 30.0) -> int:
        proc = self.procs[rank]
        code = proc.wait(timeout)
        return code

    def logs(self) -> str:
        out = []
        for rank in range(self.size):
            try:
                with open(self.log_path(rank), encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
            except OSError:
                continue
            out.append(f"--- broker {rank} ---\n{text[-3000:]}")
        return "\n".join(out)

    def log(self, rank: int) -> str:
        try:
            with open(self.log_path(rank), encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def shutdown(self, timeout: float = 60.0) -> dict[int, int]:
        """``flux shutdown`` at rank 0 with restarts off; every broker's exit code."""
        self.restart = False
        r = self.flux("shutdown", "--quiet", timeout=timeout)
        codes = {}
        for rank, proc in self.procs.items():
            try:
                codes[rank] = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                codes[rank] = -999
        self.poll()
        if r.returncode not in (0, 1):
            raise AssertionError(f"flux shutdown: {r.returncode} {r.stderr}")
        return codes

    def live_pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def kill(self) -> None:
        """Kill every broker (SIGCONT first, for any stopped one) and remove the files."""
        self.restart = False
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGCONT)
                    proc.kill()
                except OSError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        shutil.rmtree(self.root, ignore_errors=True)


#: every system instance started in this process, for leak checks
SYSTEMS: list[SystemInstance] = []
