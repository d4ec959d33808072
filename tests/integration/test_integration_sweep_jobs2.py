"""flux jobs: unknown JOBIDs, error texts and exit codes as flux-core prints them.

Against a real instance in test-mode exec; the texts are flux-core's
(flux.job.list, flux-jobs.py, t/t2800-jobs-cmd.t).
"""
from __future__ import annotations

import json

import pytest
from helpers.live import JOBS_CONF, flux, start_instance, submit1, wait_for

from flux.job.JobID import JobID


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, JOBS_CONF)
    yield instance
    assert instance.stop() == 0


@pytest.fixture(scope="module")
def done(inst):
    jobid = submit1(inst, "--job-name=sweep2", "true")
    wait_for(inst, jobid)
    return jobid


def test_all_jobids_unknown_fails_with_one_line_each(inst, done):
    # t2800 'flux-jobs error on all unknown IDs' (flux-core PR #7180)
    r = flux(inst, "jobs", "-n", "0", "1", "2")
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr.splitlines() == ["JobID 0 unknown", "JobID 1 unknown", "JobID 2 unknown"]
    # even the header is left out when nothing is listed
    assert flux(inst, "jobs", "f1").stdout == ""


def test_some_jobids_known_succeeds(inst, done):
    # t2800 'flux-jobs no error on one known ID' / 'good and bad IDs works'
    r = flux(inst, "jobs", "-n", "-o", "{id.f58}", "f1", "f2", done.f58)
    assert (r.exit_code, r.stdout) == (0, f"{done.f58}\n")
    assert r.stderr == "JobID f1 unknown\nJobID f2 unknown\n"


def test_json_unknown_jobid(inst, done):
    # t2800 '--json with missing jobid fails and returns nothing'
    r = flux(inst, "jobs", "--json", "123")
    assert (r.exit_code, r.stdout, r.stderr) == (1, "", "JobID 123 unknown\n")
    r = flux(inst, "jobs", "--json", done.f58, "123")
    assert r.exit_code == 0
    assert [JobID(j["id"]) for j in json.loads(r.stdout)["jobs"]] == [done]


def test_error_texts_and_exit_codes(inst, done):
    r = flux(inst, "jobs", "-f", "running,bogus")
    assert (r.exit_code, r.stderr) == (1, "flux-jobs: Invalid filter specified: bogus\n")
    r = flux(inst, "jobs", "-u", "foobarfoobaz")
    assert (r.exit_code, r.stderr) == (1, "flux-jobs: Invalid user foobarfoobaz specified\n")
    for opt in ("--stats", "--stats-only"):
        r = flux(inst, "jobs", "--json", opt)
        assert (r.exit_code, r.stdout) == (1, "")
        assert r.stderr == "flux-jobs: --json incompatible with --stats or --stats-only\n"


def test_stats_line_keeps_the_seed_form(inst, done):
    # the walk-through's form: no ", 0 inactive purged" while nothing was purged
    r = flux(inst, "jobs", "--stats-only")
    assert r.stdout.endswith(" pending\n") and "purged" not in r.stdout


@pytest.mark.parametrize("field", ["state_emoji", "status_emoji", "result_emoji"])
def test_emoji_fields_are_unknown_everywhere(inst, done, field):
    # the attribute table and the format agree: no field the format refuses
    from flux.job.info import job_fields_to_attrs

    with pytest.raises(KeyError):
        job_fields_to_attrs([field])
    r = flux(inst, "jobs", "-a", "-o", "{%s}" % field)
    assert (r.exit_code, r.stderr) == (1, f"flux-jobs: Unknown format field: {field}\n")


def test_env_rule_with_unset_variable(inst, monkeypatch):
    # flux-core's texts for a $VAR that is not set and for a bad template
    monkeypatch.delenv("SWEEP2_NOPE", raising=False)
    r = flux(inst, "submit", "--env=X=$SWEEP2_NOPE", "true")
    assert (r.exit_code, r.stderr) == (
        1, "flux-submit: --env: Variable 'SWEEP2_NOPE' not found in X=$SWEEP2_NOPE\n")
    r = flux(inst, "submit", "--env=X=$", "true")
    assert (r.exit_code, r.stderr) == (1, "flux-submit: --env: Unable to substitute X=$\n")
