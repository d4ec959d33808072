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
                raise RuntimeError(f"flux start exited with {self.proc.returncode}:\n"
                                   + self.stderr_text())
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
                self.kill()
                raise RuntimeError("instance did not reach run state:\n" + self.stderr_text())
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
    return out


__all__ = ["TestInstance", "flux_command", "stray_brokers", "STARTED"]
