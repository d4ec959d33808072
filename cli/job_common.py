"""Argument parsing shared by the job commands (flux job, jobs, cancel, submit, run).

Job ids, users, state names and signals are parsed here the same way for
every command; bad input raises ValueError with the message the command
prints after its ``flux-PROG:`` prefix.
"""
from __future__ import annotations

import os
from typing import Any

__all__ = [
    "STATE_BITS", "VIRTUAL_STATES", "RESULT_BITS", "FLUX_USERID_UNKNOWN", "FLUX_JOBID_ANY",
    "parse_jobid", "parse_userid", "parse_states", "parse_signal", "split_ids_and_note",
    "END_OF_IDS",
    "JobIDParam", "open_handle", "rpc_error_text",  # noqa: F822 (JobIDParam: __getattr__)
]

FLUX_USERID_UNKNOWN = 0xFFFFFFFF
FLUX_JOBID_ANY = 0xFFFFFFFFFFFFFFFF
# RFC 21 state bits; the virtual states are unions of them
STATE_BITS = {"new": 1, "depend": 2, "priority": 4, "sched": 8, "run": 16, "cleanup": 32,
              "inactive": 64}
VIRTUAL_STATES = {"pending": 2 | 4 | 8, "running": 16 | 32, "active": 1 | 2 | 4 | 8 | 16 | 32}
RESULT_BITS = {"completed": 1, "failed": 2, "canceled": 4, "cancelled": 4, "timeout": 8}


def parse_jobid(text: str) -> Any:
    """A JobID from any RFC 19 encoding; ValueError ``invalid jobid 'X': why``."""
    from flux.job.JobID import JobID

    return JobID(text)


def parse_userid(text: str) -> int:
    """``all`` -> FLUX_USERID_UNKNOWN, a user name or a numeric id (or ``+UID``) -> uid."""
    if text == "all":
        return FLUX_USERID_UNKNOWN
    import pwd

    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        pass
    # ``+UID`` is always a number, even where a user is named by digits
    number = text[1:] if text.startswith("+") else text
    if number.isascii() and number.isdigit():
        return int(number)
    raise ValueError(f"unknown user {text}")


def parse_states(values: tuple[str, ...] | list[str] | str, option: str = "states") -> int:
    """State names (comma-separated, repeatable, any case) -> a state bitmask.

    Accepts the RFC 21 states and the virtual ``pending``, ``running`` and
    ``active``.
    """
    if isinstance(values, str):
        values = [values]
    mask = 0
    for value in values:
        for name in value.split(","):
            name = name.strip().lower()
            if not name:
                continue
            bits = STATE_BITS.get(name) or VIRTUAL_STATES.get(name)
            if bits is None:
                raise ValueError(f"error parsing --{option}: {name} is unknown")
            mask |= bits
    if mask == 0:
        raise ValueError("no states specified")
    return mask


def parse_signal(text: str) -> int:
    """``SIGTERM``, ``TERM``, ``term`` or ``15`` -> 15."""
    import signal

    name = text.strip()
    if name.isdigit():
        num = int(name)
        if 0 < num < signal.NSIG:
            return num
        raise ValueError(f"Invalid signal {text}")
    upper = name.upper()
    if not upper.startswith("SIG"):
        upper = "SIG" + upper
    try:
        return int(signal.Signals[upper])
    except KeyError:
        raise ValueError(f"Invalid signal {text}") from None


#: stands for the command line's ``--`` among the arguments (click drops it)
END_OF_IDS = "\0--"


def split_ids_and_note(args: tuple[str, ...] | list[str]) -> tuple[list[Any], str | None]:
    """Leading job ids, then the rest as a note (``--`` or END_OF_IDS forces the split).

    ``("ƒ2", "ƒ3", "out", "of", "time")`` -> ([ƒ2, ƒ3], "out of time").
    """
    from flux.job.JobID import JobID

    ids = []
    rest = list(args)
    while rest:
        try:
            ids.append(JobID(rest[0]))
        except (ValueError, TypeError):
            break
        rest.pop(0)
    if rest and rest[0] in ("--", END_OF_IDS):
        rest.pop(0)
    return ids, (" ".join(rest) if rest else None)


def _jobid_param_type() -> type:
    import click

    class JobIDParam(click.ParamType):
        """A click argument type that parses any RFC 19 job id encoding."""

        name = "JOBID"

        def convert(self, value: Any, param: click.Parameter | None,
                    ctx: click.Context | None) -> Any:
            try:
                return parse_jobid(value)
            except (ValueError, TypeError) as exc:
                self.fail(str(exc), param, ctx)

    return JobIDParam


def __getattr__(name: str) -> Any:
    # JobIDParam is a click type, made on first use: ``flux run`` follows
    # jobs with this module without loading click (cli/main.py)
    if name == "JobIDParam":
        cls = globals()["JobIDParam"] = _jobid_param_type()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_handle(prog: str) -> Any:
    """A connection to the enclosing instance (FLUX_URI); exits 1 naming why it failed."""
    from cli.common import die
    from flux.core.handle import Flux

    try:
        return Flux()
    except OSError as exc:
        die(prog, rpc_error_text(exc))


def rpc_error_text(exc: OSError) -> str:
    """The service's error text, else strerror."""
    if exc.strerror:
        return exc.strerror
    return os.strerror(exc.errno) if exc.errno else str(exc)
