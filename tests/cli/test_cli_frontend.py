"""flux(1)'s front end: external flux-CMD commands on the sub-command search path,
a CMD with a slash run directly, the sub-command environment, -v, and flux help."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from broker.testing import flux_command
from cli import frontend


# -- pure parts -----------------------------------------------------------------------------

def test_search_path_drops_empty_and_repeated_entries():
    assert frontend.search_path("a::b", None, "", "b:c:a") == ["a", "b", "c"]
    assert frontend.search_path() == []


def test_subcommand_environment():
    env = frontend.subcommand_environment(
        {"FLUX_EXEC_PATH_PREPEND": "/pre", "FLUX_EXEC_PATH": "/post:/pre", "HOME": "/home/u",
         "FLUX_PYTHONPATH_PREPEND": "/py", "PYTHONPATH": "/mine"}, "/inst")
    assert env == {"FLUX_EXEC_PATH": "/pre:/inst:/post", "FLUX_SEC_DIRECTORY": "/home/u/flux",
                   "PYTHONPATH": "/py:/mine"}
    # an explicit FLUX_SEC_DIRECTORY stays; no PYTHONPATH is made up
    env = frontend.subcommand_environment({"FLUX_SEC_DIRECTORY": "/keys"}, "/inst")
    assert env == {"FLUX_EXEC_PATH": "/inst"}


def test_nested_flux_does_not_grow_the_variables():
    outer = {"FLUX_EXEC_PATH_PREPEND": "/pre", "FLUX_PYTHONPATH_PREPEND": "/py", "HOME": "/h"}
    once = {**outer, **frontend.subcommand_environment(outer, "/inst")}
    twice = {**once, **frontend.subcommand_environment(once, "/inst")}
    assert once == twice


def test_find_subcommand(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "flux-notexec").write_text("#!/bin/sh\n")           # not executable: skipped
    (second / "flux-notexec").write_text("#!/bin/sh\n")
    (second / "flux-notexec").chmod(0o755)
    (first / "flux-script.py").write_text("print(1)\n")
    (second / "flux-script").write_text("#!/bin/sh\n")
    (second / "flux-script").chmod(0o755)
    path = [str(first), str(second)]
    trace: list[str] = []
    assert frontend.find_subcommand("notexec", path, trace) == [str(second / "flux-notexec")]
    assert trace == [str(first / "flux-notexec"), str(second / "flux-notexec")]
    # the first directory with either form wins; a .py script runs with this Python
    assert frontend.find_subcommand("script", path) == [sys.executable,
                                                         str(first / "flux-script.py")]
    assert frontend.find_subcommand("missing", path) is None


# -- the flux command -----------------------------------------------------------------------

@pytest.fixture
def execdir(tmp_path):
    d = tmp_path / "cmd"
    d.mkdir()
    hello = d / "flux-hello"
    hello.write_text('#!/bin/sh\necho "hello $*"\necho "path=$FLUX_EXEC_PATH" >&2\n'
                     'exit 3\n')
    hello.chmod(0o755)
    (d / "flux-pyhello.py").write_text(
        "import sys, flux.job\nprint('py', sys.argv[1:], flux.job.JobID(42).f58plain)\n")
    nested = d / "flux-nested"
    nested.write_text(f'#!/bin/sh\nexec {" ".join(flux_command())} env\n')
    nested.chmod(0o755)
    kvs = d / "flux-kvs"
    kvs.write_text("#!/bin/sh\necho shadowed\n")
    kvs.chmod(0o755)
    return d


def flux(*args, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    full.update(env or {})
    return subprocess.run(flux_command() + list(args), env=full, capture_output=True, text=True,
                          timeout=60)


def test_an_external_command_runs_with_its_arguments_and_exit_code(execdir):
    r = flux("hello", "a", "b c", env={"FLUX_EXEC_PATH": str(execdir)})
    assert r.returncode == 3 and r.stdout == "hello a b c\n"
    # prepend, the installation's directory, FLUX_EXEC_PATH
    assert r.stderr == f"path={frontend.install_exec_dir()}:{execdir}\n"
    r = flux("hello", env={"FLUX_EXEC_PATH_PREPEND": str(execdir)})
    assert r.returncode == 3 and r.stderr.startswith(f"path={execdir}:")


def test_a_python_command_runs_with_our_python(execdir):
    r = flux("pyhello", "x", env={"FLUX_EXEC_PATH": str(execdir)})
    assert r.returncode == 0 and r.stdout == "py ['x'] fj\n", r.stderr


def test_builtins_win(execdir):
    r = flux("kvs", "--help", env={"FLUX_EXEC_PATH": str(execdir)})
    assert r.returncode == 0 and "shadowed" not in r.stdout


def test_a_command_with_a_slash_runs_directly(execdir):
    r = flux(str(execdir / "flux-hello"), "z")
    assert r.returncode == 3 and r.stdout == "hello z\n"
    r = flux(str(execdir / "no-such"))
    assert r.returncode == 1 and r.stderr == f"flux: {execdir / 'no-such'}: No such file or directory\n"


def test_an_unknown_command_is_a_usage_error(execdir):
    r = flux("no-such-command", env={"FLUX_EXEC_PATH": str(execdir)})
    assert r.returncode == 2 and "No such command 'no-such-command'" in r.stderr


def test_the_environment_of_sub_commands(execdir):
    r = flux("nested", env={"FLUX_EXEC_PATH_PREPEND": str(execdir), "HOME": "/home/x",
                            "FLUX_PYTHONPATH_PREPEND": "/extra"})
    assert r.returncode == 0, r.stderr
    exports = dict(line[len("export "):].split("=", 1) for line in r.stdout.splitlines())
    path = exports["FLUX_EXEC_PATH"].split(":")
    assert path[0] == str(execdir) and len(path) == len(set(path))  # not doubled by nesting
    assert exports["FLUX_SEC_DIRECTORY"] == "/home/x/flux"
    assert exports["PYTHONPATH"].split(":")[0] == "/extra"


def test_verbose_shows_the_environment_and_the_search(execdir):
    r = flux("-v", "hello", env={"FLUX_EXEC_PATH": str(execdir)})
    assert r.returncode == 3 and r.stdout == "hello \n"
    lines = r.stderr.splitlines()
    assert f"FLUX_EXEC_PATH={lines[0].split('=', 1)[1]}" == lines[0]
    assert f"flux: trying {execdir / 'flux-hello'}" in lines
    r = flux("-v", "version")
    assert r.returncode == 0 and r.stderr.startswith("FLUX_EXEC_PATH=")


def test_flux_help(execdir):
    r = flux("help", "kvs", env={"PATH": "/nonexistent:" + os.environ["PATH"],
                                 "MANPATH": "/nonexistent"})
    assert r.returncode == 0 and r.stdout.startswith("Usage: flux kvs")
    r = flux("help")
    assert r.returncode == 0 and "Commands:" in r.stdout and "help" in r.stdout
    r = flux("help", "hello", env={"FLUX_EXEC_PATH": str(execdir)})
    assert r.stdout == "hello --help\n"
    r = flux("help", "no-such-command")
    assert r.returncode == 1 and r.stderr == "flux-help: No manual entry for flux-no-such-command\n"


def test_flux_python_runs_the_interpreter_of_the_bindings(tmp_path):
    """flux-python(1): the Python flux runs on, every argument passed to it (-h too),
    its exit code kept; the flux package is importable there."""
    r = subprocess.run(flux_command() + ["python", "-c",
                                         "import sys, flux.job; print(sys.executable); sys.exit(3)"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    assert os.path.realpath(r.stdout.strip()) == os.path.realpath(sys.executable)
    r = subprocess.run(flux_command() + ["python", "-h"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("usage:")
