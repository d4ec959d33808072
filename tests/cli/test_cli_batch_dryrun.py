"""flux batch / flux alloc option handling without an instance: the jobspecs --dry-run
prints, and the usage errors."""
from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import main


def run(*args, input=None):
    result = CliRunner().invoke(main, list(args), input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def dry(*args, input=None):
    r = run(*args[:1], "--dry-run", *args[1:], input=input)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def options(spec):
    return spec["attributes"]["system"].get("shell", {}).get("options", {})


def test_batch_wrap():
    spec = dry("batch", "-n2", "--wrap", "flux", "submit", "--cc=1-4", "sleep", "1")
    system = spec["attributes"]["system"]
    assert system["job"]["name"] == "flux"
    script = system["files"]["script"]
    assert script["data"] == "#!/bin/sh\nflux submit --cc=1-4 sleep 1\n"
    assert script["mode"] & 0o777 == 0o700 and script["encoding"] == "utf-8"
    assert spec["tasks"][0]["command"] == ["flux", "broker", "{{tmpdir}}/script"]
    assert spec["resources"] == [{"type": "slot", "count": 2, "label": "task",
                                  "with": [{"type": "core", "count": 1}]}]
    opts = options(spec)
    assert opts["output"]["stdout"] == {"type": "file", "path": "flux-{{id}}.out"}
    assert opts["per-resource"] == {"type": "node"} and opts["pmi"] == "simple"


def test_batch_script_file_arguments_and_name(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/bash\necho $1\n")
    spec = dry("batch", "-n1", "--job-name=mine", "--output=kvs", str(script), "x", "y z")
    assert spec["tasks"][0]["command"][-3:] == ["{{tmpdir}}/script", "x", "y z"]
    assert spec["attributes"]["system"]["job"]["name"] == "mine"
    assert "output" not in options(spec)
    spec = dry("batch", "-n1", str(script))
    assert spec["attributes"]["system"]["job"]["name"] == "run.sh"
    spec = dry("batch", "-n1", input="#!/bin/sh\ntrue\n")
    assert spec["attributes"]["system"]["job"]["name"] == "batch"


def test_batch_nodes_broker_options_and_conf():
    spec = dry("batch", "-N2", "-B", "-Sa=1,-Sb=2", "-B-Sc=3", "--conf", "exec.kill-timeout=1",
               "--conf", '{"x": {"y": true}}\n', "-t", "1m", "--wrap", "true")
    node = spec["resources"][0]
    assert node["type"] == "node" and node["count"] == 2 and node.get("exclusive") is True
    command = spec["tasks"][0]["command"]
    assert command[:6] == ["flux", "broker", "-Sa=1", "-Sb=2", "-Sc=3",
                           "-c{{tmpdir}}/conf.json"]
    conf = spec["attributes"]["system"]["files"]["conf.json"]
    assert conf["data"] == {"exec": {"kill-timeout": 1}, "x": {"y": True}}
    assert spec["attributes"]["system"]["duration"] == 60


def test_batch_errors(tmp_path):
    r = run("batch", "--wrap", "true")
    assert r.exit_code == 2 and "Number of slots" in r.output
    r = run("batch", "-n1", input="echo no shebang\n")
    assert r.exit_code == 1 and "does not appear to start with '#!'" in r.output
    r = run("batch", "-n1", str(tmp_path / "nope.sh"))
    assert r.exit_code == 1 and "nope.sh" in r.output
    bad = tmp_path / "bin"
    bad.write_bytes(b"#!\xff\xfe")
    r = run("batch", "-n1", str(bad))
    assert r.exit_code == 1 and "utf-8" in r.output
    r = run("batch", "-n1", "--output={{bad}}", "--wrap", "true")
    assert r.exit_code == 1


def test_alloc_command_and_options():
    spec = dry("alloc", "-n1", "-B-Sx=1", "sh", "-c", "exit 3")
    assert spec["tasks"][0]["command"] == ["flux", "broker", "-Sx=1", "sh", "-c", "exit 3"]
    assert "files" not in spec["attributes"]["system"]
    # no terminal here: no pty
    assert "pty" not in options(spec)
    spec = dry("alloc", "--bg", "-N1")
    assert spec["tasks"][0]["command"] == ["flux", "broker", "-Sbroker.rc2_none=1"]
    r = run("alloc", "true")
    assert r.exit_code == 2 and "Number of slots" in r.output
    r = run("alloc", "-n1", "--output=x", "true")
    assert r.exit_code == 2


# -- submission directives (RFC 36) ------------------------------------------------------

DIRECTED = """#!/bin/bash
#flux: -N1 -n2            # one node, two slots
#flux: --job-name=myjob
#flux: -t 5m
# flux: is not a directive here: another sentinel, but a plain comment line
#flux: --setattr=user.conf='''
#flux: [config]
#flux:   item = "foo"
#flux: '''
hostname
"""


def test_batch_directives_are_options(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(DIRECTED.replace("# flux: is not", "# is not"))
    spec = dry("batch", str(script))
    node = spec["resources"][0]
    assert node["type"] == "node" and node["count"] == 1
    assert node["with"][0]["type"] == "slot" and node["with"][0]["count"] == 2
    system = spec["attributes"]["system"]
    assert system["job"]["name"] == "myjob" and system["duration"] == 300
    assert spec["attributes"]["user"]["conf"] == '[config]\n  item = "foo"\n'
    # the script still travels whole
    assert system["files"]["script"]["data"] == DIRECTED.replace("# flux: is not", "# is not")


def test_batch_command_line_overrides_directives(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(DIRECTED.replace("# flux: is not", "# is not"))
    spec = dry("batch", "--job-name=cli", "-t", "1m", str(script), "arg")
    system = spec["attributes"]["system"]
    assert system["job"]["name"] == "cli" and system["duration"] == 60
    assert spec["tasks"][0]["command"][-2:] == ["{{tmpdir}}/script", "arg"]


def test_batch_directives_from_stdin_and_wrap():
    spec = dry("batch", input="#!/bin/sh\n#flux: -n3\n#flux: --job-name=piped\ntrue\n")
    assert spec["resources"][0]["count"] == 3
    assert spec["attributes"]["system"]["job"]["name"] == "piped"
    spec = dry("batch", "--wrap", input="#flux: -n1 --job-name=wrapped\nhostname\n")
    assert spec["attributes"]["system"]["job"]["name"] == "wrapped"


def test_batch_bad_directives(tmp_path):
    script = tmp_path / "bad.sh"
    script.write_text(DIRECTED)          # a second sentinel: an error, by line
    r = run("batch", str(script))
    assert r.exit_code == 1
    assert "bad.sh: line 5: sentinel '# flux:' differs" in r.output
    script.write_text("#!/bin/sh\n#flux: -N1\nhostname\n#flux: -n2\n")
    r = run("batch", str(script))
    assert r.exit_code == 1 and "bad.sh: line 4: orphan directive" in r.output
    script.write_text("#!/bin/sh\n#flux: -n1 --bogus\n")
    r = run("batch", str(script))
    assert r.exit_code == 2
    assert "bad.sh: submission directives: No such option '--bogus'" in r.output
    # an option missing its value does not take the command line's next word
    script.write_text("#!/bin/sh\n#flux: -n\n")
    r = run("batch", "--dry-run", str(script))
    assert r.exit_code == 2
    assert "bad.sh: submission directives: Option '-n' requires an argument" in r.output
    script.write_text("#!/bin/sh\n#flux: -n1 stray\n")
    r = run("batch", str(script))
    assert r.exit_code == 2 and "not an option: stray" in r.output
    # help does not read a script (nor wait for one on stdin)
    r = run("batch", "--help", input="#!/bin/sh\n#flux: --bogus\n")
    assert r.exit_code == 0 and "Usage: flux batch" in r.output
