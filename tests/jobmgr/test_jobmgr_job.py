"""The job manager's job record and its fold over the eventlog."""
from __future__ import annotations

import copy
import dataclasses

import pytest
from hypothesis import given, strategies as st

from jobmgr import events as ev
from jobmgr.events import JobEventError
from jobmgr.job import (
    Job, apply, apply_jobspec_updates, merge_annotations, new_job, replay, update_memo,
)
from jobmgr.states import JobResult, JobState

T0 = 1700000000.0


def E(name, ctx=None, dt=0.0):
    entry = {"timestamp": T0 + dt, "name": name}
    if ctx:
        entry["context"] = ctx
    return entry


SUBMIT = E("submit", ev.submit(1001, 16, 0))
RUN_TO_END = [
    SUBMIT, E("validate", dt=1), E("depend", dt=2), E("priority", ev.priority(16), dt=3),
    E("alloc", dt=4), E("start", dt=5), E("finish", ev.finish(0), dt=6),
    E("release", ev.release(), dt=7), E("free", dt=8), E("clean", dt=9),
]


def test_lifecycle_completed():
    job = replay(7, RUN_TO_END)
    assert job.id == 7 and job.userid == 1001 and job.urgency == 16
    assert job.state == JobState.INACTIVE
    assert job.t_submit == T0 and job.t_state == T0 + 9 and job.t_clean == T0 + 9
    assert job.priority == 16
    assert job.finish_status == 0 and job.started and not job.has_resources
    assert job.success and job.result == JobResult.COMPLETED


def test_result_of_nonzero_exit():
    events = list(RUN_TO_END)
    events[6] = E("finish", ev.finish(256), dt=6)
    job = replay(1, events)
    assert not job.success and job.result == JobResult.FAILED


def test_cancel_while_pending_is_canceled_and_first_fatal_is_root_cause():
    job = replay(2, [SUBMIT, E("validate"), E("depend"),
                     E("exception", ev.exception("oom", 2, "warn")),
                     E("exception", ev.exception("cancel", 0, "by user")),
                     E("exception", ev.exception("timeout", 0, "later")),
                     E("clean")])
    assert job.fatal.type == "cancel" and job.fatal.note == "by user"
    assert job.exception_count == 3
    assert job.result == JobResult.CANCELED
    assert job.result is not None and not job.success


def test_timeout_while_running():
    job = replay(3, RUN_TO_END[:6] + [
        E("exception", ev.exception("timeout", 0, "time limit", wait_status=9)),
        E("finish", ev.finish(9)), E("release", ev.release()), E("free"), E("clean")])
    assert job.result == JobResult.TIMEOUT
    assert job.fatal.wait_status == 9


def test_alloc_after_cancel_must_be_freed_before_clean():
    job = replay(4, [SUBMIT, E("validate"), E("depend"), E("priority", ev.priority(5)),
                     E("exception", ev.exception("cancel")), E("alloc")])
    assert job.state == JobState.CLEANUP and job.has_resources
    with pytest.raises(JobEventError, match="clean: resources were not freed"):
        apply(job, E("clean"))
    apply(job, E("free"))
    apply(job, E("clean"))
    assert job.result == JobResult.CANCELED


def test_dependencies():
    job = replay(5, [SUBMIT, E("dependency-add", ev.dependency_add("after=1")),
                     E("validate"), E("dependency-add", ev.dependency_add("begin-time=9")),
                     E("dependency-add", ev.dependency_add("after=1"))])
    assert job.dependencies == ["after=1", "begin-time=9"]
    with pytest.raises(JobEventError, match="still outstanding: after=1, begin-time=9"):
        apply(job, E("depend"))
    with pytest.raises(JobEventError, match="no outstanding dependency 'nope'"):
        apply(job, E("dependency-remove", ev.dependency_remove("nope")))
    apply(job, E("dependency-remove", ev.dependency_remove("after=1")))
    with pytest.raises(JobEventError, match="'after=1' was already satisfied"):
        apply(job, E("dependency-add", ev.dependency_add("after=1")))
    apply(job, E("dependency-remove", ev.dependency_remove("begin-time=9")))
    apply(job, E("depend"))
    assert job.state == JobState.PRIORITY and job.dependencies == []


