"""Our flux submit/run on apply_options: the options that go through it, seen in --dry-run.

Each option here is applied by ``JobspecV1.apply_options`` (one
implementation for users and the CLI); the checks compare the command's
jobspec with what the Python API builds, and the error texts with the
API's.
"""
from __future__ import annotations

import json
import resource
import signal

import pytest
from click.testing import CliRunner

from cli.main import main
from flux.job.Jobspec import JobspecV1


@pytest.fixture(autouse=True)
def no_site_plugins(monkeypatch):
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", "")


def run(*args):
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def dry(*args, cmd="submit"):
    r = run(cmd, "--dry-run", *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def options(js):
    return js["attributes"]["system"]["shell"]["options"]


@pytest.mark.parametrize("cmd", ["submit", "run"])
def test_rlimits_propagate_flux_default_set(cmd):
    js = dry("true", cmd=cmd)
    limits = options(js)["rlimit"]
    soft = resource.getrlimit(resource.RLIMIT_CORE)[0]
    assert limits["core"] == (-1 if soft == resource.RLIM_INFINITY else soft)
    assert "memlock" not in limits and "nice" not in limits
    assert options(dry("--rlimit=-*,nofile=64", "true", cmd=cmd))["rlimit"] == {"nofile": 64}
    assert "rlimit" not in options(dry("--rlimit=-*", "-o", "x", "true", cmd=cmd))


def test_env_template_goes_to_env_expand():
    js = dry("--env=-*", "--env=RANK_DIR=/tmp/{{rank}}", "--env=A=1", "true")
    assert js["attributes"]["system"]["environment"] == {"A": "1"}
    assert options(js)["env-expand"] == {"RANK_DIR": "/tmp/{{rank}}"}


def test_unbuffered_sets_the_input_batch_timeout_too():
    opts = options(dry("-u", "true", cmd="run"))
    assert opts["input"]["batch-timeout"] == 0.0
    assert opts["output"]["stderr"]["buffer"]["type"] == "none"


def test_signal_taskmap_bank_add_file():
    js = dry("--signal=@2m", "--taskmap=cyclic", "-B", "physics",
             "--add-file=notes=line1\\nline2", "true")
    opts = options(js)
    assert opts["signal"] == {"signum": int(signal.SIGUSR1), "timeleft": 120.0}
    assert opts["taskmap"] == {"scheme": "cyclic", "value": ""}
    assert js["attributes"]["system"]["bank"] == "physics"
    assert js["attributes"]["system"]["files"]["notes"]["data"] == "line1\nline2"


def test_requires_becomes_constraints():
    pytest.importorskip("flux.constraint.parser")
    js = dry("--requires=ssd", "--requires=host:node[1-2]", "true")
    assert js["attributes"]["system"]["constraints"] == JobspecV1.from_submit(
        ["true"], requires=["ssd", "host:node[1-2]"]).getattr("constraints")
    r = run("run", "--dry-run", "--requires=a)", "true")
    assert r.exit_code == 1 and r.stderr.startswith("flux-run: --requires='a)': ")


@pytest.mark.parametrize("args, message", [
    (["--signal=BOGUS", "true"], "--signal=BOGUS: signal 'BOGUS' is invalid"),
    (["--rlimit=bogus", "true"], "--rlimit: unknown resource limit 'bogus'"),
    (["--taskmap=1x", "true"], 'Invalid taskmap URI "1x"'),
    (["--add-file=/nonexistent/file", "true"], "--add-file=/nonexistent/file: "),
])
def test_option_errors_exit_1_with_the_api_text(args, message):
    for cmd in ("submit", "run"):
        r = run(cmd, "--dry-run", *args)
        assert r.exit_code == 1, r.output
        assert r.stderr.startswith(f"flux-{cmd}: ") and message in r.stderr


def test_setattr_wins_over_time_limit_and_setopt_order(tmp_path):
    js = dry("-t", "1m", "-S", "duration=30", "-o", "a=1", "-o", "a=2", "true")
    assert js["attributes"]["system"]["duration"] == 30
    assert options(js)["a"] == 2
    js = dry("-S", ".user.x=1", "true")      # a leading '.' addresses attributes.
    assert js["attributes"]["user"] == {"x": 1}
