"""Python bindings based jobspec validator

Refuses a jobspec that breaks RFC 25 (version 1) or RFC 14, naming the path
and the problem, as ``flux.job.validate_jobspec`` does.
"""
from __future__ import annotations

import errno

from flux.job.Jobspec import validate_jobspec
from flux.job.validator.validator import ValidatorJobInfo, ValidatorPlugin


class Validator(ValidatorPlugin):
    def __init__(self, parser):
        super().__init__(parser)
        parser.add_argument("--require-version", metavar="V", type=int, default=1,
                            help="jobspec version to require (default 1)")
        self.require_version: int | None = 1

    def configure(self, args):
        self.require_version = args.require_version

    def validate(self, job: ValidatorJobInfo):
        try:
            validate_jobspec(job.jobspec, require_version=self.require_version)
        except (TypeError, ValueError, OSError) as exc:
            return (errno.EINVAL, str(exc))
        return None
