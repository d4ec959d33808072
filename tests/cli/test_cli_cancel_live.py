"""flux cancel against a real instance: by id, by selection, dry runs, guests."""
from __future__ import annotations

import re
import time

import pytest
from helpers.live import JOBS_CONF, flux, guest, start_instance

from flux.job.JobID import JobID


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, JOBS_CONF)
    yield instance
    assert instance.stop() == 0


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
    assert re.fullmatch(r"0 running, \d+ completed, \d+ failed, 0 pending(, \d+ inactive purged)?\n",
                        r.stdout)
