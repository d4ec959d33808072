"""``flux -p``/``--parent``/``-r``/``--root`` as the front end reads them, before any
command (the instance changes happen in tests/integration/test_integration_hierarchy_view.py)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, expected", [
    (["-p", "getattr", "x"], (1, False, ["getattr", "x"])),
    (["-pp", "jobs"], (2, False, ["jobs"])),
    (["--parent", "-p", "--root", "jobs", "-p"], (2, True, ["jobs", "-p"])),
    (["-r", "jobs"], (0, True, ["jobs"])),
    (["jobs", "-p"], (0, False, ["jobs", "-p"])),
    (["-px", "jobs"], (0, False, ["-px", "jobs"])),
])
def test_leading_parent_options(args, expected):
    from cli.main import _leading_options

    assert _leading_options(args) == expected
