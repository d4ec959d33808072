"""A shell server removes jobs' tmpdirs on a thread of its own (shell/host.py): the
rmdir, slow on a loaded ext4, no longer holds up the server's other jobs."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

import shell.host as host_mod
from shell.host import Host, StandaloneHost


def test_tmpdirs_go_on_the_remover_thread_and_are_gone_after_finish(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    removed_on: list[str] = []
    real = shutil.rmtree

    def rmtree(path: str, ignore_errors: bool = False) -> None:
        removed_on.append(threading.current_thread().name)
        real(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(host_mod.shutil, "rmtree", rmtree)
    host = Host(reactor=None)
    dirs = []
    for i in range(5):
        d = tmp_path / f"jobtmp-{i}"
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "file").write_text("left by a task")
        dirs.append(d)
        host.remove_tree(str(d))
    host.finish_removals()
    assert not any(d.exists() for d in dirs)
    assert removed_on == ["tmpdir-remover"] * 5 and threading.current_thread().name not in removed_on
    # after finish (the server's exit, or before it forks a guest's server) a new one starts
    again = tmp_path / "again"
    (again / "x").mkdir(parents=True)
    host.remove_tree(str(again))
    host.finish_removals()
    assert not again.exists() and len(removed_on) == 6
    # an empty one (what most jobs leave) takes one rmdir, not a walk of the tree
    empty = tmp_path / "empty"
    empty.mkdir()
    host.remove_tree(str(empty))
    host.finish_removals()
    assert not empty.exists() and len(removed_on) == 6


def test_a_standalone_shell_removes_at_once(tmp_path: Path) -> None:
    d = tmp_path / "t"
    d.mkdir()
    StandaloneHost(reactor=None).remove_tree(str(d))
    assert not d.exists()
