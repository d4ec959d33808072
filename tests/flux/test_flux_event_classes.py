"""flux.job.event.EventLogEvent and JobException (Flux binding data classes)."""
from __future__ import annotations

import pytest

import flux.eventlog
import flux.job
import flux.job.event
from flux.job.event import EventLogEvent, JobException

SUBMIT = ('{"timestamp":1738774194.078433,"name":"submit",'
          '"context":{"userid":1001,"urgency":16,"flags":0,"version":1}}')
EXCEPTION = {"timestamp": 1738774200.5, "name": "exception",
             "context": {"type": "cancel", "severity": 0, "note": "by user", "userid": 1001}}


def test_same_class_on_every_import_path() -> None:
    assert flux.job.EventLogEvent is flux.job.event.EventLogEvent is flux.eventlog.EventLogEvent
    assert flux.job.JobException is JobException


def test_event_from_json_string() -> None:
    event = EventLogEvent(SUBMIT)
    assert event.name == "submit"
    assert event.timestamp == 1738774194.078433
    assert event.context == {"userid": 1001, "urgency": 16, "flags": 0, "version": 1}


def test_event_from_bytes_and_dict() -> None:
    assert EventLogEvent(SUBMIT.encode()).name == "submit"
    assert EventLogEvent({"timestamp": 2, "name": "start"}).timestamp == 2


def test_context_defaults_to_empty_dict() -> None:
    event = EventLogEvent({"timestamp": 2.0, "name": "start"})
    assert event.context == {} and event["context"] == {}
    assert event.context_string == ""


def test_event_is_a_dict() -> None:
    event = EventLogEvent(SUBMIT)
    assert isinstance(event, dict) and event["name"] == "submit"


def test_str_matches_flux() -> None:
    event = EventLogEvent({"timestamp": 1738774194.078433, "name": "submit",
                           "context": {"userid": 1001}})
    assert str(event) == "1738774194.07843: submit {'userid': 1001}"
    assert str(EventLogEvent({"timestamp": 3, "name": "clean"})) == "3.00000: clean {}"


def test_context_string_is_compact_and_sorted() -> None:
    event = EventLogEvent({"timestamp": 1, "name": "memo",
                           "context": {"b": "ƒ", "a": [1, 2], "c": {"z": 1, "y": 2}}})
    assert event.context_string == '{"a":[1,2],"b":"ƒ","c":{"y":2,"z":1}}'


@pytest.mark.parametrize("arg, exc, message", [
    ({"name": "x"}, ValueError, "no 'timestamp' key"),
    ({"timestamp": 1}, ValueError, "no 'name' key"),
    ({"timestamp": "1", "name": "x"}, TypeError, "timestamp must be a number"),
    ({"timestamp": True, "name": "x"}, TypeError, "timestamp must be a number"),
    ({"timestamp": 1, "name": 3}, TypeError, "name must be a string"),
    ({"timestamp": 1, "name": "x", "context": []}, TypeError, "context must be an object"),
    ("{bad json", ValueError, "not valid JSON"),
    ("[1]", TypeError, "must be an object, not list"),
    (42, TypeError, "must be an object, not int"),
])
def test_bad_event_errors_name_the_problem(arg: object, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message):
        EventLogEvent(arg)  # type: ignore[arg-type]


def test_job_exception_attributes_and_str() -> None:
    exc = JobException(EventLogEvent(EXCEPTION))
    assert (exc.timestamp, exc.type, exc.severity, exc.note) == (1738774200.5, "cancel", 0, "by user")
    assert str(exc) == "job.exception: type=cancel: by user"
    assert isinstance(exc, Exception)


def test_job_exception_from_dict_and_default_note() -> None:
    exc = JobException({"timestamp": 5, "name": "exception",
                        "context": {"type": "timeout", "severity": 0}})
    assert exc.note == "no explanation given"
    assert str(exc) == "job.exception: type=timeout: no explanation given"


def test_job_exception_can_be_raised_and_caught() -> None:
    with pytest.raises(JobException, match="type=cancel"):
        raise JobException(EXCEPTION)


@pytest.mark.parametrize("missing", ["type", "severity"])
def test_job_exception_missing_key(missing: str) -> None:
    context = dict(EXCEPTION["context"])
    del context[missing]
    with pytest.raises(ValueError, match=f"no '{missing}' key"):
        JobException({**EXCEPTION, "context": context})
