"""flux submit/run option handling without an instance: parsers, env rules, jobspecs, --dry-run."""
from __future__ import annotations

import json
import os
import time
from datetime import datetime

import pytest
from click.testing import CliRunner

from cli.job_submit import copies
from cli.main import main
from cli.submitopts import (
    SubmitArgs,
    apply_env_rules,
    build_jobspec,
    check_output_template,
    parse_begin_time,
    parse_flags,
    parse_setattr,
    parse_setopt,
    parse_urgency,
    substitute_cc,
)


def run(*args, env=None, input=None):
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def dry(*args, env=None):
    r = run("submit", "--dry-run", *args, env=env)
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()]


# -- value parsers -------------------------------------------------------------------

def test_parse_urgency_names_and_numbers():
    assert parse_urgency("hold") == 0
    assert parse_urgency("DEFAULT") == 16
    assert parse_urgency("Expedite") == 31
    assert parse_urgency("7") == 7
    assert parse_urgency("40") == 40   # range is the job manager's to check
    with pytest.raises(ValueError, match="invalid urgency 'soon'"):
        parse_urgency("soon")


def test_parse_setattr_json_string_and_file(tmp_path):
    assert parse_setattr("user.x=1") == ("user.x", 1)
    assert parse_setattr("foo=[1,\"a\"]") == ("foo", [1, "a"])
    assert parse_setattr("foo=bar baz") == ("foo", "bar baz")
    assert parse_setattr("foo=") == ("foo", "")
    path = tmp_path / "v.json"
    path.write_text('{"a": {"b": 2}}')
    assert parse_setattr(f"^user.data={path}") == ("user.data", {"a": {"b": 2}})
    with pytest.raises(ValueError, match="missing value for attribute 'foo'"):
        parse_setattr("foo")
    with pytest.raises(ValueError, match="empty attribute name"):
        parse_setattr("=3")
    with pytest.raises(ValueError, match=r"user.data: cannot read .*nope.json"):
        parse_setattr(f"^user.data={tmp_path / 'nope.json'}")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"user.data: .*bad.json is not valid JSON"):
        parse_setattr(f"^user.data={tmp_path / 'bad.json'}")


def test_parse_setopt_defaults_to_one():
    assert parse_setopt("verbose") == ("verbose", 1)
    assert parse_setopt("cpu-affinity=off") == ("cpu-affinity", "off")
    assert parse_setopt("x.y={\"a\":true}") == ("x.y", {"a": True})
    with pytest.raises(ValueError, match="empty option name"):
        parse_setopt("=1")


def test_parse_flags():
    assert parse_flags(None) == 0
    assert parse_flags("waitable") == 4
    assert parse_flags("debug, novalidate") == 2 | 8
    with pytest.raises(ValueError, match="unknown flag 'fast'"):
        parse_flags("waitable,fast")


def test_parse_begin_time_forms():
    now = 1_700_000_000.0
    assert parse_begin_time("+1m", now) == now + 60
    assert parse_begin_time("1700000123.5", now) == 1700000123.5
    assert parse_begin_time("2024-01-02T03:04:05", now) == datetime(2024, 1, 2, 3, 4, 5).timestamp()
    when = parse_begin_time("23:59", now)
    assert 0 < when - now <= 86400
    assert datetime.fromtimestamp(when).strftime("%H:%M") == "23:59"
    # natural-language dates, as flux-mini(1)'s examples (parsedatetime)
    assert parse_begin_time("in an hour", now) == pytest.approx(now + 3600, abs=1)
    assert parse_begin_time("2030-06-21 8am", now) == datetime(2030, 6, 21, 8).timestamp()
    tomorrow = datetime.fromtimestamp(now).date().toordinal() + 1
    assert datetime.fromtimestamp(parse_begin_time("tomorrow", now)).date().toordinal() == tomorrow
    for bad, why in (("+soon", "invalid duration 'soon'"), ("whenever", "cannot parse 'whenever'"),
                     ("25:00", "invalid time of day"), ("-5", "invalid timestamp .-5.")):
        with pytest.raises(ValueError, match=why):
            parse_begin_time(bad, now)


def test_output_template_encodings_checked():
    check_output_template("out-{{id}}.{{jobid.dec}}.{{id.f58}}.{{name}}", "--output")
    with pytest.raises(ValueError, match=r"--error: unknown job id encoding 'oct' in '\{\{id.oct\}\}'"):
        check_output_template("err-{{id.oct}}", "--error")


# -- environment rules -----------------------------------------------------------------

BASE = {"PATH": "/bin", "HOME": "/home/u", "OMP_A": "1", "OMP_B": "2", "FLUX_X_PATH": "p"}


def test_env_default_is_a_copy():
    env = apply_env_rules([], BASE)
    assert env == BASE and env is not BASE


def test_env_remove_glob_and_regex():
    assert set(apply_env_rules(["-OMP_*"], BASE)) == {"PATH", "HOME", "FLUX_X_PATH"}
    assert set(apply_env_rules(["-/^OMP_[AB]$/"], BASE)) == {"PATH", "HOME", "FLUX_X_PATH"}
    assert set(apply_env_rules(["-/PATH/"], BASE)) == {"HOME", "OMP_A", "OMP_B"}  # unanchored
    assert apply_env_rules(["-*"], BASE) == {}


