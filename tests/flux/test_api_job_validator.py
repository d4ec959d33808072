"""flux.job.validator: JobValidator, its plugins (jobspec, require-instance, schema,
feasibility), site plugins from a plugin path, ValidatorResult, and the
``flux job-validator`` command."""
from __future__ import annotations

import errno
import json
import subprocess

import pytest

from broker.testing import flux_command
from flux.job import JobspecV1
from flux.job.validator import (
    JobValidator,
    ValidatorJobInfo,
    ValidatorResult,
    import_plugins,
)


def jobspec(*command, **kw):
    return json.loads(JobspecV1.from_command(list(command), **kw).dumps())


def test_the_default_is_the_jobspec_plugin():
    v = JobValidator([]).start()
    assert v.names == ["jobspec"]
    assert v.validate({"jobspec": jobspec("true")}).success
    r = v.validate({"jobspec": {"version": 1}})
    assert not r.success and r.errnum == errno.EINVAL
    assert "missing required key 'resources'" in r.errmsg


def test_require_instance_and_its_minsize():
    v = JobValidator(["--plugins=require-instance"]).start()
    r = v.validate({"jobspec": jobspec("hostname")})
    assert r.errmsg.startswith("Direct job submission is disabled for this instance")
    for cmd in (["flux", "broker"], ["/usr/bin/flux", "start", "sleep", "1"]):
        assert v.validate({"jobspec": jobspec(*cmd)}).success
    v = JobValidator(["--plugins=require-instance", "--require-instance-minsize=2"]).start()
    assert v.validate({"jobspec": jobspec("hostname", num_nodes=1)}).success
    assert not v.validate({"jobspec": jobspec("hostname", num_nodes=2, num_tasks=2)}).success


def test_every_refusal_is_gathered():
    v = JobValidator(["--plugins=jobspec,require-instance,schema"]).start()
    r = v.validate(ValidatorJobInfo({"jobspec": {"version": 1}, "userid": 5}))
    assert r.errnum == errno.EINVAL
    assert r.errmsg.count("missing required key 'resources'") == 2
    assert "Direct job submission" in r.errmsg


def test_site_plugins_from_a_path_take_precedence(tmp_path):
    (tmp_path / "jobspec.py").write_text(
        '"""A site jobspec check"""\n'
        "from flux.job.validator import ValidatorPlugin\n"
        "class Validator(ValidatorPlugin):\n"
        "    def validate(self, job):\n"
        "        if job.userid == 42:\n"
        "            raise ValueError('user 42 may not submit')\n")
    (tmp_path / "names.py").write_text(
        '"""Refuse jobs by name"""\n'
        "import errno\n"
        "from flux.job.validator import ValidatorPlugin\n"
        "class Validator(ValidatorPlugin):\n"
        "    def __init__(self, parser):\n"
        "        super().__init__(parser)\n"
        "        parser.add_argument('--bad-name', default='bad')\n"
        "    def configure(self, args):\n"
        "        self.bad = args.bad_name\n"
        "    def validate(self, job):\n"
        "        name = job.jobspec['attributes']['system'].get('job', {}).get('name')\n"
        "        if name == self.bad:\n"
        "            return (errno.EPERM, f'name {name} refused')\n"
        "        return (0, None)\n")
    plugins = import_plugins("flux.job.validator.plugins", str(tmp_path))
    assert plugins["jobspec"].__doc__ == "A site jobspec check"
    assert {"feasibility", "require-instance", "schema", "names"} <= set(plugins)
    v = JobValidator(["--plugins=jobspec,names", "--bad-name=x"], pluginpath=[str(tmp_path)])
    v.start()
    js = jobspec("true")
    js["attributes"]["system"]["job"] = {"name": "x"}
    r = v.validate({"jobspec": js, "userid": 42})
    assert r.errnum == errno.EINVAL          # the first refusal's errno
    assert r.errmsg == "user 42 may not submit, name x refused"
    assert v.validate({"jobspec": jobspec("true"), "userid": 1}).success


def test_unknown_plugins_and_bad_arguments():
    with pytest.raises(ValueError, match="unknown validator plugin 'nope'"):
        JobValidator(["--plugins=nope"]).start()
    with pytest.raises(ValueError, match="bad validator arguments"):
        JobValidator(["--plugins=require-instance", "--require-instance-minsize=x"]).start()


def test_result_container():
    r = ValidatorResult()
    assert r.success and r.errmsg is None and r.to_json() == {"errnum": 0}
    r.push_result(0)
    r.push_result(errno.EPERM, "one")
    r.push_result(errno.EINVAL, "two")
    assert not r.success and r.errnum == errno.EPERM and r.errmsg == "one, two"


def run(*args, input=None):
    return subprocess.run(flux_command() + ["job-validator", *args], input=input,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_command_lists_plugins_as_the_admin_guide_shows():
    r = run("--list-plugins")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        "Available plugins:",
        "feasibility           Use sched.feasibility RPC to validate job",
        "jobspec               Python bindings based jobspec validator",
        "require-instance      Require that all jobs are new instances of Flux",
        "schema                Validate jobspec using jsonschema"]


def test_the_command_validates_json_lines():
    lines = [json.dumps({"id": 7, "jobspec": jobspec("hostname"), "userid": 0}),
             "not json", json.dumps({"jobspec": jobspec("flux", "broker")})]
    r = run("--plugins=jobspec,require-instance", input="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert out[0]["id"] == 7 and out[0]["errnum"] == errno.EINVAL
    assert out[1]["errnum"] == errno.EPROTO and out[1]["errstr"].startswith("line 2:")
    assert out[2] == {"errnum": 0}
    r = run("--plugins=nope", input="")
    assert r.returncode == 2 and "unknown validator plugin 'nope'" in r.stderr
