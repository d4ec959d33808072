"""jobmgr.manager.queues: anonymous and named queues, enable/start, checkpoint."""
from __future__ import annotations

import errno

import pytest

from flux.errors import FluxError
from jobmgr.policy import parse_job_policy
from jobmgr.manager.queues import Queues


def named() -> Queues:
    return Queues(parse_job_policy({"queues": {"batch": {}, "debug": {}},
                                    "policy": {"jobspec": {"defaults": {"system":
                                                                        {"queue": "batch"}}}}}))


def test_anonymous_queue_starts_enabled_and_started():
    q = Queues(parse_job_policy({}))
    assert q.names() == [] and q.started(None)
    assert q.get(None).status() == {"enable": True, "start": True}


def test_named_queues_start_stopped_but_enabled():
    q = named()
    assert q.names() == ["batch", "debug"] and q.default == "batch"
    assert [s.status() for s in q.states()] == [
        {"name": "batch", "enable": True, "start": False},
        {"name": "debug", "enable": True, "start": False}]
    assert not q.started("batch")


def test_unknown_or_missing_names_are_einval():
    with pytest.raises(FluxError, match="queue 'x' does not exist") as exc:
        named().get("x")
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(FluxError, match="a queue name is required"):
        named().get(None)
    with pytest.raises(FluxError, match="no queues are configured"):
        Queues(parse_job_policy({})).get("batch")


def test_select_needs_a_name_or_all_with_several_queues():
    q = named()
    with pytest.raises(FluxError, match="use --all or name a queue"):
        q.select(None, False)
    assert [s.name for s in q.select(None, True)] == ["batch", "debug"]
    assert [s.name for s in q.select("debug", False)] == ["debug"]


def test_disable_reports_reason_and_changes():
    q = Queues(parse_job_policy({}))
    anon = q.get(None)
    assert Queues.set_enable([anon], False, "maintenance") == [anon]
    assert anon.refusal() == "job submission is disabled: maintenance"
    assert anon.status() == {"enable": False, "start": True, "disable_reason": "maintenance"}
    assert Queues.set_enable([anon], False, "maintenance") == []
    assert Queues.set_enable([anon], True, None) == [anon] and anon.refusal() is None
    batch = named().get("batch")
    Queues.set_enable([batch], False, None)
    assert batch.refusal() == "queue batch: job submission is disabled: no reason given"


def test_stop_reason_shows_only_while_stopped():
    anon = Queues(parse_job_policy({})).get(None)
    Queues.set_start([anon], False, "drain")
    assert anon.status() == {"enable": True, "start": False, "stop_reason": "drain"}
    Queues.set_start([anon], True, None)
    assert anon.status() == {"enable": True, "start": True}


def test_checkpoint_keeps_only_kept_changes():
    q = named()
    Queues.set_start(q.select(None, True), True, None)
    Queues.set_enable([q.get("debug")], False, "later", keep=False)
    saved = q.checkpoint()
    again = named()
    again.restore(saved)
    assert again.started("batch") and again.started("debug")
    assert again.get("debug").enable          # the nocheckpoint disable was not kept


def test_restore_ignores_unknown_queues_and_junk():
    q = named()
    q.restore([{"name": "gone", "start": True}, "junk", {"name": "batch", "start": True,
                                                          "enable": False,
                                                          "disable_reason": "x"}])
    assert q.started("batch") and q.get("batch").refusal() == \
        "queue batch: job submission is disabled: x"
    q.restore("not a list")
    assert q.started("batch")
