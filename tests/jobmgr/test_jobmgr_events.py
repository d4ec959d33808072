"""RFC 21 event contexts: required keys, types, constructors."""
from __future__ import annotations

import errno

import pytest

from jobmgr import events as ev
from jobmgr.events import JobEventError, event, validate

# (event, good context, key to break, bad value)
BAD_VALUES = [
    ("submit", ev.submit(1001), "urgency", 32),
    ("submit", ev.submit(1001), "urgency", True),
    ("submit", ev.submit(1001), "userid", -1),
    ("submit", ev.submit(1001), "flags", "debug"),
    ("submit", ev.submit(1001), "version", 2),
    ("priority", ev.priority(1), "priority", 4294967296),
    ("priority", ev.priority(1), "priority", 1.5),
    ("urgency", ev.urgency(3, 1001), "urgency", -1),
    ("urgency", ev.urgency(3, 1001), "userid", "bob"),
    ("exception", ev.exception("cancel"), "severity", 8),
    ("exception", ev.exception("cancel"), "type", ""),
    ("exception", ev.exception("cancel"), "note", None),
    ("exception", ev.exception("cancel", userid=5), "userid", "x"),
    ("exception", ev.exception("cancel", wait_status=9), "wait_status", -9),
    ("release", ev.release(), "ranks", "0;3"),
    ("release", ev.release(), "final", 1),
    ("finish", ev.finish(0), "status", "0"),
    ("dependency-add", ev.dependency_add("x"), "description", ""),
    ("dependency-remove", ev.dependency_remove("x"), "description", 5),
    ("prolog-finish", ev.prolog_finish("p"), "status", None),
    ("epilog-start", ev.epilog_start("e"), "description", 1),
    ("set-flags", ev.set_flags(["debug"]), "flags", ["debug", "turbo"]),
    ("set-flags", ev.set_flags(["debug"]), "flags", []),
    ("resource-update", ev.resource_update(10.0), "expiration", -1),
    ("alloc", ev.alloc({"a": 1}), "annotations", [1]),
]


@pytest.mark.parametrize("name,good,key,bad", BAD_VALUES,
                         ids=[f"{n}-{k}-{b!r}" for n, _, k, b in BAD_VALUES])
def test_bad_context_value_names_event_and_key(name, good, key, bad):
    validate(name, good)
    ctx = dict(good)
    ctx[key] = bad
    with pytest.raises(JobEventError) as info:
        validate(name, ctx)
    assert info.value.errno == errno.EINVAL
    assert info.value.key == key
    assert str(info.value).startswith(f"{name}: ")
    assert repr(key) in str(info.value)


GOOD = {
    "submit": ev.submit(5, 31, 2), "validate": ev.validate_event(),
    "invalidate": ev.invalidate(), "jobspec-update": ev.jobspec_update({"tasks": []}),
    "resource-update": ev.resource_update(1.5), "set-flags": ev.set_flags(["waitable"]),
    "dependency-add": ev.dependency_add("a"), "dependency-remove": ev.dependency_remove("a"),
    "depend": ev.depend(), "priority": ev.priority(0), "flux-restart": ev.flux_restart(),
    "urgency": ev.urgency(31, 0), "alloc": ev.alloc(), "prolog-start": ev.prolog_start("p"),
    "prolog-finish": ev.prolog_finish("p", 1), "epilog-start": ev.epilog_start("e"),
    "epilog-finish": ev.epilog_finish("e"), "start": ev.start(),
    "release": ev.release("0-3", False), "finish": ev.finish(256), "free": ev.free(),
    "clean": ev.clean(), "exception": ev.exception("timeout", 0, "too long", 5, 15),
    "memo": ev.memo(a=1, b=None),
}

REQUIRED = [(name, key) for name, spec in sorted(ev.SPECS.items()) for key, _ in spec.required]


@pytest.mark.parametrize("name,key", REQUIRED, ids=[f"{n}-{k}" for n, k in REQUIRED])
def test_missing_required_key_is_named(name, key):
    ctx = dict(GOOD[name])
    del ctx[key]
    with pytest.raises(JobEventError, match=f"{name}: context is missing required key '{key}'"):
        validate(name, ctx)


def test_extra_keys_and_unknown_events_are_allowed():
    validate("finish", {"status": 0, "plugin": "x"})
    validate("debug.anything", {"whatever": [1, 2]})
    validate("my-plugin-event", None)


def test_context_must_be_an_object():
    with pytest.raises(JobEventError, match="clean: context must be an object"):
        validate("clean", [1])


def test_jobspec_update_keys():
    validate("jobspec-update", ev.jobspec_update({"attributes.system.duration": 5}))
    with pytest.raises(JobEventError, match="at least one key"):
        validate("jobspec-update", {})
    with pytest.raises(JobEventError, match="'version'") as info:
        validate("jobspec-update", {"version": 2})
    assert info.value.key == "version"


def test_constructors_build_valid_contexts():
    assert set(GOOD) == set(ev.SPECS)
    for name, ctx in GOOD.items():
        validate(name, ctx)
    assert GOOD["submit"] == {"userid": 5, "urgency": 31, "flags": 2, "version": 1}
    assert GOOD["exception"] == {"type": "timeout", "severity": 0, "note": "too long",
                                 "userid": 5, "wait_status": 15}
    assert ev.alloc() == {} and ev.alloc({"x": 1}) == {"annotations": {"x": 1}}


def test_event_builder():
    entry = event("finish", ev.finish(0), timestamp=12.5)
    assert entry == {"timestamp": 12.5, "name": "finish", "context": {"status": 0}}
    assert event("clean", timestamp=3.0) == {"timestamp": 3.0, "name": "clean"}
    assert event("clean")["timestamp"] > 1e9
    with pytest.raises(JobEventError, match="timestamp must be a number > 0"):
        event("clean", timestamp=0)
    with pytest.raises(JobEventError, match="non-empty string"):
        event("", timestamp=1.0)
    with pytest.raises(JobEventError, match="'status'"):
        event("finish", {}, timestamp=1.0)
