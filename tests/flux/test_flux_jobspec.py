"""Jobspec (RFC 14/25): vectors read from specs/jobspec.md, factories, setters, errors."""
from __future__ import annotations

import copy
import datetime
import errno
import io
import os
import pathlib
import re
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from flux.job import Jobspec, JobspecV1, validate_jobspec

SPEC = Path(__file__).resolve().parents[2] / "specs" / "jobspec.md"
SPEC_TEXT = SPEC.read_text(encoding="utf-8")


def spec_blocks(prefix: str) -> dict[str, str]:
    """Fenced blocks whose tag starts with ``vector:PREFIX``, by full tag."""
    pattern = rf"```\w+ vector:({re.escape(prefix)}[^\n]*)\n(.*?)```"
    blocks = dict(re.findall(pattern, SPEC_TEXT, re.S))
    assert blocks, f"no vector:{prefix} blocks in {SPEC}"
    return blocks


def spec_block(tag: str) -> str:
    return spec_blocks(tag)[tag]


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _path(text: str) -> list[str | int]:
    return [int(index) if index else key for key, index in _PATH_TOKEN.findall(text)]


def mutate(doc: dict, path: str, value: Any = None, delete: bool = False) -> dict:
    """Copy of ``doc`` with ``path`` set to ``value`` (or deleted)."""
    doc = copy.deepcopy(doc)
    *parents, last = _path(path)
    node: Any = doc
    for part in parents:
        if isinstance(part, str) and part not in node:
            node[part] = {}
        node = node[part]
    if delete:
        del node[last]
    elif isinstance(last, int) and last == len(node):
        node.append(value)
    else:
        node[last] = value
    return doc


_MUTATION = re.compile(r"(?P<path>\S+) (?:= (?P<value>.+?)|(?P<deleted>deleted)) -> "
                       r"(?P<exc>\w+): (?P<message>.+)")


def mutations(tag: str) -> list[tuple[str, str, dict]]:
    """(line, exception name, message, mutated doc) for each line of a vector block."""
    base = yaml.safe_load(spec_block(f"base-{tag.split('-', 1)[1]}"))
    cases = []
    for line in spec_block(tag).splitlines():
        match = _MUTATION.fullmatch(line)
        assert match, f"bad vector line: {line}"
        if match["deleted"]:
            doc = mutate(base, match["path"], delete=True)
        else:
            doc = mutate(base, match["path"], orjson.loads(match["value"]))
        cases.append(pytest.param(match["exc"], match["message"], doc, id=line[:70]))
    return cases


EXC = {"ValueError": ValueError, "TypeError": TypeError}


# ---------------------------------------------------------------- spec vectors

@pytest.mark.parametrize("tag, text", sorted(spec_blocks("valid-v1:").items()))
def test_valid_v1_vectors(tag: str, text: str) -> None:
    doc = yaml.safe_load(text)
    assert validate_jobspec(doc) is True
    assert validate_jobspec(text) is True  # YAML text
    assert validate_jobspec(orjson.dumps(doc).decode(), require_version=1) is True
    assert JobspecV1(**doc).jobspec == doc


@pytest.mark.parametrize("exc, message, doc", mutations("invalid-v1"))
def test_invalid_v1_vectors(exc: str, message: str, doc: dict) -> None:
    with pytest.raises(EXC[exc]) as info:
        validate_jobspec(doc, require_version=1)
    assert type(info.value) is EXC[exc]
    assert str(info.value) == message


def test_invalid_v1_vectors_also_refused_by_constructor() -> None:
    base = yaml.safe_load(spec_block("base-v1"))
    with pytest.raises(ValueError, match=r"^tasks\[0\]\.count\.per_slot: must be 1 \(got 2\)$"):
        JobspecV1(**mutate(base, "tasks[0].count", {"per_slot": 2}))


def test_base_documents_are_valid() -> None:
    assert validate_jobspec(yaml.safe_load(spec_block("base-v1"))) is True
    Jobspec(**yaml.safe_load(spec_block("base-canonical")))


@pytest.mark.parametrize("tag, text", sorted(spec_blocks("valid-canonical:").items()))
def test_valid_canonical_vectors(tag: str, text: str) -> None:
    doc = yaml.safe_load(text)
    assert Jobspec(**doc).jobspec == doc


