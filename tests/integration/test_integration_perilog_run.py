"""flux perilog-run with the Administrator's Guide configuration: perilog.so loaded (a
no-op: prologs are built in), a job-manager prolog and epilog that run a directory of
scripts once and a command on every rank of the job."""
from __future__ import annotations

import os
import stat
import subprocess
import textwrap

import pytest

from broker.testing import TestInstance, flux_command
from cli.cmd_perilog_run import directory_scripts

pytestmark = pytest.mark.slow


def make_conf(tmp_path, per_rank_cmd: str) -> str:
    scripts = tmp_path / "prolog.d"
    scripts.mkdir()
    log = tmp_path / "log"
    for name, body in (("10-first", f"echo dir1 $FLUX_JOB_ID >> {log}"),
                       ("20-second", f"echo dir2 >> {log}")):
        path = scripts / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    (scripts / "README").write_text("not executable: skipped\n")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "jm.toml").write_text(textwrap.dedent(f"""
        [job-manager]
        plugins = [
          {{ load = "perilog.so" }}
        ]
        [job-manager.prolog]
        command = [
           "flux", "perilog-run", "prolog", "-d", "{scripts}",
           "-e", "{per_rank_cmd}"
        ]
        [job-manager.epilog]
        command = [
           "flux", "perilog-run", "epilog", "-d", "{tmp_path}/none",
           "-e", "sh,-c,echo epilog $(flux getattr rank) >> {log}"
        ]
    """))
    return str(conf)


def test_the_guides_configuration_runs_once_per_job_and_on_every_rank(tmp_path):
    log = tmp_path / "log"
    conf = make_conf(tmp_path, f"sh,-c,echo prolog $(flux getattr rank) >> {log}")
    inst = TestInstance(size=2, config_path=conf).start()
    try:
        r = inst.flux("run", "-N2", "true")
        assert r.returncode == 0, r.stderr
        jobid = inst.flux("job", "last").stdout.strip()
        lines = sorted(log.read_text().splitlines())
        assert lines == sorted([f"dir1 {jobid}", "dir2", "prolog 0", "prolog 1",
                                "epilog 0", "epilog 1"])
        assert "perilog.so: nothing to load" in inst.flux("dmesg").stdout
        assert inst.flux("jobtap", "list").stdout == ""
    finally:
        inst.stop()


def test_a_rank_that_fails_fails_the_prolog(tmp_path):
    conf = make_conf(tmp_path, "sh,-c,test $(flux getattr rank) = 0")
    inst = TestInstance(size=2, config_path=conf).start()
    try:
        r = inst.flux("run", "-N2", "true")
        assert r.returncode != 0
        assert "prolog" in r.stderr and "1: Exit 1" in r.stderr
    finally:
        inst.stop()


def test_usage_without_a_job(tmp_path):
    env = dict(os.environ)
    env.pop("FLUX_JOB_ID", None)
    r = subprocess.run(flux_command() + ["perilog-run", "prolog"], env=env,
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 1 and "FLUX_JOB_ID is not set" in r.stderr
    r = subprocess.run(flux_command() + ["perilog-run", "middle"], env=env,
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 2


def test_directory_scripts_are_the_executables_in_name_order(tmp_path):
    for name, mode in (("b", 0o755), ("a", 0o700), ("c", 0o644)):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(mode)
    (tmp_path / "d").mkdir()
    assert directory_scripts(str(tmp_path)) == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert directory_scripts(str(tmp_path / "missing")) == []
    assert stat.S_ISDIR(os.stat(tmp_path / "d").st_mode)
