"""flux exec: run a command on broker ranks through the rexec service (flux-exec(1)).

One streaming ``rexec.exec`` per target rank, all at once.  Their output
is copied to our stdout/stderr as it arrives (``RANK: `` before each line
with ``-l``); our stdin is sent to every rank (``rexec.write``, paced by
the service's write credits) unless ``-n``, which closes theirs at once.
SIGINT and SIGTERM are forwarded to the remote processes; a second SIGINT
within a second makes us exit, and the broker then kills what is left.

Exit code: the largest remote exit code, 128+N for a process killed by
signal N, 127 for a command not found and 126 for one not executable
(as a shell reports them), 68 (EX_NOHOST) for a rank that is not in the
instance or cannot be reached, 1 for other failures, 2 for bad usage.
"""
from __future__ import annotations

import errno
import os
import signal
import stat
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import click

from flux.util.iodata import decode_io, encode_io
from flux.util.waitstatus import exit_code

from cli.common import die, handle_errors

EX_NOHOST = 68
#: a second SIGINT within this many seconds forces an exit
INTERRUPT_WINDOW = 1.0
_STDIN_CHUNK = 65536
# exec flags (RFC 42): forward stdout and stderr, pace stdin with credits
_FLAGS = 1 | 2 | 8


# -- pure helpers ----------------------------------------------------------------


def target_ranks(spec: str, size: int) -> tuple[list[int], list[int]]:
    """(ranks to run on, ranks that are not in an instance of SIZE) for an IDSET or "all"."""
    from flux.idset import IDset

    if spec == "all":
        return list(range(size)), []
    ids = IDset(spec).expand()  # ValueError names a bad idset
    return [r for r in ids if r < size], [r for r in ids if r >= size]



def failure_code(errnum: int) -> int:
    """Exit code for a command that could not be run, as a shell would report it."""
    if errnum == errno.ENOENT:
        return 127
    if errnum == errno.EACCES:
        return 126
    if errnum == errno.EHOSTUNREACH:
        return EX_NOHOST
    return 1


def status_text(status: int) -> str:
    """"Exit N" or the signal's name, for the -v summary."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return signal.strsignal(sig) or f"Signal {sig}"
    return f"Exit {exit_code(status)}"




class LineLabeler:
    """Prefixes whole lines with a label, holding a partial line until it ends."""

    __slots__ = ("prefix", "partial")

    def __init__(self, label: str) -> None:
        self.prefix = label.encode() + b": "
        self.partial = b""

    def feed(self, data: bytes, eof: bool = False) -> bytes:
        text = self.partial + data
        lines = text.split(b"\n")
        self.partial = lines.pop()
        out = b"".join(self.prefix + line + b"\n" for line in lines)
        if eof and self.partial:
            out += self.prefix + self.partial
            self.partial = b""
        return out


# -- the run ------------------------------------------------------------------------


@dataclass(slots=True)
class Remote:
    """One rank's process, as this client sees it."""

    rank: int
    rpc: Any = None
    pid: int | None = None
    started: bool = False
    done: bool = False
    status: int | None = None
    code: int = 0
    credit: int = 0
    stdin_open: bool = True
    pending_signal: int | None = None
    labelers: dict[str, LineLabeler] = field(default_factory=dict)