def test_canonical_vector_with_version_2_passes_validate_jobspec() -> None:
    doc = yaml.safe_load(spec_block("valid-canonical:two-tasks"))
    assert validate_jobspec(doc) is True
    with pytest.raises(ValueError, match=r"^version: must be 1 \(got 2\)$"):
        validate_jobspec(doc, require_version=1)


@pytest.mark.parametrize("exc, message, doc", mutations("invalid-canonical"))
def test_invalid_canonical_vectors(exc: str, message: str, doc: dict) -> None:
    with pytest.raises(EXC[exc]) as info:
        Jobspec(**doc)
    assert type(info.value) is EXC[exc]
    assert str(info.value) == message


@pytest.mark.parametrize("tag, expected", sorted(spec_blocks("from_command:").items()))
def test_from_command_vectors(tag: str, expected: str) -> None:
    calls = {
        "from_command:5-tasks-4-nodes": lambda: JobspecV1.from_command(
            ["hostname"], num_tasks=5, num_nodes=4, environment={}),
        "from_command:exclusive-gpus": lambda: JobspecV1.from_command(
            ["app"], num_tasks=4, cores_per_task=2, gpus_per_task=1, num_nodes=2,
            exclusive=True, environment={}),
        "from_command:slots-only": lambda: JobspecV1.from_command(
            ["sleep", "10"], num_tasks=3, environment={}),
    }
    assert calls[tag]().dumps() == expected.strip()


# ---------------------------------------------------------------- validate_jobspec inputs

def _base() -> dict:
    return yaml.safe_load(spec_block("base-v1"))


def test_validate_accepts_json_bytes_dict_and_object() -> None:
    doc = _base()
    assert validate_jobspec(orjson.dumps(doc)) is True
    assert validate_jobspec(doc) is True
    assert validate_jobspec(JobspecV1(**doc)) is True


def test_validate_none_is_environment_error() -> None:
    with pytest.raises(EnvironmentError) as info:
        validate_jobspec(None)
    assert info.value.errno == errno.EINVAL
    assert "must not be None" in str(info.value)


def test_validate_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="must be a Jobspec, a dict or a string"):
        validate_jobspec(42)


@pytest.mark.parametrize("text", ['{"version": 1,', "key: [unclosed", "- [a, b"])
def test_validate_unparsable_text(text: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        validate_jobspec(text)
    assert "jobspec" in str(info.value)


def test_validate_non_object_document() -> None:
    with pytest.raises(TypeError, match="^jobspec: must be an object, not list$"):
        validate_jobspec("[1, 2]")


def test_validate_garbage_text_names_both_formats() -> None:
    with pytest.raises(ValueError, match="not valid JSON or YAML"):
        validate_jobspec('{"a": [}')


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-2, 2), st.text(max_size=5)),
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=3)),
    max_leaves=8)
_paths = st.sampled_from([
    "version", "resources", "resources[0]", "resources[0].type", "resources[0].count",
    "resources[0].with", "resources[0].with[0]", "resources[0].with[0].label",
    "resources[0].with[0].with", "resources[0].with[0].with[0].count",
    "resources[0].with[0].with[1]", "tasks", "tasks[0]", "tasks[0].command",
    "tasks[0].slot", "tasks[0].count", "tasks[0].count.per_slot", "attributes",
    "attributes.system", "attributes.system.duration", "attributes.system.environment",
    "attributes.system.dependencies", "attributes.system.constraints",
    "attributes.system.shell", "attributes.user"])


@given(_paths, _json)
def test_any_bad_value_is_a_type_or_value_error(path: str, value: Any) -> None:
    doc = mutate(_base(), path, value)
    for version in (1, None):
        try:
            validate_jobspec(doc, require_version=version)
        except (TypeError, ValueError) as exc:
            assert str(exc)
    try:
        Jobspec(**mutate(doc, "version", 2))
    except (TypeError, ValueError) as exc:
        assert str(exc)


@given(_json)
def test_any_document_is_a_type_or_value_error(doc: Any) -> None:
    try:
        validate_jobspec(doc if isinstance(doc, dict) else orjson.dumps(doc).decode())
    except (TypeError, ValueError) as exc:
        assert str(exc)


