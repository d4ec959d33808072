"""Starting a task: the command is searched in the job's PATH, not the shell's."""
from __future__ import annotations

import os

import pytest

from shell.task import SpawnError, Task, spawn


@pytest.fixture(autouse=True)
def _own_path(monkeypatch):
    # spawn() leaves the last job's PATH in this process's environment (where the
    # C library's search reads it); what later tests start must not inherit it
    monkeypatch.setenv("PATH", os.environ.get("PATH", os.defpath))


def _script(directory, name, text, mode=0o755):
    path = directory / name
    path.write_text(text)
    path.chmod(mode)
    return path


def _run(argv, env, cwd=None):
    task = Task(rank=0, local_id=0, argv=argv, env=env, cwd=cwd)
    pid = spawn(task)
    _pid, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_command_is_found_in_each_jobs_own_path(tmp_path, monkeypatch):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    _script(one, "which-dir", "#!/bin/sh\nexit 11\n")
    _script(two, "which-dir", "#!/bin/sh\nexit 22\n")
    # the shell's own PATH finds the other one first
    monkeypatch.setenv("PATH", f"{two}:/bin:/usr/bin")
    assert _run(["which-dir"], {"PATH": f"{one}:/bin:/usr/bin"}) == 11
    # two jobs in one process, with different PATHs, one after the other
    assert _run(["which-dir"], {"PATH": f"{one}:/bin:/usr/bin"}) == 11
    assert _run(["which-dir"], {"PATH": f"{two}:/bin:/usr/bin"}) == 22
    assert _run(["which-dir"], {"PATH": f"{one}:/bin:/usr/bin"}) == 11


def test_not_found_and_not_executable_say_why_with_shell_statuses(tmp_path):
    _script(tmp_path, "plain-file", "data\n", mode=0o644)
    with pytest.raises(SpawnError) as info:
        _run(["no-such-command-xyzzy"], {"PATH": str(tmp_path)})
    assert info.value.status == 127 << 8
    assert info.value.strerror == "no-such-command-xyzzy: No such file or directory"
    # not executable: skipped in the search, as a shell's search does
    with pytest.raises(SpawnError) as info:
        _run(["plain-file"], {"PATH": str(tmp_path)})
    assert info.value.status == 127 << 8
    with pytest.raises(SpawnError) as info:
        _run([str(tmp_path / "plain-file")], {"PATH": str(tmp_path)})
    assert info.value.status == 126 << 8 and "Permission denied" in info.value.strerror


def test_a_later_path_entry_is_used_when_an_earlier_one_is_not_executable(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _script(first, "tool", "#!/bin/sh\nexit 1\n", mode=0o644)
    _script(second, "tool", "#!/bin/sh\nexit 7\n")
    assert _run(["tool"], {"PATH": f"{first}:{second}"}) == 7


def test_rlimit_option_each_job_gets_its_limits_and_its_warning():
    import resource

    from shell.plugins import rlimit

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard != resource.RLIM_INFINITY      # Linux caps it (fs.nr_open)

    class FakeShell:
        def __init__(self, limits):
            self.options = {"rlimit": limits}
            self.rlimits = {}
            self.logged = []

        def getopt(self, name, default=None):
            return self.options.get(name, default)

        def log(self, text, level, component):
            self.logged.append(text)

    shells = [FakeShell({"nofile": hard + 1, "core": 0}) for _ in range(2)]
    for sh in shells:
        handler = rlimit.plugin().handlers[0][1]
        handler("shell.init", sh, None)
    for sh in shells:           # the second job's result came from the cache
        assert sh.rlimits == {resource.RLIMIT_NOFILE: hard, resource.RLIMIT_CORE: 0}
        assert len(sh.logged) == 1 and "exceeds the hard limit" in sh.logged[0]
    bad = FakeShell({"nofile": "lots"})
    with pytest.raises(ValueError, match="invalid value"):
        rlimit.plugin().handlers[0][1]("shell.init", bad, None)
