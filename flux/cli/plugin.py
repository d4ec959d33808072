"""flux.cli.plugin: site plugins that add options to flux submit/run/batch/alloc.

A plugin is a ``CLIPlugin`` subclass in a ``*.py`` file of a plugin
directory.  Its constructor takes the command name (``prog``) and calls
``add_option("--name", **argparse_kwargs)`` for each option it offers; the
option appears as ``--PREFIX-name`` (dest ``PREFIX_name``).  After the
command line is parsed, ``preinit(args)`` then ``modify_jobspec(args,
jobspec)`` run for every plugin (``args.name`` reads the prefixed dest
through ``PluginArgsProxy``); ``validate(jobspec)`` raises ValueError for a
jobspec the site refuses (the CLI calls it before submitting, job-ingest
for every submitted job).

``CLIPluginRegistry(prog)`` loads the plugins from the directories of
``FLUX_CLI_PLUGINPATH`` (colon-separated), then the system directories
(``SYSTEM_PLUGIN_DIRS``), then the ``flux.cli.plugins`` package;
``FLUX_CLI_PLUGINPATH_OVERRIDE`` replaces both directory lists (``""``:
none).  A plugin with an option dest already taken by an earlier plugin is
dropped.  Rules: ``specs/jobspec.md`` ("CLI plugins").
"""
from __future__ import annotations

import glob
import importlib.util
import os
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["CLIPlugin", "CLIPluginOption", "CLIPluginRegistry", "PluginArgsProxy",
           "SYSTEM_PLUGIN_DIRS"]

#: where a site installs CLI plugins (after FLUX_CLI_PLUGINPATH)
SYSTEM_PLUGIN_DIRS = ("/etc/flux/cli/plugins",
                      os.path.join(sys.prefix, "libexec", "flux", "cli", "plugins"))
PLUGIN_NAMESPACE = "flux.cli.plugins"


class PluginArgsProxy:
    """The args namespace as one plugin sees it: ``args.name`` reads ``args.PREFIX_name``.

    ALIAS maps the plugin's unprefixed dests to the prefixed ones; every
    other attribute (``ntasks``, ``env``, ...) passes through unchanged,
    for reading and for writing.
    """

    __slots__ = ("_ns", "_alias")

    def __init__(self, args: Any, alias: dict[str, str]) -> None:
        object.__setattr__(self, "_ns", args)
        object.__setattr__(self, "_alias", alias)

    def __getattr__(self, name: str) -> Any:
        alias = object.__getattribute__(self, "_alias")
        return getattr(object.__getattribute__(self, "_ns"), alias.get(name, name))

    def __setattr__(self, name: str, value: Any) -> None:
        alias = object.__getattribute__(self, "_alias")
        setattr(object.__getattribute__(self, "_ns"), alias.get(name, name), value)

    def __repr__(self) -> str:
        return f"PluginArgsProxy({object.__getattribute__(self, '_ns')!r})"


class CLIPluginOption:
    """One plugin option: ``name`` (``--PREFIX-opt``) and the argparse ``kwargs``.

    Without an explicit ``dest``, the dest is the prefixed name with dashes
    as underscores (``--ex-my-opt`` -> ``ex_my_opt``).
    """

    def __init__(self, name: str, prefix: str | None, **kwargs: Any) -> None:
        if not isinstance(name, str) or not name.startswith("--") or len(name) < 3:
            raise ValueError("Plugins must register only long options.")
        self.name = name.replace("--", f"--{prefix}-", 1) if prefix else name
        if "dest" not in kwargs:
            self._unprefixed_dest: str | None = name[2:].replace("-", "_")
            kwargs["dest"] = self.name[2:].replace("-", "_")
        else:
            self._unprefixed_dest = None
        self.kwargs = kwargs

    @property
    def dest(self) -> str:
        return self.kwargs["dest"]

    def __repr__(self) -> str:
        return f"CLIPluginOption({self.name!r}, dest={self.dest!r})"


class CLIPlugin:
    """Base class of a CLI plugin; override the callbacks you need.

    ``prog`` is the command the plugin is loaded for (``submit``, ``run``,
    ``batch``, ``alloc``, or ``validate`` in job-ingest); a leading
    ``"flux "`` is dropped.  ``prefix`` (default ``ex``) namespaces the
    options: ``add_option("--opt")`` offers ``--ex-opt``.
    """

    def __init__(self, prog: str, prefix: str | None = "ex", version: str | None = None) -> None:
        self.prog = prog[5:] if isinstance(prog, str) and prog.startswith("flux ") else prog
        self.prefix = prefix
        self.version = version
        self.path: str | None = None
        self.options: list[CLIPluginOption] = []

    def add_option(self, name: str, **kwargs: Any) -> None:
        """Offer ``--PREFIX-NAME``; KWARGS are ``ArgumentParser.add_argument``'s."""
        self.options.append(CLIPluginOption(name, prefix=self.prefix, **kwargs))

    def help(self, option: CLIPluginOption) -> None:
        """Print the plugin's documentation (its docstring) for OPTION."""
        doc = type(self).__doc__
        if not doc or doc is CLIPlugin.__doc__:
            print(f"No extra documentation for option `{option.name}` found.", file=sys.stderr)
            return
        import inspect

        print(f"\nDocumentation for plugin providing option `{option.name}`:\n")
        sys.stdout.write(inspect.cleandoc(doc) + "\n")

    def preinit(self, args: Any) -> None:
        """After the options are parsed, before the plugins modify the jobspec."""

    def modify_jobspec(self, args: Any, jobspec: Any) -> None:
        """Change JOBSPEC (a JobspecV1) in place from the parsed ARGS."""

    def validate(self, jobspec: Any) -> None:
        """Raise ValueError with a useful message if JOBSPEC must be refused."""


