"""Entry of a job shell started by exec through the fork server: ``run_shell(args)``.

``args`` (from exec, see jobmgr/exec/launch.py): ``jobid``, ``jobspec``,
``R``, ``rank`` (this broker's rank), ``uri`` (the local broker),
``namespace`` (the job's guest namespace), ``tmpdir``, ``output_limit``,
``initrc``.  The shell connects to the local broker, works out its tasks
from jobspec and R, and runs them (shell/shell.py).  Anything wrong
before the shell can run (bad R, no broker) is reported to exec as a
fatal exception when possible, and the shell exits 1.
"""
from __future__ import annotations

import sys
from typing import Any

# imported here so the fork server preloads them for every shell
import shell.plugins  # noqa: F401
import shell.plugins.affinity  # noqa: F401
import shell.plugins.env  # noqa: F401
import shell.plugins.gpubind  # noqa: F401
import shell.plugins.input  # noqa: F401
import shell.plugins.output  # noqa: F401
import shell.plugins.pmi  # noqa: F401
import shell.plugins.pty  # noqa: F401
import shell.plugins.rlimit  # noqa: F401
import shell.plugins.tmpdir  # noqa: F401
from flux.core.handle import Flux
from flux.job.JobID import JobID  # noqa: F401
from shell.info import job_info
from shell.shell import Shell

__all__ = ["run_shell"]


def run_shell(args: dict[str, Any]) -> int:
    jobid = int(args["jobid"])
    try:
        h = Flux(args["uri"])
    except OSError as exc:
        sys.stderr.write(f"flux-shell: {jobid}: cannot connect to the broker: {exc}\n")
        return 1
    try:
        info = job_info(jobid, args["jobspec"], args["R"], int(args["rank"]))
    except (ValueError, KeyError, TypeError) as exc:
        try:
            h.rpc("job-exec.exception", {"id": jobid, "rank": args.get("shell_rank", 0),
                                         "severity": 0, "type": "exec",
                                         "note": f"rank {args.get('rank')}: {exc}"},
                  nodeid=0).get()
        except OSError:
            pass
        return 1
    return Shell(info, h.get_reactor(), h, args).run()
