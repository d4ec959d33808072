"""RFC 21 state machine: every (state, event) pair pinned, plus random walks."""
from __future__ import annotations

import errno
import pathlib

import pytest
from hypothesis import given, strategies as st

from jobmgr.events import EVENT_NAMES, JobEventError
from jobmgr.states import (
    JobResult, JobState, job_result, resulttostr, statetostr, strtoresult, strtostate,
    transition,
)

S = {"N": JobState.NEW, "D": JobState.DEPEND, "P": JobState.PRIORITY, "S": JobState.SCHED,
     "R": JobState.RUN, "C": JobState.CLEANUP, "I": JobState.INACTIVE}

# The transition table is read from specs/job-states.md, so the spec and the
# module are checked against each other (neither is derived from the other).
SPEC = pathlib.Path(__file__).resolve().parents[2] / "specs" / "job-states.md"


def _spec_table() -> dict[str, str]:
    text = SPEC.read_text()
    body = text.split("<!-- transition-table -->")[1].split("<!-- end-transition-table -->")[0]
    table = {}
    for line in body.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[cells[0]] = cells[1]
    # "exception/n" and "other" stand for concrete events
    table["exception/3"] = table.pop("exception/n")
    other = table.pop("other")
    table["debug.alloc-request"] = other
    table["some-future-event"] = other
    table["submit"] = ""
    return table


EXPECTED = _spec_table()

CONTEXTS = {
    "submit": {"userid": 1001, "urgency": 16, "flags": 0, "version": 1},
    "jobspec-update": {"attributes.system.duration": 60},
    "resource-update": {"expiration": 1700000000.0},
    "set-flags": {"flags": ["debug"]},
    "dependency-add": {"description": "afterok=1234"},
    "dependency-remove": {"description": "afterok=1234"},
    "priority": {"priority": 42},
    "urgency": {"urgency": 0, "userid": 1001},
    "alloc": {"annotations": {"sched": {"resource_summary": "rank0/core0"}}},
    "prolog-start": {"description": "prolog"},
    "prolog-finish": {"description": "prolog", "status": 0},
    "epilog-start": {"description": "epilog"},
    "epilog-finish": {"description": "epilog", "status": 0},
    "release": {"ranks": "all", "final": True},
    "finish": {"status": 0},
    "exception/0": {"type": "cancel", "severity": 0, "note": ""},
    "exception/3": {"type": "oom", "severity": 3, "note": "low memory"},
    "memo": {"key": "value"},
}


def _cases():
    for key, pairs in EXPECTED.items():
        allowed = dict(p.split(">") for p in pairs.split())
        for letter, state in S.items():
            expected = S[allowed[letter]] if letter in allowed else None
            yield key, state, expected


@pytest.mark.parametrize("key,state,expected", list(_cases()),
                         ids=lambda v: v.name if isinstance(v, JobState) else str(v))
def test_every_state_event_pair_is_pinned(key, state, expected):
    name = key.split("/")[0]
    ctx = CONTEXTS.get(key)
    if expected is None:
        with pytest.raises(JobEventError) as info:
            transition(state, name, ctx)
        assert info.value.errno == errno.EINVAL
        assert repr(name) in str(info.value) or name in str(info.value)
        assert statetostr(state) in str(info.value)
        assert info.value.event == name
    else:
        assert transition(state, name, ctx) == expected


def test_table_covers_every_known_event():
    covered = {key.split("/")[0] for key in EXPECTED}
    assert EVENT_NAMES <= covered
    assert len(EXPECTED) == len(EVENT_NAMES) + 3     # exception twice, debug.*, other


def test_submit_must_be_first():
    assert transition(None, "submit", CONTEXTS["submit"]) == JobState.NEW
    with pytest.raises(JobEventError, match="'validate' before submit"):
        transition(None, "validate", None)


def test_invalid_context_names_the_key_before_state_check():
    with pytest.raises(JobEventError, match="'priority'") as info:
        transition(JobState.PRIORITY, "priority", {"priority": -1})
    assert info.value.key == "priority"


