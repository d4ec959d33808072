"""The job shell core: plan the local tasks, start them, watch them, report.

One ``Shell`` runs per job per broker rank (flux-shell(1), OPERATION).  It
lives in a host process (shell/host.py: a shell server running many jobs
of one user on a rank, or ``flux-shell --standalone``), which starts and
reaps the tasks for it:

1. builtin plugins and the initrc load; ``shell.connect``, ``shell.init``;
   the job's cwd must exist (a failure is a fatal ``exec`` exception);
2. barrier ``init`` with every shell of the job (exec logs ``shell.init``);
3. for each local task: ``task.init``, start it, ``task.fork``; a task that
   cannot start gets exit status 127/126 and a fatal ``exec`` exception
   naming the rank and the reason;
4. ``shell.start``, barrier ``start`` (exec logs ``shell.start`` and tells
   the job manager the job started);
5. as tasks exit: ``task.exit``; the first exit is reported to exec (for
   exit-timeout and exit-on-error);
6. when every task has exited: anything the tasks left behind is killed,
   output is drained to EOF, ``shell.exit``, the output is flushed, and
   the shell is done with the largest task exit code (128+N for signal N).

Signals for the job (from exec: cancel, time limit, ``flux job kill``)
go to every running task's process group (``killall``).  The shell talks
to rank 0's exec (``job-exec.barrier``, ``job-exec.exception``,
``job-exec.task-exit``; the barriers and first task exit of a shell on rank 0
go through its shell server's socket to exec instead); in standalone mode (no instance) barriers pass at
once, exceptions are printed, and output goes to the terminal.
"""
from __future__ import annotations

import errno
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from flux.constants import FLUX_POLLIN
from shell.info import JobInfo
from shell.plugstack import PlugStack, PluginError
from shell.task import SpawnError, Task, exit_code

__all__ = ["Shell", "LOG_LEVELS", "level_name"]

#: the shell's log levels, as flux-core's shell names them: ``verbose=1`` (``-v``) shows
#: DEBUG, ``verbose=2`` TRACE as well (INFO: an older name for DEBUG, kept for plugins)
LOG_LEVELS = {"FATAL": 0, "ERROR": 3, "WARN": 4, "NOTICE": 5, "DEBUG": 6, "TRACE": 7,
              "INFO": 6}
#: level -> the name printed with a message ("" for NOTICE)
LEVEL_NAMES = ("FATAL", "FATAL", "FATAL", "ERROR", "WARN", "", "DEBUG", "TRACE")


def level_name(level: int) -> str:
    return LEVEL_NAMES[level] if 0 <= level < len(LEVEL_NAMES) else ""
_DRAIN_TIMEOUT = 1.0           # seconds to read output after the last task exited
_KILLED_DRAIN = 0.2            # then, once its leftovers are killed, for their pipes to close


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) \
        else f"wait status {status}"


class OutputSink:
    """Where task output and shell log messages go (the output plugin replaces it).

    In an instance, messages below ERROR that come before the output plugin is
    set up (an initrc's, say) are held for it to log into the job's output;
    errors are written at once, since a shell that fails that early never gets
    that far.
    """

    def __init__(self, hold: bool = False) -> None:
        self.held: list[tuple[int, str, str | None]] | None = [] if hold else None

    def task_output(self, task: Task, stream: str, data: bytes) -> None:
        out = sys.stdout if stream == "stdout" else sys.stderr
        out.buffer.write(data)
        out.flush()

    def task_eof(self, task: Task, stream: str) -> None:
        pass

    def log(self, level: int, message: str, component: str | None) -> None:
        if self.held is not None and level > LOG_LEVELS["ERROR"]:
            self.held.append((level, message, component))
            return
        name = level_name(level)
        sys.stderr.write(f"flux-shell: {name + ': ' if name else ''}"
                         f"{component + ': ' if component else ''}{message}\n")

    def flush(self, callback: Callable[[], None]) -> None:
        callback()

    def finish(self, callback: Callable[[bytes], None]) -> None:
        callback(b"")


def task_limit() -> int:
    """The most tasks one shell may start: two descriptors each (stdout and stderr)
    within the server's open-files limit."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(soft // 2, 64)


def verbosity(value: Any) -> int:
    """The ``verbose`` shell option's level (an integer; ``-o verbose`` alone is 1)."""
    if value is None or value is False:
        return 0
    if value is True:
        return 1
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValueError(f"verbose: invalid value {value!r} (a level: 0, 1, 2)")


