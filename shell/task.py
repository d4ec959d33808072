"""One task of the job: its command, environment, stdio and how it is started.

Tasks start with ``os.posix_spawn`` (vfork + exec in the C library: no
Python runs in the child, so a shell starts hundreds of tasks quickly),
each in its own process group so a signal reaches what the task forks too.
The executable is looked up in the *job's* PATH, not the shell's.  A task
that cannot be started (not found, not executable) gets the exit status a
shell would give it: 127 or 126.  Resource limits a task cannot be started
under (see ``spawn``) are set by the task itself, through a trampoline.
"""
from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from flux.util.waitstatus import exit_code

__all__ = ["Task", "spawn", "resolve_command", "exit_code", "SpawnError", "highest_fd"]

_RESET_SIGNALS = tuple(s for s in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", None),
                                   getattr(signal, "SIGXFZ", None), signal.SIGINT,
                                   signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP)
                       if s is not None)


class SpawnError(OSError):
    """A task could not be started; ``status`` is the wait status to record for it."""

    def __init__(self, errnum: int, text: str) -> None:
        super().__init__(errnum, text)
        self.status = (126 if errnum in (errno.EACCES, errno.ENOEXEC, errno.EPERM) else 127) << 8


@dataclass(slots=True, eq=False)
class Task:
    rank: int                    # global task rank
    local_id: int
    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None
    pid: int = 0
    state: str = "init"          # init, running, exited
    wait_status: int | None = None
    cpus: list[int] | None = None
    #: fd number in the child -> fd in the shell (dup2'd in the child, closed here after spawn)
    child_fds: dict[int, int] = field(default_factory=dict)
    #: extra fds the child keeps at their own number (e.g. PMI_FD)
    pass_fds: list[int] = field(default_factory=list)
    setsid: bool = False
    #: own process group (the ``nosetpgrp`` shell option turns it off)
    setpgrp: bool = True
    aux: dict[str, Any] = field(default_factory=dict)

    @property
    def exitcode(self) -> int | None:
        if self.wait_status is None or not os.WIFEXITED(self.wait_status):
            return None
        return os.WEXITSTATUS(self.wait_status)

    @property
    def signaled(self) -> int:
        if self.wait_status is not None and os.WIFSIGNALED(self.wait_status):
            return os.WTERMSIG(self.wait_status)
        return 0

    def info(self) -> dict[str, Any]:
        """flux_shell_task_get_info(3)'s fields."""
        out: dict[str, Any] = {"localid": self.local_id, "rank": self.rank, "state": self.state,
                               "pid": self.pid}
        if self.wait_status is not None:
            out["wait_status"] = self.wait_status
            out["exitcode"] = self.exitcode
            out["signaled"] = self.signaled
        return out



def resolve_command(argv0: str, env: dict[str, str], cwd: str | None) -> str:
    """The path to execute for ARGV0, searched in the job's PATH; SpawnError if none."""
    if "/" in argv0:
        path = argv0 if os.path.isabs(argv0) or cwd is None else os.path.join(cwd, argv0)
        if not os.path.exists(path):
            raise SpawnError(errno.ENOENT, f"{argv0}: No such file or directory")
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise SpawnError(errno.EACCES, f"{argv0}: Permission denied")
        return path
    found = shutil.which(argv0, path=env.get("PATH", os.defpath))
    if found is None:
        raise SpawnError(errno.ENOENT, f"{argv0}: No such file or directory")
    return found


def _search_path(value: str) -> None:
    """Make VALUE the PATH posix_spawnp searches (the C library reads this
    process's environment, not the one given to the task)."""
    if os.environ.get("PATH") != value:
        os.environ["PATH"] = value


