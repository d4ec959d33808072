"""job-list module's pure parts: snapshot sections, diff -> ids, waits, journal folding."""
from __future__ import annotations

import gc

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.job.JobID import JobID
from jobmgr import events as ev
from jobmgr.joblist.module import (
    Backlog,
    apply_items,
    decode_log,
    gc_paused,
    jobids_from_changes,
    split_snapshot,
    state_reached,
)
from jobmgr.joblist.projection import JobList
from jobmgr.states import JobState

T0 = 1700000000.0
SPEC = {"version": 1,
        "resources": [{"type": "slot", "count": 1, "label": "task",
                       "with": [{"type": "core", "count": 1}]}],
        "tasks": [{"command": ["/bin/true"], "slot": "task", "count": {"per_slot": 1}}],
        "attributes": {"system": {"duration": 0}}}
R = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0"}}],
                                 "nodelist": ["node0"], "expiration": 0.0}}


def E(name: str, t: float, ctx: dict | None = None) -> dict:
    e = {"timestamp": T0 + t, "name": name}
    if ctx is not None:
        e["context"] = ctx
    return e


def complete(t: float, userid: int = 1001) -> list[dict]:
    return [E("submit", t, ev.submit(userid)), E("validate", t + .1), E("depend", t + .2),
            E("priority", t + .3, ev.priority(16)), E("alloc", t + .4), E("start", t + .5),
            E("finish", t + .6, ev.finish(0)), E("release", t + .7, ev.release()),
            E("free", t + .8), E("clean", t + .9)]


def loaded(n_inactive: int, n_active: int = 0) -> JobList:
    jl = JobList()
    jobs = [(i + 1, complete(i), SPEC, R) for i in range(n_inactive)]
    jobs += [(1000 + i, complete(100 + i)[:4], SPEC, None) for i in range(n_active)]
    assert jl.load(jobs) == []
    return jl


@given(st.integers(0, 30), st.integers(0, 5))
def test_snapshot_sections_join_back_to_the_same_bytes(n_inactive: int, n_active: int) -> None:
    data = loaded(n_inactive, n_active).encode()
    parts = split_snapshot(data)
    assert len(parts) == 9
    assert b"".join(parts) == data
    again = JobList.decode(b"".join(parts))
    assert again.list(["all"], 0) == JobList.decode(data).list(["all"], 0)
    # as stored: the sections themselves, the blobs sliced where they are
    assert JobList.decode(parts).list(["all"], 0) == again.list(["all"], 0)
    assert JobList.decode(parts).stats() == again.stats()


@pytest.mark.parametrize("cut", ["short_blobs", "long_blobs", "short_arrays"])
def test_snapshot_sections_that_do_not_add_up_are_rejected(cut: str) -> None:
    parts = split_snapshot(loaded(5, 1).encode())
    if cut == "short_blobs":
        parts[8] = parts[8][:-1]
    elif cut == "long_blobs":
        parts[8] = parts[8] + b"x"
    else:
        parts[7] = parts[7][:-1]
    with pytest.raises(ValueError, match="job-list snapshot: .*(expected|truncated)"):
        JobList.decode(parts)


def test_snapshot_sections_keep_old_prefixes_when_jobs_are_added() -> None:
    # the property the KVS dedup relies on: arrays and blobs grow at the end
    jl = loaded(20)
    before = split_snapshot(jl.encode())
    for e in complete(50):
        jl.apply(500, e, SPEC if e["name"] == "submit" else None)
    after = split_snapshot(jl.encode())
    for old, new in zip(before[1:], after[1:]):
        assert new.startswith(old)


def test_split_snapshot_of_bytes_it_cannot_parse_is_one_section() -> None:
    assert split_snapshot(b"short") == [b"short"]
    assert split_snapshot(b"FJOBLST1" + b"\xff\xff\x00\x00" + b"{}") == \
        [b"FJOBLST1" + b"\xff\xff\x00\x00" + b"{}"]


def test_jobids_from_changes() -> None:
    a, b = JobID(0x1234_5678_9ABC), JobID(7)
    changes = [{"key": f"{a.kvs}.eventlog", "kind": "change"},
               {"key": f"{a.kvs}.R", "kind": "add"},
               {"key": f"{b.kvs}.guest.exec.eventlog", "kind": "remove"},
               {"key": "job.0000", "kind": "remove"},           # not a job dir
               {"key": "job.zzzz.0000.0000.0001.eventlog", "kind": "add"},
               {"key": "checkpoint.job-list.meta", "kind": "change"}]
    assert jobids_from_changes(changes) == {int(a), int(b)}


