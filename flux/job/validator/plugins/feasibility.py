"""Use sched.feasibility RPC to validate job

Asks the scheduler (``feasibility.check``) whether the job could ever run on
this instance's resources; a scheduler that does not answer the request is
no refusal.
"""
from __future__ import annotations

import errno

from flux.job.validator.validator import ValidatorJobInfo, ValidatorPlugin


class Validator(ValidatorPlugin):
    def validate(self, job: ValidatorJobInfo):
        try:
            job.flux.rpc("feasibility.check", {"jobspec": job.jobspec}).get()
        except OSError as exc:
            if exc.errno == errno.ENOSYS:
                return None
            return (exc.errno or errno.EINVAL, exc.strerror or str(exc))
        return None
