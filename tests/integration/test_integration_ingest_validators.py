"""``[ingest.validator]`` plugins beyond jobspec and feasibility (the Administrator's
Guide: ``plugins = [ "jobspec", "feasibility", "require-instance" ]``), their ``args``,
a site plugin that uses its own handle to the instance, and a name that is no plugin."""
from __future__ import annotations

import textwrap

import pytest

from broker.testing import TestInstance
from helpers.live import start_with_config

pytestmark = pytest.mark.slow

SITE = '''
"""Refuse jobs while the attribute site.closed is set"""
import errno
from flux.job.validator import ValidatorPlugin

class Validator(ValidatorPlugin):
    def validate(self, job):
        try:
            reason = job.flux.attr_get("site.closed")
        except OSError:
            return None
        return (errno.EPERM, f"the site is closed: {reason}")
'''


def test_require_instance_with_minsize_and_a_site_plugin(tmp_path):
    plugdir = tmp_path / "validators"
    plugdir.mkdir()
    (plugdir / "site.py").write_text(textwrap.dedent(SITE))
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ingest.toml").write_text(textwrap.dedent(f"""
        [ingest.validator]
        plugins = [ "jobspec", "feasibility", "require-instance", "site" ]
        args = [ "--require-instance-minsize=2" ]
        pluginpath = [ "{plugdir}" ]
    """))
    inst = TestInstance(size=2, config_path=str(conf)).start()
    try:
        r = inst.flux("run", "-N2", "hostname")
        assert r.returncode == 1
        assert "Direct job submission is disabled for this instance. Please use the " \
               "flux-batch(1) or flux-alloc(1) commands." in r.stderr
        assert inst.flux("run", "-N1", "echo", "small").stdout.strip() == "small"
        r = inst.flux("batch", "-N2", f"--output={tmp_path}/batch.out", "--wrap", "true")
        assert r.returncode == 0, r.stderr
        # the owner may skip validation
        assert inst.flux("submit", "--flags=novalidate", "-N2", "true").returncode == 0
        # the site plugin asks the instance through its own handle
        assert inst.flux("setattr", "site.closed", "maintenance").returncode == 0
        r = inst.flux("run", "-N1", "true")
        assert r.returncode == 1 and "the site is closed: maintenance" in r.stderr
        assert inst.flux("setattr", "--expunge", "site.closed").returncode == 0
        assert inst.flux("run", "-N1", "true").returncode == 0
    finally:
        inst.stop()


@pytest.mark.parametrize("toml, text", [
    ('plugins = [ "jobspec", "nope" ]', "unknown validator plugin 'nope'"),
    ('plugins = "jobspec"', "ingest.validator.plugins: must be an array of strings"),
    ('plugins = [ "require-instance" ]\nargs = [ "--require-instance-minsize=x" ]',
     "bad validator arguments"),
])
def test_a_bad_validator_config_fails_the_start(tmp_path, toml, text):
    r = start_with_config(tmp_path, "[ingest.validator]\n" + toml + "\n")
    assert r.returncode != 0
    assert text in r.stderr
