"""The fast paths of the commonest commands (cli/main.py): ``flux kvs get``, ``flux job
eventlog`` and ``flux getattr`` without click, with the click version's output, error
texts and exit codes, and the click application for everything else."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import flux
import flux.kvs
from broker.testing import TestInstance, flux_command
from cli import main as climain
from flux.job.JobID import JobID

CLICK = "import sys; from cli.main import click_group; click_group().main(sys.argv[1:], prog_name='flux')"
IMPORTS = """
import sys
from cli.main import main
sys.argv = ["flux"] + sys.argv[1:]
try:
    main()
except SystemExit as e:
    code = e.code
print("click" in sys.modules, "orjson" in sys.modules, "selectors" in sys.modules,
      "threading" in sys.modules, "socket" in sys.modules, file=sys.stderr)
# each of these costs a short command milliseconds (re alone ~5-8 ms)
print(sorted(m for m in ("re", "json", "enum", "typing", "collections", "locale", "heapq",
                         "importlib", "math") if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def inst():
    instance = TestInstance().start()
    h = flux.Flux(instance.uri)
    flux.kvs.put(h, "fp.a", 1)
    flux.kvs.put(h, "fp.text", b"hello")
    flux.kvs.put(h, "fp.empty", b"")
    flux.kvs.put(h, "fp.utf", "caf\u00e9 \u2603")
    flux.kvs.put(h, "fp.dir.x", {"k": [1, 2]})
    flux.kvs.commit(h)
    h.close()
    r = instance.flux("submit", "--setattr=system.exec.test.run_duration=0", "true", check=True)
    instance.jobid = r.stdout.strip()
    instance.flux("job", "wait-event", "-t", "30s", instance.jobid, "clean", check=True)
    yield instance
    instance.stop()


def run(inst, *args, click=False, env=None):
    full = dict(inst.env)
    full.update(env or {})
    cmd = [sys.executable, "-c", CLICK, *args] if click else flux_command() + list(args)
    r = subprocess.run(cmd, env=full, capture_output=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


CASES = [
    ("kvs", "get", "fp.a"),
    ("kvs", "get", "fp.text", "fp.empty", "fp.utf", "fp.dir.x"),
    ("kvs", "get", "fp.a", "fp.missing", "fp.text"),     # prints fp.a, then fails
    ("kvs", "get", "fp.dir"),                             # a directory
    ("kvs", "get", "fp.bad\x01key"),
    ("getattr", "rank"),
    ("getattr", "size"),
    ("getattr", "no-such-attribute"),
    ("job", "eventlog", "123456"),                        # no such job
    ("job", "eventlog", "0x1e240"),
]


@pytest.mark.parametrize("args", CASES)
def test_fast_path_output_matches_click(inst, args):
    fast = run(inst, *args)
    slow = run(inst, *args, click=True)
    assert fast == slow
    assert fast[0] in (0, 1)


def test_fast_job_eventlog_matches_click(inst):
    jobid = JobID(inst.jobid)
    forms = [inst.jobid, jobid.f58.replace("\u0192", "f"), str(int(jobid)), jobid.hex]
    outputs = {run(inst, "job", "eventlog", form) for form in forms}
    outputs.add(run(inst, "job", "eventlog", inst.jobid, click=True))
    assert len(outputs) == 1
    rc, out, err = outputs.pop()
    assert rc == 0 and err == b""
    lines = out.decode().splitlines()
    assert lines[0].split()[1] == "submit" and lines[-1].split()[1] == "clean"
    assert all(len(line.split()[0].split(".")[1]) == 6 for line in lines)


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bare_python(inst: TestInstance) -> tuple[list[str], dict[str, str]]:
    """Python without site (an editable install's path hook imports re and more at start-up),
    finding this source tree: the fast paths need nothing from site-packages."""
    return [sys.executable, "-S"], {**inst.env, "PYTHONPATH": ROOT}


def test_fast_paths_import_neither_click_nor_orjson(inst):
    python, env = bare_python(inst)
    for args in (("kvs", "get", "fp.a"), ("getattr", "rank"), ("job", "eventlog", inst.jobid),
                 ("kvs", "get", "fp.missing")):
        r = subprocess.run([*python, "-c", IMPORTS, *args], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode in (0, 1)
        assert r.stderr.splitlines()[-2] == "False False False False False", (args, r.stderr)
        assert r.stderr.splitlines()[-1] == "[]", (args, r.stderr)
    # anything else is click's
    r = subprocess.run([sys.executable, "-c", IMPORTS, "kvs", "get", "-l", "fp.a"],
                       env=inst.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "fp.a=1\n"
    assert r.stderr.splitlines()[-2].startswith("True")


def test_the_flux_script_imports_no_re(inst):
    """bin/flux is what pip installs as the command; a console-scripts wrapper imports re."""
    python, env = bare_python(inst)
    r = subprocess.run([*python, "-X", "importtime", os.path.join(ROOT, "bin", "flux"),
                        "kvs", "get", "fp.a"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "1\n", r.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()
                if line.startswith("import time:")}
    assert "cli.main" in imported and "flux.core.handle" in imported
    assert not imported & {"re", "json", "enum", "typing", "locale"}, sorted(imported)


@pytest.mark.parametrize("args,code", [
    (("kvs", "get"), 2),
    (("getattr",), 2),
    (("getattr", "a", "b"), 2),
    (("job", "eventlog"), 2),
    (("getattr", "--help"), 0),
    (("kvs", "get", "--help"), 0),
    (("job", "eventlog", "not-a-job-id!"), 1),
])
def test_usage_and_help_go_to_click(inst, args, code):
    fast = run(inst, *args)
    assert fast == run(inst, *args, click=True)
    assert fast[0] == code


def test_fallback_decisions():
    assert climain.fast_path(["kvs", "get", "-r", "k"]) is climain.FALLBACK
    assert climain.fast_path(["kvs", "put", "k=1"]) is climain.FALLBACK
    assert climain.fast_path(["job", "eventlog", "-p", "exec", "1"]) is climain.FALLBACK
    assert climain.fast_path(["getattr"]) is climain.FALLBACK
    for text in ("\u0192" + "abc", "f2zsm", "0", "18446744073709551615", "0xFFff"):
        assert climain._jobid(text) == int(JobID(text))
    for text in ("0000.0000.0000.0001", "job.0000.0000.0000.0001", "2**64",
                 "18446744073709551616", "f0", " 12", "0x", "fI"):
        with pytest.raises(climain._Fallback):
            climain._jobid(text)


def test_no_uri_is_the_click_paths_error(inst):
    env = {k: v for k, v in inst.env.items() if k != "FLUX_URI"}
    for args in (("kvs", "get", "fp.a"), ("getattr", "rank")):
        r = subprocess.run(flux_command() + list(args), env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 1 and "FLUX_URI" in r.stderr


def test_cli_runner_uses_main_like_a_click_command(inst):
    from click.testing import CliRunner

    r = CliRunner().invoke(climain.main, ["kvs", "get", "fp.text"],
                           env={"FLUX_URI": inst.uri})
    assert (r.exit_code, r.stdout) == (0, "hello\n")
    r = CliRunner().invoke(climain.main, ["getattr", "nope"], env={"FLUX_URI": inst.uri})
    assert r.exit_code == 1 and r.stderr == "flux-getattr: unknown attribute 'nope'\n"
    r = CliRunner().invoke(climain.main, ["--version"])  # flux(1): runs flux version
    assert r.exit_code == 0 and r.stdout.startswith("commands:")
    assert os.path.basename(climain.__file__) == "main.py"
