"""What a ``flux config reload`` may change in ``[resource]`` and in job-ingest's
tables, checked without an instance."""
from __future__ import annotations

import pytest

from flux.errors import FluxError
from jobmgr.ingest.module import _settings
from jobmgr.policy import parse_job_policy
from jobmgr.resource.config import parse_config, restart_needed


def test_resource_same_table_and_noverify_may_change():
    old = parse_config({"exclude": "1", "noverify": False})
    restart_needed(old, parse_config({"exclude": "1", "noverify": True}))
    restart_needed(parse_config(None), parse_config({}))


@pytest.mark.parametrize("before, after, key", [
    ({}, {"norestrict": True}, "norestrict"),
    ({}, {"path": "/etc/flux/R.json"}, "path"),
    ({}, {"config": [{"hosts": "n0", "cores": "0"}]}, "config"),
    ({}, {"monitor-force-up": True}, "monitor-force-up"),
])
def test_resource_change_read_only_at_start_needs_a_restart(before, after, key):
    with pytest.raises(FluxError) as exc:
        restart_needed(parse_config(before), parse_config(after))
    assert exc.value.strerror.startswith(f"resource.{key}: changing it needs a restart")


@pytest.mark.parametrize("table, text", [
    ({"norestrict": "yes"}, "resource.norestrict: expected a boolean, got str"),
    ({"foo": 1}, "resource.foo: unknown key"),
])
def test_resource_bad_table_refused_as_at_start(table, text):
    with pytest.raises(FluxError) as exc:
        parse_config(table)
    assert exc.value.strerror == text


def test_ingest_settings_read_limits_and_validators():
    s = _settings({"policy": {"limits": {"duration": "1h"}},
                   "ingest": {"validator": {"plugins": ["jobspec", "feasibility"]}}}, "local://x")
    assert s.policy.general.limits.duration == 3600.0
    assert s.plugins == ("jobspec", "feasibility") and s.validator is None


@pytest.mark.parametrize("config, text", [
    ({"policy": {"limits": {"duration": "xyz"}}}, "policy.limits.duration: invalid duration"),
    ({"ingest": {"validator": {"plugins": ["nosuch"]}}},
     "ingest.validator: unknown validator plugin 'nosuch'"),
    ({"ingest": {"validator": {"plugins": "jobspec"}}},
     "ingest.validator: ingest.validator.plugins: must be an array of strings"),
])
def test_ingest_bad_settings_refused(config, text):
    with pytest.raises(ValueError) as exc:
        _settings(config, "local://x")
    assert str(exc.value).startswith(text)
