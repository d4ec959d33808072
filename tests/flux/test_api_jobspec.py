"""flux.job.Jobspec / JobspecV1 and flux.job._utils as a user script calls them.

Validation leniency (as Flux's), ``unbuffered``, ``apply_options`` with
every keyword, ``from_submit``/``from_alloc``/``from_batch``, and the
option rules of ``flux.job._utils`` (``BatchConfig``, ``decode_signal``).
Plugin-driven behaviour uses real plugin files in a temporary
FLUX_CLI_PLUGINPATH.
"""
from __future__ import annotations

import argparse
import copy
import os
import resource
import signal
import stat
import textwrap
from types import SimpleNamespace

import pytest

from flux.job._utils import BatchConfig, decode_signal
from flux.job.Jobspec import Jobspec, JobspecV1, validate_jobspec


@pytest.fixture(autouse=True)
def no_site_plugins(monkeypatch, tmp_path):
    """No CLI plugins unless a test installs some (system dirs ignored)."""
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", "")
    monkeypatch.delenv("FLUX_CLI_PLUGINPATH", raising=False)


def plugin_dir(monkeypatch, tmp_path, source: str):
    d = tmp_path / "plugins"
    d.mkdir(exist_ok=True)
    (d / "site.py").write_text(textwrap.dedent(source))
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", str(d))
    return d


def doc(**changes):
    base = {"version": 1,
            "resources": [{"type": "slot", "count": 2, "label": "task",
                           "with": [{"type": "core", "count": 1}]}],
            "tasks": [{"command": ["hostname"], "slot": "task", "count": {"per_slot": 1}}],
            "attributes": {"system": {"duration": 0}}}
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if key == "slot":
            out["tasks"][0]["slot"] = value
        elif key == "count":
            out["tasks"][0]["count"] = value
        else:
            out[key] = value
    return out


def opts(js):
    return js.jobspec["attributes"]["system"].get("shell", {}).get("options", {})


# ------------------------------------------------------------------ validation

def test_task_slot_naming_no_slot_label_is_accepted():
    spec = doc(slot="foo")
    assert validate_jobspec(spec) is True
    assert validate_jobspec(spec, require_version=1) is True
    assert JobspecV1(**spec).tasks[0]["slot"] == "foo"
    Jobspec(**spec)   # canonical rules too


def test_count_total_above_the_slot_count_is_accepted():
    spec = doc(count={"total": 128})
    assert validate_jobspec(spec, require_version=1) is True
    assert JobspecV1(**spec).tasks[0]["count"] == {"total": 128}


def test_attributes_null_is_a_type_error():
    spec = doc(attributes=None)
    for call in (lambda: validate_jobspec(spec), lambda: validate_jobspec(spec, 1),
                 lambda: JobspecV1(**spec),
                 lambda: JobspecV1(spec["resources"], spec["tasks"], None),
                 lambda: Jobspec(spec["resources"], spec["tasks"], None)):
        with pytest.raises(TypeError) as info:
            call()
        assert str(info.value) == "attributes must be a mapping"


def test_attributes_left_out_still_get_the_default():
    spec = doc()
    js = JobspecV1(spec["resources"], spec["tasks"])
    assert js.attributes == {"system": {"duration": 0}}


# ------------------------------------------------------------------ unbuffered

def test_unbuffered_property_sets_and_clears_the_shell_options():
    js = JobspecV1.from_command(["a"], environment={})
    assert js.unbuffered is False
    js.unbuffered = True
    assert js.unbuffered is True
    assert opts(js) == {"output": {"stdout": {"buffer": {"type": "none"}},
                                   "stderr": {"buffer": {"type": "none"}},
                                   "batch-timeout": 0.05},
                        "input": {"batch-timeout": 0.0}}
    js.unbuffered = False
    assert js.unbuffered is False
    assert "shell" not in js.attributes["system"]


