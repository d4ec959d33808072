"""The shell's builtin plugins, one concern per file, loaded in this order.

Each module has ``plugin(shell) -> Plugin``.  A site plugin loaded later
under the same name replaces a builtin (shell/plugstack.py).
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BUILTINS", "load_builtins"]

BUILTINS = ("env", "tmpdir", "files", "rlimit", "affinity", "gpubind", "pty", "output", "input", "pmi")


_MODULES: list[Any] = []


def load_builtins(shell: Any) -> None:
    if not _MODULES:        # imported once per process, not looked up again per job
        _MODULES[:] = [importlib.import_module(f"shell.plugins.{name}") for name in BUILTINS]
    for module in _MODULES:
        shell.plugstack.add(module.plugin(shell))
