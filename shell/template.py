"""Mustache-style templates in shell option values: ``{{id}}``, ``{{id.dec}}``, ...

``{{id}}``/``{{jobid}}`` is the job id in F58, ``{{id.ENC}}`` in any JobID
encoding (dec, hex, dothex, kvs, words, f58, f58plain, emoji); also
``{{name}}`` (the job name), ``{{tmpdir}}``, ``{{size}}`` (tasks),
``{{nnodes}}`` (shells), ``{{node.id}}`` (this shell's broker rank) and
``{{node.name}}``.  An unknown tag is left as it is.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["expand"]

_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


def expand(template: str, shell: Any) -> str:
    from flux.job.JobID import JobID

    jobid = JobID(shell.jobid)

    def value(match: "re.Match[str]") -> str:
        tag = match.group(1)
        head, _dot, enc = tag.partition(".")
        if head in ("id", "jobid"):
            if not enc:
                return jobid.f58
            try:
                return str(jobid.encode(enc))
            except (ValueError, TypeError, AttributeError):
                return match.group(0)
        if tag == "name":
            return shell.info.summary.name
        if tag == "tmpdir":
            return shell.env.get("FLUX_JOB_TMPDIR", "")
        if tag == "size":
            return str(shell.info.ntasks)
        if tag == "nnodes":
            return str(shell.size)
        if tag == "node.id":
            return str(shell.info.me.broker_rank)
        if tag == "node.name":
            return shell.info.me.hostname
        return match.group(0)

    return _TAG.sub(value, template)
