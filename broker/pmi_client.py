"""A small blocking PMI-1 client (the simple wire protocol of RFC 13).

The process manager pre-connects a socket and names it in the
environment, as MPICH's simple PMI expects: ``PMI_FD`` (the descriptor),
``PMI_RANK`` and ``PMI_SIZE``.  ``PmiClient.from_environ()`` reads them;
without ``PMI_FD`` it raises ``PmiError`` saying the process was not
started by a PMI process manager.

Requests are lock-step: each call writes one line and blocks until its
answer.  Values are text: ``put`` escapes spaces and backslashes, ``get``
undoes that, so any single-line string survives (see specs/pmi.md).
The broker depends on nothing above it, so this module carries its own
few lines of codec instead of importing the shell's.
"""
from __future__ import annotations

import errno
import os
from typing import Mapping, MutableMapping

ENV_VARS = ("PMI_FD", "PMI_RANK", "PMI_SIZE", "PMI_SPAWNED")


class PmiError(Exception):
    """A PMI request failed, or the PMI environment is missing or bad."""


class PmiRefused(PmiError):
    """The server answered a request with a nonzero rc."""


def _escape(text: str) -> str:
    if "\n" in text:
        raise PmiError("a PMI value cannot hold a newline")
    return "".join("\\" + c if c in "\\ \t" else c for c in text)


def _unescape(raw: str) -> str:
    out, i = [], 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _parse(line: str) -> dict[str, str]:
    """key=value tokens of a response line (values stay in wire form)."""
    out: dict[str, str] = {}
    i, n = 0, len(line)
    while i < n:
        if line[i] in " \t":
            i += 1
            continue
        j = i
        while j < n and line[j] not in " \t":
            j += 2 if line[j] == "\\" and j + 1 < n else 1
        key, _sep, value = line[i:j].partition("=")
        out.setdefault(key, value)
        i = j
    return out


class PmiClient:
    """One task's PMI connection: init, get_kvsname, put, barrier, get, finalize, abort."""

    def __init__(self, fd: int, rank: int, size: int) -> None:
        self.fd = fd
        self.rank = rank
        self.size = size
        self.kvsname: str | None = None
        self._buf = b""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "PmiClient":
        """The client named by PMI_FD, PMI_RANK and PMI_SIZE."""
        env = os.environ if environ is None else environ
        if "PMI_FD" not in env:
            raise PmiError("PMI_FD is not set: this process was not started by a PMI-1 "
                           "process manager (simple wire protocol)")
        values: dict[str, int] = {}
        for name in ("PMI_FD", "PMI_RANK", "PMI_SIZE"):
            text = env.get(name)
            if text is None:
                raise PmiError(f"{name} is not set (PMI_FD is)")
            try:
                values[name] = int(text)
            except ValueError:
                raise PmiError(f"{name}={text!r} is not an integer") from None
        size, rank, fd = values["PMI_SIZE"], values["PMI_RANK"], values["PMI_FD"]
        if size < 1 or not 0 <= rank < size:
            raise PmiError(f"PMI_RANK={rank} is out of range for PMI_SIZE={size}")
        try:
            os.fstat(fd)
        except OSError:
            raise PmiError(f"PMI_FD={fd} is not an open file descriptor") from None
        return cls(fd, rank, size)

    # -- transport ---------------------------------------------------------------
    def _send(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except OSError as exc:
            raise PmiError(f"PMI write failed: {exc.strerror or exc}") from None

    def _recv(self) -> str:
        while b"\n" not in self._buf:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise PmiError(f"PMI read failed: {exc.strerror or exc}") from None
            if not chunk:
                raise PmiError("PMI server closed the connection")
            self._buf += chunk
        line, _nl, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def _rpc(self, line: str, expect: str) -> dict[str, str]:
        self._send(line)
        reply = _parse(self._recv())
        if reply.get("cmd") != expect:
            raise PmiError(f"expected cmd={expect} in answer to {line.split()[0]}, "
                           f"got cmd={reply.get('cmd')}")
        rc = reply.get("rc", "0")
        if rc != "0":
            why = _unescape(reply.get("msg", "")) or f"rc={rc}"
            raise PmiRefused(f"{expect.replace('_', ' ')}: {why}")
        return reply

    # -- requests -------------------------------------------------------------------
    def init(self) -> None:
        """Version handshake (PMI 1.1)."""
        self._rpc("cmd=init pmi_version=1 pmi_subversion=1", "response_to_init")

    def get_kvsname(self) -> str:
        """The job's key-value space name (cached)."""
        if self.kvsname is None:
            self.kvsname = self._rpc("cmd=get_my_kvsname", "my_kvsname").get("kvsname", "")
        return self.kvsname

    def put(self, key: str, value: str) -> None:
        """Put KEY=VALUE; other ranks see it after the next barrier."""
        if not key or any(c in key for c in " \t\n=\\"):
            raise PmiError(f"bad PMI key {key!r}")
        self._rpc(f"cmd=put kvsname={self.get_kvsname()} key={key} value={_escape(value)}",
                  "put_result")

    def barrier(self) -> None:
        """Wait until every rank has entered the barrier (puts are exchanged)."""
        self._rpc("cmd=barrier_in", "barrier_out")

    def get(self, key: str) -> str:
        """The value of KEY; PmiError if it is not there."""
        reply = self._rpc(f"cmd=get kvsname={self.get_kvsname()} key={key}", "get_result")
        return _unescape(reply.get("value", ""))

    def get_optional(self, key: str) -> str | None:
        """The value of KEY, or None if the server has no such key."""
        try:
            return self.get(key)
        except PmiRefused:
            return None

    def finalize(self) -> None:
        """End the conversation and close the descriptor."""
        try:
            self._rpc("cmd=finalize", "finalize_ack")
        finally:
            self.close()

    def abort(self, exitcode: int, message: str = "") -> None:
        """Ask the process manager to abort the job (no answer is awaited)."""
        line = f"cmd=abort exitcode={int(exitcode)}"
        if message:
            line += " message=" + _escape(message.replace("\n", " "))
        self._send(line)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


def clean_environ(environ: MutableMapping[str, str] | None = None) -> None:
    """Remove the PMI variables, so programs we start do not use our descriptor."""
    env = os.environ if environ is None else environ
    for name in ENV_VARS:
        env.pop(name, None)


__all__ = ["PmiClient", "PmiError", "PmiRefused", "clean_environ", "ENV_VARS"]
