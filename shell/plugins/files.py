"""The job's files: ``attributes.system.files`` (an RFC 37 archive) written to its tmpdir.

Every shell of the job writes each entry under FLUX_JOB_TMPDIR before any
task starts, as flux-shell's ``files`` plugin does; this is how ``flux
batch`` ships its script (``{{tmpdir}}/script``, run as the instance's
initial program), ``flux batch/alloc --conf`` its ``conf.json`` and
``flux submit --add-file`` anything else.  An entry is keyed by its path,
relative to the tmpdir (an absolute path or one that climbs out with
``..`` is refused), and has:

- ``mode``: the file type and permission bits (a regular file when the
  type bits are 0; ``S_IFDIR`` makes a directory, ``S_IFLNK`` a symlink to
  ``data``);
- ``data`` with ``encoding`` ``utf-8`` or ``base64``, or without an
  encoding a JSON value written as JSON text (``conf.json``);
- ``size`` (optional): checked against the decoded data.

Entries that keep their content in the content store (``blobref``) are
refused with an error naming them.  Any problem is a fatal job exception
naming the file.
"""
from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping
from typing import Any

from shell.plugstack import Plugin

__all__ = ["plugin", "extract", "entry_content"]


def _relative(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("files: an entry has an empty name")
    if os.path.isabs(name):
        raise ValueError(f"files: {name}: absolute paths are not allowed")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"files: {name}: the path must stay inside the job's tmpdir")
    return os.path.join(*parts)


def entry_content(name: str, entry: Mapping[str, Any]) -> bytes:
    """The bytes ENTRY (RFC 37) stands for; ValueError names what is wrong."""
    if "blobref" in entry or "blobvec" in entry:
        raise ValueError(f"files: {name}: entries stored by blobref are not supported")
    data = entry.get("data", "")
    encoding = entry.get("encoding")
    if encoding is None:
        if isinstance(data, str):
            raw = data.encode()
        else:
            import json

            raw = json.dumps(data).encode()
    elif encoding == "utf-8":
        if not isinstance(data, str):
            raise ValueError(f"files: {name}: utf-8 data must be a string")
        raw = data.encode()
    elif encoding == "base64":
        if not isinstance(data, str):
            raise ValueError(f"files: {name}: base64 data must be a string")
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            raise ValueError(f"files: {name}: data is not valid base64") from None
    else:
        raise ValueError(f"files: {name}: unknown encoding {encoding!r}")
    size = entry.get("size")
    if size is not None and size != len(raw):
        raise ValueError(f"files: {name}: size {size} does not match its data "
                         f"({len(raw)} bytes)")
    return raw


def extract(files: Any, directory: str) -> list[str]:
    """Write the archive FILES under DIRECTORY; the paths written."""
    if not isinstance(files, Mapping):
        raise ValueError("files: attributes.system.files must be an object")
    written = []
    for name, entry in files.items():
        rel = _relative(name)
        if not isinstance(entry, Mapping):
            raise ValueError(f"files: {name}: entry must be an object")
        mode = entry.get("mode", 0o600)
        if not isinstance(mode, int) or isinstance(mode, bool) or mode < 0:
            raise ValueError(f"files: {name}: mode must be a non-negative integer")
        path = os.path.join(directory, rel)
        parent = os.path.dirname(path)
        if parent != directory:
            os.makedirs(parent, 0o700, exist_ok=True)
        kind = stat.S_IFMT(mode)
        perms = stat.S_IMODE(mode)
        if kind == stat.S_IFDIR:
            os.makedirs(path, perms or 0o700, exist_ok=True)
        elif kind == stat.S_IFLNK:
            target = entry.get("data")
            if not isinstance(target, str) or not target:
                raise ValueError(f"files: {name}: a symlink needs its target as data")
            os.symlink(target, path)
        elif kind in (0, stat.S_IFREG):
            raw = entry_content(name, entry)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                         perms or 0o600)
            try:
                view = memoryview(raw)
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, perms or 0o600)
            finally:
                os.close(fd)
        else:
            raise ValueError(f"files: {name}: unsupported file type (mode {mode:#o})")
        written.append(path)
    return written


def plugin() -> Plugin:
    p = Plugin("files")

    def init(_topic: str, sh: Any, _task: Any) -> None:
        system = (sh.info.jobspec.get("attributes") or {}).get("system") or {}
        files = system.get("files") if isinstance(system, Mapping) else None
        if not files:
            return
        tmpdir = sh.env.get("FLUX_JOB_TMPDIR")
        if not tmpdir:
            raise ValueError("files: FLUX_JOB_TMPDIR is not set")
        try:
            for path in extract(files, tmpdir):
                sh.log(f"files: extracted {path}", 7)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise OSError(exc.errno, f"files: {where}{exc.strerror or exc}") from None

    p.add_handler("shell.init", init)
    return p
