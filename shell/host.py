"""The process a job shell lives in: spawning tasks, reaping them, leftovers.

A ``Shell`` (shell/shell.py) is one job's shell; it does not own a process.
A ``Host`` is the process: it starts tasks for its shells (setting the
working directory, CPU affinity and resource limits of the process around
each ``posix_spawn``, which a single-threaded process may do), reaps every
child on SIGCHLD and hands each exit to the shell that started it, and
kills what tasks leave behind.  It is a child subreaper, so a task's
orphans become its children.

- ``StandaloneHost``: ``flux-shell --standalone``, one shell; signals the
  process gets are forwarded to the job's tasks.
- ``shell.server.ServerHost``: a shell server, many shells of one user on
  one broker rank.

Leftovers: at a job's end every task's process group gets SIGKILL (what a
task forks stays in its group); anything that left its group (setsid, a
daemon) and was orphaned is found among the host's children by its
FLUX_JOB_ID (or FLUX_ENCLOSING_ID: what runs inside an instance that is the
job) and killed by ``sweep()``, which hosts run shortly after a job ends.
"""
from __future__ import annotations

import errno
import itertools
import os
import queue
import resource
import shutil
import signal
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from shell.procs import PR_SET_CHILD_SUBREAPER, children_of, prctl
from shell.task import SpawnError, Task, highest_fd, spawn

__all__ = ["Host", "StandaloneHost", "FORWARDED_SIGNALS", "job_of", "jobs_of"]

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM,
                     signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT, signal.SIGCONT,
                     signal.SIGWINCH, signal.SIGURG, signal.SIGTSTP)
#: sweeps for a job's escapees while each one still finds some
_SWEEP_ROUNDS = 5
#: empty job tmpdirs kept, per parent directory, for the next jobs to take
_SPARE_TMPDIRS = 32


class _SignalWatcher:
    """What Reactor.add_signal() calls: ``_fire()``."""

    __slots__ = ("signum", "fn")

    def __init__(self, signum: int, fn: Callable[[int], None]) -> None:
        self.signum = signum
        self.fn = fn

    def _fire(self) -> None:
        self.fn(self.signum)


def job_of(pid: int) -> str | None:
    """FLUX_JOB_ID in PID's environment (None if unreadable or unset)."""
    ids = jobs_of(pid)
    return ids[0] if ids and ids[0] is not None else None


def jobs_of(pid: int) -> tuple[str | None, str | None]:
    """(FLUX_JOB_ID, FLUX_ENCLOSING_ID) in PID's environment, None where unset.

    FLUX_ENCLOSING_ID marks what runs inside a Flux instance that is a job
    (its initial program and everything started from there): those do not
    have the job's FLUX_JOB_ID, but belong to the job all the same.
    """
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = fh.read()
    except OSError:
        return None, None
    job = enclosing = None
    for item in env.split(b"\0"):
        if item.startswith(b"FLUX_JOB_ID="):
            job = item[12:].decode("utf-8", "replace")
        elif item.startswith(b"FLUX_ENCLOSING_ID="):
            enclosing = item[18:].decode("utf-8", "replace")
    return job, enclosing