class ExecRun:
    """Runs one command on a set of ranks from a handle's reactor."""

    def __init__(self, h: Any, ranks: list[int], cmd: dict[str, Any], *, label_io: bool,
                 noinput: bool, verbose: bool, quiet: bool = False) -> None:
        self.h = h
        self.cmd = cmd
        self.label_io = label_io
        self.noinput = noinput
        self.verbose = verbose
        self.quiet = quiet
        self.remotes = [Remote(r) for r in ranks]
        self.t0 = time.monotonic()
        self.last_sigint = 0.0
        self.stdin_eof = noinput
        self._stdin_watcher: Any = None
        self._stdin_timer: Any = None
        self._stdin_is_file = False
        self._watchers: list[Any] = []

    # -- helpers ------------------------------------------------------------------
    def _say(self, text: str) -> None:
        click.echo(f"flux-exec: {text}", err=True)

    def _elapsed(self) -> str:
        return f"{(time.monotonic() - self.t0) * 1000:.3f}ms"

    def _live(self) -> list[Remote]:
        return [r for r in self.remotes if not r.done]

    def _running_idset(self) -> str:
        from flux.idset import IDset

        return IDset([r.rank for r in self._live()]).encode(2 | 4)

    # -- start ------------------------------------------------------------------
    def run(self) -> int:
        from flux.constants import FLUX_RPC_STREAMING

        if self.verbose:
            from flux.idset import IDset

            ids = IDset([r.rank for r in self.remotes]).encode(2 | 4)
            click.echo(f"{self._elapsed()}: Starting {self.cmd['cmdline'][0]} on {ids}", err=True)
        for remote in self.remotes:
            remote.rpc = self.h.rpc("rexec.exec", {"cmd": self.cmd, "flags": _FLAGS},
                                    nodeid=remote.rank, flags=FLUX_RPC_STREAMING)
            remote.rpc.then(self._on_response, remote)
            if self.noinput:
                self._write(remote, b"", eof=True)
        if self.verbose:
            click.echo(f"{self._elapsed()}: Sent all requests", err=True)
        if not self.noinput:
            self._setup_stdin()
        for signum in (signal.SIGINT, signal.SIGTERM):
            w = self.h.signal_watcher_create(signum, self._on_signal)
            w.start()
            self._watchers.append(w)
        try:
            self.h.reactor_run()
        finally:
            self._stop_watchers()
        code = max((r.code for r in self.remotes), default=0)
        if self.verbose:
            click.echo(f"{self._elapsed()}: {len(self.remotes)} tasks complete with code "
                       f"{code}", err=True)
        if not self.quiet:
            self._failures()
        return code

    def _failures(self) -> None:
        """``IDSET: Exit N`` (or the signal's name) for each way ranks failed, as
        flux-core's flux exec prints it unless ``-q``."""
        from flux.idset import IDset

        by_text: dict[str, list[int]] = {}
        for r in self.remotes:
            if r.status is not None and r.status != 0:
                by_text.setdefault(status_text(r.status), []).append(r.rank)
        for text, ranks in by_text.items():
            click.echo(f"{IDset(ranks).encode(2 | 4)}: {text}", err=True)

    def _stop_watchers(self) -> None:
        for w in self._watchers:
            w.stop()
        self._watchers.clear()
        self._stdin_stop()

    def _check_all_done(self) -> None:
        if all(r.done for r in self.remotes):
            self._stop_watchers()
            self.h.reactor_stop()

    # -- responses ------------------------------------------------------------------
    def _on_response(self, rpc: Any, remote: Remote) -> None:
        try:
            body = rpc.get()
        except OSError as exc:
            self._on_error(remote, exc)
            return
        finally:
            rpc.reset()
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "output":
            self._output(remote, body.get("io") or {})
        elif kind == "add-credit":
            remote.credit += int((body.get("channels") or {}).get("stdin", 0))
            self._stdin_arm()
        elif kind == "started":
            remote.pid = int(body["pid"])
            remote.started = True
            if remote.pending_signal is not None:
                self._kill(remote, remote.pending_signal)
                remote.pending_signal = None
            self._stdin_arm()
        elif kind == "finished":
            remote.status = int(body["status"])
            remote.code = exit_code(remote.status)

    def _on_error(self, remote: Remote, exc: OSError) -> None:
        if exc.errno == errno.ENODATA:
            if remote.status is None:
                self._say(f"Error: rank {remote.rank}: the stream ended before the "
                          "process finished")
                remote.code = max(remote.code, 1)
        else:
            self._say(f"Error: rank {remote.rank}: {exc.strerror or exc}")
            remote.code = max(remote.code, failure_code(exc.errno or 0))
        self._finish(remote)

    def _finish(self, remote: Remote) -> None:
        remote.done = True
        remote.stdin_open = False
        for name, labeler in remote.labelers.items():
            rest = labeler.feed(b"", eof=True)
            if rest:
                self._emit(name, rest)
        self._stdin_arm()
        self._check_all_done()

    def _output(self, remote: Remote, io: dict[str, Any]) -> None:
        stream, data, eof = decode_io(io)
        if self.label_io:
            labeler = remote.labelers.get(stream)
            if labeler is None:
                labeler = remote.labelers[stream] = LineLabeler(str(remote.rank))
            data = labeler.feed(data, eof)
        if data:
            self._emit(stream, data)

    @staticmethod
    def _emit(stream: str, data: bytes) -> None:
        out = sys.stderr if stream == "stderr" else sys.stdout
        out.flush()
        out.buffer.write(data)
        out.buffer.flush()

    # -- signals ----------------------------------------------------------------------
    def _kill(self, remote: Remote, signum: int) -> None:
        from flux.constants import FLUX_RPC_NORESPONSE

        self.h.rpc("rexec.kill", {"pid": remote.pid, "signum": signum}, nodeid=remote.rank,
                   flags=FLUX_RPC_NORESPONSE)

    def _on_signal(self, _h: Any, _watcher: Any, signum: int, _args: Any) -> None:
        if signum == signal.SIGINT:
            now = time.monotonic()
            if self.last_sigint and now - self.last_sigint < INTERRUPT_WINDOW:
                self._say(f"{self._running_idset()}: command still running at exit")
                sys.exit(1)
            self.last_sigint = now
        live = self._live()
        if self.verbose:
            self._say(f"sending signal {signum} to {len(live)} running processes")
        for remote in live:
            if remote.started:
                self._kill(remote, signum)
            else:
                remote.pending_signal = signum  # sent once it has a pid
        if signum == signal.SIGINT and live:
            self._say(f"interrupt (Ctrl+C) one more time within {INTERRUPT_WINDOW:.2f} sec "
                      "to exit")

    # -- stdin ------------------------------------------------------------------------
    def _write(self, remote: Remote, data: bytes, eof: bool) -> None:
        from flux.constants import FLUX_RPC_NORESPONSE

        self.h.rpc("rexec.write", {"matchtag": remote.rpc.matchtag,
                                   "io": encode_io("stdin", remote.rank, data, eof)},
                   nodeid=remote.rank, flags=FLUX_RPC_NORESPONSE)
        if eof:
            remote.stdin_open = False

    def _setup_stdin(self) -> None:
        try:
            mode = os.fstat(0).st_mode
        except OSError:
            self._stdin_close_all()  # no stdin at all: that is end of file
            return
        # epoll refuses regular files and some devices (/dev/null): those are
        # always readable, so they are read from a zero-delay timer instead
        self._stdin_is_file = stat.S_ISREG(mode) or not _pollable(0)
        if not self._stdin_is_file:
            self._stdin_watcher = self.h.fd_watcher_create(0, self._on_stdin)

    def _stdin_budget(self) -> int:
        """Bytes we may read now: every rank must have started and have credit."""
        if self.stdin_eof:
            return 0
        live = [r for r in self.remotes if r.stdin_open]
        if not live or not all(r.started for r in live):
            return 0
        return max(0, min(min(r.credit for r in live), _STDIN_CHUNK))

    def _stdin_arm(self) -> None:
        if self.stdin_eof or (self._stdin_watcher is None and not self._stdin_is_file):
            return
        if not any(r.stdin_open for r in self.remotes):
            self._stdin_stop()
            return
        want = self._stdin_budget() > 0
        if self._stdin_is_file:
            if want and self._stdin_timer is None:
                self._stdin_timer = self.h.timer_watcher_create(0.0, self._on_stdin_timer)
                self._stdin_timer.start()
        elif want:
            self._stdin_watcher.start()
        else:
            self._stdin_watcher.stop()

    def _stdin_stop(self) -> None:
        if self._stdin_watcher is not None:
            self._stdin_watcher.stop()
        if self._stdin_timer is not None:
            self._stdin_timer.stop()
            self._stdin_timer = None

    def _on_stdin_timer(self, *_args: Any) -> None:
        self._stdin_timer = None
        self._read_stdin()

    def _on_stdin(self, *_args: Any) -> None:
        self._read_stdin()

    def _read_stdin(self) -> None:
        budget = self._stdin_budget()
        if budget <= 0:
            self._stdin_arm()
            return
        try:
            data = os.read(0, budget)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._stdin_close_all()
            return
        for remote in self.remotes:
            if remote.stdin_open:
                remote.credit -= len(data)
                self._write(remote, data, False)
        self._stdin_arm()

    def _stdin_close_all(self) -> None:
        self.stdin_eof = True
        self._stdin_stop()
        for remote in self.remotes:
            if remote.stdin_open and not remote.done:
                self._write(remote, b"", True)