def test_prolog_blocks_start_and_epilog_blocks_free():
    job = replay(6, RUN_TO_END[:5] + [E("prolog-start", ev.prolog_start("p"))])
    with pytest.raises(JobEventError, match="start: a prolog is still running"):
        apply(job, E("start"))
    apply(job, E("prolog-finish", ev.prolog_finish("p", 0)))
    with pytest.raises(JobEventError, match="no prolog is running"):
        apply(job, E("prolog-finish", ev.prolog_finish("p", 0)))
    for e in [E("start"), E("finish", ev.finish(0)), E("release", ev.release()),
              E("epilog-start", ev.epilog_start("e"))]:
        apply(job, e)
    with pytest.raises(JobEventError, match="free: an epilog is still running"):
        apply(job, E("free"))
    apply(job, E("epilog-finish", ev.epilog_finish("e", 0)))
    apply(job, E("free"))
    apply(job, E("clean"))
    assert job.result == JobResult.COMPLETED


def test_sched_back_to_priority_and_urgency_change():
    job = replay(8, RUN_TO_END[:4] + [E("urgency", ev.urgency(0, 1001), dt=10)])
    assert job.state == JobState.PRIORITY and job.urgency == 0 and job.t_state == T0 + 10
    apply(job, E("priority", ev.priority(0)))
    apply(job, E("flux-restart"))
    assert job.state == JobState.PRIORITY
    apply(job, E("jobspec-update", {"attributes.system.duration": 60}))
    assert job.jobspec_updates == {"attributes.system.duration": 60}


def test_memo_flags_resource_update_and_annotations():
    job = replay(9, RUN_TO_END[:4] + [
        E("memo", {"a": 1, "b": 2}), E("memo", {"a": None}),
        E("set-flags", ev.set_flags(["waitable", "debug"])),
        E("alloc", ev.alloc({"sched": {"resource_summary": "rank0/core0"}})),
        E("resource-update", ev.resource_update(T0 + 100))])
    assert job.memo == {"b": 2}
    assert job.flags == 3 and job.waitable
    assert job.annotations == {"sched": {"resource_summary": "rank0/core0"}}
    assert job.expiration == T0 + 100


def test_invalidate():
    job = replay(10, [SUBMIT, E("invalidate")])
    assert job.state == JobState.INACTIVE and job.invalid and job.result is None


def test_double_events_are_refused():
    job = replay(11, RUN_TO_END[:7])
    with pytest.raises(JobEventError, match="finish: job already finished"):
        apply(job, E("finish", ev.finish(0)))
    with pytest.raises(JobEventError, match="start: job already started"):
        apply(job, E("start"))
    apply(job, E("release", ev.release("all", True)))
    with pytest.raises(JobEventError, match="already finally released"):
        apply(job, E("release", ev.release("0", False)))
    with pytest.raises(JobEventError, match="alloc: job already holds resources"):
        apply(job, E("alloc"))


def test_replay_errors_name_the_position():
    with pytest.raises(JobEventError, match="job 12: eventlog is empty"):
        replay(12, [])
    with pytest.raises(JobEventError, match="job 12: event 1: event 'validate' before submit"):
        replay(12, [E("validate")])
    with pytest.raises(JobEventError, match="job 12: event 3: event 'alloc' is not valid in "
                                            "state DEPEND"):
        replay(12, [SUBMIT, E("validate"), E("alloc")])
    with pytest.raises(JobEventError, match="timestamp must be a number > 0"):
        replay(12, [SUBMIT, {"name": "validate", "timestamp": -1}])
    with pytest.raises(JobEventError, match="event name must be a non-empty string"):
        replay(12, [SUBMIT, {"timestamp": 5.0}])


