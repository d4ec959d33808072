"""``flux run COMMAND...`` and ``flux submit COMMAND...`` without options run without
click (cli/main.py's fast path): the same jobspec, output, messages and exit code as the
click command, a fraction of the start-up."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from broker.testing import TestInstance, flux_command
from cli import main as climain

CLICK = ("import sys; from cli.main import click_group; "
         "click_group().main(sys.argv[1:], prog_name='flux')")
# an exit handler keeps exit_now from skipping the interpreter's exit, so we can look
MODULES = """
import atexit, sys
atexit.register(lambda: print(sorted(m for m in ("click", "orjson", "dataclasses", "datetime",
                                                 "inspect", "uuid") if m in sys.modules),
                              file=sys.stderr))
sys.argv = ["flux"] + sys.argv[1:]
from cli.main import main
main()
"""


@pytest.fixture(scope="module")
def inst():
    instance = TestInstance().start()
    yield instance
    instance.stop()


def run(inst, *args, click=False, env=None, stdin=subprocess.DEVNULL):
    cmd = [sys.executable, "-c", CLICK, *args] if click else flux_command() + list(args)
    r = subprocess.run(cmd, env={**inst.env, **(env or {})}, capture_output=True,
                       stdin=stdin, timeout=60)
    return r.returncode, r.stdout, r.stderr


def test_the_jobspec_is_the_click_commands(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH", str(tmp_path / "none"))
    from click.testing import CliRunner

    for prog in ("run", "submit"):
        for command in (["true"], ["sh", "-c", "echo $HOME"], ["hostname", "--", "-x"]):
            r = CliRunner().invoke(climain.main, [prog, "--dry-run", *command])
            assert r.exit_code == 0, r.output
            _args, jobspec = climain.plain_jobspec(prog, command)
            assert jobspec == json.loads(r.output)


@pytest.mark.parametrize("command", [
    ["echo", "hello"],
    ["sh", "-c", "echo out; echo err >&2; exit 3"],
    ["sh", "-c", "kill -TERM $$"],
    ["no-such-command-here"],
])
def test_output_messages_and_exit_code_match_click(inst, command):
    fast = run(inst, "run", *command)
    slow = run(inst, "run", *command, click=True)
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    # messages carry the job id and a time since its first event: compare them without
    strip = lambda err: [re.sub(r"^[0-9.]+s: |\u0192\w+", "", line)  # noqa: E731
                         for line in err.decode().splitlines()]
    assert strip(fast[2]) == strip(slow[2])


def test_stdin_reaches_the_job(inst):
    r = subprocess.run(flux_command() + ["run", "cat"], env=inst.env, input=b"piped in\n",
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == b"piped in\n", r.stderr


def test_it_does_not_import_click_or_orjson(inst):
    r = subprocess.run([sys.executable, "-c", MODULES, "run", "echo", "x"], env=inst.env,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0 and r.stdout == "x\n", r.stderr
    assert r.stderr.splitlines()[-1] == "[]", r.stderr


def test_options_and_plugin_options_go_to_click(inst, tmp_path):
    r = subprocess.run([sys.executable, "-c", MODULES, "run", "-n1", "true"], env=inst.env,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0 and "click" in r.stderr.splitlines()[-1]
    # a CLI plugin with options: their defaults are click's to fill in
    (tmp_path / "opt.py").write_text(
        "from flux.cli.plugin import CLIPlugin\n"
        "class CLIPlugin(CLIPlugin):\n"
        "    def __init__(self, prog, prefix=None):\n"
        "        super().__init__(prog, prefix=prefix)\n"
        "        self.add_option('--fast-test', action='store_true', help='x')\n"
        "    def modify_jobspec(self, args, jobspec):\n"
        "        jobspec.setattr('user.fast_test', bool(args.fast_test))\n")
    env = {**inst.env, "FLUX_CLI_PLUGINPATH": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", MODULES, "run", "true"], env=env,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "click" in r.stderr.splitlines()[-1]


def test_submit_prints_the_id_as_click_does(inst):
    from flux.job import JobID

    code, out, err = run(inst, "submit", "true")
    assert code == 0 and err == b""
    jobid = JobID(out.decode().strip())
    assert out.decode() == jobid.f58 + "\n"
    inst.flux("job", "wait-event", "-t", "30s", jobid.f58, "clean", check=True)
    r = subprocess.run([sys.executable, "-c", MODULES, "submit", "true"], env=inst.env,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0 and r.stdout.strip().startswith("\u0192"), r.stderr
    assert r.stderr.splitlines()[-1] == "[]", r.stderr


def test_a_refused_submit_fails_as_click_does(inst):
    # no instance where FLUX_URI points: both paths say so alike
    env = {"FLUX_URI": "local:///nonexistent/socket"}
    fast = run(inst, "submit", "true", env=env)
    slow = run(inst, "submit", "true", env=env, click=True)
    assert fast == slow and fast[0] == 1 and fast[2].startswith(b"flux-submit: ")


def test_a_bad_command_line_is_clicks(inst):
    for prog in ("run", "submit"):
        fast = run(inst, prog)
        assert fast == run(inst, prog, click=True)
        assert fast[0] == 2


def test_fast_path_takes_only_the_plain_form():
    assert climain.fast_path(["run", "-n2", "true"]) is climain.FALLBACK
    assert climain.fast_path(["run", "--", "true"]) is climain.FALLBACK
    assert climain.fast_path(["run"]) is climain.FALLBACK
    assert climain.fast_path(["submit", "--cc=1-2", "true"]) is climain.FALLBACK
    assert climain.fast_path(["submit"]) is climain.FALLBACK
