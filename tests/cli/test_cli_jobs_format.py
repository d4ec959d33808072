"""flux jobs without an instance: filters, attributes, stats line, the compiled row renderer."""
from __future__ import annotations

import io
import time
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.cmd_jobs import (
    DEFAULT_FORMAT,
    NAMED_FORMATS,
    RowRenderer,
    attrs_for,
    parse_filters,
    print_jobs,
    stats_line,
)
from flux.job.info import JobInfo, JobInfoFormat

NOW = time.time()


def job(i, **kw):
    base = {"id": 1000 + i, "userid": 0, "state": 64, "result": 1, "name": f"job{i}",
            "ntasks": 1, "nnodes": 1, "t_submit": NOW - 100, "t_run": NOW - 50 + i,
            "t_cleanup": NOW - 40 + i, "t_inactive": NOW - 39, "nodelist": "node0",
            "ranks": "0", "success": True, "waitstatus": 0, "urgency": 16, "priority": 16}
    base.update(kw)
    return JobInfo(base)


MIX = [
    job(0),
    job(1, result=2, success=False, waitstatus=256, exception_occurred=False),
    job(2, state=8, result="", t_run=0.0, t_cleanup=0.0, nodelist="", nnodes="",
        annotations={"sched": {"reason_pending": "insufficient resources"}},
        dependencies=["after:ƒ2"]),
    job(3, state=16, result="", t_cleanup=0.0, expiration=NOW + 600),
    job(4, result=4, success=False, exception_occurred=True, exception_type="cancel",
        exception_severity=0, exception_note="bye", t_run=0.0, waitstatus=""),
    job(5, name="a-very-long-job-name", result=8, success=False, exception_occurred=True,
        exception_type="timeout", exception_severity=0, exception_note=""),
]


# -- filters and attributes --------------------------------------------------------

def test_parse_filters():
    assert parse_filters(["pending,running"]) == (2 | 4 | 8 | 16 | 32, 0)
    assert parse_filters(["inactive"]) == (64, 0)
    assert parse_filters(["RUN", "sched"]) == (16 | 8, 0)
    assert parse_filters(["active"]) == (1 | 2 | 4 | 8 | 16 | 32, 0)
    # a result alone selects inactive jobs with that result
    assert parse_filters(["failed,canceled"]) == (64, 2 | 4)
    assert parse_filters(["timeout"]) == (64, 8)
    assert parse_filters(["pending,completed"]) == (2 | 4 | 8 | 64, 1)
    with pytest.raises(ValueError, match="Invalid filter specified: bogus"):
        parse_filters(["running,bogus"])


def test_attrs_for_format_fields():
    fmt = JobInfoFormat(DEFAULT_FORMAT)
    assert attrs_for(fmt.fields, False) == ["userid", "name", "state", "result", "ntasks",
                                            "nnodes", "t_run", "t_cleanup", "nodelist"]
    fmt = JobInfoFormat("{id} {sched.reason_pending} {exception.type} {returncode}")
    assert attrs_for(fmt.fields, True) == ["annotations", "exception_occurred", "exception_type",
                                           "exception_severity", "exception_note", "waitstatus",
                                           "result", "state"]


def test_stats_line():
    stats = {"job_states": {"new": 1, "depend": 1, "priority": 2, "sched": 3, "run": 4,
                            "cleanup": 1, "inactive": 9, "total": 21},
             "successful": 5, "failed": 2, "canceled": 1, "timeout": 1, "inactive_purged": 0}
    # the purged count only once jobs were purged, as the hierarchies guide shows
    assert stats_line(stats) == ("5 running, 5 completed, 4 failed, 7 pending", 12)
    assert stats_line({"job_states": {}, "successful": 3, "inactive_purged": 2}) == \
        ("0 running, 3 completed, 0 failed, 0 pending, 2 inactive purged", 0)
    queued = {**stats, "queues": [{"name": "q", "job_states": {"run": 1}, "successful": 2}]}
    assert stats_line(queued, "q") == ("1 running, 2 completed, 0 failed, 0 pending", 1)
    with pytest.raises(ValueError, match="no stats available for queue nope"):
        stats_line(queued, "nope")


