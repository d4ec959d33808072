"""Reactor watchers with the callback signatures of Flux's Python bindings.

- ``TimerWatcher``:   ``callback(handle, watcher, revents, args)``
- ``FDWatcher``:      ``callback(handle, watcher, fd, revents, args)``
- ``SignalWatcher``:  ``callback(handle, watcher, signum, args)``
- ``MessageWatcher``: ``callback(handle, watcher, msg, args)``
- ``PrepareWatcher``, ``CheckWatcher``, ``IdleWatcher``: ``callback(handle, watcher, revents, args)``

A watcher does nothing until ``start()``; a started watcher keeps
``reactor_run()`` running unless it was ``unref()``'d.  ``start``,
``stop``, ``ref`` and ``unref`` return the watcher; ``with w:`` starts it
and stops it on exit.
"""
from __future__ import annotations

import errno
import os
from abc import ABC, abstractmethod

from flux.constants import FLUX_MATCHTAG_NONE, FLUX_MSGTYPE_ANY, FLUX_POLLIN, FLUX_ROLE_OWNER

if False:  # for type checkers only: importing typing costs a short command ~3 ms
    from typing import Any, Callable

    from flux.core.handle import Flux


def _einval() -> OSError:
    return OSError(errno.EINVAL, os.strerror(errno.EINVAL))


class Watcher(ABC):
    """Base class: start/stop and ref/unref bookkeeping against the handle's reactor."""

    def __init__(self, flux_handle: "Flux", callback: Callable[..., Any] | None,
                 args: Any = None) -> None:
        self.flux_handle = flux_handle
        self.callback = callback
        self.args = args
        self._reactor = flux_handle.get_reactor()
        self._started = False
        self._referenced = True

    @abstractmethod
    def _arm(self) -> None:
        """Hook the watcher into the reactor."""

    @abstractmethod
    def _disarm(self) -> None:
        """Unhook the watcher from the reactor."""

    def start(self) -> "Watcher":
        if not self._started:
            self._started = True
            if self._referenced:
                self._reactor.incref()
            self._arm()
        return self

    def stop(self) -> "Watcher":
        if self._started:
            self._started = False
            if self._referenced:
                self._reactor.decref()
            self._disarm()
        return self

    def ref(self) -> "Watcher":
        """Count this watcher as keeping ``reactor_run()`` alive again."""
        if not self._referenced:
            self._referenced = True
            if self._started:
                self._reactor.incref()
        return self

    def unref(self) -> "Watcher":
        """Stop counting this watcher as keeping ``reactor_run()`` alive."""
        if self._referenced:
            self._referenced = False
            if self._started:
                self._reactor.decref()
        return self

    def _stopped_itself(self) -> None:
        """A watcher that fires once marks itself stopped (nothing left to disarm)."""
        self._started = False
        if self._referenced:
            self._reactor.decref()

    def is_active(self) -> bool:
        return self._started

    def destroy(self) -> None:
        self.stop()

    def __enter__(self) -> "Watcher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class TimerWatcher(Watcher):
    """Fire AFTER seconds from start, then every REPEAT seconds if REPEAT > 0.

    A negative AFTER or REPEAT is OSError EINVAL, as libflux has it.
    """

    def __init__(self, flux_handle: "Flux", after: float, callback: Callable[..., Any],
                 repeat: float = 0.0, args: Any = None) -> None:
        super().__init__(flux_handle, callback, args)
        if after < 0 or repeat < 0:
            raise _einval()
        self.after = float(after)
        self.repeat = float(repeat)
        self._entry: list[Any] | None = None

    def _arm(self) -> None:
        self._entry = self._reactor.add_timer(self._reactor.now() + self.after, self._fire)

    def _disarm(self) -> None:
        if self._entry is not None:
            self._reactor.cancel_timer(self._entry)
            self._entry = None

    def reset(self, after: float | None = None, repeat: float | None = None) -> None:
        """Re-arm the timer: AFTER seconds from now (then every REPEAT), values kept if None.

        A stopped timer takes the new values at its next ``start()``.
        """
        if after is not None:
            if after < 0:
                raise _einval()
            self.after = float(after)
        if repeat is not None:
            if repeat < 0:
                raise _einval()
            self.repeat = float(repeat)
        if self._started:
            self._disarm()
            self._arm()

    def again(self) -> None:
        """Restart the timer from now."""
        self.stop()
        self.start()

    def _fire(self) -> None:
        self._entry = None
        if self.repeat > 0:
            self._entry = self._reactor.add_timer(self._reactor.now() + self.repeat, self._fire)
        else:
            # a one-shot timer stops itself, as in libflux
            self._stopped_itself()
        self.callback(self.flux_handle, self, 0, self.args)  # type: ignore[misc]


