"""Helpers shared by the ``flux`` subcommands: error reporting and exit codes.

Flux exit codes: 0 ok, 1 the request was refused or failed, 2 bad usage.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, NoReturn, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def warn(prog: str, message: str) -> None:
    """Print ``flux-PROG: MESSAGE`` on stderr (without click: ``flux run`` may not load it)."""
    try:
        sys.stdout.flush()  # what we printed before comes first, as click.echo would have it
    except (OSError, ValueError):
        pass
    sys.stderr.write(f"flux-{prog}: {message}\n")
    sys.stderr.flush()


def die(prog: str, message: str, code: int = 1) -> NoReturn:
    """Print ``flux-PROG: MESSAGE`` on stderr and exit with CODE."""
    warn(prog, message)
    sys.exit(code)


def error_text(exc: BaseException) -> str:
    """The human part of an exception: strerror for OSError, else str()."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def handle_errors(prog: str) -> Callable[[F], F]:
    """Turn OSError/ValueError raised by a command into ``flux-PROG: msg`` + exit 1."""

    import functools

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except BrokenPipeError:
                # The reader went away (flux lsattr | head): quiet, like SIGPIPE.
                sys.stderr.close()
                sys.exit(141)
            except (OSError, ValueError, TypeError) as exc:
                die(prog, error_text(exc))
            except Exception as exc:
                # the store's own errors (a damaged LMDB page: lmdb.CorruptedError) are
                # reported as what they are, not as a traceback
                if type(exc).__module__ != "lmdb":
                    raise
                die(prog, f"content store: {exc} (the store is damaged: restore the "
                          "statedir from a dump)")

        return wrapper  # type: ignore[return-value]

    return deco


def unescape(text: str) -> str:
    """An option value as typed in shell quotes (``-d'\\n'``): ``\\n``, ``\\t`` and
    ``\\\\`` taken as the characters they name."""
    return text.replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")
