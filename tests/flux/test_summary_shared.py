"""summarize_shared: summaries remembered by jobspec identity, never by equality."""
from __future__ import annotations

import copy

from flux.job import summary as S
from flux.job.Jobspec import JobspecV1


def _spec(ntasks: int) -> dict:
    return copy.deepcopy(JobspecV1.from_command(["true"], num_tasks=ntasks).jobspec)


def test_same_object_gives_the_remembered_summary() -> None:
    js = _spec(2)
    first = S.summarize_shared(js)
    assert S.summarize_shared(js) is first
    assert first == S.summarize(js)


def test_an_equal_or_replaced_jobspec_is_summarized_anew() -> None:
    a = _spec(2)
    S.summarize_shared(a)
    b = _spec(3)              # another object: its own summary, not a's
    assert S.summarize_shared(b).ntasks == 3
    assert S.summarize_shared(a).ntasks == 2


def test_only_the_last_few_are_kept(monkeypatch) -> None:
    monkeypatch.setattr(S, "_SHARED_MAX", 4)
    monkeypatch.setattr(S, "_SHARED", {})
    specs = [_spec(i + 1) for i in range(5)]
    firsts = [S.summarize_shared(js) for js in specs]
    assert S.summarize_shared(specs[-1]) is firsts[-1]
    assert len(S._SHARED) == 4
    assert all(obj is not specs[0] for obj, _s in S._SHARED.values())
    assert S.summarize_shared(specs[0]) is not firsts[0]


def test_a_remembered_summary_is_given_back(monkeypatch) -> None:
    monkeypatch.setattr(S, "_SHARED", {})
    js = _spec(2)
    made = S.summarize(js)
    S.remember_summary(js, made)
    assert S.summarize_shared(js) is made


def test_a_finished_jobs_jobspec_is_let_go(monkeypatch) -> None:
    monkeypatch.setattr(S, "_SHARED", {})
    js, other = _spec(2), _spec(3)
    S.summarize_shared(js)
    S.summarize_shared(other)
    S.forget_summary(js)
    assert [obj for obj, _s in S._SHARED.values()] == [other]
    S.forget_summary(_spec(2))           # an equal object, not the one held: nothing goes
    assert len(S._SHARED) == 1
