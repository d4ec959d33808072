"""jobmgr.policy: config parsing and what ingest decides about one submission."""
from __future__ import annotations

import errno
import os

import pytest

from flux.errors import FluxError
from flux.job.Jobspec import JobspecV1
from jobmgr.policy import (
    SUBMIT_DEBUG,
    SUBMIT_NOVALIDATE,
    SUBMIT_PRE_SIGNED,
    SUBMIT_WAITABLE,
    Access,
    add_constraint,
    check_access,
    event_flags,
    load_jobspec,
    make_J,
    parse_job_policy,
    prepare,
)

NOBODY = 65534


def jobspec(**system: object) -> dict:
    js = JobspecV1.from_command(["true"], num_tasks=2, cores_per_task=1)
    doc = js.jobspec
    doc["attributes"]["system"].pop("environment", None)
    doc["attributes"]["system"].update(system)
    return doc


def open_all(_name: str | None) -> str | None:
    return None


def run(payload: dict, policy=None, owner: bool = True, userid: int = 0, queue_open=open_all):
    return prepare(payload, userid, owner, policy or parse_job_policy({}), queue_open)


# --- configuration -------------------------------------------------------------------

def test_empty_config_is_one_anonymous_queue_without_limits():
    policy = parse_job_policy({})
    assert not policy.named
    assert policy.default_queue is None
    assert policy.general.limits.duration is None


def test_config_reads_defaults_limits_and_queue_overrides():
    policy = parse_job_policy({
        "policy": {"jobspec": {"defaults": {"system": {"duration": "1m", "queue": "debug"}}},
                   "limits": {"duration": "2h", "job-size": {"max": {"nnodes": 8}}}},
        "queues": {"debug": {"requires": ["debug"], "policy": {"limits": {"duration": "30m"}}},
                   "batch": {}},
    })
    assert policy.named and policy.default_queue == "debug"
    assert policy.general.default_duration == 60.0
    assert policy.policy_for("debug").limits.duration == 1800.0
    assert policy.policy_for("debug").limits.max == {"nnodes": 8}   # inherited
    assert policy.policy_for("batch").limits.duration == 7200.0
    assert policy.queues["debug"].requires == ("debug",)


@pytest.mark.parametrize("config, message", [
    ({"policy": {"limits": {"duration": "soon"}}}, "policy.limits.duration: invalid duration"),
    ({"policy": {"limits": {"job-size": {"max": {"nnodes": "8"}}}}},
     "policy.limits.job-size.max.nnodes: must be an integer"),
    ({"policy": {"limits": {"job-size": {"max": {"nodes": 8}}}}},
     "policy.limits.job-size.max.nodes: unknown key"),
    ({"policy": {"jobspec": {"defaults": {"system": {"queue": "x"}}}}},
     "default queue 'x' is set but no queues are configured"),
    ({"policy": {"jobspec": {"defaults": {"system": {"queue": "x"}}}}, "queues": {"a": {}}},
     "'x' is not a configured queue"),
    ({"queues": {"a": {"requires": "debug"}}}, "queues.a.requires: must be an array"),
    ({"queues": {"a": {"colour": 1}}}, "queues.a.colour: unknown key"),
    ({"queues": {"a": 3}}, "queues.a: must be a table"),
    ({"policy": {"access": {"allow-user": ["no-such-user-xyz"]}}},
     "policy.access.allow-user: unknown user 'no-such-user-xyz'"),
])
def test_bad_config_names_the_key(config, message):
    with pytest.raises(ValueError, match=message):
        parse_job_policy(config)


# --- flags, urgency, jobspec ------------------------------------------------------------

def test_event_flags_drop_pre_signed_and_shift():
    assert event_flags(SUBMIT_PRE_SIGNED) == 0
    assert event_flags(SUBMIT_DEBUG) == 1
    assert event_flags(SUBMIT_WAITABLE) == 2
    assert event_flags(SUBMIT_NOVALIDATE) == 4


def test_plain_submission_is_accepted_unchanged():
    doc = jobspec()
    job = run({"jobspec": doc})
    assert job.jobspec is doc and job.original is doc
    assert (job.urgency, job.flags, job.queue) == (16, 0, None)
    assert job.summary is not None and job.summary.ntasks == 2


