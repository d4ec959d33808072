"""flux hostlist (flux-hostlist(1)): the pure set and index operations, the command
on literal hostlists, and the instance, avail, local and job sources on a live
instance with named hosts."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from broker.testing import TestInstance
from cli.cmd_hostlist import combine, limit, select_nth, transform
from cli.main import main

# -- pure ---------------------------------------------------------------------------------


def test_combine_modes():
    a, b = ["n3", "n4", "n5"], ["n1", "n2", "n3", "n4"]
    assert combine([a, b], "concat") == a + b
    assert combine([a, b], "union") == ["n1", "n2", "n3", "n4", "n5"]
    assert combine([a, b], "intersect") == ["n3", "n4"]
    assert combine([a, b], "minus") == ["n5"]
    assert combine([a, b], "xor") == ["n1", "n2", "n5"]
    assert combine([], "union") == [] and combine([a, a], "minus") == []


_hosts = st.lists(st.sampled_from([f"n{i}" for i in range(12)]), max_size=10)


@given(st.lists(_hosts, min_size=1, max_size=4))
def test_set_modes_agree_with_python_sets(lists):
    sets = [set(x) for x in lists]
    assert set(combine(lists, "union")) == set().union(*sets)
    assert set(combine(lists, "intersect")) == set.intersection(*sets)
    assert set(combine(lists, "minus")) == sets[0].difference(*sets[1:])
    for mode in ("union", "intersect", "minus", "xor"):
        out = combine(lists, mode)
        assert len(out) == len(set(out))                 # sets: no repeats
        assert out == sorted(out, key=lambda h: int(h[1:]))


def test_nth_limit_exclude_sort():
    hosts = ["n1", "n2", "n3", "n4", "n5"]
    assert select_nth(hosts, "0,2") == ["n1", "n3"]
    assert select_nth(hosts, "-1") == ["n5"] and select_nth(hosts, "-1-2") == ["n5", "n4"]
    for bad in ("5", "-6", "-0"):
        with pytest.raises(ValueError, match="invalid index"):
            select_nth(hosts, bad)
    assert limit(hosts, 2) == ["n1", "n2"] and limit(hosts, -2) == ["n4", "n5"]
    assert transform(hosts, exclude="0,4") == ["n2", "n3", "n4"]       # indices
    assert transform(hosts, exclude="n[2-3],n9") == ["n1", "n4", "n5"]  # hosts
    assert transform(["b", "a", "c"], sort=True) == ["a", "b", "c"]
    # -x, then -S, then -n, then -L
    assert transform(["n5", "n1", "n3", "n2"], exclude="0", sort=True, nth="0-2",
                     count=-1) == ["n3"]


# -- the command on literal hostlists ----------------------------------------------------

def hl(*args, input=None):
    r = CliRunner().invoke(main, ["hostlist", *args], input=input)
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout.rstrip("\n"), r.stderr


def test_literal_sources_and_output_forms():
    assert hl("foo[1-3]", "bar") == (0, "foo[1-3],bar", "")
    assert hl(input="a b\nc\n") == (0, "a,b,c", "")                # default: stdin
    assert hl("-", input="x[1-2]") == (0, "x[1-2]", "")
    assert hl("-e", "n[1-3]")[1] == "n1 n2 n3"
    assert hl("-e", "-d", "\\n", "n[1-3]")[1] == "n1\nn2\nn3"       # as -d'\n' types it
    assert hl("-e", "-d,", "n[1-3]")[1] == "n1,n2,n3"
    assert hl("-c", "n[1-5]", "m1")[1] == "6"
    assert hl("-n", "-1", "n[1-5]")[1] == "n5"
    assert hl("-L", "2", "n[1-5]")[1] == "n[1-2]"
    assert hl("-x", "0", "n[1-5]")[1] == "n[2-5]"
    assert hl("-u", "n[3-5]", "n[1-4]")[1] == "n[1-5]"
    assert hl("-i", "n[3-5]", "n[1-4]")[1] == "n[3-4]"
    assert hl("-m", "n[1-5]", "n3")[1] == "n[1-2,4-5]"
    assert hl("-X", "n[1-3]", "n[2-4]")[1] == "n[1,4]"
    assert hl("-F", "n[2,4]", "n[1-5]")[1] == "1 3"
    assert hl("-S", "b,a,c")[1] == "a,b,c"


def test_quiet_and_errors():
    assert hl("-q", "-i", "n1", "n2")[:2] == (1, "")
    assert hl("-q", "-i", "n1", "n[1-2]")[:2] == (0, "")
    code, _out, err = hl("-n", "7", "n[1-5]")
    assert code == 1 and "ERROR: invalid index 7" in err
    code, _out, err = hl("-F", "n9", "n[1-5]")
    assert code == 1 and "n9 not found" in err
    code, _out, err = hl("bad[")
    assert code == 1 and "invalid hostlist or source 'bad['" in err
    code, _out, err = hl("-u", "-i", "a", "b")
    assert code == 2 and "only one of" in err
    assert hl("-L", "x", "a")[0] == 2


# -- sources from a live instance ------------------------------------------------------------

@pytest.fixture(scope="module")
def inst():
    i = TestInstance(size=3, args=["--test-hosts=node[0-2]"]).start()
    yield i
    i.stop()


def test_instance_avail_job_and_local(inst):
    def run(*args, **kw):
        r = inst.flux("hostlist", *args, **kw)
        return r.returncode, r.stdout.strip(), r.stderr

    assert run("instance") == (0, "node[0-2]", "")
    assert run("-l") == (0, "node[0-2]", "")            # no FLUX_JOB_ID: the instance
    r = inst.flux("submit", "-N2", "--wait", "true")
    jobid = r.stdout.strip()
    assert run(jobid)[1] == "node[0-1]"
    assert run("-x", "0", jobid)[1] == "node1"
    assert run("--minus", "instance", jobid)[1] == "node2"
    # in a job's tasks, local is the job
    r = inst.flux("run", "-N2", "-l", "flux", "hostlist", "-l")
    assert sorted(r.stdout.splitlines()) == ["0: node[0-1]", "1: node[0-1]"], r.stderr
    assert inst.flux("resource", "drain", "2", "testing").returncode == 0
    try:
        assert run("avail") == (0, "node[0-1]", "")
        assert run("-c", "available")[1] == "2"
    finally:
        inst.flux("resource", "undrain", "2")
    code, _out, err = run("fnosuchjob")
    assert code == 1 and "job fnosuchjob not found" in err
    assert run("-f", "foo1", "foo2")[1] == "foo[1-2]"     # --fallback: a host after all
