"""Queues taken from a reloaded config: jobmgr.manager.queues.Queues.reconfigure and
jobmgr.sched.core.SchedCore.set_queues (flux-core's queue_configure)."""
from __future__ import annotations

from jobmgr.manager.queues import Queues
from jobmgr.policy import parse_job_policy
from jobmgr.sched.core import Request, SchedCore


def policy(*names: str, default: str | None = None):
    table: dict = {"queues": {name: {} for name in names}}
    if default:
        table["policy"] = {"jobspec": {"defaults": {"system": {"queue": default}}}}
    return parse_job_policy(table)


def test_kept_queues_keep_their_state_and_new_ones_start_stopped():
    q = Queues(policy("batch"))
    Queues.set_start([q.get("batch")], True, None)
    Queues.set_enable([q.get("batch")], False, "maint")
    added, removed = q.reconfigure(policy("batch", "debug", default="debug"))
    assert [s.name for s in added] == ["debug"] and removed == []
    assert q.names() == ["batch", "debug"] and q.default == "debug"
    assert q.get("batch").status() == {"name": "batch", "enable": False, "start": True,
                                       "disable_reason": "maint"}
    assert q.get("debug").status() == {"name": "debug", "enable": True, "start": False}
    assert q.checkpoint()[1] == {"name": "debug", "enable": True, "disable_reason": None,
                                 "start": False, "stop_reason": None}


def test_a_removed_queue_comes_back_afresh_after_the_reload():
    q = Queues(policy("batch", "debug"))
    Queues.set_start([q.get("debug")], True, None)
    _added, removed = q.reconfigure(policy("batch"))
    assert [s.name for s in removed] == ["debug"] and q.names() == ["batch"]
    assert not q.started("debug") and q.find("debug") is None
    q.forget_removed()
    q.reconfigure(policy("batch", "debug"))
    assert not q.get("debug").start


def test_a_rolled_back_reload_gives_removed_queues_their_state_back():
    """A module refusing the reload after the job manager took it: the old config
    comes back in the same turn, before forget_removed."""
    q = Queues(policy("batch", "debug"))
    Queues.set_start([q.get("debug")], True, None)
    q.reconfigure(policy("batch"))
    added, _removed = q.reconfigure(policy("batch", "debug"))
    assert [s.name for s in added] == ["debug"] and q.get("debug").start


def test_anonymous_to_named_and_back():
    q = Queues(parse_job_policy({}))
    Queues.set_start([q.get(None)], False, "paused")
    added, removed = q.reconfigure(policy("batch"))
    assert [s.name for s in removed] == [None] and [s.name for s in added] == ["batch"]
    assert q.named and not q.started(None) and not q.started("batch")
    assert [e["name"] for e in q.checkpoint()] == ["batch"]
    q.forget_removed()
    added, removed = q.reconfigure(parse_job_policy({}))
    assert [s.name for s in added] == [None] and not q.named
    # a new anonymous queue is started, and it covers the jobs of any queue
    assert q.started(None) and q.started("batch")


def test_restore_after_a_reload_follows_the_new_set():
    q = Queues(policy("batch"))
    q.reconfigure(policy("batch", "debug"))
    Queues.set_start([q.get("debug")], True, None)
    saved = q.checkpoint()
    again = Queues(policy("batch", "debug"))
    again.restore(saved)
    assert again.started("debug") and not again.started("batch")


R1 = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0-1"}}],
                                  "nodelist": ["n0"], "properties": {"fast": "0"}}}


def request(queue: str) -> Request:
    return Request.from_jobspec({
        "version": 1, "resources": [{"type": "slot", "count": 1, "label": "task",
                                     "with": [{"type": "core", "count": 1}]}],
        "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
        "attributes": {"system": {"duration": 0, "queue": queue}}})


def test_schedcore_takes_new_queue_requirements():
    core = SchedCore(R1, {"q": ["fast"]})
    assert core.feasible(request("q")) is None
    core.set_queues({"q": ["slow"]})
    assert "unsatisfiable" in core.feasible(request("q"))
    core.set_queues({"q": [], "r": ["fast"]})
    assert core.feasible(request("q")) is None and core.feasible(request("r")) is None
