"""Listing and managing jobs as flux-jobs(1) and flux-pgrep(1) document it.

Named formats (``--format=help``, ``--format=get-config=NAME``, the
``flux-jobs.toml`` config files, ``FLUX_JOBS_FORMAT_DEFAULT``), ``--since``
and the ``contextual_info``, ``contextual_time`` and ``inactive_reason``
fields, against a real instance in test-mode exec.
"""
from __future__ import annotations

import time

import pytest
from click.testing import CliRunner, Result
from helpers.live import JOBS_CONF, eventlog, flux, start_instance, submit1, wait_for

from cli.main import main
from flux.job.JobID import JobID


CONF = JOBS_CONF + """
[queues.batch]
[queues.debug]
[policy.jobspec.defaults.system]
queue = "batch"
"""


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, CONF)
    r = flux(instance, "queue", "start", "--all")    # named queues start stopped
    assert r.exit_code == 0, r.output
    yield instance
    assert instance.stop() == 0


@pytest.fixture(scope="module")
def jobs(inst):
    """A completed, a canceled, a failed and a timed-out job; a running, a held
    and a dependent one (its dependency is the held job)."""
    ids = {}
    ids["completed"] = submit1(inst, "--job-name=sweep-done", "true")
    wait_for(inst, ids["completed"])
    ids["canceled"] = submit1(inst, "--urgency=hold", "true")
    assert flux(inst, "cancel", "-m", "mecanceled", str(ids["canceled"])).exit_code == 0
    wait_for(inst, ids["canceled"])
    ids["failed"] = submit1(inst, "-S", "system.exec.test.run_duration=60", "true")
    wait_for(inst, ids["failed"], "start")
    assert flux(inst, "job", "raise", "-t", "myexc", str(ids["failed"]), "boom").exit_code == 0
    wait_for(inst, ids["failed"])
    ids["timeout"] = submit1(inst, "-t", "0.1s", "-S", "system.exec.test.run_duration=60", "true")
    wait_for(inst, ids["timeout"])
    ids["running"] = submit1(inst, "--job-name=sweep-run", "-S",
                             "system.exec.test.run_duration=600", "true")
    wait_for(inst, ids["running"], "start")
    ids["held"] = submit1(inst, "--urgency=hold", "-t", "5m", "true")
    ids["dependent"] = submit1(inst, f"--dependency=afterok:{ids['held']}", "true")
    ids["debug"] = submit1(inst, "--queue=debug", "--urgency=hold", "true")
    return ids


def run(inst, *args: str, env: dict[str, str] | None = None) -> Result:
    """``flux ARGS`` in-process with extra environment ENV."""
    full = {"FLUX_URI": inst.uri, "PATH": inst.env["PATH"], "XDG_CONFIG_DIRS": "/nonexistent",
            **(env or {})}
    return CliRunner().invoke(main, list(args), env=full)


@pytest.fixture
def home(tmp_path):
    """An XDG_CONFIG_HOME holding no config, and its flux directory."""
    (tmp_path / "flux").mkdir()
    return tmp_path


def test_format_help_lists_named_formats(inst, jobs, home):
    r = run(inst, "jobs", "--format=help", env={"XDG_CONFIG_HOME": str(home)})
    assert r.exit_code == 0, r.output
    assert "Configured flux-jobs output formats:" in r.stdout
    names = [line.split()[0] for line in r.stdout.splitlines()[3:] if line.strip()]
    assert {"default", "long", "deps"} <= set(names)
    assert "help" not in r.stdout.split()


def test_format_get_config_prints_a_config_table(inst, jobs, home):
    r = run(inst, "jobs", "--format=get-config=deps", env={"XDG_CONFIG_HOME": str(home)})
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "[formats.deps]"
    assert lines[-1].startswith('format = "{id.f58')


def test_unknown_named_format_is_an_error(inst, jobs, home):
    r = run(inst, "jobs", "-o", "nosuch", env={"XDG_CONFIG_HOME": str(home)})
    assert r.exit_code == 1
    assert "flux-jobs: --format: No such format nosuch" in r.stderr
    assert r.stdout == ""


def test_format_default_env_variable(inst, jobs, home):
    env = {"XDG_CONFIG_HOME": str(home), "FLUX_JOBS_FORMAT_DEFAULT": "{id} {id}"}
    r = run(inst, "jobs", env=env)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "JOBID JOBID"
    env["FLUX_JOBS_FORMAT_DEFAULT"] = "deps"
    r = run(inst, "jobs", env=env)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].split()[-1] == "DEPENDENCIES"


def test_config_file_named_format(inst, jobs, home):
    (home / "flux" / "flux-jobs.toml").write_text(
        '[formats.mine]\ndescription = "My format"\nformat = "{id.f58} {name}"\n')
    env = {"XDG_CONFIG_HOME": str(home)}
    r = run(inst, "jobs", "-o", "mine", str(jobs["running"]), env=env)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["JOBID NAME", f"{jobs['running'].f58} sweep-run"]
    r = run(inst, "jobs", "-o", "help", env=env)
    assert "  mine         My format" in r.stdout.splitlines()
    # flux pgrep shares flux jobs' configured formats
    r = run(inst, "pgrep", "-o", "mine", "^sweep-run$", env=env)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["JOBID NAME", f"{jobs['running'].f58} sweep-run"]


