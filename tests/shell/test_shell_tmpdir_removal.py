"""A shell server removes jobs' tmpdirs on a thread of its own (shell/host.py): the
rmdir, slow on a loaded ext4, no longer holds up the server's other jobs."""
from __future__ import annotations

import shutil
import stat
import threading
import time
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


def _wait_gone(path: Path) -> None:
    for _ in range(500):
        if not path.exists():
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} is still there")


def _spares(parent: Path) -> list[Path]:
    return sorted(parent.glob(".jobtmp-spare-*"))


def test_an_emptied_tmpdir_is_renamed_for_the_next_job(tmp_path: Path) -> None:
    host = Host(reactor=None)
    first = tmp_path / "jobtmp-0-a"
    host.make_tmpdir(str(first))
    assert first.is_dir() and stat.S_IMODE(first.stat().st_mode) == 0o700
    inode = first.stat().st_ino
    host.remove_tree(str(first), keep=True)
    _wait_gone(first)
    (spare,) = _spares(tmp_path)
    second = tmp_path / "jobtmp-0-b"
    host.make_tmpdir(str(second))
    # the same directory (no mkdir), under the new job's name, and no spare left
    assert second.stat().st_ino == inode and _spares(tmp_path) == []
    # what a job left in its tmpdir, or a mode it changed, is not handed on
    (second / "file").write_text("data")
    host.remove_tree(str(second), keep=True)
    third = tmp_path / "jobtmp-0-c"
    third.mkdir(mode=0o755)
    third.chmod(0o755)
    host.remove_tree(str(third), keep=True)
    _wait_gone(second)
    _wait_gone(third)
    assert _spares(tmp_path) == []
    # no spare: mkdir; spares go when the host finishes its removals
    fourth = tmp_path / "jobtmp-0-d"
    host.make_tmpdir(str(fourth))
    assert stat.S_IMODE(fourth.stat().st_mode) == 0o700
    host.remove_tree(str(fourth), keep=True)
    _wait_gone(fourth)
    assert len(_spares(tmp_path)) == 1
    host.finish_removals()
    assert list(tmp_path.iterdir()) == []


def test_a_spare_is_kept_when_the_new_tmpdir_is_there_already(tmp_path: Path) -> None:
    host = Host(reactor=None)
    done = tmp_path / "jobtmp-0-a"
    host.make_tmpdir(str(done))
    host.remove_tree(str(done), keep=True)
    _wait_gone(done)
    (spare,) = _spares(tmp_path)
    taken = tmp_path / "jobtmp-0-b"
    (taken / "left").mkdir(parents=True)       # a leftover of the same name, not empty
    host.make_tmpdir(str(taken))
    assert (taken / "left").is_dir() and _spares(tmp_path) == [spare]
    fresh = tmp_path / "jobtmp-0-c"
    host.make_tmpdir(str(fresh))                 # the spare is still there to take
    assert fresh.is_dir() and _spares(tmp_path) == []
    host.finish_removals()
