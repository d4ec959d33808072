"""Projection of resource.eventlog for flux resource status / drain."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from jobmgr.resource.state import DrainEntry, ResourceEventError, ResourceState, StatusGroup

R4 = {"version": 1, "execution": {"R_lite": [{"rank": "0-3", "children": {"core": "0-3"}}],
                                  "nodelist": ["fluke[6-9]"]}}


def E(name, t, **ctx):
    return {"timestamp": t, "name": name, "context": ctx}


def state_after(*events):
    rs = ResourceState(R=R4)
    for e in events:
        rs.apply(e)
    return rs


def test_define_online_and_avail():
    rs = state_after(E("resource-define", 1.0, method="config"), E("online", 2.0, idset="0-2"))
    assert rs.method == "config"
    assert rs.ranks == {0, 1, 2, 3}
    assert rs.hostnames == {0: "fluke6", 1: "fluke7", 2: "fluke8", 3: "fluke9"}
    assert rs.status_groups() == [StatusGroup("avail", True, (0, 1, 2)),
                                  StatusGroup("avail", False, (3,))]
    states = rs.states()
    assert states["avail"] == [0, 1, 2, 3] and states["offline"] == [3]
    assert states["online"] == [0, 1, 2] and states["all"] == [0, 1, 2, 3]
    assert rs.unavailable() == {3}


def test_drain_draining_drained_undrain():
    rs = state_after(E("online", 1.0, idset="0-3"),
                     E("drain", 5.0, idset="1-2", reason="node is fubar", nodelist="fluke[7-8]"))
    assert rs.rank_state(1, busy={1}) == "draining"
    assert rs.rank_state(2, busy={1}) == "drained"
    assert rs.drain_entries(busy={1}) == [DrainEntry(5.0, "drained", "node is fubar", (2,)),
                                          DrainEntry(5.0, "draining", "node is fubar", (1,))]
    assert rs.unavailable() == {1, 2}
    # as flux-core: overwrite 0 keeps a drained rank's reason, 1 (drain -f) replaces
    # the reason and keeps the time, 2 (-ff) replaces both
    rs.apply(E("drain", 6.0, idset="2-3", reason="again", overwrite=0))
    assert rs.drained[2].reason == "node is fubar" and rs.drained[3].reason == "again"
    rs.apply(E("drain", 7.0, idset="2", reason="forced", overwrite=1))
    assert rs.drained[2].reason == "forced" and rs.drained[2].timestamp == 5.0
    rs.apply(E("drain", 8.0, idset="2", reason="forced twice", overwrite=2))
    assert rs.drained[2].reason == "forced twice" and rs.drained[2].timestamp == 8.0
    rs.apply(E("undrain", 9.0, idset="1-3"))
    assert rs.drained == {} and rs.unavailable() == set()


def test_exclude_torpid_offline_and_groups():
    rs = state_after(E("online", 1.0, idset="0-3"), E("exclude", 2.0, idset="0"),
                     E("torpid", 3.0, idset="1"), E("offline", 4.0, idset="3"),
                     E("drain", 5.0, idset="3", reason="dead"))
    assert [g.state for g in rs.status_groups()] == ["avail", "exclude", "drained", "torpid"]
    assert rs.status_groups()[2] == StatusGroup("drained", False, (3,))
    rs.apply(E("lively", 6.0, idset="1"))
    rs.apply(E("unexclude", 6.5, idset="0"))
    assert rs.rank_state(1) == "avail" and rs.rank_state(0) == "avail"
    assert rs.unavailable() == {3}


def test_restart_resets_online_and_truncate_restores_state():
    rs = state_after(E("online", 1.0, idset="0-3"), E("drain", 2.0, idset="2", reason="r"),
                     E("restart", 3.0, ranks="0-3", online="0"))
    assert rs.online == {0} and 2 in rs.drained
    ctx = rs.truncate_context()
    fresh = state_after(E("truncate", 9.0, **ctx))
    assert (fresh.online, fresh.drained, fresh.excluded) == (rs.online, rs.drained, rs.excluded)


def test_resource_update_and_unknown_events():
    rs = state_after(E("resource-update", 1.0, expiration=500.0),
                     E("something-new", 2.0, x=1))
    assert rs.expiration == 500.0


@pytest.mark.parametrize("event,message", [
    ({"timestamp": 1.0, "name": "drain", "context": {"reason": "x"}},
     "drain: context is missing required key 'idset'"),
    (E("drain", 1.0, idset="0", overwrite=3), "drain: context key 'overwrite' must be 0, 1 or 2"),
    (E("drain", 1.0, idset="0", reason=5), "drain: context key 'reason' must be a string"),
    (E("online", 1.0, idset="zero"), "online: context key 'idset'"),
    (E("offline", 1.0, idset=3), "offline: context key 'idset' must be an idset string"),
    (E("resource-update", 1.0, expiration="soon"), "resource-update: context key 'expiration'"),
    ({"timestamp": 0, "name": "online", "context": {"idset": "0"}}, "timestamp must be a number"),
    ({"timestamp": 1.0, "name": 7}, "event name must be a non-empty string"),
    ({"timestamp": 1.0, "name": "online", "context": [1]}, "online: context must be an object"),
    (E("resource-define", 1.0, method="config", R={"execution": {}}), "resource-define: invalid R"),
])
def test_bad_events_name_the_problem(event, message):
    with pytest.raises(ResourceEventError, match=message):
        state_after(event)


OPS = st.sampled_from(["online", "offline", "drain", "undrain", "exclude", "unexclude",
                       "torpid", "lively"])


@given(st.lists(st.tuples(OPS, st.sets(st.integers(0, 3), min_size=1)), max_size=30),
       st.sets(st.integers(0, 3)))
def test_every_rank_has_exactly_one_state(ops, busy):
    from flux.idset import IDset

    rs = ResourceState(R=R4)
    for t, (op, ranks) in enumerate(ops, start=1):
        rs.apply(E(op, float(t), idset=IDset(ranks).encode()))
    groups = rs.status_groups(busy)
    listed = sorted(r for g in groups for r in g.ranks)
    assert listed == [0, 1, 2, 3]
    for group in groups:
        assert group.ranks
        for rank in group.ranks:
            assert (rank in rs.online) == group.up
            if group.state == "draining":
                assert rank in busy and rank in rs.drained
    assert rs.unavailable() == {r for g in groups for r in g.ranks
                                if g.state != "avail" or not g.up}