def test_config_file_may_not_redefine_a_builtin_format(inst, jobs, home):
    (home / "flux" / "flux-jobs.toml").write_text('[formats.default]\nformat = "{id}"\n')
    r = run(inst, "jobs", env={"XDG_CONFIG_HOME": str(home)})
    assert r.exit_code == 1
    assert "override of builtin format 'default' not permitted" in r.stderr


def test_unreadable_config_file_is_an_error_not_a_traceback(inst, jobs, home):
    (home / "flux" / "flux-jobs.toml").mkdir()
    r = run(inst, "jobs", env={"XDG_CONFIG_HOME": str(home)})
    assert r.exit_code == 1
    assert r.stderr.endswith("flux-jobs.toml: Is a directory\n") and "Traceback" not in r.stderr


def test_pgrep_format_help(inst, jobs, home):
    r = run(inst, "pgrep", "-o", "help", "x", env={"XDG_CONFIG_HOME": str(home)})
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[1] == "Configured flux-jobs output formats:"
    assert "  default      Default flux-pgrep format string" in r.stdout.splitlines()
    # as Flux: an EXPRESSION is still required
    r = run(inst, "pgrep", "-o", "help", env={"XDG_CONFIG_HOME": str(home)})
    assert r.exit_code == 2


def test_since_lists_jobs_active_since_when(inst, jobs):
    # the jobs of the fixture became inactive before this mark, the late one
    # 0.5s after it; --since is half-way (a -FSD is from when the command runs)
    time.sleep(0.2)
    mark = time.time()
    time.sleep(0.5)
    late = submit1(inst, "true")
    wait_for(inst, late)
    r = flux(inst, "jobs", "-n", "-o", "{id}", f"--since=-{time.time() - mark - 0.25:.3f}s")
    assert r.exit_code == 0, r.output
    # implies -a: the active jobs, and of the inactive ones only the late one
    listed = {JobID(word) for word in r.stdout.split()}
    assert listed == {late, jobs["running"], jobs["held"], jobs["dependent"], jobs["debug"]}
    # with -f, only what -f selects
    r = flux(inst, "jobs", "-n", "-o", "{id}", "-f", "inactive",
             f"--since=-{time.time() - mark - 0.25:.3f}s")
    assert {JobID(word) for word in r.stdout.split()} == {late}
    # a timestamp as a number of seconds
    r = flux(inst, "jobs", "-n", "-o", "{id}", "-f", "inactive", f"--since={mark}")
    assert {JobID(word) for word in r.stdout.split()} == {late}


def test_since_in_the_future_is_an_error(inst, jobs):
    r = flux(inst, "jobs", "--since=+1h")
    assert r.exit_code == 1
    assert "flux-jobs: --since=+1h appears to be in the future" in r.stderr


def test_contextual_and_inactive_reason_fields(inst, jobs):
    fmt = "{id.f58}|{contextual_info}|{contextual_time!F:h}|{inactive_reason:h}"
    r = flux(inst, "jobs", "-a", "-o", fmt)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "JOBID|INFO|TIME|INACTIVE-REASON"
    rows = {JobID(line.split("|")[0]): line.split("|")[1:] for line in lines[1:]}
    assert rows[jobs["completed"]][2] == "Exit 0"
    assert rows[jobs["canceled"]][2] == "Canceled: mecanceled"
    assert rows[jobs["failed"]][2] == "Exception: type=myexc note=boom"
    assert rows[jobs["timeout"]][2] == "Timeout"
    # pending: what it waits for, and the duration it asked for
    assert rows[jobs["dependent"]][0] == f"depends:afterok={jobs['held'].f58}"
    assert rows[jobs["held"]][1:] == ["5m", "-"]
    # running: its nodes and its runtime
    info, runtime, reason = rows[jobs["running"]]
    assert info and info != "-" and runtime.endswith(("s", "m")) and reason == "-"


def test_contextual_info_of_a_held_job(inst, jobs):
    r = flux(inst, "jobs", "-n", "-o", "{urgency}:{contextual_info}", str(jobs["held"]))
    assert r.exit_code == 0, r.output
    assert r.stdout == "0:held\n"


def test_all_states_with_filter_ignores_all_states(inst, jobs):
    r = flux(inst, "jobs", "-n", "-o", "{id}", "-a", "-f", "running")
    assert r.exit_code == 0, r.output
    assert [JobID(w) for w in r.stdout.split()] == [jobs["running"]]
    assert "flux-jobs: WARNING: Both -a and --filter specified, ignoring -a" in r.stderr


