"""The scheduler's pending queue: RFC 27 order under pushes, cancels and reprioritizing."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from jobmgr.sched.queue import PendingJob, PendingQueue


def drain(q):
    out = []
    while (job := q.pop()) is not None:
        out.append(job.id)
    return out


def test_priority_then_submit_time_then_id():
    q = PendingQueue()
    q.push(PendingJob(1, 16, 5.0))
    q.push(PendingJob(2, 20, 9.0))
    q.push(PendingJob(3, 16, 1.0))
    q.push(PendingJob(4, 16, 1.0))
    assert q.head().id == 2 and len(q) == 4
    assert drain(q) == [2, 3, 4, 1]
    assert q.head() is None and q.pop() is None


def test_remove_and_reprioritize():
    q = PendingQueue()
    for i in range(1, 5):
        q.push(PendingJob(i, 10, float(i)))
    assert q.remove(1).id == 1 and q.remove(1) is None
    assert 1 not in q and 2 in q
    assert q.reprioritize(4, 11) and not q.reprioritize(4, 11) and not q.reprioritize(9, 1)
    assert q.get(4).priority == 11
    assert drain(q) == [4, 2, 3]


def test_duplicate_push_is_refused():
    q = PendingQueue()
    q.push(PendingJob(1, 1, 1.0))
    with pytest.raises(ValueError, match="job 1 is already pending"):
        q.push(PendingJob(1, 1, 1.0))


def test_stale_entries_are_compacted():
    q = PendingQueue()
    for i in range(200):
        q.push(PendingJob(i, 0, float(i)))
    for round_ in range(1, 20):
        for i in range(200):
            q.reprioritize(i, round_)
    assert len(q._heap) <= 2 * len(q) + 65
    assert [j.id for j in sorted(q, key=lambda j: j.id)] == list(range(200))
    assert drain(q) == list(range(200))


ops = st.lists(st.one_of(
    st.tuples(st.just("push"), st.integers(0, 30), st.integers(0, 31), st.integers(0, 5)),
    st.tuples(st.just("remove"), st.integers(0, 30)),
    st.tuples(st.just("prio"), st.integers(0, 30), st.integers(0, 31)),
    st.tuples(st.just("pop"),),
), max_size=120)


@given(ops)
def test_matches_a_sorted_model(operations):
    q = PendingQueue()
    model: dict[int, tuple[int, float]] = {}

    def best():
        return min(model, key=lambda i: (-model[i][0], model[i][1], i)) if model else None

    for op in operations:
        if op[0] == "push":
            _, jobid, prio, t = op
            if jobid in model:
                continue
            q.push(PendingJob(jobid, prio, float(t)))
            model[jobid] = (prio, float(t))
        elif op[0] == "remove":
            assert (q.remove(op[1]) is not None) == (op[1] in model)
            model.pop(op[1], None)
        elif op[0] == "prio":
            _, jobid, prio = op
            changed = jobid in model and model[jobid][0] != prio
            assert q.reprioritize(jobid, prio) == changed
            if jobid in model:
                model[jobid] = (prio, model[jobid][1])
        else:
            expect = best()
            job = q.pop()
            assert (job.id if job else None) == expect
            model.pop(expect, None)
        head = q.head()
        assert (head.id if head else None) == best()
        assert len(q) == len(model)
