"""flux start --recovery (flux-start(1)): one broker on an instance's saved state (a
statedir, or a flux dump archive), where a module that fails in rc1 is skipped and no
resource is online; real instances throughout."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from broker.testing import TestInstance, flux_command

pytestmark = pytest.mark.slow

BAD_R = '[resource]\npath = "/nonexistent/R.json"\n'


def flux_start(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    return subprocess.run(flux_command() + ["start", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=cwd, check=False)


@pytest.fixture()
def saved(tmp_path):
    """A statedir holding a KVS key, a pending job and a finished one."""
    state = tmp_path / "state"
    inst = TestInstance(setattrs=[f"statedir={state}"]).start()
    try:
        assert inst.flux("kvs", "put", "keep.me=yes").returncode == 0
        assert inst.flux("submit", "--urgency=hold", "true").returncode == 0
        assert inst.flux("run", "true").returncode == 0
        assert inst.flux("dump", str(tmp_path / "saved.tar")).returncode == 0
    finally:
        assert inst.stop() == 0
    return state


def test_an_instance_rc1_fails_for_starts_in_recovery_mode(saved, tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "r.toml").write_text(BAD_R)
    r = flux_start(f"--config-path={conf}", f"-Sstatedir={saved}", "true")
    assert r.returncode == 1 and "rc1 failed" in r.stderr
    r = flux_start(f"--recovery={saved}", f"--config-path={conf}", "sh", "-c",
                   "flux getattr broker.recovery-mode; flux kvs get keep.me; "
                   "flux jobs -a -n -o '{state}' | sort")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "yes", "INACTIVE", "SCHED"]
    # what failed is said, and that recovery went on; then the banner
    assert "rc1: resource: resource.path: /nonexistent/R.json" in r.stderr
    assert r.stderr.index("recovery mode goes on") < r.stderr.index("Flux recovery mode")


def test_no_resource_is_online_and_jobs_wait(saved):
    r = flux_start(f"-r{saved}", "sh", "-c",
                   "flux resource list -s down -n -o '{nnodes}'; "
                   "id=$(flux submit true) && sleep 0.5 && flux jobs -n -o '{state} {id}' $id")
    assert r.returncode == 0, r.stderr
    down, state, jobid = r.stdout.split()
    assert (down, state) == ("1", "SCHED")
    # what recovery wrote stays: started normally, that job runs (and the held one waits)
    r = flux_start(f"-Sstatedir={saved}", "sh", "-c",
                   f"flux job wait-event -t 30 {jobid} clean >/dev/null; "
                   "flux jobs -a -n -o '{state}' | sort")
    assert r.stdout.split() == ["INACTIVE", "INACTIVE", "SCHED"], r.stderr


def test_a_dump_archive_is_restored_into_a_scratch_statedir(saved, tmp_path):
    before = set(os.listdir("/tmp"))
    r = flux_start("--recovery", str(tmp_path / "saved.tar"), "sh", "-c",
                   "flux kvs get keep.me; flux getattr statedir")
    assert r.returncode == 0, r.stderr
    value, statedir = r.stdout.split()
    assert value == "yes" and os.path.basename(statedir).startswith("flux-recovery-")
    assert not os.path.exists(statedir)          # removed at the end
    assert not {n for n in set(os.listdir("/tmp")) - before if n.startswith("flux-recovery-")}


def test_bad_targets_and_usage(tmp_path):
    r = flux_start("--recovery", "true")
    assert r.returncode == 1 and "true: no such directory or file" in r.stderr
    r = flux_start("--recovery=")
    assert r.returncode == 1 and "--recovery needs a TARGET" in r.stderr
    r = flux_start(f"--recovery={tmp_path}", "true")
    assert r.returncode == 1 and "no Flux state here" in r.stderr
    (tmp_path / "content.lmdb").mkdir()
    r = flux_start("-s", "2", f"--recovery={tmp_path}", "true")
    assert r.returncode == 2 and "one broker" in r.stderr
    r = flux_start(f"--recovery={tmp_path}", "-Sstatedir=/x", "true")
    assert r.returncode == 2 and "sets statedir" in r.stderr
