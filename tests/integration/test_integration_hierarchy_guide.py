"""The hierarchies guide (seed 004) walked through on a real ``flux start -s 4``:
two ``flux batch`` jobs, one of which starts another batch job, then the
guide's ``flux jobs``, ``flux pstree`` and ``flux proxy`` commands, and the
cancel of a batch job taking its whole subtree down.  Small counts and long
sleeps, so the shapes the guide prints hold while the commands run.
"""
from __future__ import annotations

import os
import re
import time

import pytest

from broker.testing import TestInstance
from helpers.procs import wait_dead

pytestmark = pytest.mark.slow

SCRIPT = """#!/bin/sh
flux batch -n2 --wrap flux submit --wait --cc=1-20 sleep 60
flux submit --cc=1-20 sleep 60
flux queue idle
"""
EXPECTED_TREE = [
    ".",
    "├── batch",
    "│   ├── 4*[sleep]",
    "│   └── flux",
    "│       └── 2*[sleep]",
    "└── flux",
    "    └── 2*[sleep]",
]


def ok(inst, *args, timeout=60.0, **kw):
    r = inst.flux(*args, timeout=timeout, **kw)
    assert r.returncode == 0, (args, r.stdout, r.stderr, inst.stderr_text()[-3000:])
    return r.stdout


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    # flux batch writes flux-{{id}}.out where it runs, as the guide shows: not in the repo
    old_cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("guide"))
    inst = TestInstance(size=4).start()
    try:
        g = type("Guide", (), {})()
        g.inst = inst
        g.first = ok(inst, "batch", "-n2", "--wrap", "flux", "submit", "--wait",
                     "--cc=1-20", "sleep", "60").strip()
        g.second = ok(inst, "batch", "-n6", input=SCRIPT).strip()
        deadline = time.monotonic() + 90
        tree = []
        while time.monotonic() < deadline:
            tree = inst.flux("pstree", timeout=60).stdout.splitlines()
            if tree == EXPECTED_TREE:
                break
            time.sleep(0.3)
        assert tree == EXPECTED_TREE, (tree, inst.stderr_text()[-3000:])
        out = ok(inst, "proxy", g.second, "flux", "jobs", "-n", "-f", "running",
                 "-o", "{id.f58} {name}")
        g.nested = next(line.split()[0] for line in out.splitlines()
                        if line.endswith(" flux"))
        yield g
    finally:
        inst.flux("cancel", "--all")
        inst.stop(timeout=60)
        os.chdir(old_cwd)


def test_flux_jobs_shows_the_two_batch_jobs_blue(guide):
    out = ok(guide.inst, "jobs", "--color=always", "-n")
    lines = out.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("\033[01;34m") and line.endswith("\033[0;0m")
    assert re.search(rf"{guide.second} +root +batch +R +6 ", out)
    assert re.search(rf"{guide.first} +root +flux +R +2 ", out)


def test_instance_fields_line(guide):
    out = ok(guide.inst, "jobs", "-o",
             "{id.f58:<12} {name:<12} {instance.progress!P:>5} {instance.utilization!P:>5} "
             "{instance.gpu_utilization!P:>5h} {nodelist}")
    lines = out.splitlines()
    assert lines[0].split() == ["JOBID", "NAME", "PROG", "CORE%", "GPU%", "NODELIST"]
    row = next(line for line in lines if line.startswith(guide.second))
    assert re.fullmatch(rf"{guide.second} +batch +\d+(\.\d+)?% +100% +- \S+", row), row
    row = next(line for line in lines if line.startswith(guide.first))
    assert re.fullmatch(rf"{guide.first} +flux +\d+(\.\d+)?% +100% +- \S+", row), row


