"""Futures: results that arrive later, as in flux_future_t.

A future may be fulfilled more than once; results queue in FIFO order.
``get()`` returns the first (blocking until there is one), ``reset()``
drops it so the next becomes current.  ``then(cb)`` calls ``cb(future,
*args, **kwargs)`` from ``reactor_run()`` each time a result becomes
current; with a timeout, the future is fulfilled with ETIMEDOUT if no
result arrives in time.  ``wait_for(timeout)`` raises ETIMEDOUT when the
time passes and leaves the future unfulfilled.

As in Flux's bindings, ``Future(other)`` wraps an existing future (both
names then share its results), and ``FutureExt(init_cb, ...)`` is an empty
future completed from Python: ``init_cb(future, ...)`` runs once, at the
first ``get()``/``wait_for()``/``then()``, and later calls ``fulfill()`` or
``fulfill_error()``.  Futures are context managers.
"""
from __future__ import annotations

import errno
import os
from _collections import deque  # collections itself costs a short command ~2 ms

from flux.errors import FluxError

if False:  # for type checkers only: importing typing costs a short command ~3 ms
    from typing import Any, Callable

    from flux.core.handle import Flux
    from flux.core.reactor import Reactor


class Future:
    """A container for zero or more results, each a value or an error.

    Built with a Flux handle (the futures of this package), or with
    another future to wrap (``Future(other)``, as in Flux's bindings):
    the two then share one queue of results, and the wrapped one is kept
    alive by the wrapper.
    """

    def __init__(self, flux_handle: "Flux | Future | None" = None) -> None:
        # each entry: (value, errnum, errstr)
        self._results: deque[tuple[Any, int, str | None]] = deque()
        self._then: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = None
        self._then_timeout = -1.0
        self._then_timer: list[Any] | None = None
        self._then_posted = False
        self._holds_ref = False
        #: futures sharing these results (None: just this one)
        self._group: list[Future] | None = None
        self._wrapped: Future | None = None
        if isinstance(flux_handle, Future):
            self._handle: "Flux | None" = None
            self._adopt(flux_handle)
        elif type(self) is Future:
            # a plain Future of a handle would never get a result: waiting on it
            # would hang (Flux's bindings refuse it too)
            raise TypeError("Future() wraps another future, not "
                            f"{type(flux_handle).__name__}")
        else:
            self._handle = flux_handle

    def _adopt(self, other: "Future") -> None:
        """Share OTHER's results: a result it gets wakes this future's continuation too."""
        self._wrapped = other
        self._handle = other._handle
        self._results = other._results
        group = other._group
        if group is None:
            group = other._group = [other]
        group.append(self)
        self._group = group
        cls = type(self)
        # a plain wrapper reads results the way the wrapped future does (an RPC's payload)
        if cls.get is Future.get:
            self.get = other.get  # type: ignore[method-assign]
        if cls._is_final is Future._is_final:
            self._is_final = other._is_final  # type: ignore[method-assign]

    # -- fulfilment ------------------------------------------------------
    def fulfill(self, value: Any = None) -> None:
        self._push((value, 0, None))

    def fulfill_error(self, errnum: int, errstr: str | None = None) -> None:
        self._push((None, errnum, errstr))

    def _push(self, result: tuple[Any, int, str | None]) -> None:
        was_ready = bool(self._results)
        self._results.append(result)
        if not was_ready:
            self._on_ready()

    def _on_ready(self) -> None:
        group = self._group
        if group is None:
            self._ready_here()
        else:
            for future in group:
                future._ready_here()

    def _ready_here(self) -> None:
        self._cancel_then_timer()
        if self._then is not None and not self._then_posted:
            self._then_posted = True
            self.get_reactor().call_soon(self._run_then)

    def _is_final(self, result: tuple[Any, int, str | None]) -> bool:
        """Whether RESULT is the last this future will get (always, by default)."""
        return True

    # -- state -----------------------------------------------------------
    def is_ready(self) -> bool:
        return bool(self._results)

    def get_flux(self) -> "Flux | None":
        return self._handle

    def set_flux(self, flux_handle: "Flux") -> None:
        """Associate the future with FLUX_HANDLE (for a FutureExt made without one)."""
        self._handle = flux_handle

    def get_reactor(self) -> "Reactor":
        if self._handle is None:
            raise FluxError(errno.EINVAL, "future has no Flux handle")
        return self._handle.get_reactor()

    def incref(self) -> "Future":
        """Kept for API compatibility: Python reference counting owns the lifetime."""
        return self

    def error_string(self) -> str | None:
        """The error text of the current result, or None if it is not an error."""
        if not self._results:
            return None
        _value, errnum, errstr = self._results[0]
        if errnum == 0:
            return None
        return errstr or os.strerror(errnum)

    # -- access ----------------------------------------------------------
    def wait_for(self, timeout: float = -1.0) -> "Future":
        """Block until a result is current; raise OSError(ETIMEDOUT) after TIMEOUT seconds.

        A negative timeout waits forever; zero checks without waiting.
        """
        if self._results:
            return self
        # OSError(errno, strerror) as Flux's bindings raise it: a TimeoutError
        # whose str() is "[Errno 110] Connection timed out"
        if timeout == 0:
            raise OSError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))
        self._wait(None if timeout < 0 else float(timeout))
        if not self._results:
            raise OSError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))
        return self

    def _wait(self, timeout: float | None) -> None:
        """Block until ready or TIMEOUT; futures fed by a handle read its socket."""
        if self._wrapped is not None:
            self._wrapped._wait(timeout)
            return
        if self._handle is None:
            raise FluxError(errno.EDEADLK, "future has no handle to wait on")
        self._handle._wait_until(self.is_ready, timeout)

    def _current(self) -> Any:
        self.wait_for()
        value, errnum, errstr = self._results[0]
        if errnum:
            raise OSError(errnum, errstr or os.strerror(errnum))
        return value

    def get(self) -> Any:
        """The current result (waiting for one); an error result raises OSError."""
        return self._current()

    def reset(self) -> None:
        """Drop the current result; the next queued one (if any) becomes current."""
        if self._results:
            self._results.popleft()
        if self._results:
            self._on_ready()
        elif self._then is not None and self._then_timeout >= 0 and self._then_timer is None:
            self._arm_then_timer()

    # -- continuations ---------------------------------------------------
    def then(self, callback: Callable[..., Any], *args: Any, timeout: float = -1.0,
             **kwargs: Any) -> "Future":
        """Call CALLBACK(self, *args, **kwargs) from the reactor when a result is current."""
        if self._then is not None:
            raise FluxError(errno.EEXIST, "then callback already exists for this future")
        if callback is None:
            raise ValueError("Callback cannot be None")
        self._then = (callback, args, kwargs)
        self._then_timeout = timeout
        if not self._holds_ref:
            self._holds_ref = True
            self.get_reactor().incref()
        if self._results:
            self._on_ready()
        elif timeout >= 0:
            self._arm_then_timer()
        return self

    def stop(self) -> None:
        """No more continuation calls: drop ``then()`` and its hold on the reactor."""
        self._then = None
        self._cancel_then_timer()
        if self._holds_ref:
            self._holds_ref = False
            self.get_reactor().decref()

    def raise_if_handle_exception(self) -> None:
        """Raise the Python exception a callback left pending on the handle, if any.

        Useful before re-raising a bare OSError from ``get()``: the
        callback's exception says more.
        """
        handle = self.get_flux()
        if handle is not None:
            type(handle).raise_if_exception()

    def __enter__(self) -> "Future":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def _arm_then_timer(self) -> None:
        reactor = self.get_reactor()
        self._then_timer = reactor.add_timer(reactor.now() + self._then_timeout,
                                             self._then_timed_out)

    def _cancel_then_timer(self) -> None:
        if self._then_timer is not None:
            self.get_reactor().cancel_timer(self._then_timer)
            self._then_timer = None

    def _then_timed_out(self) -> None:
        self._then_timer = None
        if not self._results:
            self._timed_out()

    def _timed_out(self) -> None:
        self.fulfill_error(errno.ETIMEDOUT, "Connection timed out")

    def _run_then(self) -> None:
        self._then_posted = False
        if self._then is None or not self._results:
            return
        final = self._is_final(self._results[0])
        callback, args, kwargs = self._then
        try:
            callback(self, *args, **kwargs)
        finally:
            if final and self._holds_ref:
                self._holds_ref = False
                self.get_reactor().decref()