def test_jobspec_may_be_json_text():
    import orjson

    job = run({"jobspec": orjson.dumps(jobspec()).decode(), "urgency": 3})
    assert job.urgency == 3 and job.jobspec["version"] == 1


@pytest.mark.parametrize("flags, name", [(SUBMIT_WAITABLE, "waitable"),
                                         (SUBMIT_NOVALIDATE, "novalidate")])
def test_guests_may_not_use_owner_flags(flags, name):
    with pytest.raises(FluxError) as exc:
        run({"jobspec": jobspec(), "flags": flags}, owner=False, userid=NOBODY)
    assert exc.value.errno == errno.EPERM and name in exc.value.strerror


def test_owner_may_use_waitable_and_debug():
    job = run({"jobspec": jobspec(), "flags": SUBMIT_WAITABLE | SUBMIT_DEBUG})
    assert job.flags == 3


def test_unknown_flag_is_einval():
    with pytest.raises(FluxError, match="invalid submit flags 0x10") as exc:
        run({"jobspec": jobspec(), "flags": 16})
    assert exc.value.errno == errno.EINVAL


@pytest.mark.parametrize("urgency, owner, errnum", [(17, False, errno.EPERM),
                                                     (32, True, errno.EINVAL),
                                                     (-1, True, errno.EINVAL)])
def test_urgency_limits(urgency, owner, errnum):
    with pytest.raises(FluxError) as exc:
        run({"jobspec": jobspec(), "urgency": urgency}, owner=owner, userid=NOBODY)
    assert exc.value.errno == errnum


def test_guest_urgency_up_to_16_is_fine():
    assert run({"jobspec": jobspec(), "urgency": 16}, owner=False, userid=NOBODY).urgency == 16


def test_invalid_jobspec_names_the_problem():
    doc = jobspec()
    del doc["tasks"]
    with pytest.raises(FluxError, match="invalid jobspec: .*tasks") as exc:
        run({"jobspec": doc})
    assert exc.value.errno == errno.EINVAL


def test_novalidate_skips_validation():
    doc = jobspec()
    doc["tasks"][0]["count"] = {"per_slot": 2}
    with pytest.raises(FluxError):
        run({"jobspec": doc})
    assert run({"jobspec": doc, "flags": SUBMIT_NOVALIDATE}).jobspec is doc


@pytest.mark.parametrize("value, message", [
    ("{not json", "jobspec is not valid JSON"),
    (42, "jobspec must be an object or a JSON string, not number"),
    (None, "jobspec must be an object or a JSON string, not null"),
    ("[1, 2]", "jobspec must be a JSON object"),
])
def test_unreadable_jobspec(value, message):
    with pytest.raises(FluxError, match=message):
        load_jobspec(value)


def test_payload_shape_errors_are_eproto():
    with pytest.raises(FluxError) as exc:
        run({"urgency": 16})
    assert exc.value.errno == errno.EPROTO and "'jobspec' or 'J'" in exc.value.strerror
    with pytest.raises(FluxError) as exc:
        run(["not", "a", "dict"])   # type: ignore[arg-type]
    assert exc.value.errno == errno.EPROTO


def test_J_payload_carries_the_jobspec_and_its_signer():
    doc = jobspec()
    assert run({"J": make_J(0, doc), "flags": SUBMIT_PRE_SIGNED}).jobspec == doc
    with pytest.raises(FluxError) as exc:
        run({"J": make_J(1234, doc)}, userid=0)
    assert exc.value.errno == errno.EPERM
    with pytest.raises(FluxError, match="mechanism 'munge' is not supported"):
        run({"J": {"mech": "munge", "jobspec": doc}})


# --- defaults, queues, limits, access ---------------------------------------------------

def test_default_duration_applies_only_when_unset():
    policy = parse_job_policy({"policy": {"jobspec": {"defaults": {"system":
                                                                     {"duration": "1m"}}}}})
    unset = run({"jobspec": jobspec()}, policy)
    assert unset.jobspec["attributes"]["system"]["duration"] == 60.0
    assert unset.original["attributes"]["system"]["duration"] == 0   # J keeps the request
    assert run({"jobspec": jobspec(duration=5)}, policy).jobspec["attributes"]["system"][
        "duration"] == 5


