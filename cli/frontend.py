"""flux(1)'s front end: the sub-command environment and external ``flux-CMD`` commands.

flux(1) builds an environment for its sub-commands and, for a CMD it does
not have built in, runs the first ``flux-CMD`` executable on the
sub-command search path ``[FLUX_EXEC_PATH_PREPEND]:install-path:[FLUX_EXEC_PATH]``
(here also a ``flux-CMD.py`` script, run with this Python); a CMD with a
``/`` in it is run directly.  What we set (``specs/cli-frontend.md``):

- ``FLUX_EXEC_PATH``: that search path, so nested ``flux`` commands search
  the same directories;
- ``FLUX_SEC_DIRECTORY``: ``$HOME/flux`` when unset;
- ``PYTHONPATH``: ``[FLUX_PYTHONPATH_PREPEND]:[PYTHONPATH]``.  Unlike
  flux-core we add no install path: our ``flux`` package lives in this
  interpreter's site-packages, and putting those on every job's
  PYTHONPATH would hand our compiled dependencies to whatever Python a
  job runs.

Each list keeps the first of any repeated entry, so the variables do not
grow when ``flux`` runs ``flux``.  The functions here are pure: they take
an environment and return what to set or run.
"""
from __future__ import annotations

import os
import sys

if False:  # for type checkers only: typing costs a short command ~3 ms
    from collections.abc import Mapping


def install_exec_dir() -> str:
    """Where an installation keeps its ``flux-CMD`` executables (flux-core's layout)."""
    return os.path.join(sys.prefix, "libexec", "flux", "cmd")


def search_path(*parts: str | None) -> list[str]:
    """The ``:``-separated PARTS as one list: empty entries dropped, first of repeats kept."""
    seen: dict[str, None] = {}
    for part in parts:
        for entry in (part or "").split(":"):
            if entry:
                seen.setdefault(entry, None)
    return list(seen)


def subcommand_environment(environ: "Mapping[str, str]", exec_dir: str) -> dict[str, str]:
    """The variables flux(1) sets for its sub-commands, given ENVIRON."""
    env = {"FLUX_EXEC_PATH": ":".join(search_path(environ.get("FLUX_EXEC_PATH_PREPEND"),
                                                  exec_dir, environ.get("FLUX_EXEC_PATH")))}
    if not environ.get("FLUX_SEC_DIRECTORY"):
        env["FLUX_SEC_DIRECTORY"] = os.path.join(environ.get("HOME") or "/", "flux")
    pythonpath = search_path(environ.get("FLUX_PYTHONPATH_PREPEND"), environ.get("PYTHONPATH"))
    if pythonpath:
        env["PYTHONPATH"] = ":".join(pythonpath)
    return env


def find_subcommand(name: str, path: list[str],
                    trace: "list[str] | None" = None) -> list[str] | None:
    """The argv prefix that runs external command NAME: ``[DIR/flux-NAME]`` for an
    executable, ``[python, DIR/flux-NAME.py]`` for a script, from the first DIR of
    PATH that has one; None if none does.  Each candidate tried is added to TRACE."""
    for directory in path:
        candidate = os.path.join(directory, f"flux-{name}")
        if trace is not None:
            trace.append(candidate)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return [candidate]
        script = candidate + ".py"
        if os.path.isfile(script):
            if trace is not None:
                trace.append(script)
            return [sys.executable, script]
    return None


def run_external(argv: list[str], env_updates: dict[str, str], prog: str = "flux") -> int:
    """Replace this process with ARGV (environment updated); the exit code if it cannot run."""
    os.environ.update(env_updates)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        target = argv[1] if argv[0] == sys.executable and len(argv) > 1 else argv[0]
        sys.stderr.write(f"{prog}: {target}: {exc.strerror or exc}\n")
        return 1
    return 1  # pragma: no cover - execv does not return