# plugin files already executed in this process: path -> (mtime_ns, size, module)
_MODULES: dict[str, tuple[int, int, Any]] = {}


def _import_path(path: str) -> Any:
    """Execute the plugin file PATH as a module (once per version of the file)."""
    st = os.stat(path)
    cached = _MODULES.get(path)
    if cached is not None and cached[:2] == (st.st_mtime_ns, st.st_size):
        return cached[2]
    stem = os.path.splitext(os.path.basename(path))[0]
    modname = f"_flux_cli_plugin_{len(_MODULES)}_{stem}".replace("-", "_")
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load CLI plugin {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(modname, None)
        raise ValueError(f"failed to load CLI plugin {path}: "
                         f"{type(exc).__name__}: {exc}") from exc
    _MODULES[path] = (st.st_mtime_ns, st.st_size, module)
    return module


def _split_path(value: str) -> list[str]:
    return [d for d in value.split(":") if d and not d.isspace()]


class CLIPluginRegistry:
    """The CLI plugins for command PROG, loaded from the plugin search path."""

    plugin_namespace = PLUGIN_NAMESPACE

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.plugins: list[CLIPlugin] = []
        self.options: list[CLIPluginOption] = []
        self.plugindirs = self._get_searchpath()
        self._load_plugins(prog)

    @staticmethod
    def _get_searchpath() -> list[str]:
        """FLUX_CLI_PLUGINPATH then the system dirs, or FLUX_CLI_PLUGINPATH_OVERRIDE alone."""
        override = os.environ.get("FLUX_CLI_PLUGINPATH_OVERRIDE")
        if override is not None:
            return _split_path(override)
        return [*_split_path(os.environ.get("FLUX_CLI_PLUGINPATH", "")), *SYSTEM_PLUGIN_DIRS]

    def _add_plugins_from_module(self, module: Any, program: str) -> None:
        for attr in dir(module):
            if attr.startswith("_"):
                continue
            entry = getattr(module, attr)
            if isinstance(entry, type) and issubclass(entry, CLIPlugin) and entry is not CLIPlugin:
                plugin = entry(program)
                plugin.path = getattr(module, "__file__", None)
                self.plugins.append(plugin)

    def _namespace_modules(self) -> Iterable[Any]:
        try:
            spec = importlib.util.find_spec(self.plugin_namespace)
        except (ImportError, ValueError):
            return []
        if spec is None or not spec.submodule_search_locations:
            return []
        import pkgutil

        return [importlib.import_module(f"{self.plugin_namespace}.{info.name}")
                for info in pkgutil.iter_modules(spec.submodule_search_locations)]

    def _load_plugins(self, program: str) -> "CLIPluginRegistry":
        for plugindir in self.plugindirs:
            for path in sorted(glob.glob(os.path.join(plugindir, "*.py"))):
                self._add_plugins_from_module(_import_path(path), program)
        for module in self._namespace_modules():
            self._add_plugins_from_module(module, program)
        taken: dict[str, CLIPluginOption] = {}
        for plugin in list(self.plugins):
            if any(opt.dest in taken for opt in plugin.options):
                # the plugin found first on the search path keeps the option
                self.plugins.remove(plugin)
                continue
            for opt in plugin.options:
                taken[opt.dest] = opt
        self.options = list(taken.values())
        return self

    @staticmethod
    def _make_alias(plugin: CLIPlugin) -> dict[str, str]:
        return {opt._unprefixed_dest: opt.dest for opt in plugin.options
                if opt._unprefixed_dest is not None and opt._unprefixed_dest != opt.dest}

    def preinit(self, args: Any) -> None:
        """Call every plugin's ``preinit``."""
        for plugin in self.plugins:
            plugin.preinit(PluginArgsProxy(args, self._make_alias(plugin)))

    def modify_jobspec(self, args: Any, jobspec: Any) -> None:
        """Call every plugin's ``modify_jobspec``."""
        for plugin in self.plugins:
            plugin.modify_jobspec(PluginArgsProxy(args, self._make_alias(plugin)), jobspec)

    def validate(self, jobspec: Any) -> None:
        """Call every plugin's ``validate`` (ValueError from the first that refuses)."""
        for plugin in self.plugins:
            plugin.validate(jobspec)

    def print_help(self, name: str) -> None:
        """Print the documentation of the plugin offering option NAME, then exit 0.

        NAME may be given with or without the leading ``--``; ValueError if
        no plugin offers it.
        """
        for plugin in self.plugins:
            for option in plugin.options:
                if name in (option.name, option.name.lstrip("-")):
                    plugin.help(option)
                    sys.exit(0)
        raise ValueError(f"--help: no such option {name}")

    def print_plugins(self) -> None:
        """Print the search path and every loaded plugin with its options."""
        print("Options provided by plugins:")
        if self.plugindirs:
            print(f"  Search path: {':'.join(self.plugindirs)}")
            print(f"  (plus {self.plugin_namespace} namespace)\n")
        else:
            print(f"  Searched only {self.plugin_namespace} namespace\n")
        for plugin in self.plugins:
            print(f"{type(plugin).__name__} loaded from {plugin.path}")
            for option in plugin.options:
                print(f"  {option.name:<20}  {option.kwargs.get('help') or ''}")
            print()