def test_filters_with_jobids_are_ignored_with_a_warning(inst, jobs):
    r = flux(inst, "jobs", "-n", "-o", "{id.f58}", "-f", "inactive", str(jobs["running"]))
    assert r.exit_code == 0, r.output
    assert r.stdout == f"{jobs['running'].f58}\n"
    assert "WARNING: Filtering options ignored with jobid list" in r.stderr
    r = flux(inst, "jobs", "-n", "-o", "{id.f58}", str(jobs["running"]))
    assert r.stderr == ""


def test_queue_takes_several_queues(inst, jobs):
    r = flux(inst, "jobs", "-n", "-o", "{id}", "-q", "debug")
    assert [JobID(w) for w in r.stdout.split()] == [jobs["debug"]]
    r = flux(inst, "jobs", "-n", "-o", "{id}", "-q", "batch,debug")
    assert r.exit_code == 0, r.output
    assert {JobID(w) for w in r.stdout.split()} == \
        {jobs["debug"], jobs["held"], jobs["dependent"], jobs["running"]}


def test_user_plus_uid_is_a_numeric_uid(inst, jobs):
    import os

    r = flux(inst, "jobs", "-n", "-o", "{id}", f"--user=+{os.getuid()}")
    assert r.exit_code == 0, r.output
    assert JobID(r.stdout.split()[0]) in jobs.values()
    r = flux(inst, "jobs", "-n", "-o", "{id}", f"--user=+{os.getuid() + 1}")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""


def test_truncated_listing_is_reported(inst, jobs):
    r = flux(inst, "jobs", "-a", "-c", "2", "-o", "{id}")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == 3          # header and two jobs
    assert r.stderr == ("warning: output truncated at 2 jobs.\n"
                        "Use --count to increase returned results or use filters "
                        "to alter results.\n")
    # not with -n, nor when everything fits
    assert flux(inst, "jobs", "-a", "-n", "-c", "2").stderr == ""
    assert flux(inst, "jobs", "-a", "-c", "0").stderr == ""


def test_raise_double_dash_ends_the_jobids(inst, jobs):
    # flux-job(1): "--" forces the end of jobid processing; what follows is the note
    a = submit1(inst, "--urgency=hold", "true")
    b = submit1(inst, "--urgency=hold", "true")
    r = flux(inst, "job", "raise", "-s", "1", "-t", "sweep", str(a), "--", str(b))
    assert r.exit_code == 0, r.output
    (exc_a,) = [e for e in eventlog(inst, a) if e["name"] == "exception"]
    assert exc_a["context"]["note"] == str(b)
    assert [e for e in eventlog(inst, b) if e["name"] == "exception"] == []
    r = flux(inst, "job", "cancel", str(b), "--", "-m", "x")
    assert r.exit_code == 0, r.output
    (exc_b,) = [e for e in eventlog(inst, b) if e["name"] == "exception"]
    assert exc_b["context"]["note"] == "-m x"
    assert flux(inst, "cancel", str(a)).exit_code == 0


def test_status_verbose_and_exception_exit_code(inst, jobs):
    completed, failed = str(jobs["completed"]), str(jobs["failed"])
    # flux-job(1) -e: the exit code of any job that terminated with an exception
    r = flux(inst, "job", "status", "-e", "200", failed)
    assert r.exit_code == 200, r.output
    r = flux(inst, "job", "status", "-v", completed, failed)
    assert r.exit_code == 143           # test exec: SIGTERM ended the job
    assert r.stderr.splitlines() == ["flux-job: fetching status for 2 jobs",
                                     "flux-job: all done.",
                                     f"flux-job: {failed}: job shell died by signal 15"]
    held = submit1(inst, "--urgency=hold", "true")
    assert flux(inst, "cancel", str(held)).exit_code == 0
    r = flux(inst, "job", "status", "-v", str(held))
    assert (r.exit_code, r.stderr) == (1, f"flux-job: {held}: exception type=cancel\n")
    # a job that ended well is mentioned only with -vv
    assert flux(inst, "job", "status", "-v", completed).stderr == ""
    r = flux(inst, "job", "status", "-vv", completed)
    assert (r.exit_code, r.stderr) == (0, f"flux-job: {completed}: exited with exit code 0\n")


def test_conversions_of_missing_annotations_are_empty(inst, jobs):
    # flux-jobs(1): an unset timestamp converts to "" (or "-" with the h suffix)
    field = "annotations.sched.t_estimate"
    fmt = ",".join([f"{{{field}}}", f"{{{field}!d:%H:%M}}", f"{{{field}!D}}", f"{{{field}!F}}",
                    f"{{{field}!H}}", f"{{{field}!d:%H:%M::h}}", f"{{{field}!D:h}}",
                    f"{{{field}!F:h}}", f"{{{field}!H:h}}", "{sched.nokey!F:h}",
                    "{annotations.x.y.z:h}"])
    r = flux(inst, "jobs", "-n", "-o", fmt, str(jobs["held"]))
    assert r.exit_code == 0, r.output
    assert r.stdout == ",,,,,-,-,-,-,-,-\n"
