"""Following a job whose rank 0 task has a terminal of its own (``pty.interactive``):
our terminal in raw mode becomes the job's, as ``flux alloc``, ``flux run -o
pty.interactive`` and ``flux job attach`` to such a job use it."""
from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

__all__ = ["attach_terminal", "is_terminal", "wants_terminal"]


def wants_terminal(jobspec: Any) -> bool:
    """Whether JOBSPEC's shell gives its first task an interactive terminal."""
    try:
        options = jobspec["attributes"]["system"]["shell"]["options"]
    except (KeyError, TypeError):
        return False
    if not isinstance(options, dict):
        return False
    if options.get("pty.interactive"):
        return True
    pty = options.get("pty")
    return isinstance(pty, dict) and bool(pty.get("interactive"))


def is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _window_size(fd: int) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


def attach_terminal(h: Any, jobid: Any, fd: int = 0, *, show_events: bool = False,
                    prog: str = "alloc") -> int:
    """Follow JOBID with our terminal FD in raw mode as the job's terminal; its exit code."""
    import termios
    import tty

    from cli.job_follow import JobFollower, StdinForwarder, follow_jobs

    class TerminalInput(StdinForwarder):
        """Our keystrokes to the job's rank 0 task, and our window size with them."""

        def start(self) -> None:
            if not self.started:
                self.resize()
            super().start()

        def resize(self) -> None:
            size = _window_size(self.fd)
            if size is None or self.stopped:
                return
            self.pending.append({"timestamp": time.time(), "name": "resize",
                                 "context": {"rank": "0", "rows": size[0], "cols": size[1]}})
            self._commit()

    forwarder = TerminalInput(h, int(jobid), "0", fd)

    def make(on_done: Any) -> list[Any]:
        follower = JobFollower(h, jobid, prog, show_events=show_events, on_done=on_done)
        follower.stdin = forwarder
        return [follower]

    def on_winch(*_args: Any) -> None:
        if forwarder.started:
            forwarder.resize()

    def on_end(*_args: Any) -> None:
        from flux.job.kill import cancel_async

        cancel_async(h, jobid, f"flux {prog} was signalled")

    watchers = [h.signal_watcher_create(signal.SIGWINCH, on_winch)]
    watchers += [h.signal_watcher_create(s, on_end) for s in (signal.SIGTERM, signal.SIGHUP)]
    saved = termios.tcgetattr(fd)
    stderr = sys.stderr
    try:
        tty.setraw(fd, termios.TCSANOW)
        # the job's terminal already ends its lines with CR LF; our own messages
        # (exceptions, the exit reason) need the CR the raw terminal no longer adds
        sys.stderr = _CRLF(stderr)
        for watcher in watchers:
            watcher.start()
        followers = follow_jobs(h, make)
    finally:
        for watcher in watchers:
            watcher.stop()
        sys.stderr = stderr
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    return followers[0].exit_code


class _CRLF:
    """A text stream writing LF as CR LF (for a terminal in raw mode)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(text.replace("\n", "\r\n"))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
