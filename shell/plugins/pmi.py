"""PMI-1 for the job's tasks (wired to shell/pmi/ once it lands)."""
from __future__ import annotations

from typing import Any

from shell.plugstack import Plugin

__all__ = ["plugin"]


def plugin(shell: Any) -> Plugin:
    return Plugin("pmi")
