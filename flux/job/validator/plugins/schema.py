"""Validate jobspec using jsonschema

This flux has no JSON schema file: the plugin applies the same structural
rules as the schema does (RFC 14 canonical jobspec, RFC 25 for version 1),
through ``flux.job.validate_jobspec``.
"""
from __future__ import annotations

import errno

from flux.job.Jobspec import validate_jobspec
from flux.job.validator.validator import ValidatorJobInfo, ValidatorPlugin


class Validator(ValidatorPlugin):
    def validate(self, job: ValidatorJobInfo):
        try:
            validate_jobspec(job.jobspec)
        except (TypeError, ValueError, OSError) as exc:
            return (errno.EINVAL, str(exc))
        return None