def test_unbuffered_false_keeps_a_batch_timeout_the_user_changed():
    js = JobspecV1.from_command(["a"], environment={}, unbuffered=True)
    js.setattr_shell_option("output.batch-timeout", 0.5)
    js.setattr_shell_option("output.stdout.label", True)
    js.unbuffered = False
    assert opts(js) == {"output": {"batch-timeout": 0.5, "stdout": {"label": True}}}


@pytest.mark.parametrize("value", [1, "yes", None, 0.0])
def test_unbuffered_takes_only_a_bool(value):
    js = JobspecV1.from_command(["a"], environment={})
    with pytest.raises(TypeError, match="^unbuffered must be True or False$"):
        js.unbuffered = value


@pytest.mark.parametrize("factory", [
    lambda: JobspecV1.from_command(["a"], unbuffered=True),
    lambda: JobspecV1.from_nest_command(["a"], unbuffered=True),
    lambda: JobspecV1.from_batch_command("#!/bin/sh\n", "j", unbuffered=True),
    lambda: JobspecV1.per_resource(["a"], ncores=2, unbuffered=True),
    lambda: JobspecV1.from_submit(["a"], unbuffered=True),
    lambda: JobspecV1.from_alloc(nslots=1, unbuffered=True),
    lambda: JobspecV1.from_batch(content="#!/bin/sh\n", unbuffered=True),
])
def test_factories_take_unbuffered(factory):
    js = factory()
    assert js.unbuffered is True
    assert js.getattr("shell.options.input.batch-timeout") == 0.0
    assert validate_jobspec(js) is True


# ------------------------------------------------------------------ apply_options

def base():
    return JobspecV1.from_command(["app"], num_tasks=2, environment={"KEEP": "1"})


def test_apply_options_returns_self_and_applies_nothing_by_default():
    js = base()
    before = copy.deepcopy(js.jobspec)
    assert js.apply_options() is js
    assert js.jobspec == before    # env and rlimit only when asked


def test_env_rules(monkeypatch):
    monkeypatch.setenv("FLUX_API_A", "a")
    monkeypatch.setenv("FLUX_API_B", "b")
    js = base().apply_options(env=[])
    assert js.environment == dict(os.environ)
    js = base().apply_options(env=["-*", "FLUX_API_A", "X=$FLUX_API_B-1", "R={{rank}}"])
    assert js.environment == {"FLUX_API_A": "a", "X": "b-1"}
    assert js.getattr("shell.options.env-expand") == {"R": "{{rank}}"}
    js = base().apply_options(env="-FLUX_API_*")      # a bare string is one rule
    assert "FLUX_API_A" not in js.environment and "PATH" in js.environment
    with pytest.raises(ValueError,
                       match=r"--env: Variable 'NOPE_NOPE' not found in X=\$NOPE_NOPE"):
        base().apply_options(env=["X=$NOPE_NOPE"])


def test_env_rule_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FLUX_API_A", "a")
    rules = tmp_path / "rules"
    rules.write_text("-*\nFLUX_API_*\nY={{id}}\n")
    js = base().apply_options(env=[f"^{rules}"])
    assert js.environment == {"FLUX_API_A": "a"}
    assert js.getattr("shell.options.env-expand") == {"Y": "{{id}}"}


def test_rlimit_rules():
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    js = base().apply_options(rlimit=[])
    limits = js.getattr("shell.options.rlimit")
    assert limits["nofile"] == (-1 if soft == resource.RLIM_INFINITY else soft)
    assert {"memlock", "msgqueue", "nice", "rtprio", "rttime", "sigpending"}.isdisjoint(limits)
    assert "core" in limits and "stack" in limits
    js = base().apply_options(rlimit=["-*", "nofile=100,core=unlimited", "memlock"])
    assert js.getattr("shell.options.rlimit") == {
        "nofile": 100, "core": -1,
        "memlock": -1 if resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
        == resource.RLIM_INFINITY else resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]}
    js = base().apply_options(rlimit="-*")     # nothing left: no option at all
    with pytest.raises(KeyError):
        js.getattr("shell.options.rlimit")
    with pytest.raises(ValueError, match="unknown resource limit 'bogus'"):
        base().apply_options(rlimit=["bogus=1"])
    with pytest.raises(ValueError, match="invalid value 'lots' for nofile"):
        base().apply_options(rlimit=["nofile=lots"])