def test_default_queue_and_its_requirements_are_added():
    policy = parse_job_policy({
        "policy": {"jobspec": {"defaults": {"system": {"queue": "batch"}}}},
        "queues": {"batch": {"requires": ["batch"]}, "debug": {"requires": ["debug"]}}})
    job = run({"jobspec": jobspec()}, policy)
    system = job.jobspec["attributes"]["system"]
    assert job.queue == "batch" and system["queue"] == "batch"
    assert system["constraints"] == {"properties": ["batch"]}
    job = run({"jobspec": jobspec(queue="debug", constraints={"hostlist": ["n1"]})}, policy)
    assert job.jobspec["attributes"]["system"]["constraints"] == {
        "and": [{"hostlist": ["n1"]}, {"properties": ["debug"]}]}


def test_queue_errors():
    named = parse_job_policy({"queues": {"a": {}, "b": {}}})
    with pytest.raises(FluxError, match="no queue was specified"):
        run({"jobspec": jobspec()}, named)
    with pytest.raises(FluxError, match=r"invalid queue 'c' \(queues: a, b\)"):
        run({"jobspec": jobspec(queue="c")}, named)
    with pytest.raises(FluxError, match="invalid queue 'a': no queues are configured"):
        run({"jobspec": jobspec(queue="a")})


def test_disabled_queue_refuses_with_its_reason():
    def closed(name):
        return f"job submission is disabled: {name or 'all'} maintenance"

    with pytest.raises(FluxError, match="job submission is disabled: all maintenance") as exc:
        run({"jobspec": jobspec()}, queue_open=closed)
    assert exc.value.errno == errno.EINVAL


@pytest.mark.parametrize("limits, message", [
    ({"duration": "1m"}, r"requested duration \(unlimited\) exceeds policy limit of 1m"),
    ({"job-size": {"max": {"ncores": 1}}}, r"requested ncores \(2\) exceeds policy limit of 1"),
    ({"job-size": {"min": {"ncores": 4}}}, r"requested ncores \(2\) is below policy minimum"),
    ({"job-size": {"max": {"ngpus": 0}}}, None),
])
def test_limits(limits, message):
    policy = parse_job_policy({"policy": {"limits": limits}})
    if message is None:
        run({"jobspec": jobspec()}, policy)
        return
    with pytest.raises(FluxError, match=message) as exc:
        run({"jobspec": jobspec()}, policy)
    assert exc.value.errno == errno.EINVAL


def test_queue_limit_overrides_general_limit_and_names_the_queue():
    policy = parse_job_policy({"policy": {"limits": {"duration": "1h"}},
                               "queues": {"short": {"policy": {"limits": {"duration": "1m"}}},
                                          "long": {}}})
    run({"jobspec": jobspec(queue="long", duration=600)}, policy)
    with pytest.raises(FluxError, match="limit of 1m of queue 'short'"):
        run({"jobspec": jobspec(queue="short", duration=600)}, policy)


def test_access_allows_listed_users_and_groups_only():
    access = Access(frozenset({1000}), frozenset({50}))
    check_access(access, 1000, None, groups_of=lambda uid: set())
    check_access(access, 2000, None, groups_of=lambda uid: {50})
    with pytest.raises(FluxError, match="user 2000 is not allowed to submit jobs to queue 'q'") \
            as exc:
        check_access(access, 2000, "q", groups_of=lambda uid: {7})
    assert exc.value.errno == errno.EPERM
    check_access(Access(), 2000, None)


def test_access_policy_binds_guests_not_the_owner():
    policy = parse_job_policy({"policy": {"access": {"allow-user": [str(os.getuid())]}}})
    run({"jobspec": jobspec()}, policy, owner=False, userid=os.getuid())
    with pytest.raises(FluxError) as exc:
        run({"jobspec": jobspec()}, policy, owner=False, userid=NOBODY)
    assert exc.value.errno == errno.EPERM
    run({"jobspec": jobspec()}, policy, owner=True, userid=NOBODY)


def test_add_constraint():
    assert add_constraint(None, ("a",)) == {"properties": ["a"]}
    assert add_constraint({}, ("a", "b")) == {"properties": ["a", "b"]}


