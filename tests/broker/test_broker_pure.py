"""Pure parts of the broker: topology, routing, lifecycle, attributes, log ring, roles, status."""
from __future__ import annotations

import errno
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import router, topology
from broker.attrs import AttrTable
from broker.connector_local import decide_role
from broker.lifecycle import TRANSITIONS, State, next_state, transition_line
from broker.logring import (
    HumanFormatter,
    LogRing,
    format_entry,
    iso_time,
    make_logger,
    parse_severity,
)
from broker.overlay_status import ghost, render, subtree_status
from flux.constants import FLUX_NODEID_ANY, FLUX_ROLE_NONE, FLUX_ROLE_OWNER, FLUX_ROLE_USER
from flux.errors import FluxError

# -- topology -------------------------------------------------------------------


def test_binary_tree_of_seven():
    assert topology.children(0, 2, 7) == [1, 2]
    assert topology.children(1, 2, 7) == [3, 4]
    assert topology.children(2, 2, 7) == [5, 6]
    assert topology.children(3, 2, 7) == []
    assert [topology.parent(r, 2) for r in range(7)] == [None, 0, 0, 1, 1, 2, 2]
    assert [topology.level(r, 2) for r in range(7)] == [0, 1, 1, 2, 2, 2, 2]
    assert topology.maxlevel(7, 2) == 2 and topology.maxlevel(1, 2) == 0
    assert topology.descendants(0, 2, 7) == 6 and topology.descendants(2, 2, 7) == 2
    assert topology.subtree(1, 2, 7) == [1, 3, 4]


def test_topology_rejects_bad_input():
    with pytest.raises(ValueError, match="tbon.fanout must be >= 1"):
        topology.children(0, 0, 3)
    with pytest.raises(ValueError, match="rank 5 is out of range for size 3"):
        topology.children(5, 2, 3)
    with pytest.raises(ValueError, match="instance size must be >= 1"):
        topology.maxlevel(0, 2)


@given(st.integers(1, 5), st.integers(1, 200), st.data())
def test_child_toward_is_consistent(fanout, size, data):
    rank = data.draw(st.integers(0, size - 1))
    target = data.draw(st.integers(0, size - 1))
    child = topology.child_toward(rank, target, fanout)
    below = set(topology.subtree(rank, fanout, size)) - {rank}
    if target in below:
        assert child in topology.children(rank, fanout, size)
        assert target in topology.subtree(child, fanout, size)
    else:
        assert child is None


# -- routing --------------------------------------------------------------------


@pytest.mark.parametrize("args,expect", [
    # rank, size, nodeid, upstream flag, local service, sender is that service
    ((0, 3, FLUX_NODEID_ANY, False, True, False), (router.LOCAL, None)),
    ((0, 3, FLUX_NODEID_ANY, False, False, False), (router.ENOSYS, None)),
    ((2, 3, FLUX_NODEID_ANY, False, False, False), (router.UPSTREAM, None)),
    ((2, 3, FLUX_NODEID_ANY, False, True, True), (router.UPSTREAM, None)),
    ((0, 3, FLUX_NODEID_ANY, False, True, True), (router.ENOSYS, None)),
    ((2, 3, 2, True, True, False), (router.UPSTREAM, None)),      # upstream: not locally
    ((0, 3, 2, True, True, False), (router.LOCAL, None)),        # came from rank 2
    ((0, 3, 0, False, True, False), (router.LOCAL, None)),
    ((0, 3, 0, False, False, False), (router.ENOSYS, None)),
    ((0, 3, 2, False, True, False), (router.DOWNSTREAM, 2)),
    ((1, 7, 2, False, True, False), (router.UPSTREAM, None)),
    ((0, 7, 6, False, True, False), (router.DOWNSTREAM, 2)),
    ((0, 3, 7, False, True, False), (router.EHOSTUNREACH, None)),
])
def test_route_request(args, expect):
    rank, size, nodeid, up, local, same = args
    assert router.route_request(rank, size, 2, nodeid, up, local, same) == expect


@given(st.integers(1, 4), st.integers(2, 60), st.data())
def test_rank_addressed_requests_reach_target(fanout, size, data):
    """Following the routing decisions hop by hop always ends at the target."""
    start = data.draw(st.integers(0, size - 1))
    target = data.draw(st.integers(0, size - 1))
    rank = start
    for _ in range(2 * size):
        action, child = router.route_request(rank, size, fanout, target, False, True)
        if action == router.LOCAL:
            assert rank == target
            return
        assert action in (router.UPSTREAM, router.DOWNSTREAM)
        rank = topology.parent(rank, fanout) if action == router.UPSTREAM else child
    pytest.fail("request never arrived")