def test_signal_option():
    js = base().apply_options(signal="USR2@30s")
    assert js.getattr("shell.options.signal") == {"signum": int(signal.SIGUSR2),
                                                  "timeleft": 30.0}
    js = base().apply_options(signal="@2m")
    assert js.getattr("shell.options.signal") == {"signum": int(signal.SIGUSR1),
                                                  "timeleft": 120.0}
    js = base().apply_options(signal="SIGTERM")
    assert js.getattr("shell.options.signal") == {"signum": int(signal.SIGTERM),
                                                  "timeleft": 60.0}
    with pytest.raises(ValueError, match="^--signal=FOO@1: signal 'FOO' is invalid$"):
        base().apply_options(signal="FOO@1")
    with pytest.raises(ValueError, match="--signal=USR1@soon"):
        base().apply_options(signal="USR1@soon")


def test_taskmap_option():
    js = base().apply_options(taskmap="cyclic")
    assert js.getattr("shell.options.taskmap") == {"scheme": "cyclic", "value": ""}
    js = base().apply_options(taskmap="manual:[[0,1,1,1]]")
    assert js.getattr("shell.options.taskmap") == {"scheme": "manual", "value": "[[0,1,1,1]]"}
    with pytest.raises(ValueError, match='Invalid taskmap URI "1:x"'):
        base().apply_options(taskmap="1:x")


def test_dependency_option():
    js = base().apply_options(dependency=["afterok:ƒ2", "string:foo?type=in&n=2"])
    assert js.getattr("dependencies") == [
        {"scheme": "afterok", "value": "ƒ2"},
        {"scheme": "string", "value": "foo", "type": "in", "n": 2}]
    js = base().apply_options(dependency="afterany:123")   # bare string
    assert js.getattr("dependencies") == [{"scheme": "afterany", "value": "123"}]
    with pytest.raises(ValueError, match="invalid dependency URI 'nocolon'"):
        base().apply_options(dependency=["nocolon"])


def test_requires_option():
    pytest.importorskip("flux.constraint.parser")
    js = base().apply_options(requires=["ssd,bigmem", "host:node[1-2]"])
    constraints = js.getattr("constraints")
    assert "hostlist" in str(constraints) and "ssd" in str(constraints)
    js = base().apply_options(requires="rank:0-1")
    assert "ranks" in str(js.getattr("constraints"))
    with pytest.raises(ValueError, match=r"^--requires='a\)': "):
        base().apply_options(requires=["a)"])


def test_shell_options_and_time_limit():
    js = base().apply_options(shell_options={"verbose": 2, "cpu-affinity": "off"},
                              time_limit="1.5m")
    assert opts(js)["verbose"] == 2 and opts(js)["cpu-affinity"] == "off"
    assert js.duration == 90.0
    assert base().apply_options(time_limit=30).duration == 30.0
    assert base().apply_options(time_limit="45").duration == 45.0
    with pytest.raises(ValueError, match="^--time-limit: invalid Flux standard duration 'soon'$"):
        base().apply_options(time_limit="soon")
    with pytest.raises(TypeError, match="shell_options must be a mapping"):
        base().apply_options(shell_options=["verbose"])


def test_attributes_keys():
    js = base().apply_options(attributes={"foo": 1, "system.bar": 2, "user.baz": 3,
                                          ".user.qux": 4, "attributes.system.quux": 5,
                                          "exec.test.run_duration": 0.1})
    system = js.attributes["system"]
    assert (system["foo"], system["bar"], system["quux"]) == (1, 2, 5)
    assert system["exec"] == {"test": {"run_duration": 0.1}}
    assert js.attributes["user"] == {"baz": 3, "qux": 4}
    with pytest.raises(TypeError, match="attributes must be a mapping"):
        base().apply_options(attributes="foo=1")