# ---------------------------------------------------------------- factories

@given(num_tasks=st.integers(1, 64), cores=st.integers(1, 8), gpus=st.one_of(st.none(), st.integers(0, 4)),
       nodes=st.one_of(st.none(), st.integers(1, 64)), exclusive=st.booleans(),
       duration=st.one_of(st.none(), st.floats(0, 1e6)), cwd=st.one_of(st.none(), st.text(max_size=10)),
       env=st.dictionaries(st.text(min_size=1, max_size=6), st.text(max_size=6), max_size=4))
def test_from_command_round_trips_and_validates(num_tasks: int, cores: int, gpus: int | None,
                                                nodes: int | None, exclusive: bool,
                                                duration: float | None, cwd: str | None,
                                                env: dict) -> None:
    if nodes is not None:
        nodes = min(nodes, num_tasks)
    else:
        exclusive = False
    js = JobspecV1.from_command(["app", "x"], num_tasks=num_tasks, cores_per_task=cores,
                                gpus_per_task=gpus, num_nodes=nodes, exclusive=exclusive,
                                duration=duration, cwd=cwd, environment=env)
    text = js.dumps()
    assert validate_jobspec(text) is True
    again = JobspecV1(**orjson.loads(text))
    assert again.jobspec == js.jobspec
    counts = js.resource_counts()
    assert counts["slot"] >= num_tasks and counts["core"] == counts["slot"] * cores
    assert counts.get("gpu", 0) == (counts["slot"] * gpus if gpus else 0)
    assert counts.get("node", 0) == (nodes or 0)
    assert js.duration == (float(duration) if duration is not None else 0)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_tasks": 0}, "task count must be a integer >= 1"),
    ({"num_tasks": 1.5}, "task count must be a integer >= 1"),
    ({"cores_per_task": 0}, "cores per task must be an integer >= 1"),
    ({"gpus_per_task": -1}, "gpus per task must be an integer >= 0"),
    ({"num_nodes": 0}, r"node count must be an integer >= 1 \(if set\)"),
    ({"num_tasks": 2, "num_nodes": 3}, "node count must not be greater than task count"),
    ({"exclusive": True}, "exclusive can only be set with a node count"),
])
def test_from_command_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JobspecV1.from_command(["a"], **kwargs)


@pytest.mark.parametrize("command", ["hostname", [], ["a", 1], None])
def test_from_command_bad_command(command: Any) -> None:
    with pytest.raises(TypeError, match="command"):
        JobspecV1.from_command(command)


def test_from_command_default_environment_is_a_copy_of_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUX_TEST_MARKER", "42")
    js = JobspecV1.from_command(["a"])
    assert js.environment["FLUX_TEST_MARKER"] == "42"
    assert js.environment is not os.environ
    assert js.duration == 0


def test_from_command_extra_options() -> None:
    js = JobspecV1.from_command(["a"], environment={}, duration="1m", cwd=pathlib.Path("/tmp"),
                                name="job1", input="in.txt", output="out.txt", error="kvs",
                                label_io=True, queue="batch", bank="b1", rlimits={"nofile": 10},
                                env_expand={"X": "{{id}}"})
    sysattr = js.attributes["system"]
    assert sysattr["duration"] == 60.0 and sysattr["cwd"] == "/tmp"
    assert sysattr["job"] == {"name": "job1"} and sysattr["queue"] == "batch"
    assert sysattr["bank"] == "b1"
    opts = sysattr["shell"]["options"]
    assert opts["input"] == {"stdin": {"type": "file", "path": "in.txt"}}
    assert opts["output"] == {"stdout": {"type": "file", "path": "out.txt", "label": True}}
    assert opts["rlimit"] == {"nofile": 10} and opts["env-expand"] == {"X": "{{id}}"}
    assert js.stderr is None and js.stdout == "out.txt" and js.stdin == "in.txt"
    assert validate_jobspec(js) is True