def test_env_patterns_copy_only_missing():
    env = apply_env_rules(["-*", "PATH", "FLUX_*_PATH", "/^OMP/", "NOPE*"], BASE)
    assert env == {"PATH": "/bin", "FLUX_X_PATH": "p", "OMP_A": "1", "OMP_B": "2"}
    env = apply_env_rules(["-*", "PATH=/usr/bin", "PATH"], BASE)
    assert env == {"PATH": "/usr/bin"}   # already set: the pattern does not overwrite


def test_env_set_with_substitution_in_order():
    env = apply_env_rules(["-*", "PATH=/bin", "PATH=$PATH:/usr/bin", "A=${HOME}/x", "B=$$5"],
                          BASE)
    assert env == {"PATH": "/bin:/usr/bin", "A": "/home/u/x", "B": "$5"}


def test_env_set_errors_name_the_rule():
    with pytest.raises(ValueError, match=r"--env: Variable 'NOPE' not found in A=\$NOPE"):
        apply_env_rules(["A=$NOPE"], BASE)
    with pytest.raises(ValueError, match=r"--env: Unable to substitute A=\$\{HOME:-x\}"):
        apply_env_rules(["A=${HOME:-x}"], BASE)
    with pytest.raises(ValueError, match="env rule '=x': empty variable name"):
        apply_env_rules(["=x"], BASE)
    with pytest.raises(ValueError, match="invalid regex"):
        apply_env_rules(["-/[/"], BASE)


def test_env_rule_file(tmp_path):
    path = tmp_path / "envfile"
    path.write_text("-*\n# keep the OpenMP ones\nOMP*\n\nFOO=bar\nBAR=${FOO}/baz\n")
    env = apply_env_rules([f"^{path}"], BASE)
    assert env == {"OMP_A": "1", "OMP_B": "2", "FOO": "bar", "BAR": "bar/baz"}
    with pytest.raises(ValueError, match=r"env rule '\^/nonexistent/x': cannot read"):
        apply_env_rules(["^/nonexistent/x"], BASE)
    loop = tmp_path / "loop"
    loop.write_text(f"^{loop}\n")
    with pytest.raises(ValueError, match="nested more than 16 deep"):
        apply_env_rules([f"^{loop}"], BASE)


def test_env_options_apply_in_command_line_order():
    env = {"KEEP": "k", "DROP": "d"}
    [js] = dry("--env-remove=*", "--env=KEEP", "--env=X=$KEEP-1", "--env-remove=KEEP",
               "--env=KEEP=again", "true", env=env)
    got = js["attributes"]["system"]["environment"]
    assert got == {"X": "k-1", "KEEP": "again"}
    # the opposite order of the same options gives another environment
    [js] = dry("--env=KEEP=again", "--env-remove=KEEP", "--env-remove=*", "true", env=env)
    assert js["attributes"]["system"]["environment"] == {}


# -- jobspecs ---------------------------------------------------------------------

def test_jobspec_shape_and_attributes(tmp_path):
    [js] = dry("-n4", "-c2", "-g1", "-N2", "-t", "1.5m", "--job-name=myjob", "--queue=batch",
               f"--cwd={tmp_path}", "--dependency=afterok:ƒ2", "--setattr=user.tag=\"x\"",
               "-S", "system.exec.test.run_duration=0.1", "-o", "verbose", "--output=o-{{id}}",
               "--error=e-{{id.dec}}", "-l", "myapp", "arg1", "--not-an-option")
    node = js["resources"][0]
    assert node["type"] == "node" and node["count"] == 2
    slot = node["with"][0]
    assert slot["type"] == "slot" and slot["count"] == 2
    assert {c["type"]: c["count"] for c in slot["with"]} == {"core": 2, "gpu": 1}
    assert js["tasks"][0]["command"] == ["myapp", "arg1", "--not-an-option"]
    system = js["attributes"]["system"]
    assert system["duration"] == 90.0
    assert system["job"]["name"] == "myjob"
    assert system["queue"] == "batch"
    assert system["cwd"] == str(tmp_path)
    assert system["dependencies"] == [{"scheme": "afterok", "value": "ƒ2"}]
    assert system["exec"] == {"test": {"run_duration": 0.1}}
    opts = system["shell"]["options"]
    assert opts["verbose"] == 1
    assert opts["output"]["stdout"] == {"type": "file", "path": "o-{{id}}", "label": True}
    assert opts["output"]["stderr"]["path"] == "e-{{id.dec}}"
    assert js["attributes"]["user"]["tag"] == "x"


def test_jobspec_defaults():
    [js] = dry("hostname")
    assert js["resources"] == [{"type": "slot", "count": 1, "label": "task",
                                "with": [{"type": "core", "count": 1}]}]
    system = js["attributes"]["system"]
    assert system["duration"] == 0
    assert system["cwd"] == os.getcwd()
    assert "dependencies" not in system


