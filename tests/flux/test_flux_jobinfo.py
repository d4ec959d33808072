"""flux.job.info: JobInfo over job-list responses, and the flux jobs format."""
from __future__ import annotations

import os
import signal
import time

import pytest

from flux.job.info import (
    AnnotationsInfo, InfoList, JobInfo, JobInfoFormat, get_username, resulttostr, statetostr,
    statustostr,
)

DEFAULT_FMT = ("{id.f58:>12} {username:<8.8} {name:<10.10} {status_abbrev:>2.2} "
               "{ntasks:>6} {nnodes:>6h} {runtime!F:>8h} {nodelist:h}")


def inactive(**kw):
    resp = {"id": 6787342413402046, "userid": 0, "state": 64, "name": "sleep", "ntasks": 2,
            "t_submit": 100.0, "t_run": 110.0, "t_cleanup": 140.0, "t_inactive": 141.0,
            "result": 1, "success": True, "waitstatus": 0, "nnodes": 1, "nodelist": "node0",
            "exception_occurred": False}
    resp.update(kw)
    return JobInfo(resp)


def test_state_result_status_strings_agree_with_jobmgr():
    from jobmgr import states

    for value in (1, 2, 4, 8, 16, 32, 64, 3):
        assert statetostr(value) == states.statetostr(value)
        assert statetostr(value, True) == states.statetostr(value, True)
    for value in (1, 2, 4, 8):
        assert resulttostr(value) == states.resulttostr(value)
        assert resulttostr(value, True) == states.resulttostr(value, True)
    assert resulttostr("") == ""
    # flux-jobs(1): PENDING abbreviates to P
    assert statustostr(8, "") == "PENDING" and statustostr(8, "", True) == "P"
    assert statustostr(32, "", True) == "R"
    assert statustostr(64, 4) == "CANCELED" and statustostr(64, 8, True) == "TO"


def test_inactive_job_fields():
    job = inactive()
    assert job.id.f58 == "ƒuzzybunny" and int(job.id) == 6787342413402046
    assert (job.state, job.state_single, job.status, job.status_abbrev) == (
        "INACTIVE", "I", "COMPLETED", "CD")
    assert (job.result, job.result_abbrev, job.returncode) == ("COMPLETED", "CD", 0)
    assert job.runtime == 30.0 and job.t_remaining == 0.0
    assert job.username == "root"
    assert job.t_depend == 0.0 and job.priority == "" and job.ranks == ""
    assert job.exception.occurred is False and job.exception.type == ""
    with pytest.raises(AttributeError, match="invalid JobInfo attribute 'bogus'"):
        job.bogus


@pytest.mark.parametrize("kw,code", [
    ({"waitstatus": 256, "result": 2}, 1),
    ({"waitstatus": 143 << 8, "result": 2}, 143),          # shell exited 128+SIGTERM
    ({"waitstatus": signal.SIGKILL, "result": 2}, -signal.SIGKILL),
    ({"waitstatus": "", "result": 4, "t_run": 0.0}, -128),  # canceled before running
    ({"waitstatus": "", "result": 2}, 1),                   # failed before any shell ran
    ({"state": 16, "result": "", "waitstatus": ""}, ""),     # still active
])
def test_returncode(kw, code):
    assert inactive(**kw).returncode == code


def test_running_job_runtime_and_remaining():
    now = time.time()
    job = JobInfo({"id": 1, "state": 16, "t_run": now - 10, "expiration": now + 100,
                   "userid": 4294967294})
    assert 9.5 < job.runtime < 11
    assert 98 < job.t_remaining <= 100
    assert (job.status, job.result, job.returncode) == ("RUNNING", "", "")
    assert job.username == "4294967294" or job.username == get_username(4294967294)


def test_exception_annotations_and_dependencies():
    job = JobInfo({"id": 2, "state": 8, "exception_occurred": True, "exception_type": "cancel",
                   "exception_severity": 0, "exception_note": "by user",
                   "annotations": {"sched": {"reason_pending": "insufficient resources"},
                                   "user": {"tag": 1}},
                   "dependencies": ["afterok=ƒ2", "begin-time=5.000000"]})
    assert (job.exception.occurred, job.exception.type, job.exception.severity,
            job.exception.note) == (True, "cancel", 0, "by user")
    assert job.sched.reason_pending == "insufficient resources"
    assert job.annotations.sched.reason_pending == "insufficient resources"
    assert job.user.tag == 1
    assert str(job.annotations.sched.missing.deeper) == ""
    assert str(job.sched) == '{"reason_pending":"insufficient resources"}'
    assert str(job.dependencies) == "afterok=ƒ2,begin-time=5.000000"
    assert isinstance(job.dependencies, InfoList)
    assert str(AnnotationsInfo({})) == "" and not AnnotationsInfo(None)


def test_default_format_and_header():
    f = JobInfoFormat(DEFAULT_FMT)
    assert f.header() == "       JOBID USER     NAME       ST NTASKS NNODES  RUNTIME NODELIST"
    line = f.format(inactive())
    assert line == "  ƒuzzybunny root     sleep      CD      2      1      30s node0"
    pending = JobInfo({"id": 6787342413402046, "userid": 0, "state": 8, "name": "x",
                       "ntasks": 1})
    assert f.format(pending) == "  ƒuzzybunny root     x           P      1      -        - -"


def test_format_fields_headings_and_annotations():
    f = JobInfoFormat("{id.dec} {returncode:>3} {exception.type} {sched.reason_pending} "
                      "{annotations.user.tag} {user.tag}")
    assert f.header() == "JOBID  RC EXCEPTION-TYPE REASON USER.TAG USER.TAG"
    job = inactive(waitstatus=256, result=2, annotations={"user": {"tag": "t"}},
                   exception_occurred=True, exception_type="exec")
    assert f.format(job) == "6787342413402046   1 exec  t t"
    with pytest.raises(ValueError, match="Unknown format field: id.nope"):
        JobInfoFormat("{id.nope}")


def test_time_conversions_on_jobinfo():
    f = JobInfoFormat("{t_run!D} {t_depend!D:h} {runtime!H} {t_inactive!d:%Y}")
    job = inactive()
    expected_run = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(110.0))
    assert f.format(job) == f"{expected_run} - 0:00:30 {time.localtime(141.0).tm_year}"


def test_jobinfo_response_round_trips():
    resp = {"id": 5, "state": 64, "result": 1, "name": "n", "userid": 7, "t_submit": 1.0}
    assert JobInfo(resp).response() == resp


def test_username_falls_back_to_number():
    assert get_username(os.getuid()) != ""
    assert get_username(2**31 - 7) == str(2**31 - 7)
