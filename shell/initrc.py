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

``shell`` (also as handlers registered here see it) has flux-shell(1)'s
initrc members: ``rcpath``, ``getenv([name])``, ``setenv(var, val,
[overwrite])``, ``unsetenv(var)`` (the job environment the tasks
inherit), ``options`` (live: a value set here is the job's), ``info``
(jobid, rank, size, ntasks, service, options.verbose/standalone, jobspec,
R), ``rankinfo`` / ``get_rankinfo([shell_rank])`` (broker_rank, ntasks,
resources), ``log``, ``debug``, ``log_error``, ``die``; anything else is
the shell's own attribute.  In ``task.*`` handlers ``task`` has ``info``
(localid, rank, state, pid; wait_status, exitcode, signaled once exited)
and ``getenv``/``setenv``/``unsetenv`` (the task's environment, before it
starts).  Tables are dicts that also allow attribute access.
"""
from __future__ import annotations

import glob
import os
import runpy
from typing import Any

from flux.idset import IDset
from shell.plugstack import Plugin
from shell.shell import LOG_LEVELS

__all__ = ["load_initrc"]


class Table(dict):  # type: ignore[type-arg]
    """A Lua table as Python sees it: ``t["key"]`` and ``t.key`` alike."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _table(obj: Any) -> Any:
    if isinstance(obj, dict):
        return Table({k: _table(v) for k, v in obj.items()})
    return obj


def _setenv(env: dict[str, str], var: str, val: Any, overwrite: Any) -> None:
    if overwrite in (0, False) and var in env:
        return
    env[str(var)] = str(val)


class InitrcShell:
    """The shell as an initrc and its handlers see it (flux-shell(1)'s ``shell``)."""

    def __init__(self, shell: Any, rcpath: str = "") -> None:
        object.__setattr__(self, "_shell", shell)
        object.__setattr__(self, "rcpath", rcpath)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shell, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "rcpath":
            object.__setattr__(self, name, value)
        else:
            setattr(self._shell, name, value)

    def getenv(self, name: str | None = None) -> Any:
        env = self._shell.env
        return dict(env) if name is None else env.get(name)

    def setenv(self, var: str, val: Any, overwrite: Any = True) -> None:
        _setenv(self._shell.env, var, val, overwrite)

    def unsetenv(self, var: str) -> None:
        self._shell.env.pop(var, None)

    @property
    def info(self) -> Table:
        sh = self._shell
        i = sh.info
        return _table({"jobid": i.jobid, "rank": i.shell_rank, "size": i.size,
                       "ntasks": i.ntasks, "service": f"{os.getuid()}-shell-{i.jobid}",
                       "options": {"verbose": bool(sh.verbose),
                                   "standalone": bool(sh.standalone)},
                       "jobspec": i.jobspec, "R": i.R})

    def get_rankinfo(self, shell_rank: int | None = None) -> Table:
        ranks = self._shell.info.ranks
        r = ranks[self._shell.info.shell_rank if shell_rank is None else int(shell_rank)]
        resources = {"core": r.cores, "ncores": len(IDset(r.cores)) if r.cores else 0}
        if r.gpus:
            resources["gpu"] = r.gpus
        return _table({"broker_rank": r.broker_rank, "ntasks": r.ntasks,
                       "resources": resources})

    @property
    def rankinfo(self) -> Table:
        return self.get_rankinfo()

    def log(self, msg: str) -> None:
        self._shell.log(str(msg), LOG_LEVELS["DEBUG"])

    def debug(self, msg: str) -> None:
        self._shell.log(str(msg), LOG_LEVELS["TRACE"])

    def log_error(self, msg: str) -> None:
        self._shell.log_error(str(msg))

    def die(self, msg: str) -> None:
        self._shell.die(str(msg))


class InitrcTask:
    """A task as initrc handlers see it (flux-shell(1)'s ``task``)."""

    __slots__ = ("_task",)

    def __init__(self, task: Any) -> None:
        self._task = task

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    @property
    def info(self) -> Table:
        return _table(self._task.info())

    def getenv(self, var: str) -> str | None:
        return self._task.env.get(var)

    def setenv(self, var: str, val: Any, overwrite: Any = True) -> None:
        _setenv(self._task.env, var, val, overwrite)

    def unsetenv(self, var: str) -> None:
        self._task.env.pop(var, None)


class _PluginAPI:
    def __init__(self, shell: Any, view: InitrcShell | None = None) -> None:
        self._shell = shell
        self._view = view or InitrcShell(shell)

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
            p.add_handler(str(entry["topic"]), self._wrap(entry["fn"]))
        self._shell.plugstack.add(p)

    def _wrap(self, fn: Any) -> Any:
        view = self._view

        def handler(topic: str, _shell: Any, task: Any) -> Any:
            return fn(topic, view, InitrcTask(task) if task is not None else None)

        return handler


def load_initrc(shell: Any, path: str) -> None:
    """Run initrc PATH (FileNotFoundError if it does not exist)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"initrc {path}: No such file or directory")
    view = InitrcShell(shell)
    api = _PluginAPI(shell, view)

    def run(p: str) -> None:
        # shell.rcpath: the directory of the file running now
        outer = view.rcpath
        view.rcpath = os.path.dirname(os.path.abspath(p))
        try:
            runpy.run_path(p, init_globals=names)
        finally:
            view.rcpath = outer

    def source(pattern: str, must: bool = True) -> None:
        if not os.path.isabs(pattern) and view.rcpath:
            pattern = os.path.join(view.rcpath, pattern)
        paths = sorted(glob.glob(pattern))
        if not paths and must and not glob.has_magic(pattern):
            raise FileNotFoundError(f"source {pattern}: No such file or directory")
        for p in paths:
            run(p)

    names: dict[str, Any] = {"plugin": api, "shell": view,
                             "source": source,
                             "source_if_exists": lambda pattern: source(pattern, False)}
    shell.plugstack.searchpath = shell.plugstack.searchpath or [os.path.dirname(path)]
    run(path)