def test_J_is_unsigned_and_names_the_user():
    assert make_J(5, {"x": 1}) == {"version": 1, "mech": "none", "userid": 5,
                                   "jobspec": {"x": 1}}


# --- the memo of validated jobspecs ----------------------------------------------------

def _counting_validation(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import jobmgr.policy as P

    calls = [0]
    real = P._validate_v1

    def counted(js: dict) -> None:
        calls[0] += 1
        real(js)

    monkeypatch.setattr(P, "_validate_v1", counted)
    return calls


def _copies(n: int) -> list[dict]:
    # what flux submit --cc sends: equal jobspecs but for FLUX_JOB_CC, each its own object
    import orjson

    out = []
    for cc in range(n):
        doc = jobspec(environment={"FLUX_JOB_CC": str(cc), "HOME": "/h"})
        out.append(orjson.loads(orjson.dumps(doc)))
    return out


def test_memo_validates_a_repeated_jobspec_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobmgr.policy import JobspecMemo

    calls = _counting_validation(monkeypatch)
    memo = JobspecMemo()
    policy = parse_job_policy({})
    first, second = (prepare({"jobspec": doc}, 0, True, policy, open_all, memo)
                     for doc in _copies(2))
    assert calls[0] == 1 and memo.hits == 1
    assert second.summary == first.summary == run({"jobspec": _copies(1)[0]}).summary
    assert second.jobspec["attributes"]["system"]["environment"]["FLUX_JOB_CC"] == "1"


def test_memo_still_checks_each_environment() -> None:
    from jobmgr.policy import JobspecMemo

    memo = JobspecMemo()
    good, bad = _copies(2)
    bad["attributes"]["system"]["environment"]["FLUX_JOB_CC"] = 7
    prepare({"jobspec": good}, 0, True, parse_job_policy({}), open_all, memo)
    with pytest.raises(FluxError) as known:
        prepare({"jobspec": bad}, 0, True, parse_job_policy({}), open_all, memo)
    with pytest.raises(FluxError) as fresh:
        run({"jobspec": bad})
    assert memo.hits == 1
    assert known.value.errno == fresh.value.errno == errno.EINVAL
    assert known.value.strerror == fresh.value.strerror
    assert "environment.FLUX_JOB_CC" in known.value.strerror


def test_memo_keeps_no_refusal_and_limits_still_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobmgr.policy import JobspecMemo

    calls = _counting_validation(monkeypatch)
    memo = JobspecMemo()
    bad = jobspec()
    del bad["tasks"]
    for _ in range(2):
        with pytest.raises(FluxError, match="invalid jobspec: .*tasks") as info:
            prepare({"jobspec": bad}, 0, True, parse_job_policy({}), open_all, memo)
        assert info.value.errno == errno.EINVAL
    assert calls[0] == 2
    good = {"jobspec": jobspec()}
    prepare(good, 0, True, parse_job_policy({}), open_all, memo)
    limited = parse_job_policy({"policy": {"limits": {"job-size": {"max": {"ncores": 1}}}}})
    with pytest.raises(FluxError, match="ncores"):
        prepare(good, 0, True, limited, open_all, memo)   # known jobspec, new limit


def test_memo_summary_follows_defaults_applied_after_it() -> None:
    from jobmgr.policy import JobspecMemo

    memo = JobspecMemo()
    policy = parse_job_policy({"policy": {"jobspec": {"defaults": {"system": {
        "duration": "1m"}}}}})
    for _ in range(2):
        p = prepare({"jobspec": jobspec()}, 0, True, policy, open_all, memo)
        assert p.summary is not None and p.summary.duration == 60.0


def test_memo_key_leaves_out_only_the_environment() -> None:
    from jobmgr.policy import JobspecMemo

    a, b = _copies(2)
    assert JobspecMemo.key(a) == JobspecMemo.key(b)
    b["attributes"]["system"]["cwd"] = "/elsewhere"
    assert JobspecMemo.key(a) != JobspecMemo.key(b)
    assert JobspecMemo.key({"attributes": []}) is None


def test_memo_is_bounded() -> None:
    from jobmgr.policy import JobspecMemo

    memo = JobspecMemo(size=2)
    for i in range(3):
        memo.add(b"%d" % i, None)
    assert memo.get(b"0") == (False, None) and memo.get(b"2") == (True, None)
