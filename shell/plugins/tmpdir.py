"""FLUX_JOB_TMPDIR: a private directory per job per rank, removed at the end.

Under an instance exec names it (``<rundir>/jobtmp-<rank>-<f58>``, or under
the system temporary directory for another user's job); the shell, running
as the job's user, creates it (mode 0700) and removes it; a shell server
keeps an emptied one to rename for a later job (``Host.make_tmpdir``).
Standalone, the shell makes a temporary one.
"""
from __future__ import annotations

import tempfile
from typing import Any

from shell.plugstack import Plugin

__all__ = ["plugin"]


def plugin() -> Plugin:
    p = Plugin("tmpdir")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        path = sh.args.get("tmpdir")
        if path:
            sh.host.make_tmpdir(path)
        else:
            path = tempfile.mkdtemp(prefix=f"flux-job-{sh.jobid}-")
        sh.aux["tmpdir.remove"] = path
        sh.env["FLUX_JOB_TMPDIR"] = path

    def exit_(_topic: str, sh: Any, _task: Any) -> None:
        path = sh.aux.pop("tmpdir.remove", None)
        if path:
            # off the shell's loop (the host's remover thread): no job waits for it
            sh.host.remove_tree(path, keep=bool(sh.args.get("tmpdir")))

    p.add_handler("shell.init", init)
    p.add_handler("shell.exit", exit_)
    return p
