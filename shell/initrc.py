"""The shell initrc: a Python file run at shell start to load plugins or set options.

flux-shell(1) describes a Lua initrc; ours is Python with the same
vocabulary.  The file runs with these names defined:

- ``plugin.load(file=GLOB, conf=None)``: load plugin files (relative globs
  are searched in ``plugin.searchpath``, a list of directories);
- ``plugin.register(name=NAME, handlers=[{"topic": GLOB, "fn": FN}, ...])``:
  a plugin written in the initrc itself (``FN(topic, shell, task)``);
- ``shell``: the running shell (``shell.options``, ``shell.info``,
  ``shell.env``, ``shell.log(msg)``, ``shell.getopt(name)``);
- ``source(GLOB)`` / ``source_if_exists(GLOB)``: run other initrc files.
"""
from __future__ import annotations

import glob
import os
import runpy
from typing import Any

from shell.plugstack import Plugin

__all__ = ["load_initrc"]


class _PluginAPI:
    def __init__(self, shell: Any) -> None:
        self._shell = shell

    @property
    def searchpath(self) -> list[str]:
        return self._shell.plugstack.searchpath

    @searchpath.setter
    def searchpath(self, value: Any) -> None:
        if isinstance(value, str):
            value = [p for p in value.split(":") if p]
        self._shell.plugstack.searchpath = list(value)

    def load(self, file: str, conf: dict[str, Any] | None = None) -> None:
        self._shell.plugstack.load(file, conf)

    def register(self, name: str, handlers: list[dict[str, Any]]) -> None:
        p = Plugin(str(name))
        for entry in handlers:
            p.add_handler(str(entry["topic"]), entry["fn"])
        self._shell.plugstack.add(p)


def load_initrc(shell: Any, path: str) -> None:
    """Run initrc PATH (FileNotFoundError if it does not exist)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"initrc {path}: No such file or directory")
    api = _PluginAPI(shell)

    def source(pattern: str, must: bool = True) -> None:
        paths = sorted(glob.glob(pattern))
        if not paths and must and not glob.has_magic(pattern):
            raise FileNotFoundError(f"source {pattern}: No such file or directory")
        for p in paths:
            runpy.run_path(p, init_globals=names)

    names: dict[str, Any] = {"plugin": api, "shell": shell,
                             "source": source,
                             "source_if_exists": lambda pattern: source(pattern, False)}
    shell.plugstack.searchpath = shell.plugstack.searchpath or [os.path.dirname(path)]
    runpy.run_path(path, init_globals=names)
