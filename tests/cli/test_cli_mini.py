"""flux mini CMD is flux CMD (flux-mini(1) in seed 003 names the commands so)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main


@pytest.mark.parametrize("args", [
    ["submit", "--dry-run", "-n2", "--job-name=x", "hostname"],
    ["run", "--dry-run", "-N1", "true"],
    ["batch", "--dry-run", "-n1", "--wrap", "true"],
    ["alloc", "--dry-run", "-n1", "true"],
])
def test_mini_commands_are_the_commands(args, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    mini = CliRunner().invoke(main, ["mini", *args])
    plain = CliRunner().invoke(main, args)
    assert mini.exit_code == plain.exit_code == 0, mini.output
    assert json.loads(mini.output) == json.loads(plain.output)


def test_mini_bulksubmit_and_unknown_commands():
    r = CliRunner().invoke(main, ["mini", "bulksubmit", "--dry-run", "echo", "{}", ":::", "a"])
    assert r.exit_code == 0 and r.output == "flux-mini: submit echo a\n"
    r = CliRunner().invoke(main, ["mini", "nope"])
    assert r.exit_code == 2 and "No such command 'nope'" in r.output
