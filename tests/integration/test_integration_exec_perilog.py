"""Job prologs and epilogs from ``[job-manager.prolog]`` / ``[job-manager.epilog]``."""
from __future__ import annotations

import json
import os

import pytest

from broker.testing import TestInstance
from flux.job import JobID
from jobmgr.manager.perilog import PerilogConfig, parse_perilog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    work = tmp_path_factory.mktemp("perilog")
    conf = work / "conf"
    conf.mkdir()
    log = work / "log"
    script = ("echo {kind} $FLUX_JOB_ID $FLUX_JOB_RANKS $FLUX_JOB_USERID >> " + str(log)
              + "; test ! -e " + str(work) + "/fail-{kind}")
    (conf / "jm.toml").write_text(
        "[job-manager.prolog]\n"
        f"command = [\"sh\", \"-c\", {json.dumps(script.format(kind='prolog'))}]\n"
        "[job-manager.epilog]\n"
        f"command = [\"sh\", \"-c\", {json.dumps(script.format(kind='epilog'))}]\n")
    inst = TestInstance(size=2, config_path=str(conf)).start()
    yield inst, work, log
    inst.stop()


def names(inst, jobid):
    r = inst.flux("job", "eventlog", "-f", "json", str(jobid))
    return [json.loads(line) for line in r.stdout.splitlines()]


def last(inst):
    return JobID(inst.flux("jobs", "-a", "-n", "-c1", "-o", "{id}").stdout.strip())


def test_prolog_and_epilog_run_on_every_rank_around_the_job(setup):
    inst, _work, log = setup
    r = inst.flux("run", "-N2", "true")
    assert r.returncode == 0, r.stderr
    jobid = last(inst)
    evs = [e["name"] for e in names(inst, jobid)]
    order = [n for n in evs if n in ("alloc", "prolog-start", "prolog-finish", "start",
                                     "finish", "epilog-start", "epilog-finish", "free")]
    assert order == ["alloc", "prolog-start", "prolog-finish", "start", "finish",
                     "epilog-start", "epilog-finish", "free"]
    lines = [line.split() for line in log.read_text().splitlines() if jobid.f58 in line]
    assert sorted(line[0] for line in lines) == ["epilog", "epilog", "prolog", "prolog"]
    assert {line[2] for line in lines} == {"0-1"} and {line[3] for line in lines} == {"0"}


def test_a_failed_prolog_is_a_fatal_exception_and_the_job_never_starts(setup):
    inst, work, _log = setup
    (work / "fail-prolog").write_text("")
    try:
        r = inst.flux("run", "-N2", "echo", "should not run")
    finally:
        os.unlink(work / "fail-prolog")
    assert r.returncode == 1 and "should not run" not in r.stdout
    assert "type=prolog" in r.stderr and "prolog failed on rank(s) 0-1" in r.stderr
    evs = names(inst, last(inst))
    finish = [e for e in evs if e["name"] == "prolog-finish"][0]
    assert finish["context"]["status"] != 0 and "start" not in [e["name"] for e in evs]


def test_a_failed_epilog_drains_the_ranks(setup):
    inst, work, _log = setup
    (work / "fail-epilog").write_text("")
    try:
        r = inst.flux("run", "-N1", "true")
    finally:
        os.unlink(work / "fail-epilog")
    assert r.returncode == 0
    jobid = last(inst)
    drained = inst.flux("resource", "drain").stdout
    assert f"epilog failed for job {jobid.f58}" in drained
    inst.flux("resource", "undrain", "0-1")


def test_config_parsing():
    assert parse_perilog(None) == (None, None)
    prolog, epilog = parse_perilog({"prolog": {"command": "a -b", "per-rank": False,
                                               "timeout": "1m"}})
    assert prolog == PerilogConfig(("a", "-b"), False, 60.0) and epilog is None
    with pytest.raises(ValueError, match=r"\[job-manager.epilog\] command"):
        parse_perilog({"epilog": {"command": []}})
    with pytest.raises(ValueError, match="timeout"):
        parse_perilog({"prolog": {"command": ["x"], "timeout": "soon"}})
