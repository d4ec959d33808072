"""A partial last line (a prompt) reaches the job's output log without more output."""
from __future__ import annotations

import time

import pytest

from broker.testing import TestInstance

pytestmark = pytest.mark.slow


def test_a_prompt_without_newline_is_flushed():
    inst = TestInstance().start()
    try:
        r = inst.flux("submit", "sh", "-c", "printf 'PROMPT> '; sleep 30")
        assert r.returncode == 0, r.stderr
        jobid = r.stdout.strip()
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline:
            text = inst.flux("job", "eventlog", "-p", "guest.output", jobid).stdout
            if "PROMPT> " in text:
                break
            time.sleep(0.2)
        assert "PROMPT> " in text
        inst.flux("cancel", jobid)
    finally:
        inst.stop()