def test_add_file_forms(tmp_path):
    script = tmp_path / "setup.sh"
    script.write_text("echo setup\n")
    os.chmod(script, 0o750)
    js = base().apply_options(add_file=[str(script), f"renamed={script}",
                                        "inline=line1\\nline2\n", "x:0700=#!/bin/sh\n"])
    files = js.attributes["system"]["files"]
    assert files["setup.sh"]["data"] == "echo setup\n"
    assert stat.S_IMODE(files["setup.sh"]["mode"]) == 0o750
    assert files["renamed"]["data"] == "echo setup\n"
    assert files["inline"]["data"] == "line1\nline2\n"
    assert stat.S_IMODE(files["x"]["mode"]) == 0o700 and files["x"]["data"] == "#!/bin/sh\n"
    assert stat.S_IMODE(files["inline"]["mode"]) == 0o600
    js = base().apply_options(add_file=f"one={script}")   # bare string
    assert list(js.attributes["system"]["files"]) == ["one"]
    with pytest.raises(ValueError, match="^--add-file=/nonexistent/f: "):
        base().apply_options(add_file=["/nonexistent/f"])


def test_args_namespace_and_keyword_precedence():
    args = argparse.Namespace(setopt=["verbose", "x=\"a\""], setattr=["user.tag=7"],
                              time_limit="10s", signal="USR1@5", env=["-*", "Z=1"],
                              rlimit=["-*", "core=0"])
    js = base().apply_options(args, time_limit="20s")
    assert opts(js)["verbose"] == 1 and opts(js)["x"] == "a"
    assert js.attributes["user"]["tag"] == 7
    assert js.duration == 20.0     # the keyword wins over args
    assert js.environment == {"Z": "1"}
    assert opts(js)["rlimit"] == {"core": 0}
    # a mapping works as args too
    js = base().apply_options({"setattr": "user.x=1"})
    assert js.attributes["user"]["x"] == 1
    with pytest.raises(ValueError, match="missing value for attribute 'nope'"):
        base().apply_options(SimpleNamespace(setattr=["nope"]))


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match=r"^apply_options\(\) got unexpected keyword "
                                        r"argument\(s\): 'bar', 'foo'$"):
        base().apply_options(foo=1, bar=2)
    with pytest.raises(TypeError, match="'foo'"):
        base().apply_options(prog="submit", foo=1)   # no plugin declares it
    with pytest.raises(TypeError, match="'nope'"):
        JobspecV1.from_submit(["a"], nope=1)


PLUGIN = """
    from flux.cli.plugin import CLIPlugin

    class Site(CLIPlugin):
        def __init__(self, prog, prefix="site"):
            super().__init__(prog, prefix=prefix)
            self.add_option("--mode", default="auto", help="GPU mode")
            if self.prog == "alloc":
                self.add_option("--only-alloc", action="store_true")

        def preinit(self, args):
            args.seen = args.mode            # the unprefixed name reads site_mode

        def modify_jobspec(self, args, jobspec):
            jobspec.setattr_shell_option("site-mode", args.seen)
            jobspec.setattr("user.prog", self.prog)
"""


def test_plugin_keywords_with_prog(monkeypatch, tmp_path):
    plugin_dir(monkeypatch, tmp_path, PLUGIN)
    js = base().apply_options(prog="submit", site_mode="cpx")
    assert opts(js)["site-mode"] == "cpx"
    js = base().apply_options(prog="submit")      # the option's default is seeded
    assert opts(js)["site-mode"] == "auto"
    assert JobspecV1.from_submit(["a"], site_mode="x").attributes["user"]["prog"] == "submit"
    js = JobspecV1.from_alloc(nslots=1, site_only_alloc=True, site_mode="y")
    assert js.attributes["user"]["prog"] == "alloc" and opts(js)["site-mode"] == "y"
    assert JobspecV1.from_batch(content="#!/bin/sh\n").attributes["user"]["prog"] == "batch"
    with pytest.raises(TypeError, match="'site_only_alloc'"):
        JobspecV1.from_submit(["a"], site_only_alloc=True)
    # without prog no plugin runs and plugin keywords are unknown
    with pytest.raises(TypeError, match="'site_mode'"):
        base().apply_options(site_mode="x")


