"""Reactor watchers with the callback signatures of Flux's Python bindings.

- ``TimerWatcher``:   ``callback(handle, watcher, revents, args)``
- ``FDWatcher``:      ``callback(handle, watcher, fd, revents, args)``
- ``SignalWatcher``:  ``callback(handle, watcher, signum, args)``
- ``MessageWatcher``: ``callback(handle, watcher, msg, args)``

A watcher does nothing until ``start()``; a started watcher keeps
``reactor_run()`` running.
"""
from __future__ import annotations

import fnmatch
import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable

from flux.constants import FLUX_MATCHTAG_NONE, FLUX_MSGTYPE_ANY, FLUX_POLLIN

if TYPE_CHECKING:
    from flux.core.handle import Flux


class Watcher(ABC):
    """Base class: start/stop bookkeeping against the handle's reactor."""

    def __init__(self, flux_handle: "Flux", callback: Callable[..., Any], args: Any = None) -> None:
        self.flux_handle = flux_handle
        self.callback = callback
        self.args = args
        self._reactor = flux_handle.get_reactor()
        self._started = False

    @abstractmethod
    def _arm(self) -> None:
        """Hook the watcher into the reactor."""

    @abstractmethod
    def _disarm(self) -> None:
        """Unhook the watcher from the reactor."""

    def start(self) -> "Watcher":
        if not self._started:
            self._started = True
            self._reactor.incref()
            self._arm()
        return self

    def stop(self) -> "Watcher":
        if self._started:
            self._started = False
            self._reactor.decref()
            self._disarm()
        return self

    def is_active(self) -> bool:
        return self._started

    def destroy(self) -> None:
        self.stop()

    def __enter__(self) -> "Watcher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class TimerWatcher(Watcher):
    """Fire AFTER seconds from start, then every REPEAT seconds if REPEAT > 0."""

    def __init__(self, flux_handle: "Flux", after: float, callback: Callable[..., Any],
                 repeat: float = 0.0, args: Any = None) -> None:
        super().__init__(flux_handle, callback, args)
        if after < 0 or repeat < 0:
            raise ValueError(f"timer after={after} repeat={repeat}: values must be >= 0")
        self.after = float(after)
        self.repeat = float(repeat)
        self._entry: list[Any] | None = None

    def _arm(self) -> None:
        self._entry = self._reactor.add_timer(self._reactor.now() + self.after, self._fire)

    def _disarm(self) -> None:
        if self._entry is not None:
            self._reactor.cancel_timer(self._entry)
            self._entry = None

    def reset(self, after: float, repeat: float = 0.0) -> None:
        """Change the timing; takes effect on the next start()."""
        self.after = float(after)
        self.repeat = float(repeat)

    def again(self) -> None:
        """Restart the timer from now."""
        self.stop()
        self.start()

    def _fire(self) -> None:
        self._entry = None
        if self.repeat > 0:
            self._entry = self._reactor.add_timer(self._reactor.now() + self.repeat, self._fire)
        else:
            # A one-shot timer stops itself, as in libflux.
            self._started = False
            self._reactor.decref()
        self.callback(self.flux_handle, self, 0, self.args)


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
        self.callback(self.flux_handle, self, self.fd, revents, self.args)


class SignalWatcher(Watcher):
    """Call back when SIGNAL_INT is delivered to the process."""

    def __init__(self, flux_handle: "Flux", signal_int: int, callback: Callable[..., Any],
                 args: Any = None) -> None:
        super().__init__(flux_handle, callback, args)
        self.signum = signal_int

    def _arm(self) -> None:
        self._reactor.add_signal(self.signum, self)

    def _disarm(self) -> None:
        self._reactor.remove_signal(self.signum, self)

    def _fire(self) -> None:
        self.callback(self.flux_handle, self, self.signum, self.args)


_ANY_TOPIC = None


def compile_topic_glob(topic_glob: str | None) -> Callable[[str], bool] | None:
    """A predicate for an fnmatch-style topic glob; None means "any topic"."""
    if topic_glob is None or topic_glob == "*":
        return _ANY_TOPIC
    if not any(c in topic_glob for c in "*?["):
        return topic_glob.__eq__
    return re.compile(fnmatch.translate(topic_glob)).match  # type: ignore[return-value]


class MessageWatcher(Watcher):
    """Call back for each message matching TYPE_MASK, TOPIC_GLOB and MATCH_TAG."""

    def __init__(self, flux_handle: "Flux", type_mask: int, callback: Callable[..., Any],
                 topic_glob: str = "*", match_tag: int = FLUX_MATCHTAG_NONE,
                 args: Any = None) -> None:
        super().__init__(flux_handle, callback, args)
        self.type_mask = type_mask if type_mask else FLUX_MSGTYPE_ANY
        self.topic_glob = topic_glob
        self.match_tag = match_tag
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
        self.callback(self.flux_handle, self, msg, self.args)


__all__ = ["Watcher", "TimerWatcher", "FDWatcher", "SignalWatcher", "MessageWatcher",
           "compile_topic_glob"]
