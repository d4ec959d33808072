"""flux R (flux-R(1)): the operations of flux/resource/Rcmd.py on resource sets, the
command through click's CliRunner, and the Admin Guide's pipeline
``flux R parse-config DIR | flux R decode --short`` as real processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import main
from flux.resource import Rcmd
from flux.resource.ResourceSet import ResourceSet


def enc(**kw) -> ResourceSet:
    return Rcmd.encode(**kw)


def run(args: list[str], input: str | None = None):
    return CliRunner().invoke(main, ["R", *args], input=input)


def R(*args: str) -> str:
    """The output of ``flux R encode ARGS``."""
    r = run(["encode", *args])
    assert r.exit_code == 0, r.output
    return r.output


# -- input --------------------------------------------------------------------------------

def test_read_stream_takes_concatenated_objects():
    text = enc(ranks="0-1").encode() + "\n" + enc(ranks="5").encode() + enc(ranks="7").encode()
    rsets = Rcmd.read_stream(text)
    assert [r.dumps() for r in rsets] == ["rank[0-1]/core0", "rank5/core0", "rank7/core0"]


@pytest.mark.parametrize("text, words", [
    ("", "no R object"),
    ("  \n", "no R object"),
    ("{}", "missing 'version'"),
    ('{"version": 1}', "missing 'execution'"),
    ('{"version": 1, "execution": {}}', "execution.R_lite"),
    ('{"version": 2, "execution": {"R_lite": []}}', "version 2"),
    ('{"version": 1, "execution": {"R_lite": [{"rank": "0"}]}}', "children"),
    ("[1]", "expected a JSON object"),
    ('{"version": 1, "execution": {"R_lite": []}} {"vers', "R object 2: invalid JSON"),
])
def test_read_stream_names_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=words):
        Rcmd.read_stream(text)


def test_empty_R_lite_object_is_an_empty_set():
    (rset,) = Rcmd.read_stream('{"version": 1, "execution": {"R_lite": {}}}')
    assert rset.nnodes == 0 and rset.count("core") == 0


def test_decode_bad_input_exits_1_naming_the_problem():
    for text in ("", "{}", '{"version": 1, "execution": {}}'):
        r = run(["decode"], input=text)
        assert r.exit_code == 1
    assert "flux-R: R object 1: missing 'execution.R_lite'" in r.output


# -- encode -------------------------------------------------------------------------------

def test_encode_defaults_to_rank0_core0():
    assert enc().dumps() == "rank0/core0"
    assert json.loads(R())["execution"]["R_lite"] == [{"rank": "0", "children": {"core": "0"}}]


def test_encode_ranks_cores_gpus():
    assert enc(ranks="0,2").ranks.encode() == "0,2"
    assert enc(cores="0-1", ranks="0-1").count("core") == 4
    only_gpu = enc(gpus="0")
    assert only_gpu.count("gpu") == 1 and only_gpu.count("core") == 0
    assert enc(cores="0-1", gpus="0").dumps() == "rank0/core[0-1],gpu0"


def test_encode_hosts_set_ranks_and_must_match_their_count():
    rset = enc(hosts="foo[0-1]")
    assert rset.nnodes == 2 and rset.nodelist.encode() == "foo[0-1]"
    assert enc(ranks="4-5", hosts="a,b").hostname(5) == "b"
    with pytest.raises(ValueError, match="8 hosts for 4 ranks"):
        enc(ranks="0-3", hosts="test[0-7]")


def test_encode_properties():
    rset = enc(hosts="foo[0-1]", properties=["xx:0", "yy:1", "all"])
    assert {k: v.encode() for k, v in rset.property_ranks().items()} == \
        {"xx": "0", "yy": "1", "all": "0-1"}
    with pytest.raises(ValueError, match="ranks 4-5 not found"):
        enc(ranks="0-3", properties=["xx:3-5"])
    with pytest.raises(ValueError, match="illegal character"):
        enc(properties=["de^bug"])


def test_encode_local_uses_this_machines_cores_and_hostname():
    rset = enc(local=("here", "0-3"))
    assert rset.dumps() == "rank0/core[0-3]" and rset.nodelist.encode() == "here"
    hosted = enc(local=("here", "0-3"), hosts="fluke[0-2]")
    assert hosted.nodelist.encode() == "fluke[0-2]" and hosted.count("core") == 12
    with pytest.raises(ValueError, match="--local cannot be combined"):
        enc(local=("here", "0"), cores="0-1")
    out = json.loads(R("--local"))
    assert out["execution"]["nodelist"] and out["execution"]["R_lite"][0]["children"]["core"]


def test_encode_usage_error_exits_2():
    assert run(["encode", "--bogus"]).exit_code == 2
    assert run(["nosuch"]).exit_code == 2


# -- combining ----------------------------------------------------------------------------

def test_append_unions_and_refuses_overlap():
    out = Rcmd.append([enc(ranks="0-1", cores="0-1"), enc(ranks="1-2", cores="2-3")])
    assert out.dumps() == "rank0/core[0-1] rank1/core[0-3] rank2/core[2-3]"
    mixed = Rcmd.append([enc(ranks="0-1", cores="0-1"), enc(ranks="2-3", cores="0-1", gpus="0-1")])
    assert mixed.dumps() == "rank[0-1]/core[0-1] rank[2-3]/core[0-1],gpu[0-1]"
    with pytest.raises(ValueError, match="R object 2 overlaps.*rank 1"):
        Rcmd.append([enc(ranks="0-1"), enc(ranks="1-2")])
    r = run(["append"], input=R("-r", "0-1", "-c", "0-1", "-g", "0") + R("-r", "1", "-c", "2-3",
                                                                          "-g", "0"))
    assert r.exit_code == 1 and "gpu 0 already present" in r.output


def test_diff_and_intersect():
    assert Rcmd.diff([enc(ranks="0-1", cores="0-1"), enc(ranks="0-1", cores="0")]).dumps() \
        == "rank[0-1]/core1"
    assert Rcmd.intersect([enc(ranks="0-3", cores="0-1"), enc(ranks="1-5")]).dumps() \
        == "rank[1-3]/core0"
    assert Rcmd.intersect([enc(ranks="0-3", cores="0-1"), enc(ranks="4-5")]).dumps() == ""


def test_remap_renumbers_ranks_keeping_hosts_and_properties():
    rset = Rcmd.remap(enc(ranks="5,99,1000", hosts="a,b,c", properties=["p:99"]))
    assert rset.dumps() == "rank[0-2]/core0"
    assert rset.hostname(1) == "b" and rset.property_ranks()["p"].encode() == "1"


def test_rerank_follows_the_hostlist_order():
    rset = Rcmd.rerank(enc(ranks="0-3", hosts="foo[0-3]", cores="0-1", properties=["x:0"]),
                       "foo[3,2,1,0]")
    assert rset.nodelist.encode() == "foo[3,2,1,0]"
    assert rset.property_ranks()["x"].encode() == "3"
    with pytest.raises(ValueError, match="3 hosts, R has 4 ranks"):
        Rcmd.rerank(enc(ranks="0-3", hosts="foo[0-3]"), "foo[0-2]")
    with pytest.raises(ValueError, match="host foo3 .* not in"):
        Rcmd.rerank(enc(ranks="0-3", hosts="foo[0-3]"), "foo[0-2,9]")
    shared = Rcmd.rerank(enc(ranks="0-2", hosts="a,a,b", cores="0-1"), "b,a,a")
    assert shared.nodelist.encode() == "b,a,a" and shared.hostname(0) == "b"
    with pytest.raises(ValueError, match="rank 0 has no hostname"):
        Rcmd.rerank(enc(), "foo")


def test_scheduling_key_survives_every_operation():
    obj = json.loads(enc(ranks="0-3", cores="0-3", gpus="0", hosts="foo[0-3]").encode())
    obj["scheduling"] = 42
    (orig,) = Rcmd.read_stream(json.dumps(obj))
    results = [
        Rcmd.select(orig, include="0"), Rcmd.select(orig, exclude="0"),
        Rcmd.append([orig, enc(ranks="4")]), Rcmd.remap(orig),
        Rcmd.diff([orig, enc(ranks="1")]), Rcmd.intersect([orig, enc(ranks="1", hosts="foo1")]),
        Rcmd.rerank(orig, "foo[3,2,1,0]"), Rcmd.set_properties(orig.copy(), ["x"]),
    ]
    for rset in results:
        assert json.loads(rset.encode())["scheduling"] == 42
    assert json.loads(run(["decode"], input=json.dumps(obj)).output)["scheduling"] == 42


def test_set_property():
    rset = Rcmd.set_properties(enc(ranks="0-1", hosts="foo[0-1]"), ["all", "xx:0", "yy:1"])
    assert Rcmd.select(rset, properties="all,yy").nodelist.encode() == "foo1"
    with pytest.raises(ValueError, match="rank 2 not found"):
        Rcmd.set_properties(enc(ranks="0-1"), ["foo:1-2"])
    assert run(["set-property"], input=R()).exit_code == 2  # NAME required


# -- decode -------------------------------------------------------------------------------

def test_select_include_exclude_properties():
    big = enc(ranks="0-1023")
    assert Rcmd.select(big, include="5-7").dumps() == "rank[5-7]/core0"
    assert Rcmd.select(enc(ranks="1-10"), exclude="5-7").dumps() == "rank[1-4,8-10]/core0"
    hosted = enc(hosts="foo[0-3]", properties=["xx:0", "yy:1", "all"])
    assert Rcmd.select(hosted, include="foo[1-2]").ranks.encode() == "1-2"
    assert Rcmd.select(hosted, exclude="foo0").ranks.encode() == "1-3"
    assert Rcmd.select(hosted, properties="xx").nodelist.encode() == "foo0"
    assert Rcmd.select(hosted, properties="^yy").nodelist.encode() == "foo[0,2-3]"
    assert Rcmd.select(hosted, properties="^all").nnodes == 0
    with pytest.raises(ValueError, match="--properties"):
        Rcmd.select(hosted, properties="a|b")


def test_count_by_type():
    rset = enc(ranks="0-1", cores="0-1", gpus="0")
    assert [Rcmd.count(rset, t) for t in ("node", "core", "gpu", "fpga")] == [2, 4, 2, 0]


def test_decode_outputs():
    text = R("-H", "foo[0-1]", "-c", "0-3", "-p", "login:1")
    assert run(["decode", "--short"], input=text).output == "rank[0-1]/core[0-3]\n"
    assert run(["decode", "-n"], input=text).output == "foo[0-1]\n"
    assert run(["decode", "--ranks"], input=text).output == "0-1\n"
    assert run(["decode", "-c", "core"], input=text).output == "8\n"
    assert run(["decode", "-c", "node", "-p", "login"], input=text).output == "1\n"
    assert run(["decode", "-s", "-n", "-c", "node"], input=text).output == \
        "rank[0-1]/core[0-3]\nfoo[0-1]\n2\n"
    assert json.loads(run(["decode", "-i", "1"], input=text).output)["execution"]["nodelist"] \
        == ["foo1"]
    two = run(["decode"], input=text + text)
    assert two.exit_code == 1 and "expected 1 R object on stdin, got 2" in two.output


# -- verify -------------------------------------------------------------------------------

def test_verify_passes_when_actual_has_what_is_expected():
    assert Rcmd.verify(enc(ranks="1-10", cores="0-3"), enc(ranks="1", cores="0-3")) == ([], [])
    problems, extras = Rcmd.verify(enc(ranks="1", cores="0-3"),
                                   enc(ranks="1", cores="0-7", gpus="1"))
    assert problems == [] and extras == ["rank 1: extra core[4-7],gpu1"]


def test_verify_names_what_is_missing_or_wrong():
    assert Rcmd.verify(enc(ranks="1-10", cores="0-3"), enc(ranks="0", cores="0-3"))[0] == \
        ["rank 0 not in expected ranks 1-10"]
    assert Rcmd.verify(enc(ranks="1", hosts="foo1"), enc(ranks="1", hosts="foo12"))[0] == \
        ["rank 1: hostname foo12, expected foo1"]
    assert Rcmd.verify(enc(ranks="1", cores="0-3", gpus="0-1"), enc(ranks="1", cores="0-2"))[0] \
        == ["rank 1: missing core3,gpu[0-1]"]


def test_verify_command_exit_codes():
    ok = run(["verify"], input=R("-r", "1", "-c", "0-3") + R("-r", "1", "-c", "0-7"))
    assert ok.exit_code == 0 and "note: rank 1: extra core[4-7]" in ok.output
    bad = run(["verify"], input=R("-r", "1", "-c", "0-3") + R("-r", "1", "-c", "0-2"))
    assert bad.exit_code == 1 and "flux-R: rank 1: missing core3" in bad.output
    assert run(["verify"], input=R()).exit_code == 1  # needs two


# -- parse-config -------------------------------------------------------------------------

def write(tmp_path, text: str) -> str:
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "resource.toml").write_text(text)
    return str(conf)


def test_parse_config_entries(tmp_path):
    conf = write(tmp_path, '[[resource.config]]\nhosts = "foo[0-2]"\ncores = "0-1"\n'
                           '[[resource.config]]\nhosts = "foo2"\ngpus = "0"\n'
                           '[[resource.config]]\nhosts = "foo0"\nproperties = ["login"]\n')
    rset = Rcmd.from_config(conf)
    assert (rset.nnodes, rset.count("core"), rset.count("gpu")) == (3, 6, 1)
    assert rset.nodelist.encode() == "foo[0-2]"
    assert Rcmd.select(rset, properties="login").nodelist.encode() == "foo0"


def test_parse_config_single_file_and_path_and_scheduling(tmp_path):
    toml = tmp_path / "r.toml"
    toml.write_text('[[resource.config]]\nhosts = "foo"\ncores = "0-1"\ngpus = "0"\n')
    assert Rcmd.from_config(str(toml)).dumps() == "rank0/core[0-1],gpu0"
    rfile = tmp_path / "R.json"
    rfile.write_text(enc(ranks="0-1").encode())
    assert Rcmd.from_config(write(tmp_path, f'resource.path = "{rfile}"\n')).dumps() == \
        "rank[0-1]/core0"
    rfile.write_text("bad json")
    with pytest.raises(OSError, match="invalid R"):
        Rcmd.from_config(str(tmp_path / "conf"))
    sched = tmp_path / "sched.json"
    sched.write_text('{"sched": true}')
    conf = write(tmp_path, f'resource.scheduling = "{sched}"\n'
                           '[[resource.config]]\nhosts = "foo[0-2]"\ncores = "0-1"\n')
    assert json.loads(Rcmd.from_config(conf).encode())["scheduling"] == {"sched": True}
    sched.write_text("foo")
    with pytest.raises(ValueError, match="resource.scheduling: .*invalid JSON"):
        Rcmd.from_config(conf)


@pytest.mark.parametrize("text, words", [
    ("[[resource.config]]\n", "hosts: required"),
    ("[resource]\nnoverify = true\n", "resource.config is missing"),
    ("[other]\nx = 1\n", "no \\[resource\\] table"),
    (('[[resource.config]]\nhosts = "foo"\ncores = "0-1"\n'
      '[[resource.config]]\nhosts = ""\ncores = "0-3"\n'), "config\\[1\\].hosts: empty hostlist"),
    ('[[resource.config]]\nhosts = "foo[p]"\ncores = "0-1"\n', "invalid hostlist"),
    ('[[resource.config]]\nhosts = "foo0"\ncores = "0-"\n', "cores: invalid idset"),
    (('[[resource.config]]\nhosts = "foo[0-10]"\ncores = "0-1"\n'
      '[[resource.config]]\nhosts = "foo11"\n'), "no cores or gpus for foo11"),
    ('[[resource.config]]\nhosts = "foo11"\ncores = "0-3"\njunk = 5\n', "unknown key 'junk'"),
    ('[[resource.config]]\nhosts = "foo1"\ncores = "0"\nproperties = ["de^bug"]\n',
     "illegal character"),
    ('[[resource.config]]\nhosts = "foo1"\ncores = "0"\nproperties = "foo"\n', "array"),
    ('resource.path = "/nonexistent/R"\n', "resource.path: .*No such file"),
    ("x = \n", "resource.toml:1"),
])
def test_parse_config_errors(tmp_path, text, words):
    with pytest.raises((ValueError, OSError), match=words):
        Rcmd.from_config(write(tmp_path, text))


def test_parse_config_command_errors_exit_1(tmp_path):
    r = run(["parse-config", str(tmp_path / "missing")])
    assert r.exit_code == 1 and r.output.startswith("flux-R: config path")
    assert run(["parse-config"]).exit_code == 2


def test_admin_guide_pipeline(tmp_path):
    """``flux R parse-config /etc/flux/system/conf.d | flux R decode --short``, and
    ``--nodelist``, as two real processes."""
    conf = write(tmp_path, '[[resource.config]]\nhosts = "test[0-7]"\ncores = "0-3"\n')
    flux = [sys.executable, "-c", "import sys; from cli.main import main; sys.exit(main())"]
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))}
    parsed = subprocess.run([*flux, "R", "parse-config", conf], capture_output=True,
                            text=True, env=env, timeout=60, check=True).stdout
    outs = [subprocess.run([*flux, "R", "decode", opt], input=parsed, capture_output=True,
                           text=True, env=env, timeout=60, check=True).stdout
            for opt in ("--short", "--nodelist")]
    assert outs == ["rank[0-7]/core[0-3]\n", "test[0-7]\n"]