# ------------------------------------------------------------------ from_submit

def test_from_submit_is_from_command_plus_apply_options(monkeypatch):
    monkeypatch.setenv("FLUX_API_MARK", "1")
    kwargs = dict(time_limit="5m", dependency=["afterok:1"], shell_options={"verbose": 1},
                  attributes={"user.x": 1})
    js = JobspecV1.from_submit(["app", "-v"], ntasks=4, nodes=2, cores_per_task=2,
                               gpus_per_task=1, exclusive=True, name="n", queue="q", bank="b",
                               cwd="/tmp", output="out", error="err", input="in",
                               label_io=True, unbuffered=True, **kwargs)
    ref = JobspecV1.from_command(["app", "-v"], num_tasks=4, num_nodes=2, cores_per_task=2,
                                 gpus_per_task=1, exclusive=True, name="n", queue="q", bank="b",
                                 cwd="/tmp", output="out", error="err", input="in",
                                 label_io=True, unbuffered=True)
    ref.apply_options(prog="submit", env=[], rlimit=[], **kwargs)
    assert js.jobspec == ref.jobspec
    assert js.environment["FLUX_API_MARK"] == "1"
    assert "rlimit" in opts(js)
    system = js.attributes["system"]
    assert (system["job"]["name"], system["queue"], system["bank"], system["cwd"]) == \
        ("n", "q", "b", "/tmp")
    assert opts(js)["output"]["stdout"] == {"type": "file", "path": "out", "label": True,
                                            "buffer": {"type": "none"}}


def test_from_submit_defaults_and_explicit_env():
    js = JobspecV1.from_submit(["true"])
    assert js.resources == [{"type": "slot", "count": 1, "label": "task",
                             "with": [{"type": "core", "count": 1}]}]
    assert js.duration == 0 and js.environment == dict(os.environ)
    js = JobspecV1.from_submit(["true"], env=["-*"], rlimit=["-*"])
    assert js.environment == {} and "rlimit" not in opts(js)
    with pytest.raises(ValueError, match="node count must not be greater than task count"):
        JobspecV1.from_submit(["true"], nodes=2)


# ------------------------------------------------------------------ from_alloc

def test_from_alloc(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"^from_alloc\(\) requires nslots or nodes$"):
        JobspecV1.from_alloc()
    js = JobspecV1.from_alloc(nodes=2)
    node = js.resources[0]
    assert node["type"] == "node" and node["count"] == 2 and node["exclusive"] is True
    assert node["with"][0]["count"] == 1
    assert js.tasks[0]["command"] == ["flux", "broker"]
    assert js.cwd == str(tmp_path)
    assert opts(js)["per-resource"] == {"type": "node"} and opts(js)["pmi"] == "simple"
    broker_opts = ["-Sx=1"]
    js = JobspecV1.from_alloc(nslots=3, cores_per_slot=2, broker_opts=broker_opts, bg=True,
                              conf={"resource": {"noverify": True}}, name="inst",
                              time_limit="1h")
    assert broker_opts == ["-Sx=1"]          # the caller's list is not changed
    assert js.tasks[0]["command"] == ["flux", "broker", "-Sx=1", "-Sbroker.rc2_none=1",
                                      "-c{{tmpdir}}/conf.json"]
    assert opts(js)["pty"] == {"capture": 1}
    assert js.attributes["system"]["files"]["conf.json"]["data"] == \
        {"resource": {"noverify": True}}
    assert js.resource_counts() == {"slot": 3, "core": 6} and js.duration == 3600.0
    conf = BatchConfig().update("resource.noverify=true")
    for value in (conf, "resource.noverify=true"):
        js = JobspecV1.from_alloc(nslots=1, conf=value)
        assert js.attributes["system"]["files"]["conf.json"]["data"] == \
            {"resource": {"noverify": True}}


