"""Require that all jobs are new instances of Flux

A job passes when it runs ``flux broker`` or ``flux start`` (what ``flux
batch`` and ``flux alloc`` submit), or when it asks for fewer nodes than
``--require-instance-minsize`` (default 0: every job must be an instance).
"""
from __future__ import annotations

import errno
import os

from flux.job.summary import summarize
from flux.job.validator.validator import ValidatorJobInfo, ValidatorPlugin

MESSAGE = ("Direct job submission is disabled for this instance. Please use the "
           "flux-batch(1) or flux-alloc(1) commands.")


def is_instance(jobspec) -> bool:
    """True when the job's command starts a Flux instance."""
    tasks = jobspec.get("tasks") or []
    command = tasks[0].get("command") if tasks and isinstance(tasks[0], dict) else None
    if not isinstance(command, list) or len(command) < 2:
        return False
    return os.path.basename(str(command[0])) == "flux" and command[1] in ("broker", "start")


class Validator(ValidatorPlugin):
    def __init__(self, parser):
        super().__init__(parser)
        parser.add_argument("--require-instance-minsize", metavar="N", type=int, default=0,
                            help="jobs asking for fewer than N nodes need not be instances")
        self.minsize = 0

    def configure(self, args):
        self.minsize = args.require_instance_minsize

    def validate(self, job: ValidatorJobInfo):
        if is_instance(job.jobspec):
            return None
        if self.minsize:
            try:
                nnodes = summarize(job.jobspec).nnodes
            except (ValueError, TypeError):
                nnodes = 0
            if nnodes < self.minsize:
                return None
        return (errno.EINVAL, MESSAGE)