# -- the renderer must print exactly what OutputFormat prints ----------------------

FORMATS = [
    DEFAULT_FORMAT,
    *NAMED_FORMATS.values(),
    "{id} {id.dec} {id.hex} {id.dothex} {id.words} {id.kvs}",
    "{t_submit!D} {t_run!d:%H:%M:%S} {runtime!H} {runtime!F:>10h} {t_remaining!F:h}",
    "{t_inactive!d:%b%d %R::>14} {t_depend!D:h}",
    "{status:<9} {status_abbrev} {state} {state_single} {result:>10h} {result_abbrev}",
    "{returncode} {waitstatus:h} {success} {exception.occurred} {exception.type:>8h}",
    "{annotations} {sched.reason_pending:<25.25+} {user.x:h} {dependencies}",
    "{name:<8.8+} {name:>20W} {urgency:03d} {priority:>4}",
    "{id.f58:>12} {username!s:<8} {userid!r}",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_renderer_matches_outputformat(fmt):
    formatter = JobInfoFormat(fmt)
    fast = RowRenderer(formatter.get_format(include_sort_prefix=False), formatter.formatter())
    with mock.patch("flux.job.info.time.time", return_value=NOW):  # runtime, t_remaining
        for item in MIX:
            assert fast.render(item) == formatter.format(item)


@given(st.lists(st.sampled_from(sorted(JobInfoFormat.headings)), min_size=1, max_size=6),
       st.lists(st.sampled_from(["", ":h", ":>8", ":<6.6", ":>10h", ":^7+", ":W"]),
                min_size=6, max_size=6))
def test_renderer_matches_outputformat_random(fields, specs):
    text = " ".join("{" + f + s + "}" for f, s in zip(fields, specs))
    formatter = JobInfoFormat(text)
    fast = RowRenderer(formatter.get_format(include_sort_prefix=False), formatter.formatter())

    def outcome(render, item):
        # a spec that does not fit the value (precision on an int) must fail the same way
        try:
            return render(item)
        except (ValueError, TypeError) as exc:
            return type(exc)

    with mock.patch("flux.job.info.time.time", return_value=NOW):
        for item in MIX:
            assert outcome(fast.render, item) == outcome(formatter.format, item)


def test_print_jobs_header_sentinels_and_sort():
    out = io.StringIO()
    fmt = JobInfoFormat("sort:-id {id.dec} ?:{queue:>6} +:{name:<4} {status_abbrev}")
    print_jobs(fmt, list(MIX), False, False, out)
    lines = out.getvalue().splitlines()
    # queue is empty for every job, so its column is gone; name widened to fit
    assert lines[0] == "JOBID NAME                 ST"
    assert [line.split()[0] for line in lines[1:]] == [str(1005 - i) for i in range(6)]
    assert lines[1] == "1005 a-very-long-job-name TO"
    out = io.StringIO()
    print_jobs(JobInfoFormat("{id.dec}"), list(MIX), True, False, out)
    assert out.getvalue().splitlines() == [str(1000 + i) for i in range(6)]


def test_print_jobs_color_by_result():
    out = io.StringIO()
    print_jobs(JobInfoFormat("{id.dec}"), list(MIX), True, True, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "\033[01;32m1000\033[0;0m"      # completed: green
    assert lines[1] == "\033[01;31m1001\033[0;0m"      # failed: red
    assert lines[2] == "1002"                          # pending: no color
    assert lines[4] == "\033[37m1004\033[0;0m"         # canceled: gray


def test_print_jobs_nothing_for_no_jobs_without_header():
    out = io.StringIO()
    print_jobs(JobInfoFormat(DEFAULT_FORMAT), [], True, False, out)
    assert out.getvalue() == ""
