"""Running ``flux-shell --standalone`` in tests: a jobspec and a one-rank R on files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_standalone(tmp_path: Path, spec: Any, *options: str, cores: str = "0-1",
                   wait: bool = True, timeout: float = 60) -> Any:
    """Run SPEC (a JobspecV1) under ``flux-shell --standalone OPTIONS``; the
    CompletedProcess, or with WAIT false the running Popen."""
    (tmp_path / "j.json").write_text(spec.dumps())
    (tmp_path / "R.json").write_text(json.dumps(
        {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": cores}}],
                                     "nodelist": ["localhost"]}}))
    exe = os.path.join(os.path.dirname(sys.executable), "flux-shell")
    argv = [exe, *options, "--standalone", "-j", str(tmp_path / "j.json"), "-R",
            str(tmp_path / "R.json")]
    if not wait:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
