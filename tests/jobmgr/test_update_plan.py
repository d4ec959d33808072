"""jobmgr.update: which updates a job may take, checked without I/O."""
from __future__ import annotations

import copy
import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flux.errors import FluxError
from jobmgr.policy import parse_job_policy
from jobmgr.states import JobState
from jobmgr.update import (
    IMMUTABLE_TEXT,
    UpdateTarget,
    check_request,
    expiration_for,
    plan_update,
)

OWNER, GUEST = 0, 1000
POLICY = parse_job_policy({
    "policy": {"limits": {"duration": "1h"}},
    "queues": {"batch": {"requires": ["batch"]},
               "debug": {"requires": ["debug"], "policy": {"limits": {"duration": "10m"}}},
               "open": {}},
})
DURATION = "attributes.system.duration"
QUEUE = "attributes.system.queue"
NAME = "attributes.system.job.name"


def jobspec(duration=600.0, queue="batch", constraints=None, name=None):
    system = {"duration": duration, "queue": queue}
    if constraints is not None:
        system["constraints"] = constraints
    elif queue in ("batch", "debug"):
        system["constraints"] = {"properties": [queue]}
    if name is not None:
        system["job"] = {"name": name}
    return {"version": 1,
            "resources": [{"type": "slot", "count": 1, "label": "task",
                           "with": [{"type": "core", "count": 1}]}],
            "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
            "attributes": {"system": system}}


def target(state=JobState.SCHED, userid=GUEST, flags=0, spec=None, R=None):
    return UpdateTarget(1, userid, state, flags, spec or jobspec(), R)


def plan(updates, tgt=None, userid=GUEST, owner=False, closed=()):
    return plan_update(tgt or target(), updates, userid, owner, POLICY,
                       lambda q: "disabled" if q in closed else None)


def refused(updates, **kw):
    with pytest.raises(FluxError) as info:
        plan(updates, **kw)
    return info.value


def test_a_guest_changes_the_duration_of_a_pending_job_within_the_limit():
    p = plan({DURATION: 1800.0})
    assert p.updates == {DURATION: 1800.0}
    assert p.jobspec["attributes"]["system"]["duration"] == 1800.0
    assert p.validate and not p.immutable and p.expiration is None


def test_a_guest_cannot_pass_the_limit_and_nothing_is_planned():
    err = refused({DURATION: 7200.0, NAME: "x"})
    assert err.errno == errno.EINVAL
    assert err.strerror == "requested duration (2h) exceeds policy limit of 1h of queue 'batch'"


def test_the_owner_may_pass_the_limit_which_makes_a_guest_job_immutable():
    p = plan({DURATION: 7200.0}, userid=OWNER, owner=True)
    assert not p.validate and p.immutable
    # the owner's own job is not marked
    own = plan({DURATION: 7200.0}, tgt=target(userid=OWNER), userid=OWNER, owner=True)
    assert not own.immutable


def test_an_immutable_job_refuses_guests_but_not_the_owner():
    tgt = target(flags=8)
    err = refused({NAME: "x"}, tgt=tgt)
    assert err.errno == errno.EPERM and err.strerror == IMMUTABLE_TEXT
    assert plan({NAME: "x"}, tgt=tgt, userid=OWNER, owner=True).updates == {NAME: "x"}


def test_guests_may_only_update_their_own_jobs():
    err = refused({NAME: "x"}, userid=GUEST + 1)
    assert err.errno == errno.EPERM and err.strerror == "guests may only update their own jobs"


@pytest.mark.parametrize("value, text", [
    ("abc", "duration must be a number of seconds, got 'abc'"),
    (True, "duration must be a number of seconds, got True"),
    (float("nan"), "duration must be a number of seconds"),
    (-5, "duration must not be negative"),
])
def test_bad_durations_name_the_key(value, text):
    err = refused({DURATION: value})
    assert err.errno == errno.EINVAL and err.strerror.startswith(DURATION) and text in err.strerror


def test_running_jobs_duration_is_the_owners_and_becomes_an_expiration():
    R = {"version": 1, "execution": {"R_lite": [], "starttime": 1000.0, "expiration": 1600.0}}
    running = target(state=JobState.RUN, R=R)
    err = refused({DURATION: 1200.0}, tgt=running)
    assert err.errno == errno.EPERM
    assert err.strerror == "duration update of running job requires instance owner privileges"
    p = plan({DURATION: 1200.0}, tgt=running, userid=OWNER, owner=True)
    assert p.expiration == 2200.0
    assert plan({DURATION: 0}, tgt=running, userid=OWNER, owner=True).expiration == 0.0
    # a time already past is allowed: exec ends the job with a timeout
    assert plan({DURATION: 1}, tgt=running, userid=OWNER, owner=True).expiration == 1001.0


