"""Wait statuses (waitpid(2)) as the exit codes shells and Flux commands report."""
from __future__ import annotations

import os
import signal

__all__ = ["exit_code", "exit_code_of"]


def exit_code(status: int) -> int:
    """The exit code of STATUS, or 128 + N for a process killed by signal N."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 1


def exit_code_of(status: int) -> tuple[int, str]:
    """(exit code, reason) for a job's wait status; reason is "" for success.

    A shell killed by a signal gives 128+signal; a shell exit code above
    128 reports a task killed by signal (code-128).
    """
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return 128 + sig, f"task(s) {signal.strsignal(sig) or f'signal {sig}'}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    if code == 0:
        return 0, ""
    if code > 128:
        sig = code - 128
        name = signal.strsignal(sig) if 0 < sig < signal.NSIG else None
        if name:
            return code, f"task(s) {name}"
    return code, f"task(s) exited with exit code {code}"