def test_state_reached() -> None:
    assert state_reached(int(JobState.SCHED), 0)
    assert state_reached(int(JobState.RUN), int(JobState.RUN))
    assert state_reached(int(JobState.INACTIVE), int(JobState.RUN))
    assert not state_reached(int(JobState.SCHED), int(JobState.RUN))
    assert state_reached(int(JobState.SCHED), int(JobState.DEPEND | JobState.INACTIVE))
    assert not state_reached(int(JobState.NEW), int(JobState.PENDING))


def test_backlog_gathers_events_per_job() -> None:
    bl = Backlog()
    bl.add([{"id": 5, "events": complete(0)[:2], "jobspec": SPEC}])
    bl.add([{"id": 5, "events": complete(0)[2:5], "R": R}, {"id": 6, "events": []}])
    assert [e["name"] for e in bl.jobs[5].events] == \
        ["submit", "validate", "depend", "priority", "alloc"]
    assert bl.jobs[5].jobspec is SPEC and bl.jobs[5].R is R
    assert bl.jobs[6].events == []


def test_apply_items_folds_live_events_with_jobspec_and_R() -> None:
    jl = JobList()
    items = [{"id": 9, "events": complete(0)[:4], "jobspec": SPEC},
             {"id": 9, "events": [complete(0)[4]], "R": R},
             {"id": 9, "events": [{"name": "annotations",
                                   "context": {"annotations": {"user": {"x": 1}}}}]}]
    assert apply_items(jl, items) == {9}
    job = jl.get(9, ["name", "state", "nodelist", "annotations"])
    assert job == {"id": 9, "name": "true", "state": int(JobState.RUN), "nodelist": "node0",
                   "annotations": {"user": {"x": 1}}}


def test_apply_items_skips_jobs_already_inactive_and_purges() -> None:
    jl = loaded(2)
    errors: list[str] = []
    touched = apply_items(jl, [{"id": 1, "events": complete(0)[5:]}], errors)
    assert touched == set() and errors == []
    assert apply_items(jl, [{"id": 2, "events": [{"timestamp": T0, "name": "purge"}]}]) == {2}
    assert 2 not in jl and jl.stats()["inactive_purged"] == 1


def test_apply_items_reports_events_that_do_not_apply() -> None:
    jl = JobList()
    errors: list[str] = []
    touched = apply_items(jl, [{"id": 3, "events": [E("clean", 1)]},
                               {"id": 4, "events": [E("submit", 1, ev.submit(1)),
                                                    E("clean", 2)]}], errors)
    assert touched == {4}
    assert len(errors) == 2
    assert errors[0].startswith(f"job {JobID(3).f58}: clean: ") and "unknown job" in errors[0]
    assert "'clean' is not valid in state NEW" in errors[1]


@given(st.lists(st.tuples(st.sampled_from(["submit", "alloc", "x.y"]),
                          st.floats(1, 2e9), st.dictionaries(st.text(max_size=3),
                                                             st.integers(-9, 9), max_size=2)),
                min_size=1, max_size=6))
def test_decode_log_matches_the_eventlog_codec(entries: list) -> None:
    from eventstore.eventlog import decode_events

    data = b"".join(orjson.dumps({"timestamp": t, "name": n, "context": c}) + b"\n"
                    for n, t, c in entries)
    assert decode_log(data) == decode_events(data)


def test_decode_log_names_a_bad_line() -> None:
    import pytest

    from eventstore.eventlog import EventlogError

    good = b'{"timestamp":1,"name":"submit"}\n'
    with pytest.raises(EventlogError, match="eventlog line 2"):
        decode_log(good + b'{"timestamp":1}\n')
    with pytest.raises(EventlogError, match="eventlog line 2"):
        decode_log(good + b"not json\n")
    with pytest.raises(EventlogError, match="eventlog line 1"):
        decode_log(b"[1,2]\n")
    with pytest.raises(EventlogError, match="torn last line"):
        decode_log(good + b'{"timestamp":2,"na')


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_paused_turns_the_collector_off_and_back_to_what_it_was(enabled: bool) -> None:
    # the load may run while rc1 has the collector off: it must not turn it on then
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with gc_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(ValueError), gc_paused():
            raise ValueError("a failed load")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