# ------------------------------------------------------------------ from_batch

def test_from_batch_script_or_content(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match="accepts 'script' or 'content', not both"):
        JobspecV1.from_batch("x.sh", content="#!/bin/sh\n")
    with pytest.raises(TypeError, match="requires 'script'"):
        JobspecV1.from_batch()
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\nflux run hostname\n")
    js = JobspecV1.from_batch(script)
    assert js.getattr("job.name") == "job.sh"
    assert js.attributes["system"]["files"]["script"]["data"] == script.read_text()
    assert js.tasks[0]["command"] == ["flux", "broker", "{{tmpdir}}/script"]
    assert js.stdout == "flux-{{id}}.out" and js.cwd == str(tmp_path)
    assert js.resource_counts() == {"slot": 1, "core": 1}
    js = JobspecV1.from_batch(str(script), name="mine", output="o.txt", nslots=4)
    assert js.getattr("job.name") == "mine" and js.stdout == "o.txt"
    assert js.resource_counts()["slot"] == 4
    js = JobspecV1.from_batch(content="#!/bin/bash\necho hi\n", nodes=2)
    assert js.getattr("job.name") == "batch"
    assert js.resources[0]["exclusive"] is True and js.resources[0]["count"] == 2


def test_from_batch_needs_a_shebang_unless_wrapped():
    with pytest.raises(ValueError, match="^batch does not appear to start with '#!'$"):
        JobspecV1.from_batch(content="echo hi\n")
    js = JobspecV1.from_batch(content="echo hi\n", wrap=True)
    assert js.attributes["system"]["files"]["script"]["data"] == "#!/bin/sh\necho hi\n"


# ------------------------------------------------------------------ _utils

def test_decode_signal():
    assert decode_signal(10) == 10
    assert decode_signal("10") == 10
    assert decode_signal("SIGUSR1") == int(signal.SIGUSR1)
    assert decode_signal("USR1") == int(signal.SIGUSR1)
    assert decode_signal("term") == int(signal.SIGTERM)
    for bad in ("FOO", "SIG", "", None, 1.5):
        with pytest.raises(ValueError, match="is invalid"):
            decode_signal(bad)


def test_batchconfig_update_forms(tmp_path, monkeypatch):
    conf = BatchConfig()
    assert conf.config is None
    assert conf.update("resource.noverify=true") is conf
    conf.update("resource.rediscover=yes").update("tbon.topo=\"kary:2\"")
    assert conf.config == {"resource": {"noverify": True, "rediscover": "yes"},
                           "tbon": {"topo": "kary:2"}}
    conf.update('{"resource": {"exclude": "0"}}\n')             # JSON text
    conf.update("[sched-simple]\nalloc-bypass = true\n")         # TOML text
    assert conf.get("resource.exclude") == "0"
    assert conf.get("sched-simple.alloc-bypass") is True
    assert conf.get("resource.noverify") is True
    assert conf.get("no.such.key", 42) == 42
    toml = tmp_path / "c.toml"
    toml.write_text("[a]\nb = 1\n")
    jfile = tmp_path / "c.json"
    jfile.write_text('{"a": {"c": 2}}')
    assert BatchConfig().update(str(toml)).update(str(jfile)).config == {"a": {"b": 1, "c": 2}}
    named = tmp_path / "xdg" / "flux" / "config"
    named.mkdir(parents=True)
    (named / "site.toml").write_text("[policy]\nx = 1\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert BatchConfig().update("site").config == {"policy": {"x": 1}}
    with pytest.raises(ValueError, match="named config 'nosuch' not found"):
        BatchConfig().update("nosuch")
    (tmp_path / "bad.toml").write_text("[oops\n")
    with pytest.raises(ValueError, match="parse error"):
        BatchConfig().update(str(tmp_path / "bad.toml"))
    with pytest.raises(ValueError, match="--conf: .*missing.json"):
        BatchConfig().update(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="failed to parse multiline"):
        BatchConfig().update("not json\nnot = toml = either\n")
