"""flux pstree without an instance: the tree built from job lists and printed as
the hierarchies guide shows it (collapsing, ``:PD`` suffixes, ``-p`` ids, ``-x``
details, ``-L``), and the ``-R`` listing of flux jobs with its ``--stats`` lines."""
from __future__ import annotations

import io
import time

import pytest

from cli.cmd_jobs import Recursion, _row_color, instance_stats_line, wants_instance
from cli.cmd_pstree import DETAILS_FORMAT, TreeFormatter, TreeLoader, _root_jobid
from flux.job.info import JobInfo, JobInfoFormat

NOW = time.time()
RUN, SCHED, INACTIVE = 16, 8, 64
_next = [100]


def entry(name, state=RUN, uri=None, **kw):
    _next[0] += 1
    data = {"id": _next[0] * 1000, "userid": 0, "state": state, "name": name, "ntasks": 1,
            "nnodes": 1, "t_submit": NOW - 60, "t_run": NOW - 30 if state != SCHED else 0.0,
            "nodelist": "node0", "ranks": "0", "urgency": 16, "priority": 16}
    if state == INACTIVE:
        data.update(result=1, success=True, waitstatus=0, t_cleanup=NOW - 5,
                    t_inactive=NOW - 4)
    if uri:
        data["annotations"] = {"user": {"uri": uri}}
    data.update(kw)
    return data


class FakeLoader(TreeLoader):
    """Each instance's job list comes from LISTS (by local URI; None is the root),
    filtered by the states asked for, as job-list would."""

    def __init__(self, lists, *args, **kw):
        super().__init__(*args, **kw)
        self.lists = lists
        self.asked = []

    def _list(self, uri, states, results, jobids):
        self.asked.append(uri)
        return [e for e in self.lists.get(uri, []) if e["state"] & states]


def guide_hierarchy():
    """The guide's shape: two batch jobs, one with a nested batch job."""
    a, b, c = "local:///t/a/local", "local:///t/b/local", "local:///t/c/local"
    lists = {
        None: [entry("batch", uri="ssh://host" + a[8:]), entry("flux", uri=b)],
        a: [entry("sleep", SCHED), entry("sleep", SCHED)]
           + [entry("sleep") for _ in range(4)] + [entry("flux", uri=c)]
           + [entry("sleep", INACTIVE) for _ in range(3)],
        b: [entry("sleep", SCHED)] + [entry("sleep") for _ in range(2)]
           + [entry("sleep", INACTIVE)],
        c: [entry("sleep") for _ in range(2)] + [entry("sleep", SCHED)],
    }
    return lists


def render(capsys, lists, all_states=False, parent_ids=False, details=None, extended=False,
           level=999, combine=True, skip=None, root_label=".", style="box"):
    from cli.cmd_jobs import parse_filters

    formatter = TreeFormatter(None, None, all_states, parent_ids, details, None, extended)
    states, results = parse_filters(["pending,running,inactive" if all_states else "running"])
    loader = FakeLoader(lists, formatter, states, results, 1000, level, combine)
    skip_root = formatter.prefix is not None if skip is None else skip
    tree = loader.load(root_label, None, None, skip_root=skip_root)
    capsys.readouterr()
    tree.render(skip_root=skip_root, style=style, truncate=False)
    return capsys.readouterr().out


def test_running_jobs_collapse_into_counts_under_their_instances(capsys):
    assert render(capsys, guide_hierarchy()) == (
        ".\n"
        "├── batch\n"
        "│   ├── 4*[sleep]\n"
        "│   └── flux\n"
        "│       └── 2*[sleep]\n"
        "└── flux\n"
        "    └── 2*[sleep]\n")


def test_no_combine_lists_each_job(capsys):
    out = render(capsys, guide_hierarchy(), combine=False)
    assert "*[" not in out
    assert out.count("sleep\n") == 8