def test_from_nest_command_shape() -> None:
    js = JobspecV1.from_nest_command(["sleep", "1"], num_slots=4, cores_per_slot=2, num_nodes=2,
                                     broker_opts=["-Sbroker.foo=1"], environment={})
    assert js.tasks[0]["command"] == ["flux", "broker", "-Sbroker.foo=1", "sleep", "1"]
    assert js.resources[0]["type"] == "node" and js.resources[0]["with"][0]["count"] == 2
    assert js.attributes["system"]["shell"]["options"] == {
        "per-resource": {"type": "node"}, "mpi": "none", "exit-timeout": "none", "pmi": "simple"}
    assert validate_jobspec(js) is True


def test_from_nest_command_with_conf_ships_conf_json() -> None:
    js = JobspecV1.from_nest_command([], conf={"resource": {"noverify": True}}, environment={})
    assert js.tasks[0]["command"] == ["flux", "broker", "-c{{tmpdir}}/conf.json"]
    entry = js.attributes["system"]["files"]["conf.json"]
    assert entry == {"mode": stat.S_IFREG | 0o600, "data": {"resource": {"noverify": True}}}


def test_from_batch_command_shape() -> None:
    script = "#!/bin/sh\nflux run hostname\n"
    js = JobspecV1.from_batch_command(script, "myjob", args=["a1"], num_slots=2, environment={})
    assert js.tasks[0]["command"] == ["flux", "broker", "{{tmpdir}}/script", "a1"]
    assert js.getattr("job.name") == "myjob"
    assert js.attributes["system"]["files"]["script"] == {
        "mode": stat.S_IFREG | 0o700, "data": script, "encoding": "utf-8"}
    assert js.resource_counts() == {"slot": 2, "core": 2}
    assert validate_jobspec(js) is True


def test_from_batch_command_needs_shebang() -> None:
    with pytest.raises(ValueError, match="^myjob does not appear to start with '#!'$"):
        JobspecV1.from_batch_command("echo hi\n", "myjob")


@pytest.mark.parametrize("kwargs, top", [
    ({"ncores": 8, "nnodes": 2}, {"type": "node", "count": 2, "with": [
        {"type": "slot", "count": 1, "with": [{"type": "core", "count": 4}], "label": "task"}]}),
    ({"ncores": 3}, {"type": "slot", "count": 3, "with": [{"type": "core", "count": 1}],
                     "label": "task"}),
    ({"nnodes": 2, "exclusive": True, "gpus_per_node": 2}, {
        "type": "node", "count": 2, "exclusive": True, "with": [
            {"type": "slot", "count": 1,
             "with": [{"type": "core", "count": 1}, {"type": "gpu", "count": 2}],
             "label": "task"}]}),
])
def test_per_resource_shapes(kwargs: dict, top: dict) -> None:
    js = JobspecV1.per_resource(["a"], per_resource_type="node", per_resource_count=2,
                                environment={}, **kwargs)
    assert js.resources == [top]
    assert js.getattr("shell.options.per-resource") == {"type": "node", "count": 2}
    assert validate_jobspec(js) is True


@pytest.mark.parametrize("kwargs, message", [
    ({"ncores": 1, "per_resource_type": "gpu", "per_resource_count": 1},
     "Invalid per_resource_type='gpu'"),
    ({"ncores": 1, "per_resource_type": "node"}, "must specify a per_resource_count"),
    ({"ncores": 1, "per_resource_count": 1}, "must specify a per_resource_type"),
    ({"ncores": 1, "per_resource_type": "core", "per_resource_count": 0},
     "per_resource_count must be >= 1"),
    ({"ncores": 0}, "ncores must be an integer >= 1"),
    ({"nnodes": 2}, "Specifying nnodes also requires ncores or exclusive"),
    ({"ncores": 1, "nnodes": 2}, "number of cores cannot be less than nnodes"),
    ({"ncores": 3, "nnodes": 2}, "number of cores must be evenly divisible by node count"),
    ({"ncores": 2, "gpus_per_node": 1}, "gpus_per_node must be specified with nnodes"),
    ({"ncores": 2, "exclusive": True}, "exclusive can only be set with a node count"),
    ({}, "must specify node or core count with per_resource"),
])
def test_per_resource_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        JobspecV1.per_resource(["a"], **kwargs)


# ---------------------------------------------------------------- attributes and setters

