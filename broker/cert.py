"""CURVE certificates in the ZeroMQ ``zcert`` text format that flux-keygen(1) writes.

A certificate is ZPL text (ZeroMQ property language): ``#`` comments, a
``metadata`` section and a ``curve`` section whose ``public-key`` and
``secret-key`` are 40-character Z85 strings, each property indented four
spaces per level, values double-quoted::

    #   ****  Generated on 2026-12-07 05:00:00 by flux keygen  ****
    #   ZeroMQ CURVE **Secret** Certificate
    #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

    metadata
        name = "test0"
        ...
    curve
        public-key = "..."
        secret-key = "..."

``write_cert`` creates the file with mode 0600 (refusing to replace one);
``load_cert`` refuses a file that cannot be read, that group or others
may read or write, that another user owns, or whose keys are missing,
malformed or do not form a pair, each with a message naming the file.
"""
from __future__ import annotations

import errno
import os
import socket
import stat
import time

import zmq
import zmq.utils.z85

from flux import __version__
from flux.errors import FluxError

__all__ = ["write_cert", "load_cert", "parse_zpl", "format_cert"]


def parse_zpl(text: str, path: str = "certificate") -> dict[str, dict[str, str]]:
    """The sections of ZPL TEXT as {section: {name: value}} (two levels, as zcert uses)."""
    out: dict[str, dict[str, str]] = {}
    section: dict[str, str] | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        if indent == 0:
            name = stripped.split("=", 1)[0].strip()
            section = out.setdefault(name, {})
            continue
        if section is None:
            raise ValueError(f"{path}:{lineno}: property outside a section")
        name, sep, value = stripped.partition("=")
        if not sep:
            raise ValueError(f"{path}:{lineno}: expected name = \"value\"")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        section[name.strip()] = value
    return out


def format_cert(public: str, secret: str, name: str | None = None,
                now: float | None = None) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    host = socket.gethostname()
    meta = {"name": name or host, "keygen.hostname": host, "keygen.time": when,
            "keygen.userid": str(os.getuid()), "keygen.flux-core-version": __version__,
            "keygen.zmq-version": zmq.zmq_version()}
    lines = [f"#   ****  Generated on {when} by flux keygen  ****",
             "#   ZeroMQ CURVE **Secret** Certificate",
             "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.",
             "", "metadata"]
    lines += [f'    {k} = "{v}"' for k, v in meta.items()]
    lines += ["curve", f'    public-key = "{public}"', f'    secret-key = "{secret}"', ""]
    return "\n".join(lines)


def write_cert(path: str, name: str | None = None) -> tuple[str, str]:
    """Write a new certificate to PATH (mode 0600, not replacing a file); its (public,
    secret) keys."""
    public, secret = (k.decode() for k in zmq.curve_keypair())
    text = format_cert(public, secret, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise FluxError(errno.EEXIST, f"{path}: file exists (remove it first)") from None
    except OSError as exc:
        raise FluxError(exc.errno or errno.EIO, f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return public, secret


def _key(curve: dict[str, str], name: str, path: str) -> bytes:
    value = curve.get(name)
    if value is None:
        raise FluxError(errno.EINVAL, f"{path}: no {name} in its curve section")
    try:
        raw = zmq.utils.z85.decode(value.encode())
    except (ValueError, KeyError, IndexError, TypeError):
        raw = b""
    if len(value) != 40 or len(raw) != 32:
        raise FluxError(errno.EINVAL, f"{path}: {name} is not a 40-character Z85 key")
    return value.encode()


def load_cert(path: str, owner: int | None = None) -> tuple[bytes, bytes]:
    """The (public, secret) Z85 keys of the certificate at PATH, checked as described above."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise FluxError(exc.errno or errno.EIO,
                        f"bootstrap.curve_cert: cannot read {path}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FluxError(errno.EINVAL, f"bootstrap.curve_cert: {path} is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        if st.st_mode & 0o077:
            raise FluxError(errno.EPERM,
                            f"bootstrap.curve_cert: {path} is accessible to group or others "
                            f"(mode {stat.S_IMODE(st.st_mode):04o}); it holds the secret key: "
                            f"chmod 600 it")
        uid = os.getuid() if owner is None else owner
        if st.st_uid != uid:
            raise FluxError(errno.EPERM,
                            f"bootstrap.curve_cert: {path} is owned by uid {st.st_uid}, not "
                            f"by the instance owner (uid {uid})")
        data = fh.read(1 << 16)
    try:
        text = data.decode("utf-8")
        sections = parse_zpl(text, path)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FluxError(errno.EINVAL, f"bootstrap.curve_cert: {path} is not a certificate: "
                                      f"{exc}") from None
    curve = sections.get("curve")
    if curve is None:
        raise FluxError(errno.EINVAL, f"bootstrap.curve_cert: {path} has no curve section "
                                      "(make one with flux keygen)")
    public = _key(curve, "public-key", path)
    secret = _key(curve, "secret-key", path)
    if zmq.curve_public(secret) != public:
        raise FluxError(errno.EINVAL, f"bootstrap.curve_cert: {path}: public-key does not "
                                      "match secret-key")
    return public, secret
