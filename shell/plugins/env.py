"""The job environment: FLUX_* variables for every task, and ``env-expand``.

Set for all tasks: FLUX_JOB_ID (F58), FLUX_JOB_SIZE (tasks), FLUX_JOB_NNODES
(shells), FLUX_URI (the local broker), FLUX_KVS_NAMESPACE (the job's guest
namespace); per task: FLUX_TASK_RANK, FLUX_TASK_LOCAL_ID.  The
``env-expand`` shell option maps variable names to templates expanded
here (``{{id}}``, ``{{tmpdir}}``, ``{{name}}``, ``{{nnodes}}``, ``{{size}}``).
"""
from __future__ import annotations

from typing import Any

from shell.plugstack import Plugin
from shell.template import expand

__all__ = ["plugin"]


def plugin() -> Plugin:
    p = Plugin("env")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        env = sh.env
        f58 = sh.args.get("f58")            # exec has it already: ~10 us less per job
        if not isinstance(f58, str):
            from flux.job.JobID import JobID

            f58 = JobID(sh.jobid).f58
        env["FLUX_JOB_ID"] = f58
        env["FLUX_JOB_SIZE"] = str(sh.info.ntasks)
        env["FLUX_JOB_NNODES"] = str(sh.size)
        uri = sh.args.get("uri")
        if uri:
            env["FLUX_URI"] = uri
        else:
            env.pop("FLUX_URI", None)
        if sh.namespace:
            env["FLUX_KVS_NAMESPACE"] = sh.namespace
        expand_opts = sh.getopt("env-expand")
        if isinstance(expand_opts, dict):
            for name, template in expand_opts.items():
                env[str(name)] = expand(str(template), sh)

    def task_init(_topic: str, sh: Any, task: Any) -> None:
        task.env["FLUX_TASK_RANK"] = str(task.rank)
        task.env["FLUX_TASK_LOCAL_ID"] = str(task.local_id)

    p.add_handler("shell.init", init)
    p.add_handler("task.init", task_init)
    return p