# -- lifecycle ------------------------------------------------------------------


def test_normal_lifecycle():
    events = ["start", "parent-none", "rc1-success", "quorum-full", "rc2-success",
              "cleanup-success", "children-none", "rc3-success", "goodbye"]
    state = State.NONE
    seen = []
    for ev in events:
        state = next_state(state, ev)
        seen.append(str(state))
    assert seen == ["join", "init", "quorum", "run", "cleanup", "shutdown", "finalize",
                    "goodbye", "exit"]


def test_invalid_transition_is_named():
    with pytest.raises(ValueError, match="event 'rc1-success' is not valid in state 'run'"):
        next_state(State.RUN, "rc1-success")


@given(st.lists(st.sampled_from(sorted({e for _s, e in TRANSITIONS})), max_size=30))
def test_state_machine_never_leaves_known_states(events):
    state = State.NONE
    for ev in events:
        try:
            state = next_state(state, ev)
        except ValueError:
            continue
        assert isinstance(state, State)
    # exit is terminal
    assert all(s != State.EXIT for s, _e in TRANSITIONS)


def test_transition_line_matches_flux_core_form():
    assert transition_line("rc1-success", State.INIT, State.QUORUM, 2.65475) == \
        "rc1-success: init->quorum 2.65475s"


# -- attributes -------------------------------------------------------------------


def test_attrs_immutable_unknown_and_active():
    a = AttrTable()
    a.add("rank", 0, immutable=True)
    a.add("log-ring-used", None, getter=lambda: "5")
    store = {}
    a.add("log-level", "7", setter=lambda v: store.__setitem__("v", v))
    a.freeze()
    assert a.get("rank") == "0"
    with pytest.raises(FluxError) as exc:
        a.set("rank", "1")
    assert exc.value.errno == errno.EPERM and "attribute 'rank' is immutable" in str(exc.value)
    with pytest.raises(FluxError) as exc:
        a.get("nosuch")
    assert exc.value.errno == errno.ENOENT and "unknown attribute 'nosuch'" in str(exc.value)
    with pytest.raises(FluxError, match="read-only"):
        a.set("log-ring-used", "1")
    a.set("log-level", "3")
    assert store["v"] == "3" and a.get("log-level") == "3"
    a.set("new.attr", "x")             # unknown names are created
    assert a.get("new.attr") == "x"
    a.remove("new.attr")
    with pytest.raises(FluxError, match="cannot be removed"):
        a.remove("rank")


def test_command_line_value_survives_default():
    a = AttrTable()
    a.add("tbon.fanout", "4")                       # -S on the command line
    a.add("tbon.fanout", "2", immutable=True, replace=False)  # broker default
    assert a.get("tbon.fanout") == "4" and a.is_immutable("tbon.fanout")


def test_module_owned_attrs_are_dropped():
    a = AttrTable()
    a.add("content.hash", "blake3", owner="content")
    with pytest.raises(FluxError, match="already registered by content"):
        a.add("content.hash", "sha1", owner="other")
    a.remove_owned("content")
    assert "content.hash" not in a


# -- log ring -------------------------------------------------------------------


def test_ring_bounds_counts_and_filters():
    ring = LogRing(3, rank=2)
    ring.stderr = io.StringIO()
    ring.stderr_level = 3
    ring.level = 6
    for i in range(5):
        ring.append(6, "app", f"m{i}")
    assert ring.append(7, "app", "debug is filtered") is None
    ring.append(3, "app", "bad")
    assert [e.message for e in ring.entries()] == ["m3", "m4", "bad"]
    assert ring.used == 3 and ring.count == 6 and ring.size == 3
    assert ring.stderr.getvalue().endswith("app.err[2]: bad\n")
    ring.clear()
    assert ring.used == 0 and ring.count == 6


def test_ring_followers():
    ring = LogRing(10)
    ring.stderr = io.StringIO()
    got = []
    ring.follow(got.append)
    ring.append(6, "a", "x")
    ring.unfollow(got.append)
    ring.append(6, "a", "y")
    assert [e.message for e in got] == ["x"]


def test_critical_level_copies_own_entries_to_stderr():
    # flux-broker-attributes(7) log-critical-level: this rank's entries at or below it
    # go to stderr even when log-stderr-level would not send them
    ring = LogRing(10, rank=1)
    ring.stderr = io.StringIO()
    ring.stderr_level = -1                    # a follower in leader mode
    ring.append(2, "app", "crit here")
    ring.append(3, "app", "err not")
    ring.append(2, "app", "forwarded", rank=3)    # another rank's: not this rank's to copy
    assert len(ring.stderr.getvalue().splitlines()) == 1
    assert "app.crit[1]: crit here" in ring.stderr.getvalue()
    ring.critical_level = 1
    ring.append(2, "app", "now hidden")
    assert "now hidden" not in ring.stderr.getvalue()


