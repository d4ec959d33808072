"""``Fileref``: an RFC 37 file object for a jobspec's ``attributes.system.files``."""
from __future__ import annotations

import base64
import os
import stat
from typing import Any

__all__ = ["Fileref"]

ENCODINGS = ("utf-8", "base64")


class Fileref(dict):  # type: ignore[type-arg]
    """A dict (so it serializes to JSON directly) describing one file.

    - ``data`` a dict: kept as is, to be written out as JSON; no encoding.
    - ``encoding`` given (``utf-8`` or ``base64``, else ValueError): ``data``
      is already encoded and is kept verbatim.
    - otherwise ``data`` is a path: the file is read, as ``utf-8`` text if it
      decodes, else ``base64``; ``size`` and the file's own ``mode`` are set.

    ``mode`` is ``perms`` (default 0o600) with the regular-file bit.
    """

    def __init__(self, data: Any, perms: int = 0o600, encoding: str | None = None) -> None:
        ref: dict[str, Any] = {"mode": perms | stat.S_IFREG}
        if isinstance(data, dict):
            ref["data"] = data
        elif encoding is not None:
            if encoding not in ENCODINGS:
                raise ValueError(f"invalid encoding: {encoding} (expected utf-8 or base64)")
            ref["data"] = data
            ref["encoding"] = encoding
        else:
            path = os.fspath(data)
            info = os.stat(path)
            with open(path, "rb") as fh:
                content = fh.read()
            ref["size"] = info.st_size
            ref["mode"] = info.st_mode
            try:
                ref["data"] = content.decode("utf-8")
                ref["encoding"] = "utf-8"
            except UnicodeDecodeError:
                ref["data"] = base64.b64encode(content).decode("ascii")
                ref["encoding"] = "base64"
        super().__init__(ref)
