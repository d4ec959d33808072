"""Seeing and reaching a job hierarchy (the hierarchies guide, seed 004): ``flux jobs
-R/-L/--stats`` and the ``instance.*`` fields, ``flux pstree`` and its options,
``flux uri``, ``flux proxy``, ``flux -p/-r`` and ``flux.Flux(JOBID/JOBID)``.

One real root instance (8 configured cores) holds, all running:

- ``outer``: a child instance (``flux submit -n1 -c4 flux start ...``) running two
  ``sleep`` jobs and ``inner``, a grandchild instance with two running ``sleep``
  jobs and one held;
- ``flux``: a second child instance with two running ``sleep`` jobs;
- a plain running ``sleep`` job (no instance) and a held one.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest

from flux.job import JobID
from helpers.jobs import start_configured
from helpers.procs import wait_dead

pytestmark = pytest.mark.slow

CONFIG = f"""
[resource]
noverify = true
monitor-force-up = true
[[resource.config]]
hosts = "{socket.gethostname()}"
cores = "0-7"
"""
BLUE, RESET = "\033[01;34m", "\033[0;0m"


def ok(inst, *args, timeout=60.0, **kw):
    r = inst.flux(*args, timeout=timeout, **kw)
    assert r.returncode == 0, (args, r.stdout, r.stderr, inst.stderr_text()[-3000:])
    return r.stdout


def eventually(fn, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            assert value, value
            return value
        time.sleep(0.2)


class Tree:
    """Job ids of the hierarchy (f58)."""


@pytest.fixture(scope="module")
def hier(tmp_path_factory):
    inst = start_configured(tmp_path_factory, CONFIG)
    pids = []
    try:
        t = Tree()
        t.inst = inst
        t.outer = JobID(ok(inst, "submit", "-n1", "-c4", "--job-name=outer", "flux", "start",
                           "sh", "-c",
                           "flux submit --cc=1-2 sleep 300 >/dev/null && "
                           "flux submit -n1 -c2 --job-name=inner flux start sh -c '"
                           "flux submit --cc=1-2 sleep 300 >/dev/null && "
                           "flux submit --urgency=hold sleep 1 >/dev/null && sleep 300' "
                           ">/dev/null && sleep 300").strip()).f58
        t.other = JobID(ok(inst, "submit", "-n1", "-c2", "flux", "start", "sh", "-c",
                           "flux submit --cc=1-2 sleep 300 >/dev/null && sleep 300"
                           ).strip()).f58
        t.sleep = JobID(ok(inst, "submit", "sleep", "300").strip()).f58
        t.held = JobID(ok(inst, "submit", "--urgency=hold", "sleep", "1").strip()).f58

        def running(target, n):
            r = inst.flux("proxy", target, "flux", "jobs", "-n", "-f", "running",
                          "-o", "{id.f58} {name}", timeout=30)
            lines = r.stdout.splitlines() if r.returncode == 0 else []
            return lines if len(lines) == n else None

        outer_jobs = eventually(lambda: running(t.outer, 3))
        t.inner = [line.split()[0] for line in outer_jobs if line.endswith(" inner")][0]
        t.path = f"{t.outer}/{t.inner}"
        eventually(lambda: running(t.other, 2))
        eventually(lambda: running(t.path, 2))
        # the held job of inner is there too
        eventually(lambda: "P" in ok(inst, "proxy", t.path, "flux", "jobs", "-n", "-a",
                                     "-o", "{status_abbrev}").split())
        for target in (t.outer, t.other, t.path):
            pids.append(int(ok(inst, "proxy", target, "flux", "getattr", "broker.pid")))
        yield t
    finally:
        inst.flux("cancel", "--all")
        inst.stop(timeout=60)
        assert wait_dead(pids, timeout=20.0), pids


def test_jobs_recursive_lists_each_instance_under_its_job_id_path(hier):
    out = ok(hier.inst, "jobs", "-R", "-f", "running", "-o", "{id.f58} {name}")
    blocks = out.split("\n\n")
    top = blocks[0].splitlines()
    assert top[0] == "JOBID NAME"
    assert sorted(top[1:]) == sorted([f"{hier.outer} outer", f"{hier.other} flux",
                                      f"{hier.sleep} sleep"])
    paths = [block.splitlines()[0] for block in blocks[1:]]
    # depth first: outer's own jobs, then inner's below them
    assert paths.index(f"{hier.outer}:") + 1 == paths.index(f"{hier.path}:")
    assert sorted(paths) == sorted([f"{hier.outer}:", f"{hier.path}:", f"{hier.other}:"])
    by_path = {block.splitlines()[0]: block.splitlines()[1:] for block in blocks[1:]}
    assert sorted(line.split()[1] for line in by_path[f"{hier.outer}:"]) == \
        ["inner", "sleep", "sleep"]
    assert [line.split()[1] for line in by_path[f"{hier.path}:"]] == ["sleep", "sleep"]
    # the default filter (pending and running) reaches inner's held job
    out = ok(hier.inst, "jobs", "-R", "-n", "-o", "{id.f58} {status_abbrev}")
    inner_block = out.split(f"\n{hier.path}:\n")[1].split("\n\n")[0].splitlines()
    assert sorted(line.split()[1] for line in inner_block) == ["P", "R", "R"]


def test_jobs_level_and_stats_per_instance(hier):
    out = ok(hier.inst, "jobs", "-R", "-f", "running", "-L1", "--stats", "-o", "{id.f58}")
    assert hier.path not in out
    lines = out.splitlines()
    assert re.fullmatch(r"3 running, 0 completed, 0 failed, 1 pending(, \d+ inactive purged)?",
                        lines[0])
    i = lines.index(f"{hier.outer}:")
    assert lines[i + 1] == "3 running, 0 completed, 0 failed, 0 pending"
    i = lines.index(f"{hier.other}:")
    assert lines[i + 1] == "2 running, 0 completed, 0 failed, 0 pending"
    out = ok(hier.inst, "jobs", "-R", "-L0", "-o", "{id.f58}")
    assert ":" not in out
    # --recurse-all implies -R
    assert f"\n{hier.path}:\n" in ok(hier.inst, "jobs", "--recurse-all", "-o", "{id.f58}")


def test_instance_fields_line_from_the_guide(hier):
    fmt = ("{id.f58:<12} {name:<12} {instance.progress!P:>5} {instance.utilization!P:>5} "
           "{instance.gpu_utilization!P:>5h} {instance.stats} {instance.stats.total} "
           "{instance.resources.all.ncores}")
    out = ok(hier.inst, "jobs", "-f", "running", "-o", fmt)
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert out.splitlines()[0].split() == ["JOBID", "NAME", "PROG", "CORE%", "GPU%", "STATS",
                                           "NJOBS", "CORES"]
    assert lines[hier.outer] == (f"{hier.outer:<12} {'outer':<12} {'0%':>5} {'100%':>5} "
                                 f"{'-':>5} PD:0 R:3 CD:0 F:0 3 4")
    assert lines[hier.other] == (f"{hier.other:<12} {'flux':<12} {'0%':>5} {'100%':>5} "
                                 f"{'-':>5} PD:0 R:2 CD:0 F:0 2 2")
    # a job that is no instance has none of these
    assert lines[hier.sleep].split() == [hier.sleep, "sleep", "-"]
    # in a -R listing, the fields of the grandchild come from the grandchild
    out = ok(hier.inst, "jobs", "-R", "-f", "running", "-o", "{id.f58} {instance.stats}")
    assert f"{hier.inner} PD:1 R:2 CD:0 F:0" in out.splitlines()


def test_uri_field_and_instances_are_blue(hier):
    out = ok(hier.inst, "jobs", "-n", "-f", "running", "-o", "{id.f58} {uri} {uri.local}")
    rows = {line.split(" ", 1)[0]: line.split(" ")[1:] for line in out.splitlines()}
    uri, local = rows[hier.outer]
    assert uri.startswith(f"ssh://{socket.gethostname()}/") and uri.endswith("/local")
    assert local == "local://" + uri.split("/", 3)[3].join(["/", ""])
    assert rows[hier.sleep] == ["", ""]
    out = ok(hier.inst, "jobs", "-n", "--color=always", "-f", "running", "-o", "{id.f58}")
    for line in out.splitlines():
        if hier.outer in line or hier.other in line:
            assert line == f"{BLUE}{line[len(BLUE):-len(RESET)]}{RESET}"
        else:
            assert line == hier.sleep
    assert BLUE not in ok(hier.inst, "jobs", "-n", "--color=never", "-o", "{id.f58}")


def _top_order(hier):
    """The root's running jobs' names in the order job-list gives them."""
    return ok(hier.inst, "jobs", "-n", "-f", "running", "-o", "{name}").split()


def _expected_tree(hier, subtrees):
    names = _top_order(hier)
    lines = []
    for i, name in enumerate(names):
        last = i == len(names) - 1
        lines.append(("└── " if last else "├── ") + name)
        for sub in subtrees.get(name, []):
            lines.append(("    " if last else "│   ") + sub)
    return lines


def test_pstree_default_collapses_running_jobs(hier):
    out = ok(hier.inst, "pstree")
    assert out.splitlines() == ["."] + _expected_tree(hier, {
        "outer": ["├── inner", "│   └── 2*[sleep]", "└── 2*[sleep]"],
        "flux": ["└── 2*[sleep]"]})


def test_pstree_parent_ids(hier):
    out = ok(hier.inst, "pstree", "-p").splitlines()
    assert out[0] == ". ."
    assert f"├── {hier.inner} inner" in "\n".join(out)
    for name, jobid in (("outer", hier.outer), ("flux", hier.other)):
        assert any(line.endswith(f"── {jobid} {name}") for line in out)
    assert any(line.endswith("── sleep") for line in out)  # not an instance: no id


def test_pstree_all_states_have_status_suffixes(hier):
    out = ok(hier.inst, "pstree", "-a")
    names = _top_order(hier)
    lines = out.splitlines()
    assert lines[0] == "."
    assert "├── sleep:PD" in lines  # the held job at the root
    assert any(line.endswith("── sleep:R") for line in lines)
    i = next(i for i, line in enumerate(lines) if line.endswith("── inner"))
    assert [line[8:] for line in lines[i + 1:i + 3]] == ["├── sleep:PD", "└── 2*[sleep:R]"]
    assert "inner:R" not in out and "outer" in names


def test_pstree_extended_and_details(hier):
    out = ok(hier.inst, "pstree", "-x").splitlines()
    assert out[0].split() == ["JOBID", "USER", "ST", "NTASKS", "NNODES", "RUNTIME"]
    assert not any(line.endswith(" .") for line in out)  # the root is skipped
    outer = next(line for line in out if line.split()[0] == hier.outer)
    assert outer.endswith(" outer") and " R " in outer
    inner = next(line for line in out if line.split()[0] == hier.inner)
    assert inner.endswith("├── inner")
    assert sum(line.endswith("── sleep") for line in out) == 6
    assert out[1].startswith(" ") and len(out[1].split()[0]) <= 12

    out = ok(hier.inst, "pstree", "--details=stats").splitlines()
    assert out[0] == "       JOBID           STATS              RUNTIME"
    outer = next(line for line in out if line.split()[0] == hier.outer)
    assert re.fullmatch(rf" *{hier.outer} +PD:0 R:3 CD:0 F:0 +\d:\d\d:\d\d outer", outer)
    inner = next(line for line in out if line.split()[0] == hier.inner)
    assert "PD:1 R:2 CD:0 F:0" in inner

    out = ok(hier.inst, "pstree", "-d", "progress", "-n").splitlines()
    outer = next(line for line in out if line.split()[0] == hier.outer)
    assert outer.split()[1:5] == ["1", "3", "0%", "100%"]
    out = ok(hier.inst, "pstree", "-d", "resources").splitlines()
    assert out[0].split() == ["JOBID", "NODES", "USED", "CORES", "USED", "GPUS", "USED"]
    outer = next(line for line in out if line.split()[0] == hier.outer)
    assert outer.split()[1:7] == ["1", "1", "4", "4", "0", "0"]

    r = hier.inst.flux("pstree", "-d", "nosuch")
    assert r.returncode == 1 and "Unknown --details format 'nosuch'" in r.stderr


def test_pstree_skip_root_no_and_level(hier):
    out = ok(hier.inst, "pstree", "-x", "--skip-root=no").splitlines()
    assert re.fullmatch(r" +\. \S+ +R +1 +1 +\S+ \.", out[1])
    assert any(line.endswith("├── outer") or line.endswith("└── outer") for line in out)
    assert ok(hier.inst, "pstree", "-L1").splitlines() == ["."] + _expected_tree(hier, {
        "outer": ["├── inner", "└── 2*[sleep]"], "flux": ["└── 2*[sleep]"]})
    assert ok(hier.inst, "pstree", "-L0").splitlines() == ["."] + _expected_tree(hier, {})


def test_pstree_in_a_child_names_the_root_by_its_job(hier):
    out = ok(hier.inst, "proxy", hier.outer, "flux", "pstree", "-p").splitlines()
    assert out[0] == f"{hier.outer} outer"
    out = ok(hier.inst, "proxy", hier.path, "flux", "pstree", "-a").splitlines()
    assert out == ["inner", "├── sleep:PD", "└── 2*[sleep:R]"]


def test_uri_resolves_job_ids_and_paths(hier):
    remote = ok(hier.inst, "uri", hier.outer).strip()
    assert remote.startswith("ssh://")
    local = ok(hier.inst, "uri", "--local", hier.outer).strip()
    assert local == "local://" + remote.split("/", 3)[3].join(["/", ""])
    assert ok(hier.inst, "uri", "--remote", local).strip() == remote
    assert ok(hier.inst, "uri", f"jobid:{hier.outer}").strip() == remote
    path_uri = ok(hier.inst, "uri", "--local", hier.path).strip()
    assert path_uri.startswith("local://") and path_uri != local
    assert ok(hier.inst, "proxy", path_uri, "flux", "getattr", "jobid") == f"{hier.inner}\n"
    assert ok(hier.inst, "uri", local).strip() == local
    # FLUX_URI_RESOLVE_LOCAL makes the local form the default
    assert ok(hier.inst, "uri", hier.outer,
              env={"FLUX_URI_RESOLVE_LOCAL": "1"}).strip() == local
    # the instance-level of what each names
    assert ok(hier.inst, "proxy", hier.path, "flux", "getattr", "instance-level") == "2\n"


@pytest.mark.parametrize("target, message", [
    ("ƒ1", "jobid ƒ1 not found"),
    ("HELD", "jobid HELD is not running"),
    ("SLEEP", "URI not found for job SLEEP"),
    ("OUTER/ƒ1", "jobid ƒ1 not found"),
    ("SLEEP/ƒ1", "URI not found for job SLEEP"),
    ("not-a-job", "not-a-job is not a valid jobid"),
])
def test_bad_targets_are_named_and_exit_1(hier, target, message):
    subst = {"HELD": hier.held, "SLEEP": hier.sleep, "OUTER": hier.outer}
    for key, value in subst.items():
        target = target.replace(key, value)
        message = message.replace(key, value)
    r = hier.inst.flux("uri", target)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"flux-uri: {message}\n"
    r = hier.inst.flux("proxy", target, "true")
    assert r.returncode == 1
    assert r.stderr == f"flux-proxy: Unable to resolve {target} to a URI: {message}\n"


def test_proxy_runs_a_command_or_a_shell_in_the_child(hier):
    assert ok(hier.inst, "proxy", hier.outer, "flux", "getattr", "instance-level") == "1\n"
    assert ok(hier.inst, "proxy", hier.outer, "flux", "getattr", "jobid") == f"{hier.outer}\n"
    out = ok(hier.inst, "proxy", hier.path, "flux", "jobs", "--stats-only")
    assert out.startswith("2 running, 0 completed, 0 failed, 1 pending")
    # no command: a shell with FLUX_URI pointing at the proxy
    out = ok(hier.inst, "proxy", hier.path,
             input='flux getattr instance-level; echo "$FLUX_URI"\n')
    level, uri = out.splitlines()
    assert level == "2" and uri.startswith("local://") and uri.endswith("/local")
    r = hier.inst.flux("proxy", hier.outer, input="exit 3\n")
    assert r.returncode == 3
    # a URI works as well as a job id
    local = ok(hier.inst, "uri", "--local", hier.other).strip()
    assert ok(hier.inst, "proxy", local, "flux", "getattr", "jobid") == f"{hier.other}\n"


def test_parent_and_root_options(hier):
    def level(*args):
        return ok(hier.inst, "proxy", hier.path, "flux", *args, "getattr",
                  "instance-level").strip()

    assert level() == "2"
    assert level("-p") == "1"
    assert level("--parent") == "1"
    assert level("-pp") == "0"
    assert level("-p", "-p") == "0"
    assert level("-ppp") == "0"  # above the root is the root
    assert level("-r") == "0"
    assert level("--root") == "0"
    # the parent is the job's instance: outer, whose jobid is set
    assert ok(hier.inst, "proxy", hier.path, "flux", "-p", "getattr", "jobid") == \
        f"{hier.outer}\n"
    out = ok(hier.inst, "proxy", hier.path, "flux", "-p", "jobs", "-n", "-o", "{name}")
    assert sorted(out.split()) == ["inner", "sleep", "sleep"]
    # a -p command's KVS namespace is the job's own in its parent (parent-kvs-namespace)
    out = ok(hier.inst, "proxy", hier.path, "flux", "-p", "kvs", "ls")
    assert set(out.split()) >= {"exec", "output"} and "job" not in out.split()
    assert ok(hier.inst, "proxy", hier.path, "flux", "kvs", "ls").split() != out.split()
    # at the root, -p changes nothing
    assert ok(hier.inst, "-p", "getattr", "instance-level") == "0\n"
    # help mentions it
    assert "--parent" in ok(hier.inst, "--help")


def test_python_flux_resolves_a_job_id_path(hier):
    code = ("import flux, sys\n"
            "print(flux.Flux(sys.argv[1]).attr_get('instance-level'))\n"
            "print(flux.Flux(sys.argv[2]).attr_get('jobid'))\n")
    r = subprocess.run([sys.executable, "-c", code, hier.path, hier.outer],
                       env=hier.inst.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["2", hier.outer]
    code = ("import flux, sys\n"
            "try:\n"
            "    flux.Flux(sys.argv[1])\n"
            "except OSError as exc:\n"
            "    print(exc.errno, exc.strerror)\n")
    r = subprocess.run([sys.executable, "-c", code, f"{hier.outer}/ƒ1"],
                       env=hier.inst.env, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "2 jobid ƒ1 not found", r.stderr


def test_flux_uri_env_that_is_a_job_id_is_a_clear_error(hier):
    env = dict(hier.inst.env)
    env["FLUX_URI"] = hier.outer
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "flux"), "getattr",
                        "size"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert f"FLUX_URI={hier.outer} is not a Flux URI" in r.stderr


def test_pstree_of_named_jobs_and_label_formats(hier):
    # named jobs: their trees alone, the root skipped, filters do not apply
    out = ok(hier.inst, "pstree", hier.outer).splitlines()
    assert out == ["outer", "├── inner", "│   └── 2*[sleep]", "└── 2*[sleep]"]
    r = hier.inst.flux("pstree", "-a", hier.other)
    assert r.returncode == 0 and r.stdout.splitlines() == ["flux", "└── 2*[sleep:R]"]
    assert "filtering options ignored with jobid list" in r.stderr
    r = hier.inst.flux("pstree", "ƒ1")
    assert r.returncode == 0 and "JobID ƒ1 unknown" in r.stderr
    # -o changes every label, --parent-label only the instances'
    out = ok(hier.inst, "pstree", "-o", "{name}/{ntasks}", hier.other).splitlines()
    assert out == ["flux/1", "└── 2*[sleep/1]"]
    out = ok(hier.inst, "pstree", "--parent-label", "[{name}]", "--ascii",
             hier.other).splitlines()
    assert out == ["[flux]", "`-- 2*[sleep]"]
    out = ok(hier.inst, "pstree", "-X", hier.other).splitlines()
    assert out == ["flux", "├── sleep", "└── sleep"]
    r = hier.inst.flux("pstree", "--ascii", "-C")
    assert r.returncode == 2 and "Choose only one of --ascii, --compact" in r.stderr


def test_recursive_listing_colors_instances_at_every_level(hier):
    out = ok(hier.inst, "jobs", "-R", "-n", "--color=always", "-f", "running",
             "-o", "{id.f58}")
    blue = [line[len(BLUE):-len(RESET)] for line in out.splitlines() if line.startswith(BLUE)]
    assert sorted(blue) == sorted([hier.outer, hier.other, hier.inner])


def test_ancestor_paths_as_flux_open_reads_them(hier):
    code = ("import flux, sys\n"
            "for url in sys.argv[1:]:\n"
            "    h = flux.Flux(url)\n"
            "    print(url, h.attr_get('instance-level'))\n"
            "    h.close()\n")
    out = ok(hier.inst, "proxy", hier.path, sys.executable, "-c", code,
             ".", "..", "../..", "../../..", "/")
    assert out.splitlines() == [". 2", ".. 1", "../.. 0", "../../.. 0", "/ 0"]
    r = hier.inst.flux("proxy", hier.path, sys.executable, "-c", code, "../x")
    assert r.returncode == 1 and "invalid URI path element 'x'" in r.stderr
    # in a job id path, .. is the parent of the instance reached so far
    assert ok(hier.inst, "uri", "--local", f"{hier.path}/..").strip() == \
        ok(hier.inst, "uri", "--local", hier.outer).strip()
