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


def _pdeathsig_setter() -> Callable[[], None] | None:
    """A pre-exec hook asking the kernel to SIGTERM the child when we exit.

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
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return hook


__all__ = ["exit_code", "wait_process", "spawn"]