def test_setattr_prefixes() -> None:
    js = JobspecV1(**_base())
    js.setattr("foo.bar", 1)
    js.setattr("system.baz", 2)
    js.setattr("user.mine", 3)
    js.setattr("attributes.system.qux", 4)
    assert js.attributes["system"]["foo"] == {"bar": 1}
    assert js.attributes["system"]["baz"] == 2 and js.attributes["system"]["qux"] == 4
    assert js.attributes["user"] == {"mine": 3}
    assert js.getattr("foo.bar") == js.getattr("system.foo.bar") == 1
    assert js.getattr("attributes.user.mine") == 3


def test_getattr_missing_is_keyerror_naming_full_key() -> None:
    js = JobspecV1(**_base())
    with pytest.raises(KeyError, match="attributes.system.nope"):
        js.getattr("nope")


def test_setattr_through_non_object_is_typeerror() -> None:
    js = JobspecV1(**_base())
    with pytest.raises(TypeError, match="failed to set attributes.system.duration.x to 1: "
                                        "attributes.system.duration is a integer, not an object"):
        js.setattr("duration.x", 1)
    with pytest.raises(ValueError, match="empty component"):
        js.setattr("a..b", 1)


def test_setattr_shell_option() -> None:
    js = JobspecV1(**_base())
    js.setattr_shell_option("output.stdout.label", True)
    assert js.getattr("shell.options.output.stdout.label") is True


@pytest.mark.parametrize("value, seconds", [
    (90, 90.0), (1.5, 1.5), ("1.5m", 90.0), ("2h", 7200.0),
    (datetime.timedelta(minutes=2), 120.0), (0, 0.0)])
def test_duration_setter(value: Any, seconds: float) -> None:
    js = JobspecV1(**_base())
    js.duration = value
    assert js.duration == seconds and isinstance(js.duration, float)


@pytest.mark.parametrize("value, exc, message", [
    (-1, ValueError, "duration must not be negative"),
    (float("inf"), ValueError, "duration must be a normal, finite value"),
    (float("nan"), ValueError, "duration must be a normal, finite value"),
    ("inf", ValueError, "duration must be a normal, finite value"),
    ("soon", ValueError, "invalid Flux standard duration"),
    ([1], TypeError, "duration must be an int, float, string, or timedelta"),
    (True, TypeError, "duration must be an int, float, string, or timedelta"),
])
def test_duration_setter_errors(value: Any, exc: type, message: str) -> None:
    js = JobspecV1(**_base())
    with pytest.raises(exc, match=message):
        js.duration = value


def test_simple_setters_and_errors() -> None:
    js = JobspecV1(**_base())
    assert js.cwd is None and js.queue is None and js.environment is None
    js.cwd = pathlib.Path("/work")
    js.queue = "debug"
    env = {"A": "1"}
    js.environment = env
    assert js.cwd == "/work" and js.queue == "debug" and js.environment is env
    with pytest.raises(ValueError, match="cwd must be a string"):
        js.cwd = 5
    with pytest.raises(TypeError, match="queue must be a string"):
        js.queue = 5
    with pytest.raises(ValueError, match="environment must be a mapping"):
        js.environment = ["A=1"]
    with pytest.raises(TypeError, match="must be a string or pathlib object, got int"):
        js.stdout = 5


def test_stdio_setters_and_aliases() -> None:
    js = JobspecV1(**_base())
    js.stdin = "in"
    js.output = pathlib.Path("out")
    js.stderr = "err"
    assert (js.input, js.stdout, js.error) == ("in", "out", "err")
    assert js.getattr("shell.options.output.stderr") == {"type": "file", "path": "err"}


def test_add_file_variants(tmp_path: Path) -> None:
    js = JobspecV1(**_base())
    text = tmp_path / "t.txt"
    text.write_text("hello")
    text.chmod(0o640)
    blob = tmp_path / "b.bin"
    blob.write_bytes(b"\xff\x00")
    js.add_file("t", str(text))
    js.add_file("b", str(blob))
    js.add_file("inline", "a\nb")
    js.add_file("enc", "aGk=", encoding="base64", perms=0o644)
    files = js.attributes["system"]["files"]
    assert files["t"] == {"mode": stat.S_IFREG | 0o640, "size": 5, "data": "hello",
                          "encoding": "utf-8"}
    assert files["b"]["encoding"] == "base64" and files["b"]["data"] == "/wA="
    assert files["inline"] == {"mode": stat.S_IFREG | 0o600, "data": "a\nb", "encoding": "utf-8"}
    assert files["enc"] == {"mode": stat.S_IFREG | 0o644, "data": "aGk=", "encoding": "base64"}
    assert validate_jobspec(js) is True
    with pytest.raises(ValueError, match="invalid encoding: rot13"):
        js.add_file("x", "abc", encoding="rot13")
    with pytest.raises(TypeError, match="data must be a Mapping or string"):
        js.add_file("x", 5)


