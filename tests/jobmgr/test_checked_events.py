"""Folding events the job manager validated when it posted them (``checked``):
the context is not validated again, the state table still rules."""
from __future__ import annotations

import pytest

from jobmgr.job import JobEventError, apply, new_job
from jobmgr.joblist.projection import JobList
from jobmgr.states import JobState, transition

SUBMIT = {"timestamp": 1.0, "name": "submit",
          "context": {"userid": 0, "urgency": 16, "flags": 0, "version": 1}}


def test_checked_skips_only_the_context_validation() -> None:
    with pytest.raises(JobEventError):
        transition(JobState.RUN, "finish", {"status": "zero"})
    assert transition(JobState.RUN, "finish", {"status": "zero"}, checked=True) is JobState.CLEANUP
    with pytest.raises(JobEventError, match="not valid in state"):
        transition(JobState.SCHED, "finish", {"status": 0}, checked=True)


def test_job_manager_fold_of_checked_events_keeps_the_state_rules() -> None:
    job = new_job(1, SUBMIT)
    apply(job, {"timestamp": 2.0, "name": "validate"}, checked=True)
    assert job.state is JobState.DEPEND
    with pytest.raises(JobEventError, match="not valid in state"):
        apply(job, {"timestamp": 3.0, "name": "clean"}, checked=True)
    with pytest.raises(JobEventError):
        apply(job, {"timestamp": 3.0, "name": "priority", "context": {}})


def test_job_list_fold_of_checked_events_keeps_the_state_rules() -> None:
    jl = JobList()
    jl.apply(7, SUBMIT)
    jl.apply(7, {"timestamp": 2.0, "name": "validate"}, checked=True)
    with pytest.raises(JobEventError, match="not valid in state"):
        jl.apply(7, {"timestamp": 3.0, "name": "clean"}, checked=True)
    bad = {"timestamp": 3.0, "name": "exception",
           "context": {"severity": "high", "type": "t", "note": ""}}
    with pytest.raises(JobEventError, match="severity"):
        jl.apply(7, bad)