def test_state_values_and_virtual_states():
    assert [int(s) for s in S.values()] == [1, 2, 4, 8, 16, 32, 64]
    assert JobState.PENDING == JobState.DEPEND | JobState.PRIORITY | JobState.SCHED == 14
    assert JobState.RUNNING == JobState.RUN | JobState.CLEANUP == 48
    assert JobState.ACTIVE == 62
    assert [int(r) for r in JobResult] == [1, 2, 4, 8]


@pytest.mark.parametrize("state,name,letter", [
    (1, "NEW", "N"), (2, "DEPEND", "D"), (4, "PRIORITY", "P"), (8, "SCHED", "S"),
    (16, "RUN", "R"), (32, "CLEANUP", "C"), (64, "INACTIVE", "I")])
def test_state_names_and_letters(state, name, letter):
    assert statetostr(state) == name
    assert statetostr(state, True) == letter
    assert strtostate(name.lower()) == state
    assert strtostate(letter) == state


@pytest.mark.parametrize("result,name,short", [
    (1, "COMPLETED", "CD"), (2, "FAILED", "F"), (4, "CANCELED", "CA"), (8, "TIMEOUT", "TO")])
def test_result_names(result, name, short):
    assert resulttostr(result) == name
    assert resulttostr(result, True) == short
    assert strtoresult(name) == result
    assert strtoresult(short.lower()) == result


def test_virtual_state_names_and_unknowns():
    assert strtostate("pending") == 14
    assert strtostate("Running") == 48
    assert strtostate("active") == 62
    assert statetostr(3) == "(unknown)"
    assert statetostr(3, True) == "?"
    with pytest.raises(ValueError, match="'bogus'"):
        strtostate("bogus")
    with pytest.raises(ValueError, match="'nope'"):
        strtoresult("nope")


@pytest.mark.parametrize("status,fatal,expected", [
    (0, None, JobResult.COMPLETED),
    (256, None, JobResult.FAILED),
    (0, "cancel", JobResult.CANCELED),
    (None, "cancel", JobResult.CANCELED),
    (9, "timeout", JobResult.TIMEOUT),
    (0, "exec", JobResult.FAILED),
    (None, "dependency", JobResult.FAILED),
])
def test_result_rule(status, fatal, expected):
    assert job_result(status, fatal) == expected


# -- random walks -------------------------------------------------------------

ORDER = {JobState.NEW: 0, JobState.DEPEND: 1, JobState.PRIORITY: 2, JobState.SCHED: 3,
         JobState.RUN: 4, JobState.CLEANUP: 5, JobState.INACTIVE: 6}
# state changes RFC 21 draws (states.dot), plus exceptions to CLEANUP and
# invalidate from NEW
EDGES = {
    (JobState.NEW, JobState.DEPEND), (JobState.DEPEND, JobState.PRIORITY),
    (JobState.PRIORITY, JobState.SCHED), (JobState.SCHED, JobState.RUN),
    (JobState.RUN, JobState.CLEANUP), (JobState.CLEANUP, JobState.INACTIVE),
    (JobState.SCHED, JobState.PRIORITY), (JobState.DEPEND, JobState.CLEANUP),
    (JobState.PRIORITY, JobState.CLEANUP), (JobState.SCHED, JobState.CLEANUP),
    (JobState.NEW, JobState.INACTIVE),
}
EVENT_KEYS = sorted(k for k in EXPECTED if k != "submit")


@given(st.lists(st.sampled_from(EVENT_KEYS), max_size=60))
def test_random_event_sequences_keep_invariants(keys):
    state = transition(None, "submit", CONTEXTS["submit"])
    for key in keys:
        name = key.split("/")[0]
        letter = statetostr(state, True)
        try:
            nxt = transition(state, name, CONTEXTS.get(key))
        except JobEventError:
            assert f"{letter}>" not in EXPECTED[key], f"{key} rejected in {state!r}"
            continue
        assert state != JobState.INACTIVE, "INACTIVE is terminal"
        if nxt != state:
            assert (state, nxt) in EDGES, f"{key}: {state!r} -> {nxt!r}"
            if ORDER[nxt] < ORDER[state]:
                assert name in ("flux-restart", "urgency", "jobspec-update")
            if nxt == JobState.CLEANUP and state != JobState.RUN:
                assert key == "exception/0"
        state = nxt