def test_all_states_label_jobs_with_status_but_not_running_instances(capsys):
    assert render(capsys, guide_hierarchy(), all_states=True) == (
        ".\n"
        "├── batch\n"
        "│   ├── 2*[sleep:PD]\n"
        "│   ├── 4*[sleep:R]\n"
        "│   ├── flux\n"
        "│   │   ├── 2*[sleep:R]\n"
        "│   │   └── sleep:PD\n"
        "│   └── 3*[sleep:CD]\n"
        "└── flux\n"
        "    ├── sleep:PD\n"
        "    ├── 2*[sleep:R]\n"
        "    └── sleep:CD\n")


def test_parent_ids_put_job_ids_on_instances_and_the_root_is_dot_dot(capsys):
    from cli.cmd_pstree import _job_class

    lists = guide_hierarchy()
    formatter = TreeFormatter(None, None, False, True, None, None, False)
    root = _job_class()({"id": 0, "name": ".", "state": RUN, "userid": 0})
    root.id = _root_jobid()
    out = render(capsys, lists, parent_ids=True, root_label=formatter.format(root, True))
    ids = [JobInfo(lists[None][0]).id.f58, JobInfo(lists["local:///t/a/local"][6]).id.f58]
    assert out.splitlines()[:4] == [
        ". .", f"├── {ids[0]} batch", "│   ├── 4*[sleep]", f"│   └── {ids[1]} flux"]


def test_extended_details_prefix_every_line_and_skip_the_root(capsys):
    out = render(capsys, guide_hierarchy(), extended=True)
    lines = out.splitlines()
    assert len(lines) == 2 + 4 + 1 + 2 + 2  # batch, 4 sleeps, flux, 2 sleeps, flux, 2 sleeps
    assert lines[0].endswith(" batch") and "root" in lines[0]
    assert lines[1].endswith("├── sleep") and lines[5].endswith("└── flux")
    assert lines[6].endswith("    ├── sleep")
    assert lines[8].endswith(" flux") and lines[10].endswith("└── sleep")
    # the details column is the default details format, right-aligned job ids
    assert lines[0].split()[2:5] == ["R", "1", "1"]


def test_details_header_is_the_details_format_header():
    formatter = TreeFormatter(None, None, False, False, "stats", None, False)
    assert formatter.prefix.header() == "       JOBID           STATS              RUNTIME"
    with pytest.raises(ValueError, match="Unknown --details format 'nope'"):
        TreeFormatter(None, None, False, False, "nope", None, False)
    assert set(DETAILS_FORMAT) == {"default", "resources", "progress", "stats"}


def test_level_limits_descent(capsys):
    out = render(capsys, guide_hierarchy(), level=1)
    assert out == (".\n├── batch\n│   ├── 4*[sleep]\n│   └── flux\n└── flux\n"
                   "    └── 2*[sleep]\n")
    assert render(capsys, guide_hierarchy(), level=0) == ".\n├── batch\n└── flux\n"


def test_ascii_and_compact_styles(capsys):
    lists = {None: [entry("flux", uri="local:///t/x/local"), entry("hostname")],
             "local:///t/x/local": [entry("sleep")]}
    assert render(capsys, lists, style="ascii") == ".\n|-- flux\n|   `-- sleep\n`-- hostname\n"
    assert render(capsys, lists, style="compact").splitlines()[1].startswith("├─")


def test_an_unreachable_instance_shows_no_children(capsys):
    class Unreachable(FakeLoader):
        def _list(self, uri, states, results, jobids):
            if uri is not None:
                raise ConnectionRefusedError(111, "Connection refused")
            return super()._list(uri, states, results, jobids)

    formatter = TreeFormatter(None, None, False, False, None, None, False)
    loader = Unreachable(guide_hierarchy(), formatter, RUN, 0, 1000, 999, True)
    tree = loader.load(".", None, None, skip_root=False)
    tree.render(truncate=False)
    assert capsys.readouterr().out == ".\n├── batch\n└── flux\n"