class Host:
    def __init__(self, reactor: Any, h: Any = None) -> None:
        self.reactor = reactor
        self.h = h
        self.pids: dict[int, tuple[Any, Task]] = {}     # task pid -> (shell, task)
        self._signals: list[_SignalWatcher] = []
        self._home = os.getcwd()
        #: the CPUs this process may use (it runs on them again after each bound spawn)
        self.cpus: set[int] = os.sched_getaffinity(0)
        self.ended_jobs: dict[str, int] = {}             # F58 id -> sweeps left
        self._sweep_timer: Any = None
        self._limits: dict[int, tuple[int, int]] = {}     # RLIMIT -> this process's own
        #: children that are not a job's (servers we forked): never swept, they end their
        #: own jobs (a SIGKILL here would orphan their tasks)
        self.spared: set[int] = set()
        self._removals: queue.SimpleQueue[tuple[str, bool] | None] | None = None
        self._remover: threading.Thread | None = None
        #: parent directory -> empty tmpdirs of finished jobs, renamed; filled by the
        #: remover thread, taken by the main one (deque's append and pop are atomic)
        self._spares: dict[str, deque[str]] = {}
        self._spare_names = itertools.count()
        try:
            prctl(PR_SET_CHILD_SUBREAPER, 1)
        except OSError:
            pass

    # -- signals --------------------------------------------------------------------------
    def watch_signal(self, signum: int, fn: Callable[[int], None]) -> None:
        watcher = _SignalWatcher(signum, fn)
        self._signals.append(watcher)
        self.reactor.add_signal(signum, watcher)

    def watch_children(self) -> None:
        self.watch_signal(signal.SIGCHLD, lambda _s: self.reap())

    def close_signals(self) -> None:
        for watcher in self._signals:
            self.reactor.remove_signal(watcher.signum, watcher)
        self._signals.clear()

    # -- tasks ----------------------------------------------------------------------------
    def spawn(self, shell: Any, task: Task, cwd: str | None, rlimits: dict[int, int]) -> int:
        """Start TASK for SHELL with this process's cwd, affinity and limits set for it."""
        saved_limits: list[tuple[int, tuple[int, int]]] = []
        saved_cpus = None
        nofile = None
        try:
            if cwd:
                os.chdir(cwd)
            for const, value in rlimits.items():
                old = self._limits.get(const)
                if old is None:
                    # our own limits change only here, and are put back below
                    old = self._limits[const] = resource.getrlimit(const)
                if old[0] == value:
                    continue        # the usual case: the submitter's limit is ours
                if const == resource.RLIMIT_NOFILE and value <= highest_fd(task):
                    nofile = value  # set in the task instead (shell/task.py spawn)
                    continue
                resource.setrlimit(const, (value, old[1]))
                saved_limits.append((const, old))
            if task.cpus and set(task.cpus) != self.cpus:
                saved_cpus = self.cpus
                os.sched_setaffinity(0, task.cpus)
            try:
                pid = spawn(task, nofile)
            except SpawnError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ENOMEM) or not saved_limits:
                    raise
                # the start itself is held to the limits: a process count (NPROC)
                # below the user's (the submitter's other processes, this server's)
                # refuses its fork, a memory limit (AS, DATA) below what this process
                # uses its allocations.  Neither is a reason not to start the task:
                # it sets its limits itself, and is held to them from then on.
                lowered = {const: rlimits[const] for const, _old in saved_limits}
                for const, old in saved_limits:
                    resource.setrlimit(const, old)
                pid = spawn(task, nofile, lowered)
        finally:
            if saved_cpus is not None:
                os.sched_setaffinity(0, saved_cpus)
            for const, old in saved_limits:
                try:
                    resource.setrlimit(const, old)
                except (ValueError, OSError):
                    pass
            if cwd:
                os.chdir(self._home)
        self.pids[pid] = (shell, task)
        return pid

    def reap(self) -> None:
        """Collect exited children; each task's exit goes to its shell."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if os.WIFSTOPPED(status):
                # only a traced task reports a stop here (stop-tasks-in-exec)
                stopped = self.pids.get(pid)
                if stopped is not None:
                    stopped[0].task_stopped(stopped[1], os.WSTOPSIG(status))
                continue
            entry = self.pids.pop(pid, None)
            if entry is not None:
                shell, task = entry
                shell.task_exited(task, status)
            else:
                # an orphan of some task, reparented to us, or a server we forked
                self.spared.discard(pid)

    def later(self, fn: Callable[[], None]) -> None:
        """Run FN soon, after what is waiting now (cleanup off the job's path)."""
        self.reactor.call_soon(fn)

    def make_tmpdir(self, path: str) -> None:
        """Create the directory PATH (mode 0700) for a job: an earlier job's, renamed.

        On the ext4 measured a mkdir and the rmdir after it cost ~140 us of
        CPU, a rename ~10 us: an empty tmpdir a finished job left is kept
        (``remove_tree(path, keep=True)``) and becomes the next one's.
        """
        spares = self._spares.get(os.path.dirname(path))
        while spares:
            try:
                spare = spares.pop()
            except IndexError:
                break
            try:
                os.rename(spare, path)
                return
            except FileNotFoundError:
                continue            # gone (a sweep of the rundir): try another
            except OSError:
                spares.append(spare)    # PATH is there already: keep the spare
                break
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass

    def remove_tree(self, path: str, keep: bool = False) -> None:
        """Remove the directory PATH (a job's tmpdir) on a thread of this host's.

        On the machines measured (ext4 under load) one rmdir of an empty
        directory took about as long as the rest of a short job's shell
        work: a quarter of a busy shell server's time went to waiting in
        it, while other jobs waited for the server.  The thread waits in
        the system call without the GIL.  With KEEP, an empty PATH still
        ours and private is kept as a spare for ``make_tmpdir``.
        """
        if self._removals is None:
            self._removals = queue.SimpleQueue()
            self._remover = threading.Thread(target=self._remove_loop, args=(self._removals,),
                                             name="tmpdir-remover", daemon=True)
            self._remover.start()
        self._removals.put((path, keep))

    def _remove_loop(self, paths: "queue.SimpleQueue[tuple[str, bool] | None]") -> None:
        while True:
            item = paths.get()
            if item is None:
                break
            path, keep = item
            if keep and self._keep(path):
                continue
            try:
                os.rmdir(path)      # most jobs leave it empty: one call, not a walk
            except OSError:
                shutil.rmtree(path, ignore_errors=True)
        spares, self._spares = self._spares, {}
        for pool in spares.values():
            for spare in pool:
                try:
                    os.rmdir(spare)
                except OSError:
                    pass

    def _keep(self, path: str) -> bool:
        """Rename PATH to a spare if it is empty, ours and 0700 (else False: remove it)."""
        parent = os.path.dirname(path)
        pool = self._spares.setdefault(parent, deque())
        if len(pool) >= _SPARE_TMPDIRS:
            return False
        try:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() \
                    or stat.S_IMODE(st.st_mode) != 0o700:
                return False
            with os.scandir(path) as entries:
                if next(entries, None) is not None:
                    return False
            spare = os.path.join(parent, f".jobtmp-spare-{os.getpid()}-{next(self._spare_names)}")
            os.rename(path, spare)
        except OSError:
            return False
        pool.append(spare)
        return True

    def finish_removals(self, timeout: float = 5.0) -> None:
        """Wait (at most TIMEOUT seconds) for the directories queued so far, and the
        spares, to be gone."""
        if self._removals is None or self._remover is None:
            return
        self._removals.put(None)
        self._remover.join(timeout)
        self._removals = self._remover = None

    # -- leftovers ------------------------------------------------------------------------
    def job_ended(self, f58: str, tasks: Iterable[Task]) -> None:
        """Kill the process groups of a finished job's tasks; sweep for escapees soon."""
        for task in tasks:
            if task.pid and task.setpgrp:       # nosetpgrp: no group of its own to kill
                try:
                    os.killpg(task.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.ended_jobs[f58] = _SWEEP_ROUNDS
        self._arm_sweep()

    def _arm_sweep(self) -> None:
        if self._sweep_timer is None:
            import time

            self._sweep_timer = self.reactor.add_timer(time.monotonic() + 0.2, self._sweep_soon)

    def _sweep_soon(self) -> None:
        self._sweep_timer = None
        self.sweep()

    def sweep(self, everything: bool = False) -> None:
        """Kill children that belong to ended jobs (or, with EVERYTHING, all but tasks).

        An escapee (a process that left its task's process group, e.g. with
        setsid) is reparented here once its parent dies; it is killed with
        its own process group, and the sweep looks again a little later for
        whatever of its descendants was reparented in turn.
        """
        ended = self.ended_jobs
        if not ended and not everything:
            return
        killed: set[str] = set()
        mypgid = os.getpgid(0)
        for pid in children_of(os.getpid(), exact=everything):
            if pid in self.pids or pid in self.spared:
                continue
            job, enclosing = jobs_of(pid)
            if enclosing in ended and job not in ended:
                job = enclosing
            if everything or job in ended:
                try:
                    pgid = os.getpgid(pid)
                    if pgid != mypgid:
                        os.killpg(pgid, signal.SIGKILL)
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                if job is not None:
                    killed.add(job)
        # a job is swept again while it still had escapees, a bounded number of times
        for f58 in list(ended):
            if f58 in killed and ended[f58] > 1:
                ended[f58] -= 1
            else:
                del ended[f58]
        if ended:
            self._arm_sweep()


class StandaloneHost(Host):
    """``flux-shell --standalone``: one shell, this process; signals go to its tasks."""

    def __init__(self, reactor: Any) -> None:
        super().__init__(reactor, None)
        self.shell: Any = None

    def later(self, fn: Callable[[], None]) -> None:
        fn()               # nothing else waits on this process

    def remove_tree(self, path: str, keep: bool = False) -> None:
        shutil.rmtree(path, ignore_errors=True)      # nothing else waits on this process

    def run(self, shell: Any) -> int:
        self.shell = shell
        for signum in FORWARDED_SIGNALS:
            self.watch_signal(signum, shell.killall)
        self.watch_children()
        result: list[int] = []

        def done(code: int, _tail: bytes) -> None:
            result.append(code)
            self.reactor.decref()
            self.reactor.stop()

        self.reactor.incref()
        shell.start(done)
        if not result:
            self.reactor.run()
        self.sweep(everything=True)
        self.close_signals()
        return result[0] if result else 1