class FDWatcher(Watcher):
    """Call back when FD_INT is ready for EVENTS (FLUX_POLLIN / FLUX_POLLOUT)."""

    def __init__(self, flux_handle: "Flux", fd_int: int, events: int, callback: Callable[..., Any],
                 args: Any = None) -> None:
        super().__init__(flux_handle, callback, args)
        self.fd = fd_int
        self.events = events if events else FLUX_POLLIN

    def _arm(self) -> None:
        self._reactor.add_fd(self.fd, self.events, self._fire)

    def _disarm(self) -> None:
        self._reactor.remove_fd(self.fd, self._fire)

    def _fire(self, revents: int) -> None:
        self.callback(self.flux_handle, self, self.fd, revents, self.args)  # type: ignore[misc]


class SignalWatcher(Watcher):
    """Call back when SIGNAL_INT is delivered to the process.

    A number that is not a catchable signal is OSError EINVAL.
    """

    def __init__(self, flux_handle: "Flux", signal_int: int, callback: Callable[..., Any],
                 args: Any = None) -> None:
        import signal

        super().__init__(flux_handle, callback, args)
        if (not isinstance(signal_int, int) or signal_int <= 0 or signal_int >= signal.NSIG
                or signal_int in (signal.SIGKILL, signal.SIGSTOP)):
            raise _einval()
        self.signum = signal_int

    def _arm(self) -> None:
        self._reactor.add_signal(self.signum, self)

    def _disarm(self) -> None:
        self._reactor.remove_signal(self.signum, self)

    def _fire(self) -> None:
        self.callback(self.flux_handle, self, self.signum, self.args)  # type: ignore[misc]


class _LoopWatcher(Watcher):
    """A watcher called at a point of every reactor turn."""

    _kind = ""

    def _arm(self) -> None:
        self._reactor.add_loop_watcher(self._kind, self)

    def _disarm(self) -> None:
        self._reactor.remove_loop_watcher(self._kind, self)

    def _fire(self) -> None:
        if self.callback is not None:
            self.callback(self.flux_handle, self, 0, self.args)


class PrepareWatcher(_LoopWatcher):
    """Called each turn just before the reactor polls."""

    _kind = "prepare"


class CheckWatcher(_LoopWatcher):
    """Called each turn just after the reactor polled."""

    _kind = "check"


class IdleWatcher(_LoopWatcher):
    """Called on turns when nothing else happened; while active the reactor never sleeps."""

    _kind = "idle"


_ANY_TOPIC = None


def compile_topic_glob(topic_glob: str | bytes | None) -> Callable[[str], bool] | None:
    """A predicate for an fnmatch-style topic glob; None means "any topic"."""
    if isinstance(topic_glob, (bytes, bytearray)):
        topic_glob = bytes(topic_glob).decode()
    if topic_glob is None or topic_glob == "*":
        return _ANY_TOPIC
    if not isinstance(topic_glob, str):
        raise TypeError(f"topic glob must be a str or bytes, not {type(topic_glob).__name__}")
    if not any(c in topic_glob for c in "*?["):
        return topic_glob.__eq__
    # (imported here: re is a large part of a short command's start-up)
    import fnmatch
    import re

    return re.compile(fnmatch.translate(topic_glob)).match  # type: ignore[return-value]


class MessageWatcher(Watcher):
    """Call back for each message matching TYPE_MASK, TOPIC_GLOB and MATCH_TAG.

    Only messages whose rolemask shares a bit with ROLEMASK are passed on
    (default: the instance owner's); a request refused so is answered with
    EPERM, as libflux's message handlers do.
    """

    def __init__(self, flux_handle: "Flux", type_mask: int, callback: Callable[..., Any],
                 topic_glob: str | bytes | None = "*", match_tag: int = FLUX_MATCHTAG_NONE,
                 args: Any = None, rolemask: int | None = None) -> None:
        super().__init__(flux_handle, callback, args)
        if isinstance(topic_glob, (bytes, bytearray)):
            topic_glob = bytes(topic_glob).decode()
        self.type_mask = type_mask if type_mask else FLUX_MSGTYPE_ANY
        self.topic_glob = topic_glob
        self.match_tag = match_tag
        self.rolemask = FLUX_ROLE_OWNER if rolemask is None else rolemask
        self.exact = topic_glob is not None and not any(c in topic_glob for c in "*?[")
        self._match = compile_topic_glob(topic_glob)

    def matches(self, msg: Any) -> bool:
        if not msg.type & self.type_mask:
            return False
        if self.match_tag != FLUX_MATCHTAG_NONE and msg.matchtag != self.match_tag:
            return False
        return self._match is None or bool(self._match(msg.topic))

    def _arm(self) -> None:
        self.flux_handle._add_msg_watcher(self)

    def _disarm(self) -> None:
        self.flux_handle._remove_msg_watcher(self)

    def _fire(self, msg: Any) -> None:
        self.callback(self.flux_handle, self, msg, self.args)  # type: ignore[misc]


__all__ = ["Watcher", "TimerWatcher", "FDWatcher", "SignalWatcher", "MessageWatcher",
           "PrepareWatcher", "CheckWatcher", "IdleWatcher", "compile_topic_glob"]
