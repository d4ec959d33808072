"""Running ``flux`` commands against real test instances, as the owner or a guest."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner, Result

from broker.testing import TestInstance
from cli.main import main
from flux.job.JobID import JobID

#: test-mode exec, and guests allowed so tests can act as user nobody
JOBS_CONF = "[exec]\ntest = true\n[access]\nallow-guest-user = true\n"


def start_instance(tmp_path_factory: Any, conf_text: str, name: str = "test.toml",
                   **kwargs: Any) -> TestInstance:
    """A started size-1 instance whose config directory holds CONF_TEXT."""
    conf = tmp_path_factory.mktemp("conf")
    os.chmod(conf, 0o755)  # readable by a guest's commands
    (conf / name).write_text(conf_text)
    return TestInstance(config_path=str(conf), **kwargs).start()


def flux(inst: TestInstance, *args: str, input: str | None = None) -> Result:
    """Run ``flux ARGS`` in-process against INST; returns click's Result."""
    # PATH as inst.env has it: a job submitted from here that runs ``flux`` finds
    # this installation's, with or without the virtualenv activated
    env = {"FLUX_URI": inst.uri, "PATH": inst.env["PATH"]}
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# Python lives under /root, which user nobody cannot read: import everything the
# commands need while still root, then drop to nobody and run the command.
_GUEST = """
import importlib, os, sys
for name in sys.argv[1].split():
    importlib.import_module(name)
os.setgid(65534); os.setuid(65534)
sys.argv = ["flux"] + sys.argv[2:]
from cli.main import main
main()
"""
_PRELOAD = ("cli.main cli.cmd_submit cli.cmd_run cli.cmd_jobs cli.cmd_job cli.cmd_cancel "
            "cli.job_attach cli.job_common cli.job_eventlog cli.job_id cli.job_info "
            "cli.job_progress cli.job_purge cli.job_raise cli.job_submit cli.job_urgency "
            "cli.job_wait cli.job_watch cli.job_memo cli.submitopts cli.cmd_update flux.job.kvslookup json math "
            "flux.core.handle flux.job.submit "
            "flux.job.event flux.job.kill flux.job.info flux.job.dependency flux.job._words "
            "flux.eventlog flux.util.fsd flux.util.outputformat flux.idset orjson pwd locale "
            "signal string fnmatch base64 datetime operator urllib.parse difflib "
            "cli.cmd_kvs eventstore.blobref blake3")


def guest(inst: TestInstance, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``flux ARGS`` as user nobody (a guest of the instance)."""
    if os.getuid() != 0:
        pytest.skip("needs root to run commands as user nobody")
    return subprocess.run([sys.executable, "-c", _GUEST, _PRELOAD, *args], env=inst.env,
                          capture_output=True, text=True, timeout=60)


def submit(inst: TestInstance, *args: str) -> list[JobID]:
    """``flux submit ARGS``; the job ids it printed."""
    r = flux(inst, "submit", *args)
    assert r.exit_code == 0, r.output
    return [JobID(line) for line in r.stdout.split()]


def submit_real(inst: TestInstance, *args: str) -> JobID:
    """``flux submit ARGS`` as a command of its own (the job's environment is a real
    one: PATH, FLUX_URI); the id it printed."""
    r = inst.flux("submit", *args)
    assert r.returncode == 0, r.stderr
    return JobID(r.stdout.strip())


def submit1(inst: TestInstance, *args: str) -> JobID:
    """``flux submit ARGS`` for one job; its id."""
    (jobid,) = submit(inst, *args)
    return jobid


def wait_for(inst: TestInstance, jobid: Any, event: str = "clean", timeout: str = "30s") -> None:
    """Wait until EVENT is in the job's eventlog."""
    r = flux(inst, "job", "wait-event", "-q", "-t", timeout, str(jobid), event)
    assert r.exit_code == 0, r.output


def eventlog(inst: TestInstance, jobid: Any) -> list[dict[str, Any]]:
    """The job's eventlog entries, from ``flux job eventlog -f json``."""
    r = flux(inst, "job", "eventlog", "-f", "json", str(jobid))
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()]


def start_with_config(tmp_path: Any, conf_text: str, *args: str,
                      name: str = "test.toml") -> subprocess.CompletedProcess[str]:
    """``flux start --config-path=DIR ARGS`` (default: ``true``) with CONF_TEXT in DIR,
    outside any instance; for configurations that must fail the start."""
    from broker.testing import flux_command

    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / name).write_text(conf_text)
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    return subprocess.run(flux_command() + ["start", f"--config-path={conf}", *(args or ("true",))],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
