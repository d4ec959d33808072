"""The shell's builtin plugins, one concern per file, loaded in this order.

Each module has ``plugin() -> Plugin``, called once per process: a shell
server's jobs share the builtins and their routes, so a handler keeps what
it knows of a job in ``shell.aux``.  A site plugin loaded later under the
same name replaces a builtin (shell/plugstack.py).
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BUILTINS", "load_builtins", "builtin_plugins"]

BUILTINS = ("env", "tmpdir", "files", "rlimit", "affinity", "gpubind", "pty", "output", "input", "pmi")


_SHARED: list[Any] = []
_ROUTES: dict[str, Any] = {}


def load_builtins(shell: Any) -> None:
    """Load the builtins into SHELL's plugin stack (made once per process)."""
    if not _SHARED:
        _SHARED[:] = [importlib.import_module(f"shell.plugins.{name}").plugin()
                      for name in BUILTINS]
    shell.plugstack.add_shared(_SHARED, _ROUTES)


def builtin_plugins() -> list[Any]:
    """The builtin Plugin objects of this process (empty before the first shell)."""
    return list(_SHARED)
