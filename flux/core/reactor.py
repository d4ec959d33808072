"""A small event loop for Flux clients: fd readiness, timers, signals.

Clients do not use asyncio: importing it costs more than a short ``flux``
command takes, and a synchronous RPC only needs one blocking read.  This
reactor follows flux_reactor_run(3): ``run()`` returns when no watcher is
active (or on ``stop()``); watchers count as active while started (unless
unref'd), and a future with a pending ``then()`` holds a reference through
``incref``.  Each turn runs the prepare watchers, polls (without waiting
while an idle watcher is active), runs fd, signal and timer callbacks,
then the check watchers, and the idle watchers when nothing else happened.

Importing this module is cheap (it is imported with the handle): fds are
polled with ``select.poll`` rather than through ``selectors``, and signals
wake the loop through a pipe, with ``signal`` imported for the first
signal watcher.
"""
from __future__ import annotations

import errno
import itertools
import os
import select
import time
from _heapq import heappop, heappush  # (heapq's own import pulls in more)
from _collections import deque  # collections itself costs a short command ~2 ms

from flux.constants import FLUX_POLLERR, FLUX_POLLIN, FLUX_POLLOUT, FLUX_REACTOR_NOWAIT, FLUX_REACTOR_ONCE

if False:  # for type checkers only: importing typing costs a short command ~3 ms
    from typing import Any, Callable

_EV_READ = 1
_EV_WRITE = 2
_POLL_READ = select.POLLIN | select.POLLPRI
_POLL_WRITE = select.POLLOUT
_POLL_BOTH = select.POLLERR | select.POLLHUP | select.POLLNVAL


class _Poller:
    """The fds of a reactor and their read/write interest, polled with poll(2)."""

    __slots__ = ("_poll", "masks")

    def __init__(self) -> None:
        self._poll = select.poll()
        self.masks: dict[int, int] = {}

    def set(self, fd: int, mask: int) -> None:
        """Watch FD for MASK (_EV_READ | _EV_WRITE); 0 stops watching it."""
        old = self.masks.get(fd, 0)
        if mask == old:
            return
        if mask == 0:
            del self.masks[fd]
            self._poll.unregister(fd)
            return
        events = (_POLL_READ if mask & _EV_READ else 0) | (_POLL_WRITE if mask & _EV_WRITE else 0)
        if old:
            self._poll.modify(fd, events)
        else:
            self._poll.register(fd, events)
        self.masks[fd] = mask

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """(fd, _EV_READ | _EV_WRITE) of each ready fd; TIMEOUT in seconds (None: no limit).

        An error or hang-up counts as both, as selectors reports it.
        """
        if timeout is None:
            ms = None
        elif timeout <= 0:
            ms = 0
        else:
            ms = int(timeout * 1000) + (timeout * 1000 % 1 > 0)  # round up
        ready = []
        for fd, ev in self._poll.poll(ms):
            mask = 0
            if ev & (_POLL_READ | _POLL_BOTH):
                mask |= _EV_READ
            if ev & (_POLL_WRITE | _POLL_BOTH):
                mask |= _EV_WRITE
            ready.append((fd, mask & self.masks.get(fd, 0)))
        return ready

    def close(self) -> None:
        for fd in list(self.masks):
            self._poll.unregister(fd)
        self.masks.clear()


class _FdEntry:
    __slots__ = ("readers", "writers", "internal")

    def __init__(self) -> None:
        self.readers: list[Callable[[int], None]] = []
        self.writers: list[Callable[[int], None]] = []
        self.internal: Callable[[int], None] | None = None