class Shell:
    def __init__(self, info: JobInfo, host: Any, args: dict[str, Any] | None = None) -> None:
        self.info = info
        self.host = host
        self.reactor = host.reactor
        self.h = host.h
        self.args = dict(args or {})
        self.rank = info.shell_rank
        self.standalone = self.h is None
        self.options = info.options
        self._option_error: str | None = None
        try:
            self.verbose = verbosity(self.options.get("verbose", 0))
        except ValueError as exc:
            self.verbose, self._option_error = 0, str(exc)
        self.namespace: str | None = self.args.get("namespace")
        self.env: dict[str, str] = dict(info.environment)
        self.plugstack = PlugStack()
        self.tasks: list[Task] = []
        self.output: OutputSink = OutputSink(hold=not self.standalone)
        self.aux: dict[str, Any] = {}
        self.exit_code = 0
        self.fatal = False
        #: RLIMIT constant -> soft limit for the tasks (the rlimit plugin)
        self.rlimits: dict[int, int] = {}
        self._exited = 0
        self._in_log = False
        self._first_exit_sent = False
        self._fds: dict[int, tuple[Task, str]] = {}    # open output fds
        self._on_done: Callable[[int, bytes], None] | None = None
        self._finishing = False
        self._done = False
        self._drain_timer: Any = None
        self._leftovers_ended = False
        self._pending_rpcs = 0
        self._after_rpcs: list[Callable[[], None]] = []
        #: the shell server's name for this job, when its barriers go through the server
        self.key: str | None = None
        self.loglevel = LOG_LEVELS["WARN"] + min(self.verbose, 2) * 2 if self.verbose else \
            LOG_LEVELS["WARN"]

    # -- facts plugins use -------------------------------------------------------------
    @property
    def jobid(self) -> int:
        return self.info.jobid

    @property
    def size(self) -> int:
        return self.info.size

    def getopt(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    def job_path(self, path: str) -> str:
        """PATH as the job sees it: a relative path is relative to the job's cwd
        (a shell server hosts many jobs, so its own cwd is none of theirs)."""
        cwd = self.info.cwd
        if cwd and not os.path.isabs(path):
            return os.path.join(cwd, path)
        return path

    # -- logging and exceptions ----------------------------------------------------------
    def log(self, message: str, level: int = LOG_LEVELS["INFO"],
            component: str | None = None) -> None:
        if level > self.loglevel:
            return
        if not self._in_log:
            # a shell.log handler that logs (an initrc's handler of every topic, as in
            # flux-shell(1)) must not call itself again for its own message
            self._in_log = True
            try:
                self.plugstack.call("shell.log", self, None)
            except PluginError:
                pass
            finally:
                self._in_log = False
        self.output.log(level, message, component)

    def log_error(self, message: str, component: str | None = None) -> None:
        self.log(message, LOG_LEVELS["ERROR"], component)

    def die(self, note: str, component: str | None = None) -> None:
        """A fatal error of this shell: log it, raise a fatal exception, end the tasks."""
        self.log(note, LOG_LEVELS["FATAL"], component)
        self.raise_exception(f"rank {self.info.me.broker_rank}: {note}")
        self.killall(signal.SIGKILL)

    def raise_exception(self, note: str, etype: str = "exec", severity: int = 0) -> None:
        if severity == 0:
            if self.fatal:
                return
            self.fatal = True
        if self.h is None:
            sys.stderr.write(f"flux-shell: job exception: type={etype} severity={severity} "
                             f"{note}\n")
            return
        self._rpc("job-exec.exception", {"id": self.jobid, "rank": self.rank,
                                         "severity": severity, "type": etype, "note": note})

    def _rpc(self, topic: str, payload: Any, then: Callable[[Any], None] | None = None,
             nodeid: int = 0) -> None:
        """An RPC to rank 0's exec; the shell does not exit before it is answered."""
        assert self.h is not None
        self.h.rpc(topic, payload, nodeid=nodeid).then(self._tracked(then))

    def _tracked(self, then: Callable[..., None] | None) -> Callable[..., None]:
        """THEN wrapped as a request the shell waits for before it is done."""
        self._pending_rpcs += 1

        def done(*args: Any) -> None:
            self._pending_rpcs -= 1
            try:
                if then is not None:
                    then(*args)
            finally:
                if self._pending_rpcs == 0:
                    waiting, self._after_rpcs = self._after_rpcs, []
                    for fn in waiting:
                        fn()

        return done

    def after_rpcs(self, fn: Callable[[], None]) -> None:
        if self._pending_rpcs == 0:
            fn()
        else:
            self._after_rpcs.append(fn)

    # -- barriers ----------------------------------------------------------------------
    def barrier(self, name: str, data: Any, callback: Callable[[Any, str | None], None]) -> None:
        """Wait for every shell of the job; CALLBACK(merged data, error text or None)."""
        if self.h is None:
            merged = dict(data) if isinstance(data, dict) else {}
            self.reactor.call_soon(callback, merged, None)
            return

        if self.info.size == 1 and self.key is not None and self.args.get("barrier") == "launcher":
            # the only shell: the barrier is passed as soon as it is entered (flux-core's
            # shell skips it too), so do not wait a round trip through the broker for
            # it.  Exec still hears of init and start (it logs shell.init and
            # shell.start, and the job starts), in order, on the server's socket; a
            # barrier exec would fail means the job is ending, and its kill follows.
            merged = dict(data) if isinstance(data, dict) else {}
            if name in ("init", "start"):
                # at once, not on the next loop turn: the server handles a whole batch
                # of jobs per turn, and each would wait for all the others' starts
                self.host.barrier(self.key, name, data, None)
                callback(merged, None)
            else:
                self.reactor.call_soon(callback, merged, None)   # PMI: not re-entered
            return

        if self.key is not None and self.args.get("barrier") == "launcher":
            # rank 0's shell: through the shell server's socket to exec
            def answered(resp: dict[str, Any]) -> None:
                if "errno" in resp:
                    callback(None, str(resp.get("text") or os.strerror(int(resp["errno"]))))
                else:
                    callback(resp.get("data") or {}, None)

            self.host.barrier(self.key, name, data, self._tracked(answered))
            return

        def done(future: Any) -> None:
            try:
                resp = future.get() or {}
            except OSError as exc:
                callback(None, exc.strerror or str(exc))
                return
            callback(resp.get("data") or {}, None)

        self._rpc("job-exec.barrier", {"id": self.jobid, "rank": self.rank, "name": name,
                                       "data": data}, done)

    # -- running -------------------------------------------------------------------------
    def start(self, on_done: Callable[[int, bytes], None]) -> None:
        """Start the job's local tasks; ON_DONE(exit code, last output entries) when the
        shell is done (the entries, RFC 18 lines, are for exec to add to the output log)."""
        from shell.plugins import load_builtins

        self._on_done = on_done
        try:
            if self._option_error is not None:
                raise ValueError(self._option_error)
            load_builtins(self)
            if self.h is not None:
                # before the initrc: shell.connect is for builtins only (flux-shell(1))
                self.plugstack.call("shell.connect", self)
            self._load_initrc()
            self.plugstack.call("shell.init", self)
            self._check_cwd()
        except PluginError as exc:
            self._fail_init(str(exc))
        except (OSError, ValueError) as exc:
            self._fail_init(exc.strerror if isinstance(exc, OSError) and exc.strerror
                            else str(exc))
        else:
            if self.loglevel >= LOG_LEVELS["DEBUG"]:
                self._log_plan()
            self.barrier("init", None, self._after_init)

    def _log_plan(self) -> None:
        me = self.info.me
        self.log(f"shell {self.rank} of {self.info.size} on broker rank {me.broker_rank}: "
                 f"{len(me.task_ranks)} of {self.info.ntasks} task(s), cwd "
                 f"{self.info.cwd or '(none)'}", LOG_LEVELS["DEBUG"])
        self.log(f"plugins: {' '.join(self.plugstack.names())}", LOG_LEVELS["TRACE"])
        tmpdir = self.env.get("FLUX_JOB_TMPDIR")
        if tmpdir:
            self.log(f"FLUX_JOB_TMPDIR={tmpdir}", LOG_LEVELS["TRACE"])

    def _fail_init(self, note: str) -> None:
        self.die(note)
        self.exit_code = max(self.exit_code, 1)
        self._finishing = True
        self._release_builtins()
        self.output.finish(lambda tail: self.after_rpcs(lambda: self._finish(tail)))

    def _release_builtins(self) -> None:
        """Let the builtin plugins give back what they took for the job (its
        FLUX_JOB_TMPDIR, open output and input files): a shell that fails before
        its tasks start gets no ``shell.exit`` (as flux-core's exits instead), and
        the process it lives in (a shell server) goes on serving other jobs."""
        from shell.plugins import builtin_plugins

        builtins = builtin_plugins()
        for plugin in self.plugstack.plugins:
            if not any(plugin is b for b in builtins):
                continue            # a site's or an initrc's: flux-core's shell calls none
            for topic, fn in plugin.handlers:
                if topic != "shell.exit":
                    continue
                try:
                    fn("shell.exit", self, None)
                except Exception as exc:  # noqa: BLE001 - the job has failed already
                    self.log_error(f"{plugin.name}: shell.exit: {exc}")

    def _check_cwd(self) -> None:
        cwd = self.info.cwd
        if not cwd:
            return
        if not os.path.isdir(cwd):
            raise OSError(errno.ENOENT, f"Could not change dir to {cwd}: "
                                        "No such file or directory")
        if not os.access(cwd, os.X_OK):
            raise OSError(errno.EACCES, f"Could not change dir to {cwd}: Permission denied")

    def _load_initrc(self) -> None:
        path = self.options.get("initrc") or self.args.get("initrc")
        # flux-shell-options(7) userrc=FILE: "another initrc ... after the system one"
        userrc = self.options.get("userrc")
        if not path and userrc is None:
            return
        from shell.initrc import load_initrc

        if path:
            load_initrc(self, self._job_path(str(path)))
        if userrc is not None:
            if not isinstance(userrc, str) or not userrc:
                import json

                raise ValueError(f"userrc: invalid file name {json.dumps(userrc)}")
            load_initrc(self, self._job_path(userrc))

    def _job_path(self, path: str) -> str:
        """PATH as the job names it: relative to the job's cwd (flux-core's shell runs
        there; this process does not)."""
        if os.path.isabs(path) or not self.info.cwd:
            return path
        return os.path.join(self.info.cwd, path)

    def _after_init(self, _data: Any, error: str | None) -> None:
        if error is not None:
            self._fail_init(f"init barrier failed: {error}")
            return
        me = self.info.me
        count = len(me.task_ranks)
        limit = task_limit()
        if count > limit:
            # each task holds at least its stdout and stderr pipes here: past this the
            # starts would fail anyway, after building every task (a billion of them
            # once took the server's memory)
            self._fail_init(f"{count} tasks on this node: more than the shell can start "
                            f"(its open-files limit allows {limit})")
            return
        argv = self._command()
        # flux-shell-options(7) nosetpgrp: tasks stay in the shell's process group, so
        # signals reach only the tasks themselves (killall falls back to the pid)
        setpgrp = not self.options.get("nosetpgrp")
        for i, rank in enumerate(me.task_ranks):
            task = Task(rank=rank, local_id=i, argv=list(argv),
                        env=dict(self.env), cwd=self.info.cwd, setpgrp=setpgrp)
            self.tasks.append(task)
        started = 0
        for task in self.tasks:
            if self.fatal:
                task.state = "exited"
                task.wait_status = signal.SIGKILL
                self._exited += 1
                continue
            try:
                self.plugstack.call("task.init", self, task)
                self._start(task)
                self.plugstack.call("task.fork", self, task)
                started += 1
            except SpawnError as exc:
                self._start_failed(task, exc)
            except PluginError as exc:
                self._close_child_fds(task)
                self._start_failed(task, SpawnError(errno.EIO, str(exc)))
        try:
            self.plugstack.call("shell.start", self)
        except PluginError as exc:
            self.die(str(exc))
        data = self._start_data() if self.rank == 0 else {}
        # each shell's task pids, which exec gathers into shell.start (flux job hostpids)
        data["pids"] = [[task.rank, task.pid] for task in self.tasks]
        self.barrier("start", data, self._after_start)
        if self._exited == len(self.tasks):
            self._all_exited()

    def _command(self) -> list[str]:
        """The tasks' command with its mustache templates expanded (``{{tmpdir}}``,
        ``{{id}}``, ...: shell/template.py), as flux-shell renders them."""
        command = self.info.command
        if not any("{{" in arg for arg in command):
            return list(command)
        from shell.template import expand

        return [expand(arg, self) if "{{" in arg else arg for arg in command]

    def _start(self, task: Task) -> None:
        argv = task.argv
        if self.options.get("stop-tasks-in-exec"):
            from shell.ptrace import trampoline_argv

            task.argv = trampoline_argv(argv)
        try:
            pid = self.host.spawn(self, task, self.info.cwd, self.rlimits)
        finally:
            task.argv = argv
            self._close_child_fds(task)
        if self.loglevel >= LOG_LEVELS["DEBUG"]:
            self.log(f"task {task.rank}: started pid {pid}: {' '.join(task.argv)}",
                     LOG_LEVELS["DEBUG"])

    @staticmethod
    def _close_child_fds(task: Task) -> None:
        for fd in set(task.child_fds.values()) | set(task.pass_fds):
            try:
                os.close(fd)
            except OSError:
                pass
        task.child_fds.clear()
        task.pass_fds.clear()

    def _start_failed(self, task: Task, exc: SpawnError) -> None:
        task.state = "exited"
        task.wait_status = exc.status
        self._exited += 1
        self.exit_code = max(self.exit_code, exit_code(exc.status))
        # flux-core's text: "task 0 (host HOST): start failed: CMD: <strerror>"
        note = f"task {task.rank} (host {self.info.me.hostname}): start failed: {exc.strerror}"
        self.log(note, LOG_LEVELS["ERROR"])
        if not self.fatal:
            self.fatal = True
            if self.h is not None:
                self._rpc("job-exec.exception", {"id": self.jobid, "rank": self.rank,
                                                 "severity": 0, "type": "exec", "note": note})
            else:
                sys.stderr.write(f"flux-shell: job exception: type=exec severity=0 {note}\n")
        for stream, fd in task.aux.pop("pipes", []):
            os.close(fd)
            self.output.task_eof(task, stream)
        self._notify_exit(task)

    def _start_data(self) -> dict[str, Any]:
        """What the leader puts in exec's ``shell.start`` event: the task count and,
        as flux-core's shell does, the RFC 34 task map (``flux job taskmap`` reads it)."""
        data: dict[str, Any] = {"task-count": self.info.ntasks}
        if self.info.ntasks:
            from shell.pmi.mapping import encode_taskmap, taskmap_of_counts

            if self.info.nodeids is None:
                data["taskmap"] = taskmap_of_counts(self.info.tasks_per_shell)
            else:
                import orjson

                data["taskmap"] = orjson.loads(encode_taskmap(self.info.nodeids))
        return data

    def _after_start(self, _data: Any, error: str | None) -> None:
        if error is not None and not self._finishing:
            self.die(f"start barrier failed: {error}")

    # -- output fds ------------------------------------------------------------------------
    def watch_output(self, task: Task, stream: str, fd: int) -> None:
        """Read FD (the shell's end of TASK's STREAM) into the output sink until EOF."""
        os.set_blocking(fd, False)
        self._fds[fd] = (task, stream)
        task.aux.setdefault("out_fds", []).append(fd)
        self.reactor.add_fd(fd, FLUX_POLLIN, self._make_reader(fd))

    def _make_reader(self, fd: int) -> Callable[[int], None]:
        def on_readable(_revents: int) -> None:
            self._read_fd(fd, on_readable)
        return on_readable

    def _read_fd(self, fd: int, reader: Callable[[int], None]) -> None:
        entry = self._fds.get(fd)
        if entry is None:
            return
        task, stream = entry
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.output.task_output(task, stream, data)
            return
        self.reactor.remove_fd(fd, reader)
        self._close_output(fd)

    def _close_output(self, fd: int) -> None:
        entry = self._fds.pop(fd, None)
        if entry is None:
            return
        try:
            os.close(fd)
        except OSError:
            pass
        task, stream = entry
        self.output.task_eof(task, stream)
        if self._finishing and not self._fds:
            self._drained()

    # -- signals and exits --------------------------------------------------------------
    def input_ready(self) -> None:
        """Exec says someone writes to the job's input log."""
        fn = self.aux.get("input.ready")
        if fn is not None:
            fn()

    def killall(self, signum: int) -> None:
        """Send SIGNUM to every running task (its whole process group)."""
        for task in self.tasks:
            if task.state == "running" and task.pid:
                try:
                    if not task.setpgrp:
                        raise ProcessLookupError        # nosetpgrp: the task alone
                    os.killpg(task.pid, signum)
                except ProcessLookupError:
                    try:
                        os.kill(task.pid, signum)
                    except ProcessLookupError:
                        pass
                except PermissionError:
                    pass

    def task_stopped(self, task: Task, signum: int) -> None:
        """Traced TASK stopped with SIGNUM (stop-tasks-in-exec): at its exec (SIGTRAP)
        it is let go stopped, for a debugger; a signal that came before is passed on."""
        from shell.ptrace import detach_stopped, resume

        try:
            if signum == signal.SIGTRAP and not task.aux.get("stopped_in_exec"):
                task.aux["stopped_in_exec"] = True
                detach_stopped(task.pid)
                self.log(f"task {task.rank}: stopped in exec (pid {task.pid})",
                         LOG_LEVELS["DEBUG"])
            else:
                resume(task.pid, signum)
        except OSError as exc:
            self.log_error(f"task {task.rank}: stop-tasks-in-exec: {exc.strerror or exc}")

    def task_exited(self, task: Task, status: int) -> None:
        """The host reaped TASK (wait status STATUS)."""
        task.state = "exited"
        task.wait_status = status
        self._exited += 1
        self.exit_code = max(self.exit_code, exit_code(status))
        if self.loglevel >= LOG_LEVELS["DEBUG"]:
            self.log(f"task {task.rank}: {_describe(status)}", LOG_LEVELS["DEBUG"])
        try:
            self.plugstack.call("task.exit", self, task)
        except PluginError as exc:
            self.log_error(str(exc))
        self._notify_exit(task)
        if self._exited == len(self.tasks):
            self._all_exited()

    def _notify_exit(self, task: Task) -> None:
        """Tell exec of this shell's first task exit: it starts the exit-timeout and
        logs the job's first one as ``shell.task-exit`` (flux-core's shell posts it)."""
        if self._first_exit_sent or self.h is None:
            return
        self._first_exit_sent = True
        status = task.wait_status
        assert status is not None
        signaled = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        body = {"id": self.jobid, "rank": self.rank, "status": status,
                "task": {"localid": task.local_id, "rank": task.rank, "state": "Exited",
                         "pid": task.pid, "wait_status": status, "signaled": signaled,
                         "exitcode": 128 + signaled if signaled else os.WEXITSTATUS(status)}}
        if self.key is not None and self.args.get("barrier") == "launcher":
            # rank 0's shell: on the server's socket, so exec has it before this
            # shell's exit and logs it with the job's last exec entries
            self.host.barrier(self.key, "task-exit", body, None)
            return
        # answered, so this shell exits (and exec logs ``complete``) only after it
        self._rpc("job-exec.task-exit", body)

    def _all_exited(self) -> None:
        if self._finishing:
            return
        self._finishing = True
        if not self._fds:
            self._drained()
            return
        # a process the tasks left behind still holds their output open: as flux-core,
        # what it writes is the job's output, but only for a while
        self._drain_timer = self.reactor.add_timer(time.monotonic() + _DRAIN_TIMEOUT,
                                                   self._drain_timeout)

    def _end_leftovers(self) -> None:
        """What the tasks forked and left running dies with them."""
        if not self._leftovers_ended:
            self._leftovers_ended = True
            self.host.job_ended(self.env.get("FLUX_JOB_ID", str(self.jobid)), self.tasks)

    def _drain_timeout(self) -> None:
        self._drain_timer = None
        if not self._leftovers_ended:
            self._end_leftovers()
            self._drain_timer = self.reactor.add_timer(time.monotonic() + _KILLED_DRAIN,
                                                       self._drain_timeout)
            return
        # a leftover process we could not see still holds a pipe: stop reading it
        for fd in list(self._fds):
            self._close_output(fd)

    def _drained(self) -> None:
        if self._done:
            return
        self._done = True
        self._end_leftovers()
        if self._drain_timer is not None:
            self.reactor.cancel_timer(self._drain_timer)
            self._drain_timer = None
        try:
            self.plugstack.call("shell.exit", self)
        except PluginError as exc:
            self.log_error(str(exc))
        self.output.finish(lambda tail: self.after_rpcs(lambda: self._finish(tail)))

    def _finish(self, tail: bytes = b"") -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            on_done(self.exit_code, tail)

    def lost(self) -> None:
        """No broker: nobody can hear about the job any more; end its tasks now."""
        self.killall(signal.SIGKILL)
        self.exit_code = max(self.exit_code, 128 + signal.SIGKILL)
        self.host.job_ended(self.env.get("FLUX_JOB_ID", str(self.jobid)), self.tasks)
        for fd in list(self._fds):
            self._close_output(fd)
        if self._drain_timer is not None:
            self.reactor.cancel_timer(self._drain_timer)
            self._drain_timer = None
        self._done = True
        self._finish()