def test_a_pending_job_reads_pd_only_in_pstree():
    from cli.cmd_pstree import _job_class

    data = entry("sleep", SCHED)
    assert _job_class()(data).status_abbrev == "PD"
    assert _job_class()(entry("sleep")).status_abbrev == "R"
    assert JobInfo(data).status_abbrev != "PD"


# -- flux jobs -R -------------------------------------------------------------------------------


class FakeRecursion(Recursion):
    def __init__(self, lists, stats=None, **kw):
        args = dict(query={}, fields=["id"], max_level=9999, recurse_all=False,
                    stats=stats is not None, threads=None, color=False, out=io.StringIO())
        args.update(kw)
        super().__init__(**args)
        self.lists = lists
        self.stats_by_uri = stats or {}

    def fetch(self, job):
        from flux.uri import JobURI

        uri = JobURI(str(job.uri)).local
        jobs = [JobInfo(e) for e in self.lists.get(uri, [])]
        return job, jobs, self.stats_by_uri.get(uri)


def run_recursion(rec, lists):
    fmt = JobInfoFormat("{id.f58} {name}")
    jobs = [JobInfo(e) for e in lists[None]]
    rec.run(fmt, jobs)
    return rec.out.getvalue()


def test_recursive_listing_prints_each_instance_under_its_job_id_path():
    lists = guide_hierarchy()
    jobs = {k: [JobInfo(e) for e in v] for k, v in lists.items()}
    a, b = jobs[None][0].id.f58, jobs[None][1].id.f58
    c = jobs["local:///t/a/local"][6].id.f58
    out = run_recursion(FakeRecursion(lists), lists)
    assert out.startswith("\n")
    blocks = out[1:].split("\n\n")
    assert blocks[0].splitlines()[0] == f"{a}:"
    assert len(blocks[0].splitlines()) == 1 + 10
    assert blocks[1].splitlines() == [f"{a}/{c}:"] + [f"{j.id.f58} sleep"
                                                     for j in jobs["local:///t/c/local"]]
    assert blocks[2].splitlines()[0] == f"{b}:"
    assert len(blocks) == 3


def test_recursive_level_and_other_users():
    lists = guide_hierarchy()
    out = run_recursion(FakeRecursion(lists, max_level=1), lists)
    assert out.count(":\n") == 2 and "/" not in out
    assert run_recursion(FakeRecursion(lists, max_level=0), lists) == ""
    lists[None][1]["userid"] = 4242
    out = run_recursion(FakeRecursion(lists, max_level=1), lists)
    assert out.count(":\n") == 1
    out = run_recursion(FakeRecursion(lists, max_level=1, recurse_all=True), lists)
    assert out.count(":\n") == 2


def test_recursive_stats_line_under_each_path():
    lists = guide_hierarchy()
    stats = {"job_states": {"run": 5, "sched": 700, "inactive": 296}, "successful": 296,
             "failed": 0, "canceled": 0, "timeout": 0, "inactive_purged": 3}
    assert instance_stats_line(stats) == "5 running, 296 completed, 0 failed, 700 pending"
    rec = FakeRecursion(lists, stats={"local:///t/a/local": stats}, max_level=1)
    lines = run_recursion(rec, lists).splitlines()
    assert lines[2] == "5 running, 296 completed, 0 failed, 700 pending"


def test_instances_are_blue_and_finished_jobs_by_result():
    running = JobInfo(entry("flux", uri="local:///t/a/local"))
    assert _row_color(running) == "\033[01;34m"
    assert _row_color(JobInfo(entry("sleep"))) == ""
    done = JobInfo(entry("flux", INACTIVE, uri="local:///t/a/local"))
    assert _row_color(done) == "\033[01;32m"
    assert wants_instance(["id", "instance.stats"]) and not wants_instance(["id", "uri"])
