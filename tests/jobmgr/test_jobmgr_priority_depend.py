"""Urgency/priority rules and RFC 26 dependency evaluation."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given, strategies as st

from flux.errors import FluxError
from jobmgr.depend import (
    Antecedent, DependencyIndex, Outcome, Verdict, evaluate, never_exception,
    parse_dependencies, parse_dependency,
)
from jobmgr.job import replay
from jobmgr.priority import (
    PRIORITY_MAX, check_urgency, is_held, parse_urgency, priority_for, sched_key,
    urgency_change_allowed,
)
from jobmgr.states import JobResult, JobState

# -- priority ---------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [("hold", 0), ("HOLD", 0), ("default", 16),
                                        ("expedite", 31), ("0", 0), (" 7 ", 7), (31, 31)])
def test_parse_urgency(text, value):
    assert parse_urgency(text) == value


@pytest.mark.parametrize("text", ["32", "-1", "high", "", "1.5", True])
def test_parse_urgency_rejects(text):
    with pytest.raises(ValueError, match="invalid urgency"):
        parse_urgency(text)


def test_check_urgency_owner_and_guest():
    check_urgency(31, owner=True)
    check_urgency(16, owner=False)
    with pytest.raises(FluxError, match="guests may only set urgency 0-16, not 17") as info:
        check_urgency(17, owner=False)
    assert info.value.errno == errno.EPERM
    with pytest.raises(FluxError, match=r"urgency range is \[0:31\]") as info:
        check_urgency(40, owner=True)
    assert info.value.errno == errno.EINVAL


@given(st.integers(0, 31), st.none() | st.integers(-5, 2**33))
def test_priority_for(urgency, plugin):
    prio = priority_for(urgency, plugin)
    if urgency == 0:
        assert prio == 0 and is_held(prio)
    elif urgency == 31:
        assert prio == PRIORITY_MAX == 4294967295
    elif plugin is None:
        assert prio == urgency
    else:
        assert 0 <= prio <= PRIORITY_MAX and prio == min(max(plugin, 0), PRIORITY_MAX)


def test_sched_key_orders_priority_then_submit():
    jobs = [(5, 3.0, 30), (9, 4.0, 40), (5, 1.0, 10), (9, 2.0, 20)]
    order = sorted(jobs, key=lambda j: sched_key(*j))
    assert [j[2] for j in order] == [20, 40, 10, 30]


def test_urgency_change_allowed_only_before_alloc():
    assert urgency_change_allowed(JobState.SCHED)
    assert urgency_change_allowed(JobState.DEPEND)
    assert not urgency_change_allowed(JobState.RUN)
    assert not urgency_change_allowed(JobState.INACTIVE)


# -- dependencies ----------------------------------------------------------------

def dep(scheme, value):
    return parse_dependency({"scheme": scheme, "value": value})


def ante(state, started=False, result=None, userid=1000):
    return Antecedent(userid, state, started, result)


def test_parse_dependencies():
    deps = parse_dependencies([{"scheme": "afterok", "value": "ƒ2"},
                               {"scheme": "afterany", "value": "1234"},
                               {"scheme": "afterstart", "value": "0x10"},
                               {"scheme": "begin-time", "value": "100.5"}])
    assert [(d.scheme, d.jobid, d.begin_time) for d in deps] == [
        ("afterok", 1, None), ("afterany", 1234, None), ("after", 16, None),
        ("begin-time", None, 100.5)]
    assert deps[0].description == "afterok=ƒ2"
    assert parse_dependencies(None) == []


@pytest.mark.parametrize("obj,message", [
    ({"scheme": "afterok", "value": "nope"}, r"deps\[0\]: afterok:nope: invalid job id"),
    ({"scheme": "string", "value": "x"}, r"deps\[0\]: dependency scheme 'string' is not"),
    ({"value": "1"}, r"deps\[0\]: scheme must be a non-empty string"),
    ({"scheme": "after"}, r"deps\[0\]: missing value"),
    ({"scheme": "begin-time", "value": "soon"}, r"deps\[0\]: begin-time:soon"),
    ("afterok:1", r"deps\[0\]: must be an object"),
])
def test_parse_dependency_errors(obj, message):
    with pytest.raises(ValueError, match=message):
        parse_dependency(obj, "deps[0]")
    with pytest.raises(ValueError, match="attributes.system.dependencies: must be an array"):
        parse_dependencies({"scheme": "after"})


CASES = [
    # scheme, antecedent, verdict
    ("after", ante(JobState.SCHED), Verdict.PENDING),
    ("after", ante(JobState.RUN, started=True), Verdict.SATISFIED),
    ("after", ante(JobState.INACTIVE, started=True, result=JobResult.FAILED), Verdict.SATISFIED),
    ("after", ante(JobState.INACTIVE, result=JobResult.CANCELED), Verdict.NEVER),
    ("afterany", ante(JobState.RUN, started=True), Verdict.PENDING),
    ("afterany", ante(JobState.INACTIVE, result=JobResult.CANCELED), Verdict.SATISFIED),
    ("afterok", ante(JobState.CLEANUP, started=True), Verdict.PENDING),
    ("afterok", ante(JobState.INACTIVE, True, JobResult.COMPLETED), Verdict.SATISFIED),
    ("afterok", ante(JobState.INACTIVE, True, JobResult.FAILED), Verdict.NEVER),
    ("afterok", ante(JobState.INACTIVE, False, JobResult.CANCELED), Verdict.NEVER),
    ("afternotok", ante(JobState.INACTIVE, True, JobResult.COMPLETED), Verdict.NEVER),
    ("afternotok", ante(JobState.INACTIVE, True, JobResult.TIMEOUT), Verdict.SATISFIED),
    ("afternotok", ante(JobState.DEPEND), Verdict.PENDING),
]


@pytest.mark.parametrize("scheme,antecedent,verdict", CASES)
def test_evaluate(scheme, antecedent, verdict):
    d = dep(scheme, "ƒ2")
    outcome = evaluate(d, antecedent, now=0.0)
    assert outcome.verdict is verdict
    if verdict is Verdict.NEVER:
        assert outcome.note.startswith(f"{scheme}: job ƒ2")
        exc = never_exception(d, outcome)
        assert exc == {"type": "dependency", "severity": 0, "note": outcome.note}


def test_evaluate_missing_job_permission_and_begin_time():
    d = dep("afterany", "ƒ2")
    assert evaluate(d, None, 0.0) == Outcome(Verdict.NEVER, "afterany: job ƒ2 not found")
    other = ante(JobState.INACTIVE, result=JobResult.COMPLETED, userid=5)
    assert evaluate(d, other, 0.0, userid=6).note == "afterany: Permission denied for job ƒ2"
    assert evaluate(d, other, 0.0, userid=5).verdict is Verdict.SATISFIED
    bt = dep("begin-time", "100.0")
    assert evaluate(bt, None, 99.0) == Outcome(Verdict.PENDING, wake_at=100.0)
    assert evaluate(bt, None, 100.0).verdict is Verdict.SATISFIED


def test_evaluate_from_a_replayed_job():
    from jobmgr import events as ev
    from jobmgr.depend import antecedent_of

    job = replay(2, [{"timestamp": 1.0, "name": "submit", "context": ev.submit(7)},
                     {"timestamp": 2.0, "name": "validate"},
                     {"timestamp": 3.0, "name": "exception", "context": ev.exception("cancel")},
                     {"timestamp": 4.0, "name": "clean"}])
    outcome = evaluate(dep("afterok", "2"), antecedent_of(job), 5.0)
    assert outcome.verdict is Verdict.NEVER


def test_dependency_index():
    index = DependencyIndex()
    a = dep("afterok", "100")
    b = dep("after", "100")
    c = dep("afterany", "200")
    t = dep("begin-time", "50")
    index.add(1, a)
    index.add(2, b)
    index.add(3, c)
    index.add(4, t)
    assert len(index) == 4
    assert index.resolve(999, None, 0.0) == []
    decided = index.resolve(100, ante(JobState.RUN, started=True), 0.0)
    assert [(d[0], d[2].verdict) for d in decided] == [(2, Verdict.SATISFIED)]
    assert index.waiting(100) == [(1, a)]
    decided = index.resolve(100, ante(JobState.INACTIVE, True, JobResult.FAILED), 0.0)
    assert [(d[0], d[2].verdict) for d in decided] == [(1, Verdict.NEVER)]
    assert index.waiting(100) == []
    assert index.next_wake() == 50.0
    assert index.due(49.0) == []
    assert index.due(50.0) == [(4, t)]
    index.discard_dependent(3, [c])
    assert len(index) == 0 and index.waiting(200) == []
    index.add(5, dep("begin-time", "60"))
    index.discard_dependent(5, [dep("begin-time", "60")])
    assert index.next_wake() is None and len(index) == 0