#: lowers the soft open-files limit, then becomes the task (see ``spawn``'s NOFILE)
_NOFILE_TRAMPOLINE = 'ulimit -S -n "$0" && exec "$@"'
#: sets soft limits (``RLIMIT=VALUE,...``), then becomes the task (see ``spawn``'s LIMITS)
_LIMITS_TRAMPOLINE = ("import os,resource,sys\n"
                      "for item in sys.argv[1].split(','):\n"
                      "    r, v = map(int, item.split('='))\n"
                      "    resource.setrlimit(r, (v, resource.getrlimit(r)[1]))\n"
                      "try:\n"
                      "    os.execv(sys.argv[2], sys.argv[3:])\n"
                      "except OSError as e:\n"
                      "    sys.stderr.write(f'{sys.argv[3]}: {e.strerror}\\n')\n"
                      "    sys.exit(126 if e.errno in (1, 8, 13) else 127)\n")


def highest_fd(task: Task) -> int:
    """The highest descriptor number TASK's start hands to the C library to check."""
    return max([2, *task.child_fds, *task.child_fds.values()])


def spawn(task: Task, nofile: int | None = None,
          limits: dict[int, int] | None = None) -> int:
    """Start TASK (posix_spawn in its own process group); returns its pid.

    A bare command name is searched in the job's PATH by posix_spawnp, in C:
    a search in Python cost a few stat calls and ~0.1 ms per task.  Only when
    that fails is it searched again here, to say why as a shell would.

    NOFILE: an open-files limit too low to set in this process while it starts
    the task (the C library refuses to hand on a descriptor numbered above
    it): ``/bin/sh`` lowers it in the task, then ``exec``s the command.

    LIMITS: soft limits (RLIMIT constant -> value) set in the task itself, by
    a small Python program that then ``exec``s the command (a command that
    cannot run under them exits 127, saying why): limits this process could
    not start the task under (``Host.spawn``).
    """
    if limits:
        if nofile is not None:
            limits = {**limits, resource.RLIMIT_NOFILE: nofile}
        path = resolve_command(task.argv[0], task.env, task.cwd)
        argv = task.argv
        spec = ",".join(f"{const}={value}" for const, value in limits.items())
        task.argv = [sys.executable, "-I", "-S", "-c", _LIMITS_TRAMPOLINE, spec, path, *argv]
        try:
            return spawn(task)
        finally:
            task.argv = argv
    if nofile is not None:
        path = resolve_command(task.argv[0], task.env, task.cwd)
        argv = task.argv
        task.argv = ["/bin/sh", "-c", _NOFILE_TRAMPOLINE, str(nofile), path, *argv[1:]]
        try:
            return spawn(task)
        finally:
            task.argv = argv
    argv0 = task.argv[0]
    actions: list[tuple[Any, ...]] = []
    for child_fd, fd in task.child_fds.items():
        actions.append((os.POSIX_SPAWN_DUP2, fd, child_fd))
    restore = []
    for fd in task.pass_fds:
        if not os.get_inheritable(fd):
            os.set_inheritable(fd, True)
            restore.append(fd)
    try:
        kwargs: dict[str, Any] = {"file_actions": actions, "setsigmask": (),
                                  "setsigdef": _RESET_SIGNALS}
        if task.setsid:
            kwargs["setsid"] = True
        elif task.setpgrp:
            kwargs["setpgroup"] = 0
        if "/" in argv0:
            pid = _spawn(os.posix_spawn, resolve_command(argv0, task.env, task.cwd), task, kwargs)
        else:
            _search_path(task.env.get("PATH", os.defpath))
            try:
                pid = os.posix_spawnp(argv0, task.argv, task.env, **kwargs)
            except OSError:
                path = resolve_command(argv0, task.env, task.cwd)
                pid = _spawn(os.posix_spawn, path, task, kwargs)
    finally:
        for fd in restore:
            os.set_inheritable(fd, False)
    task.pid = pid
    task.state = "running"
    return pid


def _spawn(fn: Any, path: str, task: Task, kwargs: dict[str, Any]) -> int:
    try:
        return fn(path, task.argv, task.env, **kwargs)
    except OSError as exc:
        raise SpawnError(exc.errno or errno.EIO,
                         f"{task.argv[0]}: {exc.strerror or exc}") from None