class WaitAllFuture(Future):
    """A future fulfilled (with None) once every child future is."""

    def __init__(self, children: list[Future] | None = None) -> None:
        super().__init__(None)
        self.children: dict[str, Future] = {}
        self._pending = 0
        for child in children or []:
            self.push(child)

    def push(self, child: Future, name: str | None = None) -> None:
        if name is None:
            name = str(len(self.children))
        if name in self.children:
            raise FluxError(errno.EEXIST, f"child future '{name}' already pushed")
        if self._handle is None:
            self._handle = child.get_flux()
        self.children[name] = child
        self._pending += 1
        child.then(self._child_done)

    def _child_done(self, _child: Future) -> None:
        self._pending -= 1
        if self._pending == 0 and not self._results:
            self.fulfill(None)

    def _wait(self, timeout: float | None) -> None:
        for child in self.children.values():
            child.wait_for(-1.0 if timeout is None else timeout)
        if not self._results:
            self.fulfill(None)

    def get_child(self, name: str) -> Future:
        try:
            return self.children[name]
        except KeyError:
            raise FluxError(errno.ENOENT, f"no child future named '{name}'") from None


class FutureExt(Future):
    """An empty future completed from Python (Flux's ``flux.future.FutureExt``).

    ``init_cb(future, *args, **kwargs)`` runs once, at the first
    ``get()``, ``wait_for()`` or ``then()``; it should use
    ``future.get_flux()`` and, now or later, call ``fulfill(result)`` (a
    JSON-serialisable value, returned by ``get()`` as it round-trips
    through JSON) or ``fulfill_error(errnum, errstr)``.  Without
    ``flux_handle``, call ``set_flux()`` first (else OSError EINVAL).

    A blocking ``get()`` runs the handle's reactor until the future is
    fulfilled, so continuations that ``init_cb`` set on RPCs run meanwhile.
    """

    def __init__(self, init_cb: Callable[..., Any], *args: Any,
                 flux_handle: "Flux | None" = None, **kwargs: Any) -> None:
        super().__init__(flux_handle)
        self._init: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = \
            (init_cb, args, kwargs)

    def _need_handle(self) -> None:
        if self._handle is None:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    def _run_init(self) -> None:
        init = self._init
        if init is None:
            return
        self._need_handle()
        self._init = None
        callback, args, kwargs = init
        callback(self, *args, **kwargs)

    def fulfill(self, result: Any = None) -> None:
        """Fulfill with RESULT (TypeError unless it is JSON-serialisable)."""
        import json

        super().fulfill(json.loads(json.dumps(result)))

    def fulfill_error(self, errnum: int = errno.ENOENT, errstr: str | None = None) -> None:
        super().fulfill_error(errnum, errstr)

    def wait_for(self, timeout: float = -1.0) -> "FutureExt":
        self._run_init()
        super().wait_for(timeout)
        return self

    def get(self) -> Any:
        self._run_init()
        return self._current()

    def then(self, callback: Callable[..., Any], *args: Any, timeout: float = -1.0,
             **kwargs: Any) -> "FutureExt":
        self._need_handle()
        super().then(callback, *args, timeout=timeout, **kwargs)
        self._run_init()
        return self

    def _wait(self, timeout: float | None) -> None:
        from flux.constants import FLUX_REACTOR_ONCE

        reactor = self.get_reactor()
        deadline = None if timeout is None else reactor.now() + timeout
        while not self._results:
            timer = None
            if deadline is not None:
                if reactor.now() >= deadline:
                    return
                timer = reactor.add_timer(deadline, _nothing)
            try:
                if reactor.active <= 0 and not reactor.has_ready():
                    raise OSError(errno.EDEADLK, "future will never be fulfilled: nothing "
                                                 "is pending in the reactor")
                reactor.run(FLUX_REACTOR_ONCE)
            finally:
                if timer is not None:
                    reactor.cancel_timer(timer)


def _nothing() -> None:
    """A timer that only bounds a wait."""


__all__ = ["Future", "FutureExt", "WaitAllFuture"]
