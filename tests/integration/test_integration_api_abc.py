"""flux.abc on a real instance (python-api.md: flux.abc).

A user script writes its own consumer of the resource journal on
JournalConsumerBase (only process_response and create_event): the base
hands out the history in time order, honours since and include_sentinel,
delivers live events to poll() and to a callback, and ends with None after
stop().  One test runs such a script as a separate process, the way a user
would."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import flux
from broker.testing import TestInstance
from flux.abc import JournalConsumerBase, JournalEventBase

T = 30.0


class DrainEvent(JournalEventBase):
    """An event that knows whether it drains or undrains a node."""

    def __init__(self, event, tag=None):
        super().__init__(event)
        self.tag = tag

    @property
    def is_drain(self) -> bool:
        return self.name in ("drain", "undrain")


class MyResourceJournal(JournalConsumerBase):
    """What a user writes: the topic, and how a response becomes events."""

    def __init__(self, h, **kwargs):
        super().__init__(h, "resource.journal", **kwargs)

    def process_response(self, resp):
        return {"tag": "R" if "R" in resp else None}

    def create_event(self, entry, tag=None):
        return DrainEvent(entry, tag=tag)


@pytest.fixture(scope="module")
def h():
    inst = TestInstance().start()
    handle = flux.Flux(inst.uri)
    yield handle
    handle.close()
    inst.stop()


def drain_history(consumer):
    """poll() until the sentinel; the events before it."""
    events = []
    while not (event := consumer.poll(timeout=T)).is_empty():
        events.append(event)
    return events


def test_own_consumer_history_sorted_with_kwargs_and_sentinel(h):
    consumer = MyResourceJournal(h, include_sentinel=True).start()
    events = drain_history(consumer)
    assert all(isinstance(e, DrainEvent) for e in events)
    assert events[0].name == "restart"
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps)
    # process_response's keyword arguments reach create_event
    assert next(e for e in events if e.name == "resource-define").tag == "R"
    consumer.stop()
    assert consumer.poll(timeout=T) is None


def test_own_consumer_since_and_live_events(h):
    history = drain_history(MyResourceJournal(h, include_sentinel=True).start())
    consumer = MyResourceJournal(h, since=history[-1].timestamp, include_sentinel=True).start()
    assert consumer.poll(timeout=T) == consumer.SENTINEL_EVENT      # nothing newer
    h.rpc("resource.drain", {"targets": "0", "reason": "mine"}, nodeid=0).get()
    h.rpc("resource.undrain", {"targets": "0"}, nodeid=0).get()
    drain, undrain = consumer.poll(timeout=T), consumer.poll(timeout=T)
    assert (drain.name, drain.context["reason"], undrain.name) == ("drain", "mine", "undrain")
    assert drain.is_drain and undrain.timestamp > drain.timestamp
    consumer.stop()
    assert consumer.poll(timeout=T) is None


def test_own_consumer_callback_until_stop(h):
    seen = []

    def cb(event, consumer, label=None):
        seen.append((event, label))
        if event is None:
            h.reactor_stop()
        elif event.is_empty():
            consumer.stop()

    consumer = MyResourceJournal(h, include_sentinel=True)
    consumer.set_callback(cb, consumer, label="x").start()
    h.reactor_run()
    assert seen[-1] == (None, "x") and seen[-2][0].is_empty()
    assert seen[0][0].name == "restart"


SCRIPT = textwrap.dedent("""
    import flux
    from flux.abc import JournalConsumerBase, JournalEventBase

    class Names(JournalConsumerBase):
        def __init__(self, h):
            super().__init__(h, "resource.journal", include_sentinel=True)

        def process_response(self, resp):
            return {}

        def create_event(self, entry):
            return JournalEventBase(entry)

    consumer = Names(flux.Flux()).start()
    for event in consumer:
        if event.is_empty():
            print(event)
            consumer.stop()
        else:
            print(event.name)
""")


def test_script_with_own_consumer(h, tmp_path):
    script = tmp_path / "names.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, FLUX_URI=h.attr_get("local-uri"))
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=T)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "restart" and "resource-define" in lines
    assert lines[-1].endswith(" End of historical data stream")
