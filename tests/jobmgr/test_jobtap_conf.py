"""The pure parts of jobtap: config directives, removal patterns, the states a commit
passes through, KEY=VAL config, and dependency schemes that plugins claim."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobmgr.depend import parse_dependencies
from jobmgr.events import JobEventError
from jobmgr.job import apply as apply_event
from jobmgr.job import new_job
from jobmgr.jobtap_conf import (
    BUILTINS,
    Directive,
    parse_directives,
    parse_keyvals,
    plugin_name,
    select_removals,
    states_entered,
)
from jobmgr.states import JobState

S = JobState


def test_directives_parse_in_order_with_conf():
    got = parse_directives([{"remove": ".priority-default", "load": "p.py"},
                            {"load": "q.py", "conf": {"limit": 3}}])
    assert got == [Directive("p.py", {}, ".priority-default"), Directive("q.py", {"limit": 3})]
    assert parse_directives(None) == []


@pytest.mark.parametrize("value, text", [
    ({"load": "x"}, "plugins must be an array of tables"),
    (["x.py"], "plugins[0]: must be a table"),
    ([{}], "plugins[0]: needs load or remove"),
    ([{"load": "a.py"}, {"lode": "x"}], "plugins[1]: unknown key 'lode'"),
    ([{"load": ""}], "plugins[0]: load must be a non-empty string"),
    ([{"remove": 3}], "plugins[0]: remove must be a non-empty string"),
    ([{"remove": "x", "conf": {}}], "plugins[0]: conf is only allowed with load"),
    ([{"load": "x", "conf": "a=1"}], "plugins[0]: conf must be a table"),
])
def test_bad_directives_name_the_entry(value, text):
    with pytest.raises(ValueError, match=text.replace("[", r"\[").replace("]", r"\]")):
        parse_directives(value)


LOADED = [*BUILTINS, "prio", "limits", "prio2"]


@pytest.mark.parametrize("pattern, gone", [
    ("prio", ["prio"]),
    ("prio*", ["prio", "prio2"]),
    ("*", ["prio", "limits", "prio2"]),
    ("all", ["prio", "limits", "prio2"]),
    (".priority-default", [".priority-default"]),
    (".*", list(BUILTINS)),
    ("*default", []),
    ("nothing", []),
])
def test_removal_patterns(pattern, gone):
    assert select_removals(LOADED, pattern) == gone


@given(st.text(alphabet="abc.*?", min_size=1, max_size=6))
def test_a_builtin_goes_only_by_its_name_or_a_dotted_pattern(pattern):
    gone = select_removals(LOADED, pattern)
    assert gone == [n for n in LOADED if n in gone]            # in load order
    for name in gone:
        if name.startswith("."):
            assert pattern == name or pattern.startswith(".")


EVENTS = {
    "validate": None, "depend": None, "priority": {"priority": 5}, "alloc": None,
    "start": None, "finish": {"status": 0}, "release": {"ranks": "all", "final": True},
    "free": None, "clean": None, "urgency": {"urgency": 3, "userid": 0},
    "exception": {"type": "cancel", "severity": 0, "note": "", "userid": 0},
    "dependency-add": {"description": "x"},
}


@given(st.lists(st.sampled_from(sorted(EVENTS)), max_size=14))
def test_states_entered_follow_the_state_machine(names):
    """The last state entered is the state the job manager's fold reaches."""
    job = new_job(1, {"timestamp": 1.0, "name": "submit",
                      "context": {"userid": 0, "urgency": 16, "flags": 0, "version": 1}})
    applied = []
    for i, name in enumerate(names):
        event = {"timestamp": 2.0 + i, "name": name}
        if EVENTS[name] is not None:
            event["context"] = EVENTS[name]
        try:
            job = apply_event(job, event)
        except JobEventError:
            continue
        applied.append(event)
    entered = states_entered(S.NEW, applied)
    assert (entered[-1] if entered else S.NEW) == job.state
    assert all(a != b for a, b in zip(entered, entered[1:]))


def test_states_entered_lists_each_state_of_one_commit():
    events = [{"name": "validate"}, {"name": "depend"}, {"name": "priority",
                                                         "context": {"priority": 16}}]
    assert states_entered(S.NEW, events) == [S.DEPEND, S.PRIORITY, S.SCHED]
    assert states_entered(S.RUN, [{"name": "start"}]) == []


def test_keyvals_are_json_when_they_parse():
    assert parse_keyvals(["a=1", "b=x y", "c=[1,2]", "d=", "e=true"]) == {
        "a": 1, "b": "x y", "c": [1, 2], "d": "", "e": True}
    for bad in (["novalue"], ["=3"]):
        with pytest.raises(ValueError, match="KEY=VAL"):
            parse_keyvals(bad)


def test_plugin_names():
    # jobtap-plugins(7): a file's plugin is named by its base name
    assert plugin_name("/a/b/prio.py") == "prio.py"
    assert plugin_name("prio.py") == "prio.py"
    assert plugin_name("site.plugins.prio") == "site.plugins.prio"


def test_dependency_schemes_claimed_by_plugins_and_removed_builtins():
    deps = [{"scheme": "token", "value": "abc"}, {"scheme": "afterany", "value": "1"}]
    with pytest.raises(ValueError, match="scheme 'token' is not supported"):
        parse_dependencies(deps)
    token, after = parse_dependencies(deps, plugin_schemes={"token"})
    assert token.by_plugin and token.description == "token=abc"
    assert not after.by_plugin and after.jobid == 1
    with pytest.raises(ValueError, match="its builtin jobtap plugin is removed"):
        parse_dependencies(deps, {"token"}, builtin_schemes={"begin-time"})
    # a plugin may take over a builtin scheme
    (mine,) = parse_dependencies([deps[1]], {"afterany"}, builtin_schemes=())
    assert mine.by_plugin


def test_plugin_dirs():
    from jobmgr.jobtap_conf import plugin_dirs

    assert plugin_dirs("/a", "pluginpath") == ["/a"]
    assert plugin_dirs(["/a", "/b"], "pluginpath") == ["/a", "/b"]
    with pytest.raises(ValueError, match="x.pluginpath must be a directory or an array"):
        plugin_dirs([1], "x.pluginpath")
