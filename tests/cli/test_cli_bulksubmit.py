"""flux bulksubmit: inputs, combinations and substitution (pure), the man page's
examples (dry run), and real submissions (ids, --wait, --log, per-job options)."""
from __future__ import annotations

import math
import os
import subprocess

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from broker.testing import TestInstance, flux_command
from cli import bulk_inputs
from cli.main import main


# -- pure parts -----------------------------------------------------------------------------

def test_split_inputs():
    template, specs = bulk_inputs.split_inputs(
        ["-n", "{}", "echo", "{0}", ":::", "a", "b", ":::+", "c", "::::", "f", "::::+", "-"])
    assert template == ["-n", "{}", "echo", "{0}"]
    assert [(s.items, s.path, s.linked) for s in specs] == [
        (["a", "b"], None, False), (["c"], None, True), (None, "f", False), (None, "-", True)]
    with pytest.raises(ValueError, match=":::: takes exactly one file name"):
        bulk_inputs.split_inputs(["echo", "::::", "a", "b"])
    with pytest.raises(ValueError, match="first input list cannot be linked"):
        bulk_inputs.split_inputs(["echo", ":::+", "a"])


def test_read_list():
    assert bulk_inputs.read_list("a b\nc\n\n", None) == ["a b", "c"]
    assert bulk_inputs.read_list(" a b\n\tc ", "none") == ["a", "b", "c"]
    assert bulk_inputs.read_list("a,b,,c", ",") == ["a", "b", "c"]


def test_combinations_product_and_links():
    assert bulk_inputs.combinations([(["1", "2"], False), (["3", "4"], False)]) == [
        ("1", "3"), ("1", "4"), ("2", "3"), ("2", "4")]
    assert bulk_inputs.combinations([(["1", "2"], False), (["3", "4"], True)]) == [
        ("1", "3"), ("2", "4")]
    # a shorter linked list is cycled
    assert bulk_inputs.combinations([(["1", "2", "3"], False), (["x"], True),
                                     (["p", "q"], False)]) == [
        ("1", "x", "p"), ("1", "x", "q"), ("2", "x", "p"), ("2", "x", "q"),
        ("3", "x", "p"), ("3", "x", "q")]


@given(st.lists(st.tuples(st.lists(st.text(max_size=3), max_size=4), st.booleans()),
                min_size=1, max_size=4))
def test_combinations_count(lists):
    lists[0] = (lists[0][0], False)
    groups = []
    for items, linked in lists:
        if linked:
            groups[-1] = groups[-1] if items else 0
        else:
            groups.append(len(items))
    combos = bulk_inputs.combinations(lists)
    assert len(combos) == math.prod(groups)
    assert all(len(c) == len(lists) for c in combos) or not combos


def test_substitution_attributes_and_defines():
    defines = bulk_inputs.compile_defines(["p2=2**int(x)", "up=x.upper()"])
    out = bulk_inputs.substitute(
        ["{}", "{.%}", "{./}", "{./%}", "{.//}", "{seq}", "{seq1}", "{cc}", "{0.up}"],
        ["/d/e/f.txt"], 4, defines)
    assert out == ["/d/e/f.txt", "/d/e/f", "f.txt", "f", "/d/e", "4", "5", "{cc}", "/D/E/F.TXT"]
    assert bulk_inputs.substitute(["-n", "{.p2}", "{1}{0}"], ["3", "z"], 0, defines) == [
        "-n", "8", "z3"]
    assert bulk_inputs.substitute_cc(["a{cc}", "{cc}"], 7) == ["a7", "7"]
    assert bulk_inputs.substitute_cc(["a{cc}"], None) == ["a"]


@pytest.mark.parametrize("template,inputs,message", [
    (["{1}"], ["a"], "out of range"),
    (["${HOME}"], ["a"], "unknown replacement field 'HOME'"),
    (["{.nope}"], ["a"], "no attribute 'nope'"),
    (["{.bad}"], ["a"], "--define=bad: ZeroDivisionError"),
])
def test_substitution_errors_name_the_argument(template, inputs, message):
    defines = bulk_inputs.compile_defines(["bad=1/0"])
    with pytest.raises(ValueError, match=message):
        bulk_inputs.substitute(template, inputs, 0, defines)


@pytest.mark.parametrize("text", ["nocode", "1x=2", "p=", "p=(("])
def test_bad_defines(text):
    with pytest.raises(ValueError, match="--define"):
        bulk_inputs.compile_defines([text])


# -- the man page's examples, dry run -------------------------------------------------------

def dry(*args, stdin=None):
    r = CliRunner().invoke(main, ["bulksubmit", "--dry-run", *args], input=stdin)
    return r.exit_code, r.output


def test_man_page_examples(tmp_path, monkeypatch):
    assert dry("echo", "{}", stdin="1\n2\n3\n4\n") == (0, "".join(
        f"bulksubmit: submit echo {i}\n" for i in range(1, 5)))
    assert dry("echo", "{}", ":::", "1", "2", "3", "4")[1].splitlines()[-1] == \
        "bulksubmit: submit echo 4"
    assert dry("echo", "{1}", "{0}", ":::", "1", "2", ":::", "3", "4")[1].splitlines() == [
        "bulksubmit: submit echo 3 1", "bulksubmit: submit echo 4 1",
        "bulksubmit: submit echo 3 2", "bulksubmit: submit echo 4 2"]
    assert dry("echo", "{0}", "{1}", ":::", "1", "2", ":::+", "3", "4")[1].splitlines() == [
        "bulksubmit: submit echo 1 3", "bulksubmit: submit echo 2 4"]
    (tmp_path / "inputs").write_text("0\n1\n2\n3\n")
    assert dry("::::", str(tmp_path / "inputs"))[1].splitlines() == [
        f"bulksubmit: submit {i}" for i in range(4)]
    assert dry("--define=p2=2**int(x)", "-n", "{.p2}", "hostname", ":::",
               *map(str, range(5)))[1].splitlines() == [
        f"bulksubmit: submit -n{2 ** i} hostname" for i in range(5)]


