"""flux cancel against a real instance: by id, by selection, dry runs, guests."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from broker.testing import TestInstance, stray_brokers
from cli.main import main
from flux.job.JobID import JobID

CONF = "[exec]\ntest = true\n[access]\nallow-guest-user = true\n"


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    yield
    assert stray_brokers() == []


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf")
    os.chmod(conf, 0o755)
    (conf / "jobs.toml").write_text(CONF)
    instance = TestInstance(config_path=str(conf)).start()
    yield instance
    assert instance.stop() == 0


def flux(inst, *args):
    result = CliRunner().invoke(main, list(args), env={"FLUX_URI": inst.uri})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# Python lives under /root, which user nobody cannot read: import everything the
# commands need while still root, then drop to nobody and run the command.
GUEST = """
import importlib, os, sys
for name in sys.argv[1].split():
    importlib.import_module(name)
os.setgid(65534); os.setuid(65534)
sys.argv = ["flux"] + sys.argv[2:]
from cli.main import main
main()
"""
PRELOAD = ("cli.main cli.cmd_submit cli.cmd_run cli.cmd_jobs cli.cmd_job cli.cmd_cancel "
           "cli.job_attach cli.job_common cli.job_eventlog cli.job_id cli.job_info "
           "cli.job_progress cli.job_purge cli.job_raise cli.job_submit cli.job_urgency "
           "cli.job_wait cli.job_watch cli.submitopts flux.core.handle flux.job.submit "
           "flux.job.event flux.job.kill flux.job.info flux.job.dependency flux.job._words "
           "flux.eventlog flux.util.fsd flux.util.outputformat flux.idset orjson pwd locale "
           "signal string fnmatch base64 datetime operator urllib.parse difflib")


def guest(inst, *args):
    """Run ``flux ARGS`` as user nobody (a guest of the instance)."""
    if os.getuid() != 0:
        pytest.skip("needs root to run commands as user nobody")
    return subprocess.run([sys.executable, "-c", GUEST, PRELOAD, *args], env=inst.env,
                          capture_output=True, text=True, timeout=60)


def held(inst, count=1):
    r = flux(inst, "submit", "--urgency=hold", f"--cc=1-{count}", "true")
    assert r.exit_code == 0, r.output
    return [JobID(x) for x in r.stdout.split()]


def state(inst, jobid):
    return flux(inst, "jobs", "-n", "-o", "{state}", jobid.f58).stdout.strip()


def wait_inactive(inst, jobid):
    r = flux(inst, "job", "wait-event", "-q", "-t", "30s", jobid.f58, "clean")
    assert r.exit_code == 0, r.output


def test_cancel_by_id_in_every_encoding(inst):
    ids = held(inst, 4)
    r = flux(inst, "cancel", ids[0].f58, ids[1].hex, ids[2].dothex, ids[3].words)
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")
    for jobid in ids:
        wait_inactive(inst, jobid)
    out = flux(inst, "jobs", "-n", "-o", "{result}", *[j.f58 for j in ids]).stdout.split()
    assert out == ["CANCELED"] * 4


def test_cancel_note(inst):
    [jobid] = held(inst)
    assert flux(inst, "cancel", "-m", "no longer needed", jobid.f58).exit_code == 0
    wait_inactive(inst, jobid)
    r = flux(inst, "jobs", "-n", "-o", "{exception.note}", jobid.f58)
    assert r.stdout.strip() == "no longer needed"


def test_cancel_inactive_and_unknown_jobs(inst):
    [jobid] = held(inst)
    assert flux(inst, "cancel", jobid.f58).exit_code == 0
    wait_inactive(inst, jobid)
    r = flux(inst, "cancel", jobid.f58)
    assert r.exit_code == 1 and r.stderr.startswith(f"flux-cancel: {jobid.f58}: ")
    unknown = JobID(int(jobid) + 99999)
    for text in (unknown.dec, unknown.f58, unknown.hex, unknown.dothex, unknown.kvs,
                 unknown.words):
        r = flux(inst, "cancel", text)
        assert r.exit_code == 1 and r.stderr.startswith(f"flux-cancel: {text}: ")
    assert flux(inst, "cancel", "not-an-id!").exit_code == 2


def test_cancel_selection_dry_run_then_real(inst):
    ids = held(inst, 3)
    r = flux(inst, "cancel", "--all", "--dry-run")
    m = re.fullmatch(r"flux-cancel: Would cancel (\d+) jobs\n", r.stderr)
    assert r.exit_code == 0 and m and int(m.group(1)) >= 3
    assert all(state(inst, j) == "SCHED" for j in ids)
    r = flux(inst, "cancel", "--user=all", "--states=pending")
    assert (r.exit_code, re.fullmatch(r"flux-cancel: Canceled \d+ jobs \(0 errors\)\n",
                                      r.stderr) is not None) == (0, True)
    for jobid in ids:
        wait_inactive(inst, jobid)
    r = flux(inst, "cancel", "--all")
    assert (r.exit_code, r.stderr) == (0, "flux-cancel: Command matched 0 jobs\n")
    assert flux(inst, "cancel", "-q", "--all").stderr == ""


def test_cancel_states_selects(inst):
    ids = held(inst, 2)
    r = flux(inst, "cancel", "-S", "run")
    assert r.stderr == "flux-cancel: Command matched 0 jobs\n"
    assert all(state(inst, j) == "SCHED" for j in ids)
    r = flux(inst, "cancel", "-s", "SCHED")
    assert re.fullmatch(r"flux-cancel: Canceled 2 jobs \(0 errors\)\n", r.stderr)
    r = flux(inst, "cancel", "-S", "inactive")
    assert (r.exit_code, r.stderr) == (1, "flux-cancel: Inactive jobs cannot be canceled\n")
    r = flux(inst, "cancel", "-S", "nope")
    assert (r.exit_code, r.stderr) == (1, "flux-cancel: error parsing --states: nope is unknown\n")


def test_cancel_usage_errors(inst):
    [jobid] = held(inst)
    assert flux(inst, "cancel").exit_code == 2
    assert flux(inst, "cancel", "--all", jobid.f58).exit_code == 2
    r = flux(inst, "cancel", "-u", "nosuchuser")
    assert (r.exit_code, r.stderr) == (1, "flux-cancel: unknown user nosuchuser\n")
    assert flux(inst, "cancel", jobid.f58).exit_code == 0


def test_guest_cancels_only_own_jobs(inst):
    [owners] = held(inst)
    out = guest(inst, "cancel", owners.f58)
    assert out.returncode == 1 and out.stderr.startswith(f"flux-cancel: {owners.f58}: ")
    out = guest(inst, "submit", "--urgency=hold", "true")
    mine = JobID(out.stdout.strip())
    out = guest(inst, "cancel", "--all", "--dry-run")
    assert out.stderr == "flux-cancel: Would cancel 1 jobs\n"
    out = guest(inst, "cancel", "--user=all")
    assert out.returncode == 1
    out = guest(inst, "cancel", "--all")
    assert (out.returncode, out.stderr) == (0, "flux-cancel: Canceled 1 jobs (0 errors)\n")
    wait_inactive(inst, mine)
    assert state(inst, owners) == "SCHED"
    assert flux(inst, "cancel", owners.f58).exit_code == 0


def test_stats_only_fails_without_active_jobs(inst):
    assert flux(inst, "cancel", "--user=all", "-q").exit_code == 0
    deadline = time.monotonic() + 30
    while True:   # job-list sees the cancels a moment after the job manager
        r = flux(inst, "jobs", "--stats-only")
        if r.exit_code == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.exit_code == 1
    assert re.fullmatch(r"0 running, \d+ completed, \d+ failed, 0 pending\n", r.stdout)
