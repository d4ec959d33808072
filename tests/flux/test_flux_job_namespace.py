"""flux.job exposes the classes, not same-named submodules, whatever was imported first."""
from __future__ import annotations

import subprocess
import sys


def test_jobid_is_class_even_after_submodule_import() -> None:
    code = ("import flux.job.JobID, flux.job.Jobspec\n"
            "from flux.job import JobID, JobspecV1\n"
            "assert isinstance(JobID, type), JobID\n"
            "assert isinstance(JobspecV1, type), JobspecV1\n"
            "print(JobID('ƒ2'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("ƒ2", "f2")