def test_begin_time_becomes_a_dependency():
    before = time.time()
    [js] = dry("--begin-time=+1h", "true")
    [dep] = js["attributes"]["system"]["dependencies"]
    assert dep["scheme"] == "begin-time"
    assert before + 3600 <= float(dep["value"]) <= time.time() + 3600


@pytest.mark.parametrize("args, message", [
    (["-n1", "-N2", "true"], "node count must not be greater than task count"),
    (["-t", "soon", "true"], "--time-limit: invalid Flux standard duration 'soon'"),
    (["--dependency=nocolon", "true"], "invalid dependency URI 'nocolon'"),
    (["--setattr=novalue", "true"], "missing value for attribute 'novalue'"),
    (["--env=A=$NOPE_NOPE", "true"], "--env: Variable 'NOPE_NOPE' not found in A=$NOPE_NOPE"),
    (["--output={{id.oct}}", "true"], "unknown job id encoding 'oct'"),
    (["--flags=fast", "true"], "unknown flag 'fast'"),
    (["-x", "true"], "exclusive can only be set with a node count"),
    (["--begin-time=someday", "true"], "--begin-time: cannot parse 'someday'"),
])
def test_bad_options_exit_1_naming_the_problem(args, message):
    for cmd in ("submit", "run"):
        r = run(cmd, "--dry-run", *args)
        assert r.exit_code == 1, r.output
        assert r.stderr.startswith(f"flux-{cmd}: ") and message in r.stderr


@pytest.mark.parametrize("args", [["-n", "0", "true"], ["-n", "two", "true"],
                                  ["--urgency=soon", "true"], [], ["--cc=1", "--bcc=2", "true"],
                                  ["--cc=1-", "true"]])
def test_usage_errors_exit_2(args):
    r = run("submit", "--dry-run", *args)
    assert r.exit_code == 2, r.output


def test_run_has_no_cc_option():
    assert run("run", "--dry-run", "--cc=1-2", "true").exit_code == 2


# -- --cc / --bcc ------------------------------------------------------------------

def test_cc_sets_flux_job_cc_per_copy():
    specs = dry("--cc=1-3", "myapp")
    assert [s["attributes"]["system"]["environment"]["FLUX_JOB_CC"] for s in specs] == \
        ["1", "2", "3"]
    assert all(s["tasks"][0]["command"] == ["myapp"] for s in specs)


def test_bcc_copies_without_flux_job_cc():
    specs = dry("--bcc=0,5", "myapp")
    assert len(specs) == 2
    assert all("FLUX_JOB_CC" not in s["attributes"]["system"]["environment"] for s in specs)


def test_cc_substitutes_in_command_and_options():
    specs = dry("--cc=2-3", "--job-name=job{cc}", "--setattr=user.i={cc}",
                "--output=out.{cc}", "echo", "in{cc}.txt")
    assert [s["tasks"][0]["command"] for s in specs] == [["echo", "in2.txt"], ["echo", "in3.txt"]]
    assert [s["attributes"]["system"]["job"]["name"] for s in specs] == ["job2", "job3"]
    assert [s["attributes"]["user"]["i"] for s in specs] == [2, 3]
    assert [s["attributes"]["system"]["shell"]["options"]["output"]["stdout"]["path"]
            for s in specs] == ["out.2", "out.3"]


def test_cc_without_substitution_is_left_alone():
    [js] = dry("echo", "{cc}")
    assert js["tasks"][0]["command"] == ["echo", "{cc}"]


def test_copies_reuses_one_dict():
    spec = {"attributes": {"system": {}}}
    seen = [(id(d), d["attributes"]["system"]["environment"]["FLUX_JOB_CC"])
            for d in copies(spec, [4, 5], True)]
    assert seen == [(id(spec), "4"), (id(spec), "5")]
    assert list(copies(spec, None, True)) == [spec]
    assert substitute_cc("a{cc}b{cc}{x}", 7) == "a7b7{x}"


def test_submit_args_with_cc_and_uses_cc():
    args = SubmitArgs(command=["a"], environ={})
    assert not args.uses_cc()
    args = SubmitArgs(command=["a"], setopts=["x={cc}"], environ={})
    assert args.uses_cc()
    assert args.with_cc(9).setopts == ["x=9"]
    assert build_jobspec(args.with_cc(9)).jobspec["attributes"]["system"]["shell"][
        "options"]["x"] == 9


def test_tasks_per_node_places_that_many_tasks_on_each_node():
    # newer flux-run(1)'s --tasks-per-node N, with -N: N tasks on every node
    (js,) = dry("-N2", "--tasks-per-node=3", "true")
    node = js["resources"][0]
    assert node["type"] == "node" and node["count"] == 2
    assert node["with"][0]["count"] == 3             # slots (tasks) per node
    r = run("run", "--tasks-per-node=2", "true")
    assert r.exit_code == 2 and "--tasks-per-node requires -N" in r.output
    r = run("run", "-N2", "-n4", "--tasks-per-node=2", "true")
    assert r.exit_code == 2 and "cannot be used together" in r.output
