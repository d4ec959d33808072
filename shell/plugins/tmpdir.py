"""FLUX_JOB_TMPDIR: a private directory per job per rank, removed at the end.

Under an instance the fork server makes it (as root it can hand it to the
job's user) and removes it after the shell exits; standalone, the shell
makes and removes its own.
"""
from __future__ import annotations

import shutil
import tempfile
from typing import Any

from shell.plugstack import Plugin

__all__ = ["plugin"]


def plugin(shell: Any) -> Plugin:
    p = Plugin("tmpdir")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        path = sh.args.get("tmpdir")
        if not path:
            path = tempfile.mkdtemp(prefix=f"flux-job-{sh.jobid}-")
            sh.aux["tmpdir.remove"] = path
        sh.env["FLUX_JOB_TMPDIR"] = path

    def exit_(_topic: str, sh: Any, _task: Any) -> None:
        path = sh.aux.pop("tmpdir.remove", None)
        if path:
            shutil.rmtree(path, ignore_errors=True)

    p.add_handler("shell.init", init)
    p.add_handler("shell.exit", exit_)
    return p
