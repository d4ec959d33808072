"""User configuration of Flux's Python tools: ``xdg_searchpath`` and ``UtilConfig``.

``UtilConfig("flux-jobs").load()`` merges, lowest precedence first, an
optional initial dict, then ``$XDG_CONFIG_DIRS/flux/flux-jobs.*`` (default
``/etc/xdg``), then ``$XDG_CONFIG_HOME/flux/flux-jobs.*`` (default
``~/.config``).  Each ``.toml``, ``.json`` or ``.yaml`` file found is
loaded in sorted order; other extensions are ignored.
"""
from __future__ import annotations

import copy
import glob
import json
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping

from flux.util.treedict import dict_merge

__all__ = ["xdg_searchpath", "UtilConfig", "ConfigKeyError"]


def xdg_searchpath(subdir: str = "") -> list[Path]:
    """Flux's config directories in precedence order (highest first), XDG style."""
    dirs = [os.environ.get("XDG_CONFIG_HOME") or f"{Path.home()}/.config"]
    dirs += (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
    return [Path(d, "flux", subdir) for d in dirs]


class ConfigKeyError(KeyError, AttributeError):
    """A config key that is not set: a KeyError (as Flux raises) and an
    AttributeError (so ``hasattr`` and ``getattr(conf, k, default)`` work)."""

    def __str__(self) -> str:
        return f"config key '{self.args[0]}' is not set"


def _load_toml(fh: Any) -> Any:
    import tomli as tomllib  # TOML 1.1 (tomllib before 3.15 is 1.0)

    return tomllib.load(fh)


def _load_yaml(fh: Any) -> Any:
    import yaml

    return yaml.safe_load(fh)


class UtilConfig:
    """Layered configuration for a tool ``name`` (files ``<name>.<ext>``).

    ``toolname`` names the tool in environment variables when it differs
    from ``name``; ``subcommand`` selects a sub-table as ``config``.
    Attributes read the selected table: ``conf.formats``.
    """

    extension_handlers: dict[str, Callable[[Any], Any]] = {
        ".toml": _load_toml,
        ".json": json.load,
        ".yaml": _load_yaml,
    }
    builtin_formats: dict[str, Any] = {}

    def __init__(self, name: str, toolname: str | None = None, subcommand: str | None = None,
                 initial_dict: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.toolname = toolname
        self.subtable = subcommand
        self.dict: dict[str, Any] = copy.deepcopy(dict(initial_dict)) if initial_dict else {}
        self.config: dict[str, Any] = self.dict
        # lowest precedence first, so later files override earlier ones
        self.searchpath = list(reversed(xdg_searchpath()))

    def load(self) -> "UtilConfig":
        """Read every config file on the search path; returns self.

        A file that does not parse raises ValueError starting with its path.
        """
        for directory in self.searchpath:
            for filepath in sorted(glob.glob(f"{glob.escape(str(directory))}/"
                                             f"{glob.escape(self.name)}.*")):
                handler = self.extension_handlers.get(PurePosixPath(filepath).suffix)
                if handler is None:
                    continue
                try:
                    with open(filepath, "rb") as fh:
                        conf = handler(fh)
                except Exception as exc:  # noqa: BLE001 - any decoder's error
                    if isinstance(exc, OSError):
                        raise
                    raise ValueError(f"{filepath}: {exc}") from exc
                if conf is None:
                    conf = {}
                if not isinstance(conf, dict):
                    raise ValueError(f"{filepath}: expected a table of keys, "
                                     f"got {type(conf).__name__}")
                self.validate(filepath, conf)
                dict_merge(self.dict, conf)
        if self.subtable and self.subtable in self.dict:
            self.config = self.dict[self.subtable]
        return self

    def validate(self, path: Any, conf: dict[str, Any]) -> None:
        """Check one file's contents before they are merged (subclasses override)."""

    def validate_formats(self, path: Any, formats: Any) -> None:
        """Check a ``formats`` table (``{name: {"format": str, "description": str}}``);
        ValueError names the file and the problem."""
        builtin = self.builtin_formats
        if self.subtable and self.subtable in builtin:
            builtin = builtin[self.subtable]
        if not isinstance(formats, dict):
            raise ValueError(f"{path}: the 'formats' key must be a mapping")
        for name, entry in formats.items():
            if name in builtin:
                raise ValueError(f"{path}: override of builtin format '{name}' not permitted")
            if not isinstance(entry, dict):
                raise ValueError(f"{path}: 'formats.{name}' must be a mapping")
            if "format" not in entry:
                raise ValueError(f"{path}: formats.{name}: required key 'format' missing")
            if not isinstance(entry["format"], str):
                raise ValueError(f"{path}: formats.{name}: 'format' key must be a string")

    def _default_env_name(self) -> str:
        name = (self.toolname or self.name).upper().replace("-", "_")
        if self.subtable:
            name += "_" + self.subtable.upper().replace("-", "_")
        return name + "_FORMAT_DEFAULT"

    def get_format_string(self, format_name: str) -> str:
        """The format called ``format_name`` in the ``formats`` table.

        A string with ``{`` is a format already.  ``help`` lists the formats
        and exits; ``get-config=NAME`` prints NAME's table and exits;
        ``default`` may be overridden by ``<TOOL>_FORMAT_DEFAULT``.
        ValueError: ``--format: No such format NAME``.
        """
        if "{" in format_name:
            return format_name
        formats = self.config.get("formats", {})
        if format_name == "help":
            print(f"\nConfigured {self.name} output formats:\n")
            for name, entry in formats.items():
                description = entry.get("description") if isinstance(entry, dict) else None
                print(f"  {name:<12}" + (f" {description}" if description else ""))
            sys.exit(0)
        if format_name.startswith("get-config="):
            name = format_name.split("=", 1)[1]
            if name not in formats:
                raise ValueError(f"--format: No such format {name}")
            entry = formats[name]
            table = f"{self.subtable}.formats.{name}" if self.subtable else f"formats.{name}"
            print(f"[{table}]")
            if "description" in entry:
                print(f'description = "{entry["description"]}"')
            print(f'format = "{entry["format"]}"')
            sys.exit(0)
        if format_name == "default":
            override = os.environ.get(self._default_env_name())
            if override:
                if "{" in override:
                    return override
                format_name = override
        try:
            return formats[format_name]["format"]
        except (KeyError, TypeError):
            raise ValueError(f"--format: No such format {format_name}") from None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr in ("dict", "config"):
            raise AttributeError(attr)
        try:
            return self.config[attr]
        except KeyError:
            raise ConfigKeyError(attr) from None