def test_jobs_recursive_and_level_with_stats(guide):
    out = ok(guide.inst, "jobs", "-Rf", "running", "-o", "{id.f58} {name}")
    blocks = out.split("\n\n")
    assert len(blocks) == 4
    heads = [block.splitlines()[0] for block in blocks[1:]]
    assert heads[:2] == [f"{guide.second}:", f"{guide.second}/{guide.nested}:"]
    assert heads[2] == f"{guide.first}:"
    names = [line.split()[1] for line in blocks[1].splitlines()[1:]]
    assert sorted(names) == ["flux"] + ["sleep"] * 4

    out = ok(guide.inst, "jobs", "-Rf", "running", "-L1", "--stats")
    lines = out.splitlines()
    assert lines[0].startswith("2 running, 0 completed, 0 failed, 0 pending")
    i = lines.index(f"{guide.second}:")
    assert re.fullmatch(r"5 running, \d+ completed, 0 failed, \d+ pending", lines[i + 1])
    i = lines.index(f"{guide.first}:")
    assert re.fullmatch(r"2 running, \d+ completed, 0 failed, \d+ pending", lines[i + 1])
    assert f"{guide.second}/{guide.nested}:" not in out


def test_pstree_options(guide):
    out = ok(guide.inst, "pstree", "-p").splitlines()
    assert out == [". .", f"├── {guide.second} batch", "│   ├── 4*[sleep]",
                   f"│   └── {guide.nested} flux", "│       └── 2*[sleep]",
                   f"└── {guide.first} flux", "    └── 2*[sleep]"]
    out = ok(guide.inst, "pstree", "-a")
    # nothing has completed yet (60 s sleeps): pending and running, in job-list's order
    pattern = (r"\.\n├── batch\n│   ├── 16\*\[sleep:PD\]\n│   ├── 4\*\[sleep:R\]\n"
               r"│   └── flux\n│       ├── 18\*\[sleep:PD\]\n│       └── 2\*\[sleep:R\]\n"
               r"└── flux\n    ├── 18\*\[sleep:PD\]\n    └── 2\*\[sleep:R\]\n")
    assert re.fullmatch(pattern, out), out
    out = ok(guide.inst, "pstree", "-x").splitlines()
    assert out[0] == "       JOBID USER     ST NTASKS NNODES  RUNTIME"
    assert re.fullmatch(rf" +{guide.second} root +R +6 +3 +\S+ batch", out[1])
    assert [line.rsplit(" ", 1)[-1] for line in out[1:]].count("sleep") == 8
    out = ok(guide.inst, "pstree", "--details=stats").splitlines()
    assert out[0] == "       JOBID           STATS              RUNTIME"
    assert re.fullmatch(rf" +{guide.second} +PD:\d+ R:5 CD:\d+ F:0 +0:00:\d\d batch", out[1])


def test_proxy_into_child_and_grandchild(guide):
    assert ok(guide.inst, "proxy", guide.second, input="flux getattr size; "
              "flux getattr instance-level\n").split() == ["3", "1"]
    path = f"{guide.second}/{guide.nested}"
    assert ok(guide.inst, "proxy", path, "flux", "getattr", "instance-level") == "2\n"
    out = ok(guide.inst, "proxy", path, "flux", "resource", "list")
    assert re.search(r"allocated +1 +2 ", out), out
    out = ok(guide.inst, "proxy", path, "flux", "jobs", "--stats-only")
    assert re.match(r"2 running, \d+ completed, 0 failed, \d+ pending", out)


def test_cancel_of_a_batch_job_ends_its_subtree(guide):
    path = f"{guide.second}/{guide.nested}"
    pids = [int(ok(guide.inst, "proxy", target, "flux", "getattr", "broker.pid"))
            for target in (guide.second, path)]
    ok(guide.inst, "cancel", guide.second)
    ok(guide.inst, "job", "wait-event", "-t", "60", guide.second, "clean")
    assert wait_dead(pids, timeout=30.0), pids
    assert ok(guide.inst, "pstree").splitlines() == [".", "└── flux", "    └── 2*[sleep]"]
    r = guide.inst.flux("uri", guide.second)
    assert r.returncode == 1 and r.stderr == f"flux-uri: jobid {guide.second} is not running\n"
