"""Wait statuses (waitpid(2)) as the exit codes shells and Flux commands report."""
from __future__ import annotations

import os

__all__ = ["exit_code"]


def exit_code(status: int) -> int:
    """The exit code of STATUS, or 128 + N for a process killed by signal N."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 1