def _pollable(fd: int) -> bool:
    import select

    ep = select.epoll()
    try:
        ep.register(fd, select.EPOLLIN)
        return True
    except OSError:
        return False
    finally:
        ep.close()


_CTX = {"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}


@click.command("exec", context_settings=_CTX)
@click.option("-r", "--rank", default="all", metavar="IDSET",
              help='Target ranks (default: "all")')
@click.option("-l", "--label-io", is_flag=True, help="Label lines of output with the source RANK")
@click.option("-n", "--noinput", is_flag=True, help="Do not forward stdin; send EOF instead")
@click.option("-d", "--dir", "dir_", metavar="DIR",
              help="Working directory of COMMAND (default: the current one)")
@click.option("-x", "--exclude", metavar="IDSET", help="Exclude ranks in IDSET")
@click.option("-v", "--verbose", is_flag=True, help="Run with more verbosity")
@click.option("-q", "--quiet", is_flag=True,
              help="Suppress extraneous output (e.g. per-rank error exit status)")
@click.argument("command_", metavar="COMMAND...", nargs=-1, type=click.UNPROCESSED)
@handle_errors("exec")
def command(rank: str, label_io: bool, noinput: bool, dir_: str | None, exclude: str | None,
            verbose: bool, quiet: bool, command_: tuple[str, ...]) -> None:
    """Run COMMAND on broker ranks, copying its output here."""
    if not command_:
        raise click.UsageError("command to run is missing")
    cwd = dir_ if dir_ is not None else os.getcwd()
    import flux
    from flux.idset import IDset

    h = flux.Flux()
    size = h.get_size()
    try:
        ranks, missing = target_ranks(rank, size)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--rank'") from None
    if missing:
        die("exec", f"rank {IDset(missing).encode(4)} is not in this instance "
                    f"(ranks 0-{size - 1})", EX_NOHOST)
    if exclude is not None:
        try:
            excluded = set(IDset(exclude).expand())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--exclude'") from None
        ranks = [r for r in ranks if r not in excluded]
        if not ranks:
            die("exec", "every rank is excluded: no ranks to run on")
    if not ranks:
        raise click.BadParameter("no ranks given", param_hint="'--rank'")
    env = dict(os.environ)
    env.pop("FLUX_PROXY_REMOTE", None)
    # a relative -d is taken from here, where the user typed it
    cmd = {"cmdline": list(command_), "cwd": os.path.abspath(cwd), "env": env, "opts": {},
           "channels": []}
    code = ExecRun(h, ranks, cmd, label_io=label_io, noinput=noinput, verbose=verbose,
                   quiet=quiet).run()
    sys.stdout.flush()
    sys.exit(code)
