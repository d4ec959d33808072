"""flux.abc without an instance (python-api.md: flux.abc).

JournalEventBase (stamping, the empty event, str, equality) and the
JournalConsumerBase contract: abstract methods, defaults (cancel topic,
request payload, empty response, sentinel), errors before start(), and that
flux.job.JournalConsumer and flux.resource.ResourceJournalConsumer derive
from it.  A consumer on a real instance is in
tests/integration/test_integration_api_abc.py."""
from __future__ import annotations

import errno
import time

import pytest

import flux.abc
from flux.abc import JournalConsumerBase, JournalEventBase
from flux.eventlog import EventLogEvent


class Minimal(JournalConsumerBase):
    def process_response(self, resp):
        return {}

    def create_event(self, entry, **kwargs):
        return JournalEventBase(entry)


def test_module_exports_the_two_bases():
    assert flux.abc.__all__ == ["JournalConsumerBase", "JournalEventBase"]
    from flux.abc.journal import JournalConsumerBase as J, JournalEventBase as E
    assert (J, E) == (JournalConsumerBase, JournalEventBase)


def test_event_is_an_eventlog_entry_and_stamped_when_it_has_no_timestamp():
    event = JournalEventBase({"timestamp": 12.5, "name": "drain", "context": {"idset": "1"}})
    assert isinstance(event, EventLogEvent) and not event.is_empty()
    assert (event.name, event.timestamp, event.context_string) == ("drain", 12.5, '{"idset":"1"}')
    assert str(event) == '12.50000 drain {"idset":"1"}'
    assert str(JournalEventBase({"timestamp": 1.0, "name": "online"})) == "1.00000 online"
    before = time.time()
    stamped = JournalEventBase({"name": "x"})
    assert before <= stamped.timestamp <= time.time() and stamped.context == {}


def test_empty_event_is_the_sentinel():
    empty = JournalEventBase({})
    assert empty.is_empty() and empty.name == ""
    assert str(empty).endswith(" End of historical data stream")
    assert empty == JournalConsumerBase.SENTINEL_EVENT
    assert JournalEventBase({"timestamp": 1.0, "name": "a"}) != empty
    assert JournalEventBase({"timestamp": 1.0, "name": "a"}) == \
        JournalEventBase({"timestamp": 1.0, "name": "a", "context": {}})


def test_base_and_incomplete_subclasses_cannot_be_instantiated():
    with pytest.raises(TypeError):
        JournalConsumerBase(object(), "x.journal")      # type: ignore[abstract]

    class NoCreate(JournalConsumerBase):
        def process_response(self, resp):
            return {}

    with pytest.raises(TypeError, match="create_event"):
        NoCreate(object(), "x.journal")                  # type: ignore[abstract]


def test_defaults_of_a_subclass():
    consumer = Minimal(object(), "foo.journal")
    assert (consumer.topic, consumer.cancel_topic) == ("foo.journal", "foo.journal-cancel")
    assert (consumer.full, consumer.since, consumer.include_sentinel) == (True, 0.0, False)
    assert consumer.request_payload == {}
    assert consumer.is_empty_response({"events": []})
    assert not consumer.is_empty_response({"events": [{"name": "a", "timestamp": 1}]})
    other = Minimal(object(), "foo.journal", cancel_topic="foo.stop", full=False, since=3,
                    include_sentinel=True)
    assert (other.cancel_topic, other.full, other.since, other.include_sentinel) == \
        ("foo.stop", False, 3.0, True)


def test_poll_before_start_and_missing_handle():
    with pytest.raises(RuntimeError, match=r"poll\(\) called before start\(\)"):
        Minimal(object(), "foo.journal").poll(timeout=0.1)
    with pytest.raises(OSError) as exc:
        Minimal(None, "foo.journal")                     # type: ignore[arg-type]
    assert exc.value.errno == errno.EINVAL


def test_the_project_consumers_derive_from_the_bases():
    from flux.job import JournalConsumer, JournalEvent
    from flux.resource import ResourceJournalConsumer, ResourceJournalEvent
    assert issubclass(JournalConsumer, JournalConsumerBase)
    assert issubclass(ResourceJournalConsumer, JournalConsumerBase)
    assert issubclass(JournalEvent, JournalEventBase)
    assert issubclass(ResourceJournalEvent, JournalEventBase)
    assert isinstance(JournalConsumer.SENTINEL_EVENT, JournalEventBase)
    assert ResourceJournalConsumer.SENTINEL_EVENT.is_empty()
