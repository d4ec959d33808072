"""A plugin-based job validator (flux.job.validator.validator).

A plugin is a module of ``flux.job.validator.plugins`` (or a ``*.py`` file in
a plugin path) defining ``class Validator(ValidatorPlugin)``; its file name
is its name (``require-instance.py``).  ``JobValidator(argv)`` reads
``--plugins=LIST`` (default ``jobspec``), lets each chosen plugin add its own
options to the parser, parses ARGV, then ``configure(args)``s them;
``validate(jobinfo)`` runs every plugin and gathers their verdicts in a
``ValidatorResult``.
"""
from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

__all__ = ["JobValidator", "ValidatorJobInfo", "ValidatorPlugin", "ValidatorResult",
           "import_path", "import_plugins", "import_plugins_pkg"]


def import_path(file_path: str) -> ModuleType:
    """The module in FILE_PATH, imported afresh under its file name."""
    name = os.path.basename(file_path)
    name = name[:-3] if name.endswith(".py") else name
    spec = importlib.util.spec_from_file_location(f"flux.job.validator.plugins.{name}",
                                                  file_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{file_path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _modules_in(directory: str) -> dict[str, str]:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    return {n[:-3]: os.path.join(directory, n) for n in names
            if n.endswith(".py") and not n.startswith("_")}


def import_plugins_pkg(ns_pkg: ModuleType) -> dict[str, ModuleType]:
    """Every module of package NS_PKG (its directories, in order), by name."""
    found: dict[str, str] = {}
    for directory in getattr(ns_pkg, "__path__", []):
        for name, path in _modules_in(directory).items():
            found.setdefault(name, path)
    return {name: import_path(path) for name, path in found.items()}


def import_plugins(pkg_name: str, pluginpath: Sequence[str] | str | None = None
                   ) -> dict[str, ModuleType]:
    """The plugins of package PKG_NAME, then of each directory of PLUGINPATH (a
    colon-separated string or a list), a later one of the same name taking precedence."""
    plugins = import_plugins_pkg(importlib.import_module(pkg_name))
    if isinstance(pluginpath, str):
        pluginpath = [p for p in pluginpath.split(":") if p]
    for directory in pluginpath or ():
        for name, path in _modules_in(directory).items():
            plugins[name] = import_path(path)
    return plugins


class ValidatorJobInfo:
    """A job to validate: ``jobspec`` (dict), ``userid``, ``flags``, ``urgency``."""

    #: one handle per thread, made on first use of ``flux``
    tls = threading.local()
    #: where ``flux`` connects (None: $FLUX_URI)
    uri: str | None = None

    def __init__(self, jobinfo: Mapping[str, Any]) -> None:
        self.jobspec: dict[str, Any] = jobinfo["jobspec"]
        self.userid: int = int(jobinfo.get("userid", os.getuid()))
        self.flags: int = int(jobinfo.get("flags", 0))
        self.urgency: int = int(jobinfo.get("urgency", 16))

    @property
    def flux(self) -> Any:
        h = getattr(self.tls, "flux", None)
        if h is None:
            import flux

            h = self.tls.flux = flux.Flux(self.uri)
        return h


class ValidatorPlugin(ABC):
    """Base class of validator plugins: add options in ``__init__``, read them in
    ``configure``, judge a job in ``validate``."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser

    def configure(self, args: argparse.Namespace) -> None:
        """Read this plugin's options (after ``parse_args``)."""

    @abstractmethod
    def validate(self, job: ValidatorJobInfo) -> tuple[int, str | None] | None:
        """None or ``(0, None)`` to accept; raise, or return ``(errnum, errmsg)``, to refuse."""


class ValidatorResult:
    """The verdicts of every plugin on one job."""

    def __init__(self) -> None:
        self.errnum = 0
        self.messages: list[str] = []

    def push_result(self, errnum: int, errmsg: str | None = None) -> None:
        if errnum and not self.errnum:
            self.errnum = errnum
        if errnum and errmsg:
            self.messages.append(errmsg)

    @property
    def errmsg(self) -> str | None:
        """The error messages, comma-separated (None when there are none)."""
        return ", ".join(self.messages) if self.messages else None

    @property
    def success(self) -> bool:
        return self.errnum == 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"errnum": self.errnum}
        if self.errmsg:
            out["errstr"] = self.errmsg
        return out


class JobValidator:
    """Run the chosen plugins over jobs (``--plugins=LIST``, default ``jobspec``)."""

    default_validators = ["jobspec"]
    plugin_namespace = "flux.job.validator.plugins"

    def __init__(self, argv: Sequence[str], pluginpath: Sequence[str] | str | None = None,
                 parser: argparse.ArgumentParser | None = None) -> None:
        self.argv = list(argv)
        self.parser = parser or argparse.ArgumentParser(prog="flux-job-validator",
                                                        add_help=False)
        self.parser.add_argument("--plugins", metavar="LIST", type=lambda s: [
            x for x in s.split(",") if x], default=list(self.default_validators),
            help="validator plugins to run, comma-separated")
        self.available = import_plugins(self.plugin_namespace, pluginpath)
        self.plugins: list[ValidatorPlugin] = []
        self.names: list[str] = []
        self.args: argparse.Namespace | None = None

    def start(self) -> "JobValidator":
        """Choose and configure the plugins (ValueError naming an unknown one)."""
        known, _rest = self.parser.parse_known_args(self.argv)
        for name in known.plugins:
            module = self.available.get(name)
            if module is None:
                raise ValueError(f"unknown validator plugin {name!r} (available: "
                                 f"{', '.join(sorted(self.available))})")
            cls = getattr(module, "Validator", None)
            if not isinstance(cls, type) or not issubclass(cls, ValidatorPlugin):
                raise ValueError(f"validator plugin {name!r} has no Validator class")
            self.plugins.append(cls(self.parser))
            self.names.append(name)
        try:
            self.args = self.parser.parse_args(self.argv)
        except SystemExit:
            raise ValueError(f"bad validator arguments: {' '.join(self.argv)}") from None
        for plugin in self.plugins:
            plugin.configure(self.args)
        return self

    def validate(self, jobinfo: Mapping[str, Any] | ValidatorJobInfo) -> ValidatorResult:
        """Run every plugin on JOBINFO; one refusal fails the job."""
        job = jobinfo if isinstance(jobinfo, ValidatorJobInfo) else ValidatorJobInfo(jobinfo)
        result = ValidatorResult()
        for plugin in self.plugins:
            try:
                verdict = plugin.validate(job)
            except OSError as exc:
                result.push_result(exc.errno or errno.EINVAL, exc.strerror or str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - a refusal, whatever its kind
                result.push_result(errno.EINVAL, str(exc) or type(exc).__name__)
                continue
            if verdict is not None:
                errnum, errmsg = verdict
                result.push_result(int(errnum), errmsg)
        return result

    def plugin_descriptions(self) -> list[tuple[str, str]]:
        """(name, first docstring line) of every available plugin."""
        out = []
        for name, module in sorted(self.available.items()):
            doc = (module.__doc__ or "").strip().splitlines()
            out.append((name, doc[0] if doc else ""))
        return out