def test_dumps_compact_and_with_kwargs() -> None:
    js = JobspecV1(**_base())
    assert orjson.loads(js.dumps()) == js.jobspec
    assert " " not in js.dumps()
    assert js.dumps(sort_keys=True).startswith('{"attributes": {"system"')
    js.setattr("job.name", "ƒ")
    assert "ƒ" in js.dumps(indent=2)


def test_top_level_keys_and_sections() -> None:
    js = JobspecV1(**_base())
    assert Jobspec.top_level_keys == {"attributes", "resources", "tasks", "version"}
    assert js.version == 1 and js.tasks[0]["slot"] == "task"
    assert isinstance(js, Jobspec) and "JobspecV1(" in repr(js)


def test_v1_default_attributes_and_version_check() -> None:
    base = _base()
    js = JobspecV1(base["resources"], base["tasks"])
    assert js.attributes == {"system": {"duration": 0}}
    with pytest.raises(ValueError, match=r"^version: must be 1 \(got 2\)$"):
        JobspecV1(base["resources"], base["tasks"], version=2)


# ---------------------------------------------------------------- walking

SEED_RESOURCES = """\
- type: slot
  count: 2
  label: a
  with:
    - type: core
      count: 4
    - type: memory
      count: 1
      unit: GB
- type: slot
  count: 10
  label: b
  with:
    - type: core
      count: 1
    - type: memory
      count: 24
      unit: GB
"""


def test_resource_counts_seed_example() -> None:
    js = Jobspec(yaml.safe_load(SEED_RESOURCES),
                 [{"command": ["x"], "slot": "a", "count": {"per_slot": 1}}])
    assert js.resource_counts() == {"slot": 12, "core": 18, "memory": 242}


def test_resource_walk_multiplies_and_iter_is_preorder() -> None:
    js = Jobspec(yaml.safe_load(SEED_RESOURCES),
                 [{"command": ["x"], "slot": "a", "count": {"per_slot": 1}}])
    walk = [(p["type"] if p else None, r["type"], n) for p, r, n in js.resource_walk()]
    assert walk[:3] == [(None, "slot", 2), ("slot", "core", 8), ("slot", "memory", 2)]
    assert [r["type"] for r in js] == ["slot", "core", "memory", "slot", "core", "memory"]


def test_resource_walk_needs_integer_counts() -> None:
    doc = yaml.safe_load(spec_block("valid-canonical:ranges"))
    with pytest.raises(ValueError, match=r"resources\[0\]\.count: resource_walk needs integer"):
        list(Jobspec(**doc).resource_walk())


# ---------------------------------------------------------------- YAML constructors

def test_from_yaml_stream_and_file(tmp_path: Path) -> None:
    text = spec_block("valid-v1:use_case_2.4")
    js = JobspecV1.from_yaml_stream(io.StringIO(text))
    assert js.resource_counts() == {"node": 4, "slot": 16, "core": 16, "gpu": 16}
    path = tmp_path / "js.yaml"
    path.write_text(text)
    assert JobspecV1.from_yaml_file(path).jobspec == js.jobspec


def test_from_yaml_errors() -> None:
    with pytest.raises(ValueError, match="jobspec is not valid YAML"):
        JobspecV1.from_yaml_stream("a: [b")
    with pytest.raises(ValueError, match="jobspec: missing required key 'attributes'"):
        JobspecV1.from_yaml_stream("version: 1\nresources: []\ntasks: []\n")
    with pytest.raises(TypeError, match="jobspec: must be an object, not list"):
        JobspecV1.from_yaml_stream("- 1\n")