def test_expiration_needs_a_starttime():
    with pytest.raises(FluxError, match="unable to get job starttime"):
        expiration_for({"execution": {}}, 60)


def test_queue_change_swaps_the_queue_constraints_and_asks_for_feasibility():
    p = plan({QUEUE: "open"})
    assert p.updates == {QUEUE: "open", "attributes.system.constraints": {}}
    assert p.feasibility and p.validate
    p = plan({QUEUE: "debug"}, tgt=target(spec=jobspec(duration=300)))
    assert p.updates["attributes.system.constraints"] == {"properties": ["debug"]}


@pytest.mark.parametrize("updates, text", [
    ({QUEUE: "batch"}, "job queue is already set to batch"),
    ({QUEUE: "nosuch"}, "invalid queue 'nosuch' (queues: batch, debug, open)"),
    ({QUEUE: ""}, "queue must be a non-empty string"),
    ({QUEUE: "debug"}, "requested duration (10m) exceeds policy limit of 10m"),
    ({"attributes.system.myattr": 1}, "update of attributes.system.myattr not supported"),
    ({"tasks.0.command": ["x"]}, "update of tasks.0.command not supported"),
    ({NAME: ["a"]}, "job name must be a string"),
])
def test_refusals_name_the_key_and_why(updates, text):
    spec = jobspec(duration=601) if updates.get(QUEUE) == "debug" else None
    err = refused(updates, tgt=target(spec=spec))
    assert text.split(" (10m)")[0] in err.strerror


def test_a_disabled_queue_is_refused():
    err = refused({QUEUE: "open"}, closed=("open",))
    assert err.strerror == "queue open is currently disabled"


def test_a_job_with_its_own_constraints_keeps_its_queue():
    spec = jobspec(constraints={"and": [{"properties": ["batch"]}, {"hostlist": ["n1"]}]})
    err = refused({QUEUE: "open"}, tgt=target(spec=spec))
    assert "non-queue constraints" in err.strerror


def test_no_queue_change_once_running_and_no_updates_in_cleanup():
    err = refused({QUEUE: "open"}, tgt=target(state=JobState.RUN))
    assert err.strerror == "update of queue for running job not supported"
    err = refused({NAME: "x"}, tgt=target(state=JobState.CLEANUP))
    assert "CLEANUP" in err.strerror


@pytest.mark.parametrize("payload", [None, [], {"id": -1, "updates": {NAME: "x"}},
                                     {"id": 1}, {"id": 1, "updates": {}},
                                     {"id": "1", "updates": {NAME: "x"}}])
def test_malformed_requests(payload):
    with pytest.raises(FluxError) as info:
        check_request(payload)
    assert info.value.errno == errno.EPROTO


def test_empty_key_components_are_refused():
    with pytest.raises(FluxError, match="invalid update key"):
        check_request({"id": 1, "updates": {"attributes..x": 1}})


KEYS = st.sampled_from([DURATION, QUEUE, NAME, "attributes.system.other", "tasks.0.slot"])
VALUES = st.one_of(st.integers(-10, 10000), st.floats(allow_nan=True), st.text(max_size=8),
                   st.sampled_from(["batch", "debug", "open", "nosuch"]), st.none(),
                   st.lists(st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(updates=st.dictionaries(KEYS, VALUES, min_size=1, max_size=4),
       owner=st.booleans(), state=st.sampled_from([JobState.DEPEND, JobState.PRIORITY,
                                                   JobState.SCHED, JobState.RUN]))
def test_all_or_nothing_and_the_job_is_never_changed(updates, owner, state):
    R = {"execution": {"starttime": 100.0, "expiration": 700.0}}
    tgt = target(state=state, R=R)
    before = copy.deepcopy(tgt.jobspec)
    try:
        p = plan(updates, tgt=tgt, userid=OWNER if owner else GUEST, owner=owner)
    except FluxError as exc:
        assert exc.errno in (errno.EINVAL, errno.EPERM) and exc.strerror
    else:
        # every requested key is in the event, with the value asked for
        for key, value in updates.items():
            assert p.updates[key] == value or (value != value and p.updates[key] != p.updates[key])
        assert set(p.updates) - set(updates) <= {"attributes.system.constraints"}
        assert (p.expiration is not None) == (state == JobState.RUN and DURATION in updates)
    assert tgt.jobspec == before
