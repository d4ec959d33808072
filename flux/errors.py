"""Errors that carry a Flux errno.

Every refusal in this project is an ``OSError`` (or subclass) whose errno
is the one Flux would give and whose strerror names what is wrong, e.g.
``FluxError(errno.ENOENT, "job.0000.0001.eventlog: no such key")``.

As ``OSError(errno.ENOENT, ...)`` is a ``FileNotFoundError``, a
``FluxError`` with such an errno is also an instance of that subclass, so
scripts written for Flux's bindings (``except FileNotFoundError``,
``except TimeoutError``) catch ours.
"""
from __future__ import annotations

import errno
import os

__all__ = ["FluxError", "PayloadError"]

# errno -> the OSError subclass Python itself gives for it
_BUILTIN: dict[int, type[OSError]] = {
    errno.ENOENT: FileNotFoundError, errno.EEXIST: FileExistsError,
    errno.EPERM: PermissionError, errno.EACCES: PermissionError,
    errno.ETIMEDOUT: TimeoutError, errno.EINTR: InterruptedError,
    errno.ECONNRESET: ConnectionResetError, errno.ECONNREFUSED: ConnectionRefusedError,
    errno.ECONNABORTED: ConnectionAbortedError, errno.EPIPE: BrokenPipeError,
    errno.ESHUTDOWN: BrokenPipeError, errno.ECHILD: ChildProcessError,
    errno.EISDIR: IsADirectoryError, errno.ENOTDIR: NotADirectoryError,
    errno.ESRCH: ProcessLookupError, errno.EAGAIN: BlockingIOError,
    errno.EALREADY: BlockingIOError, errno.EINPROGRESS: BlockingIOError,
}


class FluxError(OSError):
    """An OSError with a Flux errno and a message naming the problem."""

    def __new__(cls, *args: object, **kwargs: object) -> "FluxError":
        if cls is FluxError and args:
            sub = _SUBCLASSES.get(args[0])
            if sub is not None:
                cls = sub
        # with __new__ overridden OSError parses no arguments: __init__ sets them
        return super().__new__(cls)  # type: ignore[no-any-return]

    def __init__(self, errnum: int, message: str | None = None) -> None:
        text = message if message is not None else os.strerror(errnum)
        super().__init__(errnum, text)
        self.errno = errnum
        self.strerror = text
        self.args = (errnum, text)

    def __str__(self) -> str:
        return self.strerror or super().__str__()

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        # rebuilt through FluxError, which picks the subclass again
        return (FluxError, (self.errno, self.strerror))


def _subclass(base: type[OSError]) -> type[FluxError]:
    name = f"FluxError{base.__name__}"
    sub = type(name, (FluxError, base), {"__module__": __name__, "__qualname__": name})
    globals()[name] = sub
    return sub


_BY_BASE = {base: _subclass(base) for base in dict.fromkeys(_BUILTIN.values())}
_SUBCLASSES: dict[int, type[FluxError]] = {e: _BY_BASE[b] for e, b in _BUILTIN.items()}


class PayloadError(FluxError, ValueError):
    """A message payload that is not valid JSON: EPROTO, and a ValueError as
    ``json.loads`` raises in Flux's bindings (``except ValueError`` catches it)."""

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return (PayloadError, (self.errno, self.strerror))