def test_format_entry_matches_dmesg_form():
    entry = {"timestamp": 1600000000.25, "level": 6, "rank": 0, "appname": "broker",
             "message": "hello"}
    assert format_entry(entry) == "2020-09-13T12:26:40.250000Z broker.info[0]: hello"
    assert iso_time(1.9999999) == "1970-01-01T00:00:02.000000Z"


def test_human_format_offsets():
    fmt = HumanFormatter()
    base = 1600000000.0
    first = fmt.format({"timestamp": base, "level": 6, "rank": 0, "appname": "a", "message": "x"})
    assert first.startswith("[") and first.endswith("] a.info[0]: x") and "+" not in first
    assert fmt.format({"timestamp": base + 0.039371, "level": 3, "rank": 1, "appname": "b",
                       "message": "y"}) == "[  +0.039371] b.err[1]: y"
    delta = HumanFormatter(delta=True)
    delta.format({"timestamp": base, "level": 6, "rank": 0, "appname": "a", "message": "x"})
    delta.format({"timestamp": base + 1, "level": 6, "rank": 0, "appname": "a", "message": "x"})
    assert delta.format({"timestamp": base + 1.5, "level": 6, "rank": 0, "appname": "a",
                         "message": "x"}).startswith("[  +0.500000]")


def test_parse_severity():
    assert parse_severity("err") == 3 and parse_severity("7") == 7
    assert parse_severity("warning") == 4 and parse_severity("Error") == 3
    with pytest.raises(ValueError, match="unknown log severity 'loud'"):
        parse_severity("loud")


def test_structlog_feeds_ring():
    ring = LogRing(10, rank=1)
    ring.stderr = io.StringIO()
    log = make_logger(ring, "kvs")
    log.info("committed", keys=3)
    log.error("oops")
    entries = ring.entries()
    assert [(e.appname, e.level, e.message) for e in entries] == \
        [("kvs", 6, "committed keys=3"), ("kvs", 3, "oops")]


# -- access ---------------------------------------------------------------------


@pytest.mark.parametrize("uid,guest,rootowner,expect", [
    (1000, False, False, FLUX_ROLE_OWNER),
    (1001, False, False, FLUX_ROLE_NONE),
    (1001, True, False, FLUX_ROLE_USER),
    (0, False, False, FLUX_ROLE_NONE),
    (0, True, False, FLUX_ROLE_USER),
    (0, False, True, FLUX_ROLE_OWNER),
])
def test_decide_role(uid, guest, rootowner, expect):
    assert decide_role(uid, 1000, guest, rootowner) == expect


# -- overlay status ----------------------------------------------------------------


def test_subtree_status_rules():
    assert subtree_status([]) == "full"
    assert subtree_status(["full", "full"]) == "full"
    assert subtree_status(["full", "offline"]) == "partial"
    assert subtree_status(["partial", "full"]) == "partial"
    assert subtree_status(["partial", "lost"]) == "degraded"
    assert subtree_status(["degraded"]) == "degraded"


def test_render_tree():
    tree = {"rank": 0, "host": "h", "status": "degraded", "duration": 3.0, "children": [
        {"rank": 1, "host": "h", "status": "full", "duration": 1.0, "children": [
            {"rank": 3, "host": "h", "status": "full", "children": []}]},
        ghost(2, 2, 5, "lost", "h")]}
    assert render(tree) == [
        "0 h: degraded",
        "├─ 1 h: full",
        "│  └─ 3 h: full",
        "└─ 2 h: lost",
    ]
    assert render(tree, verbose=1)[0] == "0 h: degraded for 3s"
    assert ghost(1, 2, 7, "lost", "h")["children"][0]["status"] == "lost"


def test_initial_argv():
    from broker.broker import initial_argv

    assert initial_argv([], "/bin/zsh") == ["/bin/zsh"]
    assert initial_argv([], None) == ["/bin/sh"]
    assert initial_argv(["hostname"], None) == ["hostname"]
    assert initial_argv(["/path/to/script.sh"], None) == ["/path/to/script.sh"]
    assert initial_argv(["echo a; echo b"], None) == ["/bin/sh", "-c", "echo a; echo b"]
    assert initial_argv(["echo $X"], None) == ["/bin/sh", "-c", "echo $X"]
    # several words are a command and its arguments, never a shell line
    assert initial_argv(["echo", "a; b"], None) == ["echo", "a; b"]
