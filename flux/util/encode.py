"""Payload and topic encoding, and the two Future method decorators of Flux's bindings.

``encode_payload`` / ``encode_topic`` turn what a script passes into the
bytes a message carries.  ``check_future_error`` replaces a bare
``OSError(errno)`` from a future method with the future's own error text;
``interruptible`` lets ctrl-C interrupt a blocking future method.
"""
from __future__ import annotations

import errno
import functools
import json
import signal
import threading
from typing import Any, Callable, TypeVar

__all__ = ["encode_payload", "encode_topic", "check_future_error", "interruptible"]

F = TypeVar("F", bound=Callable[..., Any])


def encode_payload(payload: Any) -> bytes | None:
    """None stays None (no payload); str is UTF-8 (surrogates escaped); bytes pass;
    anything else is JSON (non-ASCII kept as UTF-8)."""
    if payload is None:
        return None
    if isinstance(payload, str):
        return payload.encode("utf-8", errors="surrogateescape")
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", errors="surrogateescape")


def encode_topic(topic: Any) -> bytes:
    """A topic as UTF-8 bytes.

    None raises ``OSError(EINVAL, "Topic must not be None/NULL")``; another
    type raises ``TypeError(EINVAL, "Topic must be a string, not <type>")``
    (both as Flux's bindings do).
    """
    if topic is None:
        raise OSError(errno.EINVAL, "Topic must not be None/NULL")
    if isinstance(topic, str):
        return topic.encode("utf-8")
    if isinstance(topic, bytes):
        return topic
    raise TypeError(errno.EINVAL, f"Topic must be a string, not {type(topic)}")


def check_future_error(func: F) -> F:
    """Decorate a future method: an OSError it raises carries the future's error text.

    The future is the object's ``handle`` attribute if it has one, else the
    object itself; it must have ``error_string()``.  Without a text the
    original error is raised.
    """

    @functools.wraps(func)
    def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(obj, *args, **kwargs)
        except OSError as error:
            future = getattr(obj, "handle", obj)
            try:
                text = future.error_string()
            except (OSError, AttributeError):
                raise error from None
            if not text:
                raise error from None
            raise OSError(error.errno, text) from None

    return wrapper  # type: ignore[return-value]


def interruptible(func: F) -> F:
    """Decorate a blocking future method so ctrl-C interrupts it.

    While the method runs, SIGINT gets its default action (the process is
    interrupted) unless we are not in the main thread, the future has no
    handle, or the handle's reactor is running.  The previous handler is
    put back afterwards, also when the method raises.
    """

    @functools.wraps(func)
    def wrapper(future: Any, *args: Any, **kwargs: Any) -> Any:
        handle = future.get_flux()
        if (threading.current_thread() is not threading.main_thread()
                or handle is None or handle.reactor_running()):
            return func(future, *args, **kwargs)
        previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            return func(future, *args, **kwargs)
        finally:
            signal.signal(signal.SIGINT, previous)

    return wrapper  # type: ignore[return-value]
