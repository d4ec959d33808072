"""``job-manager.jobtap``: list, load and remove jobtap plugins (flux-jobtap(1)),
and the ``[job-manager]`` keys that load them at start (specs/jobtap.md).

Requests (instance owner only):
``{"op": "list"}`` -> ``{"plugins": [names], "builtins": [names]}``;
``{"op": "load", "plugin": SPEC, "conf": {..}, "remove": PATTERN?}`` -> ``{"name": NAME}``
(the removal, if any, comes first); ``{"op": "remove", "name": PATTERN}`` ->
``{"removed": [names]}``; ``{"op": "query", "name": NAME}`` -> ``{"name", "path", ...}``
(``path`` is ``builtin`` for a builtin; the plugin's ``plugin.query`` callbacks add
what they put in ``args.out``).
"""
from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import Any

from flux.errors import FluxError
from jobmgr.jobtap_conf import Directive, parse_directives, plugin_dirs
from jobmgr.manager.jobtap import Jobtap

__all__ = ["parse_config", "request"]


def parse_config(table: Mapping[str, Any] | None) -> tuple[list[Directive], list[str]]:
    """``[job-manager] plugins`` and ``pluginpath`` (then ``FLUX_JOBTAP_PLUGINPATH``)."""
    table = table or {}
    directives = parse_directives(table.get("plugins"))
    path = plugin_dirs(table.get("pluginpath", []), "pluginpath")
    env = os.environ.get("FLUX_JOBTAP_PLUGINPATH", "")
    return directives, path + [d for d in env.split(":") if d]


def _str(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise FluxError(errno.EPROTO, f"job-manager.jobtap: '{key}' must be a non-empty string")
    return value


def request(tap: Jobtap, payload: Mapping[str, Any], searchpath: list[str]) -> dict[str, Any]:
    op = payload.get("op", "list")
    if op == "list":
        return {"plugins": [p.name for p in tap.plugins], "builtins": list(tap.builtins)}
    if op == "load":
        spec = _str(payload, "plugin")
        conf = payload.get("conf") or {}
        if not isinstance(conf, dict):
            raise FluxError(errno.EPROTO, "job-manager.jobtap: 'conf' must be an object")
        removed: list[str] = []
        if payload.get("remove") is not None:
            removed = tap.remove(_str(payload, "remove"))
        return {"name": tap.load(spec, conf, searchpath), "removed": removed}
    if op == "remove":
        return {"removed": tap.remove(_str(payload, "name"))}
    if op == "query":
        return tap.query(_str(payload, "name"))
    raise FluxError(errno.EPROTO, f"job-manager.jobtap: unknown op {op!r} "
                                  "(list, load, remove or query)")
