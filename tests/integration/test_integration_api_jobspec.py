"""Jobspecs built by the Python API and by the CLI, on real instances.

- What Flux's ingest accepts, ours accepts (a slot that names no slot label,
  more tasks than slots), and what it refuses, ours refuses (attributes:
  null); such jobs really run.
- An unsatisfiable request (128 tasks on this machine's cores) is accepted
  at submit and gets a fatal ``alloc`` exception, unless
  ``[ingest.validator] plugins`` asks for the ``feasibility`` check.
- ``JobspecV1.from_submit`` jobs run as ``flux submit`` jobs do.
- A site's CLI plugin: ``--PREFIX-name`` options on the real commands, and
  its ``validate`` refusing jobs at ingest.
"""
from __future__ import annotations

import copy
import errno
import json
import os
import textwrap

import pytest

import flux
import flux.job
from broker.testing import TestInstance
from flux.job.event import JobException
from flux.job.JobID import JobID
from flux.job.Jobspec import JobspecV1
from helpers.jobs import lookup

pytestmark = pytest.mark.slow

PLUGIN = """
    from flux.cli.plugin import CLIPlugin

    class Site(CLIPlugin):
        '''A site's plugin: --site-project tags the job; no job may be tagged "forbidden".'''

        def __init__(self, prog):
            super().__init__(prog, prefix="site")
            self.add_option("--project", metavar="NAME", help="Tag the job with NAME")

        def modify_jobspec(self, args, jobspec):
            if args.project:
                jobspec.setattr("user.project", args.project)

        def validate(self, jobspec):
            if (jobspec.attributes.get("user") or {}).get("project") == "forbidden":
                raise ValueError("project 'forbidden' is not allowed here")
"""


def _conf(tmp_path_factory, text):
    conf = tmp_path_factory.mktemp("conf")
    (conf / "ingest.toml").write_text(text)
    return str(conf)


@pytest.fixture(scope="module")
def inst():
    """A plain instance (Flux's default validators) with no CLI plugins."""
    instance = TestInstance(env={"FLUX_CLI_PLUGINPATH_OVERRIDE": ""}).start()
    yield instance
    assert instance.stop() == 0


