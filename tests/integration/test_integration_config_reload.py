"""``flux config reload`` against a live instance: modules apply the new config
or refuse it, and a refused reload leaves the old config in effect everywhere."""
from __future__ import annotations

import os

import pytest

from broker.testing import TestInstance, stray_brokers
from tests.helpers.live import JOBS_CONF, flux, guest

BASE = JOBS_CONF + '[policy.limits]\nduration = "2h"\n'


@pytest.fixture(scope="module", autouse=True)
def no_stray_brokers():
    """After this module, no broker it started may still run."""
    yield
    assert stray_brokers() == []


@pytest.fixture(scope="module")
def conf(tmp_path_factory, no_stray_brokers):
    path = tmp_path_factory.mktemp("conf")
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="module")
def inst(conf):
    (conf / "a.toml").write_text(BASE)
    instance = TestInstance(config_path=str(conf)).start()
    yield instance
    assert instance.stop() == 0


@pytest.fixture(autouse=True)
def base_config(inst, conf):
    """Every test starts (and leaves) the instance with BASE in effect."""
    (conf / "a.toml").write_text(BASE)
    assert flux(inst, "config", "reload").exit_code == 0
    yield
    (conf / "a.toml").write_text(BASE)
    assert flux(inst, "config", "reload").exit_code == 0


def reload_with(inst, conf, text):
    (conf / "a.toml").write_text(text)
    return flux(inst, "config", "reload")


def test_policy_limit_change_applies_to_later_submissions(inst, conf):
    assert flux(inst, "run", "-t", "90m", "true").exit_code == 0
    r = reload_with(inst, conf, JOBS_CONF + '[policy.limits]\nduration = "1h"\n')
    assert r.exit_code == 0, r.stderr
    assert flux(inst, "config", "get", "policy.limits.duration").stdout == "1h\n"
    r = flux(inst, "run", "-t", "90m", "true")
    assert r.exit_code != 0 and "duration" in r.stderr
    assert flux(inst, "run", "-t", "30m", "true").exit_code == 0
    # a guest's flux update is checked against the new limit too (the job manager's
    # copy of the policy; the owner's updates are not limited)
    r = guest(inst, "submit", "--urgency=hold", "-t", "30m", "true")
    assert r.returncode == 0, r.stderr
    held = r.stdout.strip()
    r = guest(inst, "update", held, "duration=90m")
    assert r.returncode == 1 and "duration" in r.stderr, r.stderr
    assert guest(inst, "update", held, "duration=50m").returncode == 0
    assert flux(inst, "cancel", held).exit_code == 0


@pytest.mark.parametrize("extra, text", [
    (None,
     "module job-ingest refused the new config: policy.limits.duration: invalid duration"),
    ('[ingest.validator]\nplugins = ["nosuch"]\n',
     "unknown validator plugin 'nosuch'"),
    ('[resource]\nnorestrict = "yes"\n',
     "module resource refused the new config: resource.norestrict: expected a boolean"),
    ('[resource]\nfoo = 1\n', "resource.foo: unknown key"),
    ('[resource]\nnorestrict = true\n', "resource.norestrict: changing it needs a restart"),
    ('[kvs]\ngc-threshold = "abc"\n',
     "module kvs refused the new config: kvs.gc-threshold: must be an integer >= 0"),
    ('[kvs]\nbogus = 1\n', "kvs.bogus: unknown key"),
    ('[queues.debug]\nrequires = "x"\n', "queues.debug.requires: must be an array of property names"),
    ('[kvs]\ncheckpoint-period = "x"\n', "kvs.checkpoint-period: invalid duration"),
])
def test_refused_reload_keeps_the_old_config(inst, conf, extra, text):
    new = BASE.replace('"2h"', '"xyz"') if extra is None else BASE + extra
    r = reload_with(inst, conf, new)
    assert r.exit_code == 1 and text in r.stderr, r.stderr
    assert flux(inst, "config", "get", "policy.limits.duration").stdout == "2h\n"
    assert flux(inst, "run", "-t", "90m", "true").exit_code == 0


def test_refusal_after_ingest_applied_rolls_ingest_back(inst, conf):
    """job-exec (loaded after job-ingest) refuses only when applying: job-ingest,
    which had taken the 1h limit, gets the old config back."""
    r = reload_with(inst, conf, JOBS_CONF.replace("[exec]\n", '[exec]\nkill-timeout = "bad"\n')
                    + '[policy.limits]\nduration = "1h"\n')
    assert r.exit_code == 1 and "module job-exec refused the new config" in r.stderr, r.stderr
    assert flux(inst, "config", "get", "policy.limits.duration").stdout == "2h\n"
    assert flux(inst, "run", "-t", "90m", "true").exit_code == 0


def test_kvs_gc_threshold_from_config_and_reload(inst, conf):
    r = reload_with(inst, conf, BASE + "[kvs]\ngc-threshold = 100000\n"
                                       'checkpoint-period = "30m"\n')
    assert r.exit_code == 0, r.stderr
    assert flux(inst, "getattr", "kvs.gc-threshold").stdout == "100000\n"
    assert reload_with(inst, conf, BASE).exit_code == 0
    assert flux(inst, "getattr", "kvs.gc-threshold").stdout == "67108864\n"


def test_kvs_config_at_start(tmp_path):
    (tmp_path / "a.toml").write_text("[kvs]\ngc-threshold = 100000\ncheckpoint-period = '30m'\n")
    instance = TestInstance(config_path=str(tmp_path)).start()
    try:
        assert flux(instance, "getattr", "kvs.gc-threshold").stdout == "100000\n"
    finally:
        assert instance.stop() == 0


@pytest.mark.parametrize("toml, text", [
    ("bogus = 1", "kvs.bogus: unknown key"),
    ('gc-threshold = "abc"', "kvs.gc-threshold: must be an integer >= 0"),
    ('checkpoint-period = "x"', "kvs.checkpoint-period: invalid duration"),
])
def test_bad_kvs_table_stops_the_start(tmp_path, toml, text):
    (tmp_path / "a.toml").write_text(f"[kvs]\n{toml}\n")
    with pytest.raises(RuntimeError) as exc:
        TestInstance(config_path=str(tmp_path)).start()
    assert text in str(exc.value)
