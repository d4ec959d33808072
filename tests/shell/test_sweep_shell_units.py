"""The job shell's task start and plugins, as a user's job meets them: resource
limits, the pty option."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOBODY = 65534


def _run_as_nobody(script: str) -> subprocess.CompletedProcess:
    """Run the Python SCRIPT as an unprivileged user (root is not held to
    RLIMIT_NPROC), in a private mount namespace where this interpreter is
    reachable for that user even if it lives under a directory only root may
    enter (e.g. /root/.pyenv)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        pytest.skip("needs root, unshare and setpriv to run as another user")
    base = os.path.realpath(sys.base_prefix)
    closed = None
    path = base
    while path != "/":
        path = os.path.dirname(path)
        if path != "/" and not os.stat(path).st_mode & 0o001:
            closed = path           # the topmost one wins
    # pytest's own tmp_path is under a directory only root may enter
    top = tempfile.mkdtemp(prefix="sweep-shell-")
    try:
        return _run_in(top, base, closed, script)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _run_in(top: str, base: str, closed: str | None, script: str) -> subprocess.CompletedProcess:
    os.chmod(top, 0o755)
    hidden = os.path.join(top, "hidden")
    work = os.path.join(top, "work")
    os.mkdir(hidden)
    os.mkdir(work)
    os.chmod(work, 0o777)
    with open(os.path.join(work, "script.py"), "w") as fh:
        fh.write(script)
    mounts = ""
    if closed is not None:
        # a world-enterable tmpfs over the closed directory, the interpreter bound back in
        mounts = (f"mount --bind {closed} {hidden} && "
                  f"mount -t tmpfs -o mode=755 tmpfs {closed} && "
                  f"mkdir -p {base} && mount --bind {hidden}{base[len(closed):]} {base} && ")
    inner = (f"{mounts}cd {work} && exec setpriv --reuid={NOBODY} --regid={NOBODY} "
             f"--clear-groups env PYTHONPATH={ROOT} {sys.executable} {work}/script.py")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner],
                       capture_output=True, text=True, timeout=60)
    if r.returncode == 99 or "unshare failed" in r.stderr or "mount:" in r.stderr \
            or "Permission denied" in r.stderr and r.returncode in (126, 127):
        # (also: this Python lives where nobody may not run it, e.g. a 0700 venv)
        pytest.skip(f"cannot run as another user here: {r.stderr.strip()}")
    return r


def test_nproc_below_the_users_process_count_still_starts_the_task():
    # flux run --rlimit=nproc=1 CMD: the user already has a process (more, in a real
    # instance: the broker, the shell server), and the fork that starts the task was
    # refused with EAGAIN; the task must start, held to the limit from then on
    script = textwrap.dedent("""\
        import os, resource, sys
        try:
            os.getcwd()
            from shell.host import Host
            from shell.task import SpawnError, Task
        except Exception as exc:
            print(exc, file=sys.stderr)
            sys.exit(99)
        host = Host(None)
        r, w = os.pipe()
        task = Task(rank=0, local_id=0, env={"PATH": "/usr/bin:/bin"},
                    argv=["sh", "-c", 'while read -r l; do case "$l" in '
                                      '"Max processes"*) echo "$l";; esac; done '
                                      '</proc/self/limits'])
        task.child_fds[1] = w
        try:
            pid = host.spawn(None, task, None, {resource.RLIMIT_NPROC: 1})
        except SpawnError as exc:
            print("spawn:", exc.strerror)
            sys.exit(1)
        os.close(w)
        out = b""
        while chunk := os.read(r, 4096):
            out += chunk
        _pid, status = os.waitpid(pid, 0)
        print(out.decode(), end="")
        print("status", os.waitstatus_to_exitcode(status))
        # this process's own limit is as it was
        print("own", resource.getrlimit(resource.RLIMIT_NPROC)[0] != 1)
        """)
    r = _run_as_nobody(script)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    # the task runs, held to its limit (it could not fork again)
    assert lines[0].split()[:3] == ["Max", "processes", "1"]
    assert lines[-2:] == ["status 0", "own True"]


def test_memory_limit_below_the_shells_own_use_still_starts_the_task():
    # flux run --rlimit=data=10000000 sh: the shell's process uses more than that, so
    # the start (posix_spawn's own allocations) failed with ENOMEM under it, though
    # the task itself runs well within it
    import resource

    from shell.host import Host
    from shell.task import Task

    host = Host(None)
    r, w = os.pipe()
    task = Task(rank=0, local_id=0, argv=["sh", "-c", "ulimit -d"],
                env={"PATH": "/usr/bin:/bin"})
    task.child_fds[1] = w
    before = resource.getrlimit(resource.RLIMIT_DATA)
    try:
        pid = host.spawn(None, task, None, {resource.RLIMIT_DATA: 10_000_000})
    finally:
        os.close(w)
    out = os.read(r, 100)
    os.close(r)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == b"%d\n" % (10_000_000 // 1024)
    assert resource.getrlimit(resource.RLIMIT_DATA) == before


def test_output_limit_warning_says_truncated():
    # flux-core: "stdout will be truncated, 10M limit exceeded" (its tests grep
    # "stdout.*truncated"); this one said "the rest is dropped"
    from shell.plugins.output import OutputBuffer

    buf = OutputBuffer(limit=10)
    buf.add("stderr", 0, b"0123456789ABC\n")
    logs = [e[2] for e in buf.take(final=True) if e[1] == "log"]
    assert len(logs) == 1
    assert logs[0]["message"] == "stderr will be truncated, limit of 10 bytes exceeded"
    assert logs[0]["component"] == "output" and logs[0]["level"] == 4
