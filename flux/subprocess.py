"""flux.subprocess: run and control processes on broker ranks through ``rexec``.

The broker's ``rexec`` service (RFC 42; the one ``flux exec`` uses, see
specs/rexec.md) starts a process on the rank a request is sent to, with
the broker's credentials; it is for the instance owner only (EPERM for
a guest).  ``rexec_bg`` starts one in the background (stdio on
/dev/null), ``kill`` signals one, ``wait`` collects the status of one
started ``waitable``, ``list`` lists a rank's processes.  Each returns an
RPC future; its ``get()`` raises OSError with the service's error
(ENOENT ``nosuchcmd: No such file or directory`` for a command that
cannot be found, ENOENT for an unknown pid or label, EEXIST for a label
in use, EINVAL for waiting on a process not started waitable).
"""
from __future__ import annotations

import base64
import builtins
import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flux.constants import FLUX_NODEID_ANY
from flux.rpc import RPC

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["command_create", "rexec_bg", "kill", "wait", "list", "Subprocess",
           "SubprocessBackgroundRexecRPC", "SubprocessWaitRPC", "SubprocessListRPC",
           "SUBPROCESS_REXEC_WAITABLE"]

#: the rexec.exec flag that keeps a background process's status for ``wait``
SUBPROCESS_REXEC_WAITABLE = 16


def _check_sign(handle: "Flux", sign: bool | None) -> None:
    # RFC 42 signed requests need flux-security, which this package lacks;
    # unsigned requests from the instance owner are what rexec accepts
    if sign:
        raise OSError(errno.ENOSYS, "flux-security is not available")


def command_create(command: Any, label: str | None = None, cwd: str | None = None,
                   env: dict[str, str] | None = None,
                   opts: dict[str, str] | None = None) -> dict[str, Any]:
    """An RFC 42 command object: ``cmdline``, ``cwd`` (default: ours), ``env``
    (default: a copy of ours), ``opts``, ``channels`` and ``label`` if given.

    TypeError for a command that is not a non-empty list of strings.
    """
    if isinstance(command, (str, bytes)) or not isinstance(command, (builtins.list, tuple)):
        raise TypeError(f"command must be a list of strings, not {type(command).__name__}")
    if not command or not all(isinstance(arg, str) for arg in command):
        raise TypeError("command must be a non-empty list of strings")
    obj: dict[str, Any] = {
        "cmdline": builtins.list(command),
        "cwd": os.getcwd() if cwd is None else os.fspath(cwd),
        "env": dict(os.environ) if env is None else dict(env),
        "opts": {} if opts is None else dict(opts),
        "channels": [],
    }
    if label is not None:
        obj["label"] = label
    return obj


class SubprocessBackgroundRexecRPC(RPC):
    """The response of ``rexec_bg``: ``get_pid()``, ``get_rank()``."""

    def __init__(self, handle: "Flux", topic: str, payload: Any = None,
                 nodeid: int = FLUX_NODEID_ANY, flags: int = 0) -> None:
        self._rank = handle.get_rank() if nodeid == FLUX_NODEID_ANY else int(nodeid)
        super().__init__(handle, topic, payload, nodeid=nodeid, flags=flags)

    def get_pid(self) -> int:
        """The process id of the started process (OSError if it could not start)."""
        return int(self.get()["pid"])

    def get_rank(self) -> int:
        """The rank the process was started on."""
        return self._rank


def rexec_bg(handle: "Flux", command: Any, cwd: str | None = None,
             env: dict[str, str] | None = None, label: str | None = None,
             waitable: bool = False, service: str = "rexec", nodeid: int = FLUX_NODEID_ANY,
             sign: bool | None = None) -> SubprocessBackgroundRexecRPC:
    """Start COMMAND in the background on rank ``nodeid`` (default: the local broker).

    ``waitable``: keep its exit status for ``wait()``.  ``label`` names it
    (unique among the rank's live processes).  The future's ``get_pid()``
    gives its pid once started; OSError if it cannot start.
    """
    _check_sign(handle, sign)
    payload = {"cmd": command_create(command, label=label, cwd=cwd, env=env),
               "flags": SUBPROCESS_REXEC_WAITABLE if waitable else 0}
    return SubprocessBackgroundRexecRPC(handle, f"{service}.exec", payload, nodeid=int(nodeid))