@pytest.fixture(scope="module")
def h(inst):
    handle = flux.Flux(inst.uri)
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An instance whose ingest (and commands) load a site CLI plugin, and that
    asks the scheduler about feasibility at submit."""
    plugdir = tmp_path_factory.mktemp("plugins")
    (plugdir / "site.py").write_text(textwrap.dedent(PLUGIN))
    conf = _conf(tmp_path_factory, '[ingest.validator]\nplugins = ["jobspec", "feasibility"]\n')
    instance = TestInstance(config_path=conf,
                            env={"FLUX_CLI_PLUGINPATH_OVERRIDE": str(plugdir)}).start()
    yield instance
    assert instance.stop() == 0


def ncores(inst):
    r = inst.flux("resource", "list", "-n", "-o", "{ncores}")
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[0])


def jobspec_of(h, jobid):
    return json.loads(lookup(h, JobID(jobid).kvs + ".jobspec"))


def attach(inst, jobid):
    r = inst.flux("job", "attach", str(jobid), timeout=60)
    return r


# ------------------------------------------------------------------ leniency

def test_slot_naming_no_label_with_more_tasks_than_slots_runs(inst, h):
    js = JobspecV1.from_command(["printenv", "FLUX_TASK_RANK"], num_tasks=1)
    js.tasks[0]["slot"] = "foo"            # names no slot label
    js.tasks[0]["count"] = {"total": 3}    # three tasks on one slot
    jobid = flux.job.submit(h, js)
    r = attach(inst, jobid)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["0", "1", "2"]
    assert jobspec_of(h, jobid)["tasks"][0] == {"command": ["printenv", "FLUX_TASK_RANK"],
                                                "slot": "foo", "count": {"total": 3}}


def test_attributes_null_is_refused_at_submit(h):
    doc = copy.deepcopy(JobspecV1.from_command(["true"], environment={}).jobspec)
    doc["attributes"] = None
    with pytest.raises(OSError) as info:
        flux.job.submit(h, json.dumps(doc))
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == "invalid jobspec: attributes must be a mapping"


# ------------------------------------------------------------------ unsatisfiable requests

def test_unsatisfiable_request_is_accepted_then_fails_alloc(inst, h):
    assert ncores(inst) < 128
    jobid = flux.job.submit(h, JobspecV1.from_submit(["true"], ntasks=128))
    with pytest.raises(JobException) as info:
        flux.job.event_wait(h, jobid, "start")
    assert info.value.type == "alloc" and info.value.severity == 0
    assert info.value.timestamp > 0
    r = inst.flux("jobs", "-n", "-o", "{status}", str(jobid))
    assert r.stdout.strip() == "FAILED"


def test_flux_submit_accepts_an_unsatisfiable_request(inst):
    r = inst.flux("submit", "-n", "128", "true")
    assert r.returncode == 0, r.stderr
    jobid = JobID(r.stdout.strip())
    r = inst.flux("job", "wait-event", "-t", "30s", str(jobid), "exception")
    assert r.returncode == 0 and 'type="alloc"' in r.stdout and "severity=0" in r.stdout


def test_feasibility_validator_refuses_at_submit(site):
    h = flux.Flux(site.uri)
    try:
        with pytest.raises(OSError) as info:
            flux.job.submit(h, JobspecV1.from_submit(["true"], ntasks=128))
        assert info.value.errno == errno.EINVAL and "unsatisfiable" in str(info.value)
    finally:
        h.close()
    r = site.flux("submit", "-n", "128", "true")
    assert r.returncode == 1 and r.stderr.startswith("flux-submit: ")


# ------------------------------------------------------------------ from_submit

def test_from_submit_job_runs_with_its_options(inst, h, tmp_path):
    js = JobspecV1.from_submit(["sh", "-c", "echo $GREETING $FLUX_TASK_RANK; ulimit -n"],
                               ntasks=2, name="api-job", cwd=str(tmp_path), label_io=True,
                               env=["-*", "PATH", "GREETING=hello"], rlimit=["nofile=200"],
                               time_limit="1m", attributes={"user.origin": "api"})
    jobid = flux.job.submit(h, js)
    r = attach(inst, jobid)
    assert r.returncode == 0, r.stderr
    lines = sorted(r.stdout.splitlines())
    assert [line for line in lines if "hello" in line] == ["hello 0", "hello 1"]
    assert lines.count("200") == 2
    stored = jobspec_of(h, jobid)
    assert stored["attributes"]["system"]["job"]["name"] == "api-job"
    assert stored["attributes"]["system"]["duration"] == 60.0
    assert stored["attributes"]["user"] == {"origin": "api"}
    r = inst.flux("jobs", "-n", "-o", "{name} {ntasks}", str(jobid))
    assert r.stdout.split() == ["api-job", "2"]


def test_cli_and_api_build_the_same_jobspec(inst, tmp_path):
    env = dict(inst.env, FLUX_CLI_PLUGINPATH_OVERRIDE="")
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "cli.main", "submit", "--dry-run", "-n2",
                        "-t", "5m", "--job-name=same", "--env=-*", "--env=A=1",
                        "--rlimit=-*,core=0", "-o", "verbose", "-S", "user.k=1",
                        f"--cwd={tmp_path}", "true"],
                       env=env, capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                           os.path.abspath(__file__)))))
    assert r.returncode == 0, r.stderr
    cli = json.loads(r.stdout)
    api = JobspecV1.from_submit(["true"], ntasks=2, time_limit="5m", name="same",
                                env=["-*", "A=1"], rlimit=["-*,core=0"],
                                shell_options={"verbose": 1}, attributes={"user.k": 1},
                                cwd=str(tmp_path))
    assert cli == api.jobspec


# ------------------------------------------------------------------ a site's CLI plugin

def test_plugin_option_on_the_real_command(site):
    r = site.flux("submit", "--help")
    assert "Options provided by plugins:" in r.stdout and "--site-project NAME" in r.stdout
    r = site.flux("submit", "--site-project=physics",
                  "--setattr=system.exec.test.run_duration=0", "true")
    assert r.returncode == 0, r.stderr
    jobid = JobID(r.stdout.strip())
    h = flux.Flux(site.uri)
    try:
        assert jobspec_of(h, jobid)["attributes"]["user"]["project"] == "physics"
    finally:
        h.close()
    r = site.flux("run", "--site-project=chem", "echo", "ran")
    assert r.returncode == 0 and r.stdout == "ran\n"


def test_plugin_validate_refuses_at_the_command_and_at_ingest(site):
    r = site.flux("submit", "--site-project=forbidden", "true")
    assert r.returncode == 1
    assert r.stderr == "flux-submit: project 'forbidden' is not allowed here\n"
    h = flux.Flux(site.uri)
    try:
        js = JobspecV1.from_command(["true"], environment={})
        js.setattr("user.project", "forbidden")
        with pytest.raises(OSError) as info:
            flux.job.submit(h, js)           # ingest runs the plugin's validate
        assert info.value.errno == errno.EINVAL
        assert info.value.strerror == "project 'forbidden' is not allowed here"
        js.setattr("system.exec.test", {})
        assert flux.job.submit(h, js, novalidate=True) > 0     # novalidate skips it
    finally:
        h.close()