class Reactor:
    """The client reactor.  One per handle; not thread-safe."""

    def __init__(self) -> None:
        self._sel = _Poller()
        self._fds: dict[int, _FdEntry] = {}
        self._timers: list[list[Any]] = []
        self._tseq = itertools.count()
        self._ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._active = 0
        self._stopped = False
        self._stop_errnum = 0
        self._running = 0
        self._exc: BaseException | None = None
        self._sig_pipe: tuple[int, int] | None = None
        self._sig_watchers: dict[int, list[Any]] = {}
        self._sig_saved: dict[int, Any] = {}
        self._sig_saved_wakeup = -1
        # prepare / check / idle watchers (each with a _fire() method)
        self._prepare: list[Any] = []
        self._check: list[Any] = []
        self._idle: list[Any] = []

    # -- time ------------------------------------------------------------
    @staticmethod
    def now() -> float:
        return time.monotonic()

    # -- reference counting ---------------------------------------------
    def incref(self) -> None:
        self._active += 1

    def decref(self) -> None:
        self._active -= 1

    @property
    def active(self) -> int:
        return self._active

    # -- deferred calls --------------------------------------------------
    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run FN(*ARGS) from the next turn of ``run()``."""
        self._ready.append((fn, args))

    def has_ready(self) -> bool:
        """Whether deferred calls wait for the next turn."""
        return bool(self._ready)

    # -- prepare / check / idle ------------------------------------------
    def add_loop_watcher(self, kind: str, watcher: Any) -> None:
        """Call WATCHER._fire() each turn: KIND is "prepare", "check" or "idle"."""
        getattr(self, "_" + kind).append(watcher)

    def remove_loop_watcher(self, kind: str, watcher: Any) -> None:
        watchers = getattr(self, "_" + kind)
        if watcher in watchers:
            watchers.remove(watcher)

    def _fire_all(self, watchers: list[Any]) -> None:
        for watcher in list(watchers):
            self._call(watcher._fire, ())
            if self._stopped:
                return

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised from run()
            if self._exc is None:
                self._exc = exc
            self._stopped = True

    # -- file descriptors --------------------------------------------------
    def _update_fd(self, fd: int) -> None:
        entry = self._fds.get(fd)
        mask = 0
        if entry is not None:
            if entry.readers or entry.internal is not None:
                mask |= _EV_READ
            if entry.writers:
                mask |= _EV_WRITE
        if mask == 0:
            self._fds.pop(fd, None)
        self._sel.set(fd, mask)

    def set_internal_reader(self, fd: int, cb: Callable[[int], None] | None) -> None:
        """Watch FD for input without counting it as an active watcher."""
        entry = self._fds.setdefault(fd, _FdEntry())
        entry.internal = cb
        self._update_fd(fd)

    def add_fd(self, fd: int, events: int, cb: Callable[[int], None]) -> None:
        entry = self._fds.setdefault(fd, _FdEntry())
        if events & FLUX_POLLIN:
            entry.readers.append(cb)
        if events & FLUX_POLLOUT:
            entry.writers.append(cb)
        self._update_fd(fd)

    def remove_fd(self, fd: int, cb: Callable[[int], None]) -> None:
        entry = self._fds.get(fd)
        if entry is None:
            return
        if cb in entry.readers:
            entry.readers.remove(cb)
        if cb in entry.writers:
            entry.writers.remove(cb)
        self._update_fd(fd)

    # -- timers ----------------------------------------------------------
    def add_timer(self, when: float, cb: Callable[[], None]) -> list[Any]:
        """Call CB at monotonic time WHEN; returns a handle for cancel_timer()."""
        entry = [when, next(self._tseq), cb]
        heappush(self._timers, entry)
        return entry

    @staticmethod
    def cancel_timer(entry: list[Any]) -> None:
        entry[2] = None

    def _next_timeout(self) -> float | None:
        timers = self._timers
        while timers and timers[0][2] is None:
            heappop(timers)
        if not timers:
            return None
        return max(0.0, timers[0][0] - time.monotonic())

    def _run_timers(self) -> int:
        timers = self._timers
        now = time.monotonic()
        fired = 0
        while timers and (timers[0][2] is None or timers[0][0] <= now):
            entry = heappop(timers)
            cb = entry[2]
            if cb is not None:
                entry[2] = None
                fired += 1
                self._call(cb, ())
        return fired

    # -- signals ---------------------------------------------------------
    def add_signal(self, signum: int, watcher: Any) -> None:
        import signal

        if self._sig_pipe is None:
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._sig_pipe = (r, w)
            self._sig_saved_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
            self.set_internal_reader(r, self._on_signal_fd)
        watchers = self._sig_watchers.setdefault(signum, [])
        if not watchers:
            # A Python-level handler is needed for the wakeup byte to be
            # written without the default action killing the process.
            self._sig_saved[signum] = signal.signal(signum, _ignore_signal)
        watchers.append(watcher)

    def remove_signal(self, signum: int, watcher: Any) -> None:
        import signal

        watchers = self._sig_watchers.get(signum)
        if not watchers or watcher not in watchers:
            return
        watchers.remove(watcher)
        if not watchers:
            del self._sig_watchers[signum]
            signal.signal(signum, self._sig_saved.pop(signum, signal.SIG_DFL))
        if not self._sig_watchers and self._sig_pipe is not None:
            r, w = self._sig_pipe
            self.set_internal_reader(r, None)
            signal.set_wakeup_fd(self._sig_saved_wakeup)
            os.close(r)
            os.close(w)
            self._sig_pipe = None

    def _on_signal_fd(self, _mask: int) -> None:
        assert self._sig_pipe is not None
        try:
            data = os.read(self._sig_pipe[0], 4096)
        except BlockingIOError:
            return
        for signum in data:
            for watcher in list(self._sig_watchers.get(signum, ())):
                self._call(watcher._fire, ())

    # -- running ---------------------------------------------------------
    def stop(self) -> None:
        self._stopped = True

    def stop_error(self, errnum: int = 0) -> None:
        self._stopped = True
        self._stop_errnum = errnum or errno.EIO

    @property
    def running(self) -> bool:
        return self._running > 0

    def _run_ready(self) -> None:
        ready = self._ready
        for _ in range(len(ready)):
            fn, args = ready.popleft()
            self._call(fn, args)
            if self._stopped:
                return

    def _poll(self, timeout: float | None) -> int:
        events = self._sel.poll(timeout)
        for fd, mask in events:
            entry = self._fds.get(fd)
            if entry is None:
                continue
            revents = 0
            if mask & _EV_READ:
                revents |= FLUX_POLLIN
                if entry.internal is not None:
                    self._call(entry.internal, (revents,))
                for cb in list(entry.readers):
                    self._call(cb, (revents,))
            if mask & _EV_WRITE:
                for cb in list(entry.writers):
                    self._call(cb, (FLUX_POLLOUT,))
        return len(events)

    def run(self, flags: int = 0) -> int:
        """Run until no watcher is active, or stop(); returns the active count.

        An exception raised by a callback stops the loop and is re-raised
        here; ``stop_error()`` makes this raise OSError.
        """
        self._stopped = False
        self._stop_errnum = 0
        self._running += 1
        once = flags & (FLUX_REACTOR_NOWAIT | FLUX_REACTOR_ONCE)
        try:
            while True:
                self._run_ready()
                if self._stopped:
                    break
                if self._active <= 0 and not self._ready:
                    break
                if self._prepare:
                    self._fire_all(self._prepare)
                    if self._stopped:
                        break
                if self._ready or self._idle or flags & FLUX_REACTOR_NOWAIT:
                    timeout: float | None = 0.0
                else:
                    timeout = self._next_timeout()
                busy = self._poll(timeout)
                busy += self._run_timers()
                if self._check:
                    self._fire_all(self._check)
                if self._idle and not busy and not self._ready and not self._stopped:
                    self._fire_all(self._idle)
                if once:
                    self._run_ready()
                    break
                if self._stopped:
                    break
        finally:
            self._running -= 1
        exc = self._exc
        if exc is not None:
            self._exc = None
            raise exc
        if self._stop_errnum:
            errnum = self._stop_errnum
            self._stop_errnum = 0
            raise OSError(errnum, "reactor stopped with error")
        return self._active

    def close(self) -> None:
        for signum in list(self._sig_watchers):
            for watcher in list(self._sig_watchers.get(signum, ())):
                self.remove_signal(signum, watcher)
        self._sel.close()


def _ignore_signal(_signum: int, _frame: Any) -> None:
    """Placeholder handler: the reactor learns of the signal from the wakeup fd."""


__all__ = ["Reactor", "FLUX_POLLIN", "FLUX_POLLOUT", "FLUX_POLLERR"]
