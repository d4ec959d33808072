"""The ``instance.*`` and ``uri`` fields of flux jobs without an instance: what a
job that is no instance prints, the conversions of the ratios, the STATS text,
and the headings."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from flux.job.info import EMPTY, InstanceInfo, JobInfo, JobInfoFormat, StatsInfo

NOW = time.time()
GUIDE = ("{id.f58:<12} {name:<12} {instance.progress!P:>5} {instance.utilization!P:>5} "
         "{instance.gpu_utilization!P:>5h} {nodelist}")


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch):
    """Runtimes are computed against the clock: hold it at NOW (the module may have
    been imported minutes before a test runs on a busy worker)."""
    monkeypatch.setattr(time, "time", lambda: NOW)


def job(**kw):
    data = {"id": 123456789, "userid": 0, "state": 16, "name": "sleep", "ntasks": 1,
            "nnodes": 1, "t_submit": NOW - 10, "t_run": NOW - 5, "nodelist": "node0"}
    data.update(kw)
    return JobInfo(data)


def counts(pending=0, running=0, successful=0, failed=0, inactive=0):
    return SimpleNamespace(pending=pending, running=running, successful=successful,
                           failed=failed, inactive=inactive,
                           total=pending + running + inactive)


def resources(ncores, allocated, ngpus=0, gpus_allocated=0, nnodes=1):
    def rs(n, c, g):
        return SimpleNamespace(nnodes=n, ncores=c, ngpus=g)
    return SimpleNamespace(all=rs(nnodes, ncores, ngpus), up=rs(nnodes, ncores, ngpus),
                           down=rs(0, 0, 0), allocated=rs(1, allocated, gpus_allocated),
                           free=rs(1, ncores - allocated, ngpus - gpus_allocated))


def instance(stats, res):
    info = InstanceInfo()
    info.initialized = True
    info.stats = StatsInfo(stats)
    info.resources = res
    return info


def test_a_job_that_is_no_instance_prints_blanks_and_dashes():
    plain = job()
    assert plain.uri == "" and not plain.uri
    out = JobInfoFormat(GUIDE).format(plain)
    assert out == f"{plain.id.f58:<12} {'sleep':<12} {'':>5} {'':>5} {'-':>5} node0"
    for field in ("instance.stats", "instance.stats.total", "instance.resources.all.ncores",
                  "instance.resources.free.ngpus", "uri.local"):
        assert JobInfoFormat("{" + field + ":>6}").format(plain) == " " * 6, field
    # a numeric presentation type on a missing value is dropped, not an error
    assert JobInfoFormat("{instance.stats.total:>4d}|").format(plain) == "    |"


def test_guide_line_for_a_batch_job():
    j = job(name="flux", annotations={"user": {"uri": "ssh://host/tmp/x/local"}})
    j.instance = instance(counts(pending=700, running=5, successful=296, inactive=296),
                          resources(ncores=2, allocated=2))
    out = JobInfoFormat(GUIDE).format(j)
    assert out == f"{j.id.f58:<12} flux         29.6%  100%     - node0"
    assert JobInfoFormat("{instance.stats:^25}").format(j) == \
        "  PD:700 R:5 CD:296 F:0  "
    assert JobInfoFormat("{instance.stats.total} {instance.stats.running}").format(j) == \
        "1001 5"


def test_guide_stats_details_line():
    from cli.cmd_pstree import DETAILS_FORMAT

    j = job(id=1, name="flux", t_run=NOW - (17 * 60 + 42.2),
            annotations={"user": {"uri": "ssh://host/tmp/x/local"}})
    j.instance = instance(counts(pending=164, running=5, successful=832, inactive=832),
                          resources(ncores=6, allocated=5))
    line = JobInfoFormat(DETAILS_FORMAT["stats"]).format(j)
    assert line == f"{j.id.f58:>12}   PD:164 R:5 CD:832 F:0      0:17:42"


def test_ratios():
    info = instance(counts(), resources(ncores=4, allocated=1, ngpus=2, gpus_allocated=1))
    assert info.utilization == 0.25 and info.gpu_utilization == 0.5
    assert info.progress == ""  # no jobs yet
    info = instance(counts(successful=1, inactive=1, running=1), resources(4, 0))
    assert info.progress == 0.5 and info.gpu_utilization == ""
    assert InstanceInfo().utilization == "" and not InstanceInfo().initialized
    assert InstanceInfo().anything is EMPTY


def test_uri_field_has_local_and_remote_forms():
    j = job(annotations={"user": {"uri": "ssh://host/tmp/x/local"}})
    assert JobInfoFormat("{uri}|{uri.local}|{uri.remote}").format(j) == \
        "ssh://host/tmp/x/local|local:///tmp/x/local|ssh://host/tmp/x/local"
    assert job(annotations={"user": {"uri": 5}}).uri == ""


def test_instance_of_an_unreachable_or_stopped_job_is_empty(tmp_path):
    gone = job(annotations={"user": {"uri": f"local://{tmp_path}/nosuch"}})
    assert gone.instance.initialized is False
    assert JobInfoFormat("{instance.utilization!P:>5h}").format(gone) == "    -"
    done = job(state=64, result=1, annotations={"user": {"uri": "local:///nowhere"}})
    assert done.instance.initialized is False


def test_headings():
    fmt = JobInfoFormat("{instance.stats} {instance.stats.total} {instance.progress} "
                        "{instance.utilization} {instance.gpu_utilization} "
                        "{instance.resources.all.ncores} {instance.resources.free.nnodes} {uri}")
    assert fmt.header().split() == ["STATS", "NJOBS", "PROG", "CORE%", "GPU%", "CORES",
                                    "FREE", "URI"]