def test_merge_annotations_rfc27():
    old = {"sched": {"reason_pending": "x", "t_estimate": 5}, "user": {"a": 1}}
    merged = merge_annotations(old, {"sched": {"reason_pending": None}, "user": None})
    assert merged == {"sched": {"t_estimate": 5}}
    assert old["sched"]["reason_pending"] == "x"      # not modified
    assert merge_annotations(merged, {"sched": {"t_estimate": None}}) is None
    assert merge_annotations(None, {"a": {"b": {"c": 1}}}) == {"a": {"b": {"c": 1}}}
    assert update_memo({"a": {"x": 1}}, {"a": {"y": 2}}) == {"a": {"y": 2}}


def test_apply_jobspec_updates():
    spec = {"attributes": {"system": {"duration": 0}}, "tasks": [{"command": ["a"]}]}
    out = apply_jobspec_updates(spec, {"attributes.system.duration": 60,
                                       "attributes.system.job.name": "x"})
    assert out["attributes"]["system"] == {"duration": 60, "job": {"name": "x"}}
    assert spec["attributes"]["system"] == {"duration": 0}
    with pytest.raises(ValueError, match="'tasks.x.y': tasks is not an object"):
        apply_jobspec_updates(spec, {"tasks.x.y": 1})


# -- random sequences -------------------------------------------------------------

POOL = [
    E("validate"), E("depend"), E("priority", ev.priority(3)), E("priority", ev.priority(0)),
    E("urgency", ev.urgency(0, 1)), E("urgency", ev.urgency(31, 1)), E("flux-restart"),
    E("alloc"), E("start"), E("finish", ev.finish(0)), E("finish", ev.finish(256)),
    E("release", ev.release("0", False)), E("release", ev.release()), E("free"), E("clean"),
    E("exception", ev.exception("cancel")), E("exception", ev.exception("timeout")),
    E("exception", ev.exception("oom", 1)), E("dependency-add", ev.dependency_add("d1")),
    E("dependency-remove", ev.dependency_remove("d1")), E("prolog-start", ev.prolog_start("p")),
    E("prolog-finish", ev.prolog_finish("p")), E("epilog-start", ev.epilog_start("e")),
    E("epilog-finish", ev.epilog_finish("e")), E("memo", {"k": 1}), E("debug.x"),
    E("jobspec-update", {"attributes.system.duration": 1}),
    E("resource-update", ev.resource_update(5.0)), E("set-flags", ev.set_flags(["debug"])),
    E("submit", ev.submit(1)),
]
# the happy path, drawn more often so walks get to the end states
PROGRESS = [0, 1, 2, 7, 8, 9, 10, 12, 13, 14]


@given(st.lists(st.one_of(st.sampled_from(PROGRESS), st.sampled_from(range(len(POOL)))),
                max_size=80))
def test_random_sequences(indexes):
    job = new_job(1, SUBMIT)
    applied = []
    for index in indexes:
        event = POOL[index]
        before = copy.deepcopy(dataclasses.asdict(job))
        try:
            apply(job, event)
        except JobEventError as exc:
            assert dataclasses.asdict(job) == before, "a refused event changed the record"
            assert exc.event == event["name"]
            continue
        applied.append(event)
        assert job.dependencies == list(dict.fromkeys(job.dependencies))
        assert job.prolog_active >= 0 and job.epilog_active >= 0
        if event["name"] == "depend":
            assert not job.dependencies
        if event["name"] == "start":
            assert job.has_resources
    fatal = [e for e in applied if e["name"] == "exception" and e["context"]["severity"] == 0]
    if fatal:
        assert job.fatal is not None and job.fatal.type == fatal[0]["context"]["type"]
    else:
        assert job.fatal is None
    if job.state == JobState.INACTIVE and not job.invalid:
        assert not job.has_resources and job.epilog_active == 0
        assert not job.started or job.finish_status is not None
        expected = JobResult.COMPLETED if not fatal and job.finish_status == 0 else (
            JobResult.CANCELED if fatal and fatal[0]["context"]["type"] == "cancel" else
            JobResult.TIMEOUT if fatal and fatal[0]["context"]["type"] == "timeout" else
            JobResult.FAILED)
        assert job.result == expected
    else:
        assert job.result is None


def test_job_record_is_slotted():
    assert not hasattr(Job(1, 1, 1, 0, 1.0), "__dict__")
