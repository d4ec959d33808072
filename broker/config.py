"""Broker configuration: every ``*.toml`` in a directory, merged into one table.

Files are read in name order; a table may be split across files, but a
key set in two files is an error.  Every error is a :class:`ConfigError`
naming the file, the line and the key.  The ``[access]`` table is
checked here because the broker itself uses it; other tables belong to
the modules that read them.
"""
from __future__ import annotations

import errno
import os
import re
from typing import Any

from flux.errors import FluxError

#: [access] key -> expected type
ACCESS_KEYS: dict[str, type] = {"allow-guest-user": bool, "allow-root-owner": bool}

_TYPE_NAMES = {bool: "boolean", int: "integer", float: "real", str: "string",
               list: "array", dict: "table"}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


_LINE_COL = re.compile(r"\(at line (\d+), column (\d+)\)")


class ConfigError(FluxError):
    """A configuration file that cannot be used (EINVAL), with file/line/key."""

    def __init__(self, path: str, line: int | None, key: str | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.key = key
        where = path if line is None else f"{path}:{line}"
        what = f"{key}: {problem}" if key else problem
        super().__init__(errno.EINVAL, f"{where}: {what}")


def _key_at_line(text: str, lineno: int) -> str | None:
    """The key (or [table]) written on line LINENO of TEXT, if any."""
    lines = text.splitlines()
    if not 1 <= lineno <= len(lines):
        return None
    line = lines[lineno - 1].strip()
    if line.startswith("["):
        return line.strip("[] ").split("]")[0] or None
    if "=" in line:
        return line.split("=", 1)[0].strip().strip('"\'') or None
    return None


def _find_line(text: str, key: str) -> int | None:
    """First line of TEXT that assigns KEY (its last dotted component)."""
    leaf = key.rsplit(".", 1)[-1]
    pattern = re.compile(r"^\s*[\"']?" + re.escape(leaf) + r"[\"']?\s*=")
    for i, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return i
    return None


def parse_toml(path: str, text: str) -> dict[str, Any]:
    """Parse TEXT (the contents of PATH); ConfigError on a syntax error."""
    import tomli as tomllib  # TOML 1.1 (tomllib before 3.15 is 1.0)

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _LINE_COL.search(message)
        line = int(m.group(1)) if m else None
        problem = _LINE_COL.sub("", message).strip()
        key = _key_at_line(text, line) if line else None
        raise ConfigError(path, line, key, problem) from None


def _merge(dst: dict[str, Any], src: dict[str, Any], origin: dict[str, str], path: str,
           texts: dict[str, str], prefix: str = "") -> None:
    for key, value in src.items():
        full = f"{prefix}{key}"
        if key in dst:
            if isinstance(dst[key], dict) and isinstance(value, dict):
                _merge(dst[key], value, origin, path, texts, full + ".")
                continue
            first = origin.get(full, "?")
            raise ConfigError(path, _find_line(texts[path], full), full,
                              f"already set in {first}")
        dst[key] = value
        origin[full] = path
        if isinstance(value, dict):
            for sub in _walk_keys(value, full + "."):
                origin[sub] = path


def _walk_keys(table: dict[str, Any], prefix: str) -> list[str]:
    out = []
    for key, value in table.items():
        out.append(prefix + key)
        if isinstance(value, dict):
            out.extend(_walk_keys(value, prefix + key + "."))
    return out


class Config:
    """A merged configuration with the file each key came from."""

    def __init__(self, table: dict[str, Any] | None = None, origin: dict[str, str] | None = None,
                 texts: dict[str, str] | None = None, path: str | None = None) -> None:
        self.table: dict[str, Any] = table or {}
        self.origin: dict[str, str] = origin or {}
        self.texts: dict[str, str] = texts or {}
        self.path = path

    def get(self, key: str | None = None, default: Any = None) -> Any:
        """The value at dotted KEY (the whole table for None); DEFAULT if missing."""
        if not key:
            return self.table
        node: Any = self.table
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def where(self, key: str) -> tuple[str, int | None]:
        """(file, line) where KEY was set."""
        path = self.origin.get(key, self.path or "?")
        return path, _find_line(self.texts.get(path, ""), key)


def load_dir(path: str) -> Config:
    """Read and merge every ``*.toml`` in directory PATH, then validate it."""
    try:
        names = sorted(n for n in os.listdir(path) if n.endswith(".toml"))
    except FileNotFoundError:
        raise FluxError(errno.ENOENT, f"config directory {path}: no such directory") from None
    except NotADirectoryError:
        raise FluxError(errno.ENOTDIR, f"config path {path}: not a directory") from None
    except PermissionError:
        raise FluxError(errno.EACCES, f"config directory {path}: permission denied") from None
    table: dict[str, Any] = {}
    origin: dict[str, str] = {}
    texts: dict[str, str] = {}
    for name in names:
        fpath = os.path.join(path, name)
        try:
            with open(fpath, encoding="utf-8") as fh:
                text = fh.read()
        except UnicodeDecodeError as exc:
            raise ConfigError(fpath, None, None, f"not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise ConfigError(fpath, None, None, exc.strerror or str(exc)) from None
        texts[fpath] = text
        _merge(table, parse_toml(fpath, text), origin, fpath, texts)
    config = Config(table, origin, texts, path)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Check the tables the broker itself reads (``[access]``)."""
    access = config.get("access")
    if access is None:
        return
    if not isinstance(access, dict):
        path, line = config.where("access")
        raise ConfigError(path, line, "access", "must be a table")
    for key, value in access.items():
        full = f"access.{key}"
        expected = ACCESS_KEYS.get(key)
        if expected is None:
            path, line = config.where(full)
            raise ConfigError(path, line, full, "unknown key")
        if not isinstance(value, expected):
            path, line = config.where(full)
            raise ConfigError(path, line, full, f"expected a {_TYPE_NAMES[expected]}, "
                                                f"got {_type_name(value)}")


def load_path(path: str | None) -> Config:
    """The configuration at PATH (or $FLUX_CONF_DIR), as flux-broker(1) ``-c`` and flux-start(1)
    ``--config-path`` read it.

    A directory: every ``*.toml`` in it (broker.config.load_dir).  A file
    ending in ``.toml`` or ``.json``: that file alone (``flux batch
    --conf`` ships ``conf.json``).  Empty without either.  FluxError
    (a ConfigError for a bad file) names the problem.
    """
    path = path or os.environ.get("FLUX_CONF_DIR") or None
    if not path:
        return Config()
    if os.path.isdir(path):
        return load_dir(path)
    ext = os.path.splitext(path)[1]
    if ext not in (".toml", ".json"):
        if not os.path.exists(path):
            raise FluxError(errno.ENOENT, f"config path {path}: no such file or directory")
        raise FluxError(errno.EINVAL, f"config path {path}: not a directory, "
                                      "a .toml or a .json file")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise FluxError(errno.ENOENT, f"config file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason})"
        raise ConfigError(path, None, None, reason or str(exc)) from None
    if ext == ".toml":
        table = parse_toml(path, text)
    else:
        import json

        try:
            table = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(path, exc.lineno, None, exc.msg) from None
        if not isinstance(table, dict):
            raise ConfigError(path, None, None, "must hold a JSON object")
    origin = {}
    stack = [("", table)]
    while stack:
        prefix, node = stack.pop()
        for key, value in node.items():
            origin[prefix + key] = path
            if isinstance(value, dict):
                stack.append((prefix + key + ".", value))
    config = Config(table, origin, {path: text}, path)
    validate(config)
    return config


__all__ = ["Config", "ConfigError", "load_dir", "load_path", "parse_toml", "validate",
           "ACCESS_KEYS"]