def test_mini_dry_run_names_flux_mini():
    """flux-mini(1) in the seeds: ``flux mini bulksubmit --dry-run`` prints ``flux-mini:``."""
    r = CliRunner().invoke(main, ["mini", "bulksubmit", "--dry-run", "echo", "{}", ":::", "1"])
    assert (r.exit_code, r.output) == (0, "flux-mini: submit echo 1\n")


def test_stdin_with_other_inputs_and_separators():
    assert dry("echo", "{0}{1}", "::::", "-", ":::", "x", stdin="a\nb\n")[1].splitlines() == [
        "bulksubmit: submit echo ax", "bulksubmit: submit echo bx"]
    assert dry("--sep=none", "echo", "{}", stdin="a b\tc\n")[1].count("\n") == 3
    assert dry("--sep=,", "echo", "{}", stdin="a,b")[1].splitlines() == [
        "bulksubmit: submit echo a", "bulksubmit: submit echo b"]


def test_cc_is_a_second_pass():
    assert dry("--cc={}", "echo", "{cc}", ":::", "1-2")[1].splitlines() == [
        "bulksubmit: submit --cc=1-2 echo 1", "bulksubmit: submit --cc=1-2 echo 2"]
    assert dry("echo", "x{cc}", ":::", "a")[1] == "bulksubmit: submit echo x\n"


def test_shuffle_keeps_every_job():
    code, out = dry("--shuffle", "echo", "{}", ":::", *map(str, range(20)))
    assert code == 0 and sorted(out.splitlines()) == sorted(
        f"bulksubmit: submit echo {i}" for i in range(20))


def test_usage_errors():
    code, out = dry("-n", "{}", "echo", ":::", "x")
    assert code == 2 and "Invalid value for '-n'" in out and "Usage: flux bulksubmit" in out
    code, out = dry("echo", "{2}", ":::", "a")
    assert code == 1 and "flux-bulksubmit: '{2}': a replacement index is out of range" in out
    code, out = dry("echo", ":::")
    assert code == 1 and "no inputs" in out
    code, out = dry("echo", "::::", "/nonexistent/inputs")
    assert code == 1 and "/nonexistent/inputs: No such file or directory" in out
    r = CliRunner().invoke(main, ["bulksubmit", "--help"])
    assert r.exit_code == 0 and "--define" in r.output and "--cc" in r.output


# -- real submissions -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def inst():
    instance = TestInstance().start()
    yield instance
    instance.stop()


def run(inst, *args, cwd=None, stdin=None):
    return subprocess.run(flux_command() + list(args), env=inst.env, capture_output=True,
                          text=True, cwd=cwd, input=stdin, timeout=120)


def test_submits_one_job_per_input(inst):
    r = run(inst, "bulksubmit", "--urgency={}", "--job-name=bulk{seq1}", "true", ":::",
            "3", "5")
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    assert len(ids) == 2 and all(i.startswith("\u0192") for i in ids)
    out = run(inst, "jobs", "-a", "--count=0", "-no", "{id.f58} {urgency} {name}").stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert rows[ids[0]] == ["3", "bulk1"] and rows[ids[1]] == ["5", "bulk2"]


def test_wait_and_watch(inst):
    r = run(inst, "bulksubmit", "--watch", "sh", "-c", "echo out{0}; exit {0}", ":::", "0", "4")
    assert r.returncode == 4, r.stderr
    lines = r.stdout.splitlines()
    assert [line for line in lines if line.startswith("\u0192")] == lines[:2]  # the ids first
    assert sorted(lines[2:]) == ["out0", "out4"]


def test_log_files_per_copy(inst, tmp_path):
    r = run(inst, "bulksubmit", "--cc=1-2", "--log=job{}.{cc}.id", "true", ":::", "a", "b",
            cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    names = sorted(os.listdir(tmp_path))
    assert names == ["joba.1.id", "joba.2.id", "jobb.1.id", "jobb.2.id"]
    assert all((tmp_path / n).read_text().startswith("\u0192") for n in names)


def test_a_bad_job_stops_the_bulk_before_anything_is_sent(inst):
    def ids() -> set[str]:
        # (job ids only: earlier tests' jobs may still be finishing)
        return set(run(inst, "jobs", "-a", "--count=0", "-n", "-o", "{id}").stdout.split())

    before = ids()
    r = run(inst, "bulksubmit", "-n", "{}", "true", ":::", "1", "0")
    assert r.returncode == 2 and "Invalid value for '-n'" in r.stderr and r.stdout == ""
    r = run(inst, "bulksubmit", "--time-limit={}", "true", ":::", "1m", "soon")
    assert r.returncode == 1 and r.stderr.startswith("flux-bulksubmit: ") and r.stdout == ""
    assert ids() == before


def test_flux_submit_log_and_log_stderr(inst, tmp_path):
    r = run(inst, "submit", "--cc=1-3", "--log=job{cc}.id", "true", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    assert sorted(os.listdir(tmp_path)) == ["job1.id", "job2.id", "job3.id"]
    r = run(inst, "submit", "--log=all", "--log-stderr=errors", "--urgency=40", "true",
            cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == "" and r.stderr == ""
    assert (tmp_path / "all").read_text() == ""
    assert (tmp_path / "errors").read_text().startswith("flux-submit: ")
