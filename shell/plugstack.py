"""The shell's plugin stack: named plugins with handlers on topic globs.

Every shell feature beyond launching tasks is a plugin (``shell/plugins/``):
output, input, PMI, affinity, rlimits, signals, tmpdir, pty.  A plugin is
a name plus ``(topic glob, handler)`` pairs; loading a plugin with the
name of one already loaded replaces it (the last name loaded wins, as
flux-shell(1) says), which is how a site overrides a builtin.

Handlers are called as ``handler(topic, shell, task)`` (``task`` is None
outside ``task.*`` topics) in load order.  A handler that raises fails the
call: ``call()`` re-raises it as ``PluginError`` naming the plugin and
topic, and the shell turns that into a fatal job exception.

Site plugins are Python files loaded with ``load_file``: the file defines
``flux_plugin_init(plugin)`` and calls ``plugin.add_handler(topic, fn)``
(and may set ``plugin.name``); ``conf`` is given as ``plugin.conf``.
Topics: shell.connect, shell.init, task.init, task.exec, task.fork,
task.exit, shell.start, shell.exit, shell.log (see flux-shell(1)).
"""
from __future__ import annotations

import fnmatch
import functools
import glob
import os
import runpy
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Plugin", "PlugStack", "PluginError", "Handler"]

Handler = Callable[[str, Any, Any], Any]


@functools.lru_cache(maxsize=4096)
def _matches(pattern: str, topic: str) -> bool:
    """Whether TOPIC matches the glob PATTERN (cached: every job's shell asks the same)."""
    return pattern == topic or fnmatch.fnmatchcase(topic, pattern)


def _why(exc: BaseException) -> str:
    """EXC as a person reads it: an OSError without Python's ``[Errno N]``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is None:
        return exc.strerror
    return str(exc)


class PluginError(RuntimeError):
    def __init__(self, plugin: str, topic: str, exc: BaseException) -> None:
        super().__init__(f"plugin {plugin}: {topic}: {_why(exc)}")
        self.plugin = plugin
        self.topic = topic
        self.exc = exc


@dataclass(slots=True)
class Plugin:
    name: str
    handlers: list[tuple[str, Handler]] = field(default_factory=list)
    conf: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    #: the stacks this plugin is loaded in, told when it adds a handler later
    stacks: list["PlugStack"] = field(default_factory=list, repr=False)

    def add_handler(self, topic: str, fn: Handler) -> None:
        self.handlers.append((topic, fn))
        for stack in self.stacks:
            stack._routes = {}


class PlugStack:
    def __init__(self) -> None:
        self.plugins: list[Plugin] = []
        self.searchpath: list[str] = []
        # topic -> (plugin name, handler) in call order; replaced (never cleared: it
        # may be shared, see add_shared) when plugins change
        self._routes: dict[str, list[tuple[str, Handler]]] = {}

    def add_shared(self, plugins: list[Plugin], routes: dict[str, Any]) -> None:
        """Load PLUGINS into this empty stack, with ROUTES as the route cache.

        For the builtins, made once per process and never changed: every
        stack that has only them shares one cache, and loading a plugin of
        its own gives a stack a cache of its own.
        """
        if self.plugins:
            names = {p.name for p in plugins}
            self.plugins = [p for p in self.plugins if p.name not in names] + list(plugins)
            self._routes = {}
            return
        self.plugins = list(plugins)
        self._routes = routes

    def add(self, plugin: Plugin) -> None:
        """Load PLUGIN; one of the same name is replaced (the last loaded wins)."""
        if any(p.name == plugin.name for p in self.plugins):
            self.remove(plugin.name)
        self.plugins.append(plugin)
        plugin.stacks.append(self)
        self._routes = {}

    def remove(self, name: str) -> None:
        for p in self.plugins:
            if p.name == name and self in p.stacks:
                p.stacks.remove(self)
        self.plugins = [p for p in self.plugins if p.name != name]
        self._routes = {}

    def _route(self, topic: str) -> list[tuple[str, Handler]]:
        route = self._routes.get(topic)
        if route is None:
            route = [(plugin.name, fn) for plugin in self.plugins
                     for pattern, fn in plugin.handlers if _matches(pattern, topic)]
            self._routes[topic] = route
        return route

    def names(self) -> list[str]:
        return [p.name for p in self.plugins]

    def call(self, topic: str, shell: Any = None, task: Any = None) -> int:
        """Call every handler matching TOPIC; the number called."""
        route = self._route(topic)
        for name, fn in route:
            try:
                fn(topic, shell, task)
            except Exception as exc:  # noqa: BLE001 - becomes a job exception
                raise PluginError(name, topic, exc) from exc
        return len(route)

    def load_file(self, path: str, conf: dict[str, Any] | None = None) -> Plugin:
        """Load a Python plugin file (see the module docstring)."""
        namespace = runpy.run_path(path, run_name=f"flux_shell_plugin_{len(self.plugins)}")
        init = namespace.get("flux_plugin_init")
        if not callable(init):
            raise ValueError(f"{path}: no flux_plugin_init(plugin) function")
        name = os.path.splitext(os.path.basename(path))[0]
        plugin = Plugin(name, conf=dict(conf or {}), path=path)
        init(plugin)
        self.add(plugin)
        return plugin

    def load(self, pattern: str, conf: dict[str, Any] | None = None) -> list[Plugin]:
        """Load the plugin files matching PATTERN (relative ones from the searchpath)."""
        if os.path.isabs(pattern):
            paths = sorted(glob.glob(pattern))
        else:
            paths = []
            for directory in self.searchpath:
                paths += sorted(glob.glob(os.path.join(directory, pattern)))
        if not paths and not glob.has_magic(pattern):
            raise FileNotFoundError(f"shell plugin {pattern}: not found")
        return [self.load_file(p, conf) for p in paths]