def _target(pid: Any, label: Any) -> dict[str, Any]:
    if pid is None and label is None:
        raise ValueError("at least one of pid or label must be specified")
    if pid is not None and label is not None:
        raise ValueError("only one of pid or label may be specified")
    if pid is not None:
        return {"pid": int(pid)}
    return {"pid": -1, "label": label}


def kill(handle: "Flux", signum: int = 15, pid: int | None = None, label: str | None = None,
         service: str = "rexec", nodeid: int = FLUX_NODEID_ANY,
         sign: bool | None = None) -> RPC:
    """Send ``signum`` (default SIGTERM) to the process ``pid`` or ``label`` on ``nodeid``.

    The signal goes to the process's group.  ValueError unless exactly one
    of ``pid`` and ``label`` is given; the future raises OSError ENOENT
    for a process that is not one of rexec's on that rank.
    """
    _check_sign(handle, sign)
    payload = {**_target(pid, label), "signum": int(signum)}
    return RPC(handle, f"{service}.kill", payload, nodeid=int(nodeid))


class SubprocessWaitRPC(RPC):
    """The response of ``wait``: ``get_status()`` (a waitpid(2) status)."""

    def get_status(self) -> int:
        """The wait status: use ``os.WIFEXITED``, ``os.WEXITSTATUS``, ... on it."""
        return int(self.get()["status"])

    def get_output(self) -> builtins.list[dict[str, Any]]:
        """Output the service kept for the process (RFC 24 io objects; ours keeps none)."""
        return builtins.list(self.get().get("output", []))

    def _stream_bytes(self, stream: str) -> bytes:
        out = bytearray()
        for io in self.get_output():
            if io.get("stream") != stream or io.get("data") is None:
                continue
            data = io["data"]
            out += base64.b64decode(data) if io.get("encoding") == "base64" \
                else data.encode("utf-8", errors="surrogateescape")
        return bytes(out)

    @property
    def stdout(self) -> bytes:
        return self._stream_bytes("stdout")

    @property
    def stderr(self) -> bytes:
        return self._stream_bytes("stderr")


def wait(handle: "Flux", pid: int | None = None, label: str | None = None,
         service: str = "rexec", nodeid: int = FLUX_NODEID_ANY,
         sign: bool | None = None) -> SubprocessWaitRPC:
    """Wait for the waitable background process ``pid`` or ``label`` on ``nodeid`` to exit.

    ValueError unless exactly one of ``pid`` and ``label`` is given; the
    future raises OSError EINVAL for a process not started waitable, ENOENT
    for an unknown one (a status is collected once).
    """
    _check_sign(handle, sign)
    return SubprocessWaitRPC(handle, f"{service}.wait", _target(pid, label),
                             nodeid=int(nodeid))


@dataclass
class Subprocess:
    """One process of an ``rexec.list`` answer."""

    pid: int
    rank: int
    state: str
    label: str
    cmd: str
    bg: bool = False
    waitable: bool = False
    attached: bool = False

    def __post_init__(self) -> None:
        if not self.label:
            self.label = "-"


class SubprocessListRPC(RPC):
    """The response of ``list``: ``get_processes()``."""

    def get_processes(self) -> builtins.list[Subprocess]:
        """The rank's processes as Subprocess objects."""
        resp = self.get()
        rank = int(resp["rank"])
        out = []
        for proc in resp["procs"]:
            cmd = proc.get("cmd")
            if cmd is None:
                cmd = " ".join(proc.get("cmdline", []))
            out.append(Subprocess(pid=int(proc["pid"]), rank=rank,
                                  state=str(proc.get("state", "")),
                                  label=proc.get("label") or "", cmd=cmd,
                                  bg=bool(proc.get("bg", False)),
                                  waitable=bool(proc.get("waitable", False)),
                                  attached=bool(proc.get("attached", False))))
        return out


def list(handle: "Flux", service: str = "rexec", nodeid: int = FLUX_NODEID_ANY,  # noqa: A001
         sign: bool | None = None) -> SubprocessListRPC:
    """The processes rexec runs on rank ``nodeid`` (a future; ``get_processes()``)."""
    _check_sign(handle, sign)
    return SubprocessListRPC(handle, f"{service}.list", {}, nodeid=int(nodeid))
