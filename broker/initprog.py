"""Child processes of the broker (the initial program) watched from asyncio without threads.

A pidfd becomes readable when the process exits, so waiting costs one
reader on the event loop instead of a child-watcher thread.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import Callable, Sequence


def exit_code(returncode: int) -> int:
    """Shell-style exit code: a signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


async def wait_process(proc: subprocess.Popen[bytes]) -> int:
    """Wait for PROC without blocking the loop; returns its shell-style exit code."""
    if proc.returncode is not None:
        return exit_code(proc.returncode)
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:
        # No pidfd (old kernel) or already reaped: poll instead.
        while proc.poll() is None:
            await asyncio.sleep(0.05)
        return exit_code(proc.returncode)
    done = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        if proc.poll() is None:
            await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    proc.wait()
    return exit_code(proc.returncode)


def spawn(argv: Sequence[str], env: dict[str, str], *, pdeathsig: bool = False,
          stdin: int | None = None) -> subprocess.Popen[bytes]:
    """Start ARGV with ENV; with PDEATHSIG it is killed if we die first."""
    preexec = _pdeathsig_setter() if pdeathsig else None
    return subprocess.Popen(list(argv), env=env, stdin=stdin, preexec_fn=preexec,
                            close_fds=True)


class InitialProgram:
    """The initial program (rc2), in a process group of its own.

    Why its own group: a signal for the broker (the job shell's SIGTERM
    or SIGALRM when the broker runs as a job's task) must reach the broker
    alone, which then decides what the program gets (SIGHUP, as
    flux-broker aborts rc2), and everything the program started can be
    found and ended by its group once it is over.  When our stdin is a
    terminal whose foreground group is ours, the program's group takes
    the foreground (set in the child before exec, so an interactive shell
    never sees itself in the background) and it is given back at the end.
    """

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.tty: int | None = None
        try:
            if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
                self.tty = 0
        except OSError:
            self.tty = None
        # SIGKILL when the broker dies: a broker SIGKILLed by its job's shell must not
        # leave the program behind (what the program started is found by the job
        # shell's sweep, by FLUX_ENCLOSING_ID)
        die_with_broker = _pdeathsig_setter(signal.SIGKILL)

        def child() -> None:
            if die_with_broker is not None:
                die_with_broker()
            if self.tty is not None:
                _take_foreground()

        self.proc = subprocess.Popen(list(argv), env=env, close_fds=True, preexec_fn=child,
                                     process_group=None if self.tty is not None else 0)
        self.pid = self.proc.pid
        self._watcher, self._lifeline = _group_watcher(self.pid)

    def poll(self) -> int | None:
        return self.proc.poll()

    def signal(self, signum: int) -> None:
        """SIGNUM to the program's process group (to the program if that fails)."""
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass
        except OSError:
            try:
                self.proc.send_signal(signum)
            except OSError:
                pass

    async def wait(self) -> int:
        """Its shell-style exit code; then what it left in its group is killed and the
        terminal's foreground is ours again."""
        try:
            return await wait_process(self.proc)
        finally:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
            self._stop_watcher()
            self._restore_foreground()

    def _stop_watcher(self) -> None:
        # the watcher first, then its lifeline: it must not outlive the group and
        # then signal a process group that reused the number
        if self._watcher is not None:
            try:
                self._watcher.kill()
                self._watcher.wait()
            except OSError:
                pass
            self._watcher = None
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None

    def _restore_foreground(self) -> None:
        if self.tty is None:
            return
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(self.tty, os.getpgrp())
        except OSError:
            pass
        finally:
            signal.signal(signal.SIGTTOU, old)


# Waits for its stdin (a pipe only the broker can write) to close, which the
# kernel does when the broker dies, however it dies; then kills the group.
_WATCHER = 'read _ignored; kill -KILL "-$0" 2>/dev/null'


def _group_watcher(pgid: int) -> tuple[subprocess.Popen[bytes] | None, int | None]:
    """A tiny process that kills process group PGID if the broker dies (SIGKILL too).

    The parent-death signal reaches the program itself but not what it
    started (``sh -c 'cmd; sleep 100'`` leaves the sleep), so without this
    a broker killed outright would leave the rest of the initial program
    running.  Returns the watcher and the pipe end that keeps it waiting.
    """
    try:
        rfd, wfd = os.pipe()  # both close-on-exec: no other child holds the write end
    except OSError:
        return None, None
    try:
        watcher = subprocess.Popen(["/bin/sh", "-c", _WATCHER, str(pgid)], stdin=rfd,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   close_fds=True, start_new_session=True)
    except OSError:
        os.close(wfd)
        return None, None
    finally:
        os.close(rfd)
    return watcher, wfd


def _take_foreground() -> None:
    """In the child: a process group of its own, made the terminal's foreground."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(0, os.getpgrp())
    except OSError:
        pass
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)


def _pdeathsig_setter(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A pre-exec hook asking the kernel to send SIGNUM to the child when we exit.

    libc is loaded here, in the parent, so the hook does no imports
    between fork and exec.
    """
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signum, 0, 0, 0)

    return hook


__all__ = ["exit_code", "wait_process", "spawn", "InitialProgram"]
