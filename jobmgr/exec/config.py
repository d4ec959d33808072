"""Exec settings: the ``[exec]`` config table and a job's own shell options.

``[exec]`` keys (all optional):

| key | meaning | default |
|---|---|---|
| ``test`` | run every job in test mode | false |
| ``kill-timeout`` | SIGKILL this long after a job's kill signal (FSD) | 5s |
| ``output-limit`` | KVS output limit per stream (``10M``...) | 1G; 10M for a guest's job |
| ``shell-initrc`` | initrc every shell loads | none |
| ``shell-servers`` | shell servers per user on a rank, at most (specs/exec.md) | CPUs, <= 8 |

flux-config-exec(5)'s other keys (``imp``, ``service``, ``job-shell``,
``term-signal``, ...) are accepted and type-checked but do nothing here;
any other key is an error naming it.

Per job, from ``attributes.system.shell.options``: ``exit-timeout`` (FSD
or ``none``, default 30s; 0 fires as soon as the first task exits), ``exit-on-error``, ``signal`` (``SIG@TIME``,
``{"signum", "timeleft"}`` or true for SIGUSR1 60 s before the time
limit).  Bad values are errors naming the option.
"""
from __future__ import annotations

import json
import signal as _signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flux.util.fsd import parse_fsd
from jobmgr.exec.job import ExecSettings

__all__ = ["ExecConfig", "job_settings", "parse_signal_option", "signal_number"]


@dataclass(slots=True, frozen=True)
class ExecConfig:
    test: bool = False
    kill_timeout: float = 5.0
    output_limit: str | None = None
    shell_initrc: str | None = None
    shell_servers: int | None = None      # None: one per CPU of the broker, at most 8

    @classmethod
    def from_table(cls, table: Any) -> "ExecConfig":
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            raise ValueError("[exec] must be a table")
        for key, value in table.items():
            check = _FLUX_CORE_KEYS.get(key)
            if check is not None:
                check(key, value)
            elif key not in _OUR_KEYS:
                raise ValueError(f"[exec] {key}: unknown key (known: "
                                 f"{', '.join(sorted(_OUR_KEYS | set(_FLUX_CORE_KEYS)))})")
        kill = table.get("kill-timeout", 5.0)
        try:
            kill_timeout = parse_fsd(kill)
        except ValueError:
            raise ValueError(f"[exec] kill-timeout: invalid duration {kill!r}") from None
        limit = table.get("output-limit")
        if limit is not None and not isinstance(limit, (str, int)):
            raise ValueError(f"[exec] output-limit: invalid size {limit!r}")
        initrc = table.get("shell-initrc")
        if initrc is not None and not isinstance(initrc, str):
            raise ValueError("[exec] shell-initrc: must be a path")
        servers = table.get("shell-servers")
        if servers is not None and (isinstance(servers, bool) or not isinstance(servers, int)
                                    or not 1 <= servers <= 64):
            raise ValueError(f"[exec] shell-servers: must be an integer from 1 to 64, "
                             f"got {servers!r}")
        return cls(test=bool(table.get("test", False)), kill_timeout=kill_timeout,
                   output_limit=None if limit is None else str(limit), shell_initrc=initrc,
                   shell_servers=servers)


def _string(key: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"[exec] {key}: must be a string, got {value!r}")


def _boolean(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"[exec] {key}: must be true or false, got {value!r}")


def _count(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"[exec] {key}: must be an integer >= 0, got {value!r}")


def _duration(key: str, value: Any) -> None:
    try:
        parse_fsd(value)
    except (ValueError, TypeError):
        raise ValueError(f"[exec] {key}: invalid duration {value!r}") from None


def _signal_name(key: str, value: Any) -> None:
    try:
        signal_number(value)
    except ValueError:
        raise ValueError(f"[exec] {key}: invalid signal {value!r}") from None


def _table(key: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"[exec] {key}: must be a table")


#: flux-config-exec(5) keys with no use here (no IMP, no systemd exec service):
#: accepted so a site's file works, and checked, so a typo of a value is still caught
_FLUX_CORE_KEYS = {"imp": _string, "service": _string, "service-override": _boolean,
                   "job-shell": _string, "max-kill-count": _count, "term-signal": _signal_name,
                   "kill-signal": _signal_name, "barrier-timeout": _duration,
                   "sdexec-properties": _table, "sdexec-stop-timer-sec": _count,
                   "sdexec-stop-timer-signal": _signal_name}
_OUR_KEYS = frozenset({"test", "kill-timeout", "output-limit", "shell-initrc", "shell-servers"})


def signal_number(value: Any) -> int:
    """``"SIGUSR1"``, ``"USR1"``, ``"10"`` or 10 -> 10; ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        num = value
    else:
        text = str(value).strip().upper()
        if text.isdigit():
            num = int(text)
        else:
            name = text if text.startswith("SIG") else "SIG" + text
            try:
                num = int(_signal.Signals[name])
            except KeyError:
                raise ValueError(f"invalid signal {value!r}") from None
    if not 0 < num < _signal.NSIG:
        raise ValueError(f"invalid signal {value!r}")
    return num


def parse_signal_option(value: Any) -> tuple[int, float] | None:
    """The ``signal`` shell option as (signum, seconds before the time limit)."""
    if value is None or value is False:
        return None
    if value is True or value == 1:
        return int(_signal.SIGUSR1), 60.0
    if isinstance(value, Mapping):
        signum = signal_number(value.get("signum", int(_signal.SIGUSR1)))
        left = value.get("timeleft", 60)
    else:
        sig, _at, when = str(value).partition("@")
        signum = signal_number(sig) if sig else int(_signal.SIGUSR1)
        left = when or 60
    try:
        timeleft = parse_fsd(left)
    except ValueError:
        raise ValueError(f"signal: invalid time {left!r}") from None
    return signum, timeleft


def job_settings(jobspec: Mapping[str, Any], config: ExecConfig) -> ExecSettings:
    """A job's exec settings; ValueError names the bad shell option."""
    system = ((jobspec.get("attributes") or {}).get("system") or {})
    shell = system.get("shell") if isinstance(system, Mapping) else None
    options = shell.get("options") if isinstance(shell, Mapping) else None
    options = options if isinstance(options, Mapping) else {}
    exit_timeout: float | None = 30.0
    if "exit-timeout" in options:
        value = options["exit-timeout"]
        if value in ("none", "None"):
            exit_timeout = None
        elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
            # flux-core refuses `-o exit-timeout=false` (its t2609); only "none" disables
            raise ValueError(f"exit-timeout: invalid duration {json.dumps(value)}")
        else:
            try:
                exit_timeout = parse_fsd(value)
            except ValueError:
                raise ValueError(f"exit-timeout: invalid duration {value!r}") from None
            # 0 is a timer of no length (flux-shell-options(7): only "none" disables it)
    try:
        signal_before = parse_signal_option(options.get("signal"))
    except ValueError as exc:
        raise ValueError(f"signal: {exc}") from None
    return ExecSettings(kill_timeout=config.kill_timeout, exit_timeout=exit_timeout,
                        exit_on_error=bool(options.get("exit-on-error", False)),
                        signal_before=signal_before)
