"""flux.util: the helpers of Flux's Python bindings that scripts and commands use.

Every name loads its submodule on first use, so ``import flux.util`` (done
by every command that formats a duration) costs almost nothing:

- durations and times: ``parse_fsd``, ``fsd`` (``fsd``), ``parse_datetime``
  (``timeparse``), ``UtilDatetime`` (``outputformat``);
- dotted dict keys: ``get_treedict``, ``set_treedict``, ``del_treedict``,
  ``dict_merge`` (``treedict``);
- output: ``OutputFormat``, ``UtilFormatter``, ``DisplayValue``,
  ``AltField``, ``Deduplicator``, ``empty_outputs`` (``outputformat``),
  ``Tree`` (``tree``);
- commands: ``CLIMain``, ``help_formatter``, ``ColorAction``,
  ``YesNoAction``, ``TreedictAction``, ``FilterAction``,
  ``FilterActionSetUpdate``, ``FilterActionUser``, ``FilterTrueAction``
  (``cli``); ``xdg_searchpath``, ``UtilConfig`` (``config``);
- jobspec files: ``Fileref`` (``fileref``);
- messages and futures: ``encode_payload``, ``encode_topic``,
  ``check_future_error``, ``interruptible`` (``encode``).
"""
from __future__ import annotations

import importlib

if False:  # for type checkers only: importing typing costs a short command ~3 ms
    from typing import Any

# Bound eagerly: the submodule flux.util.fsd shares the function's name, and
# importing a submodule sets the package attribute to the module.
from flux.util.fsd import fsd as fsd  # noqa: F401 - re-exported
from flux.util.fsd import parse_fsd as parse_fsd  # noqa: F401 - re-exported

# As Flux's bindings: ``from flux.util import *`` gives these five.
__all__ = ["check_future_error", "encode_payload", "encode_topic", "CLIMain", "parse_fsd"]

_LAZY = {
    "parse_datetime": "timeparse",
    "get_treedict": "treedict", "set_treedict": "treedict", "del_treedict": "treedict",
    "dict_merge": "treedict",
    "OutputFormat": "outputformat", "UtilFormatter": "outputformat",
    "UtilDatetime": "outputformat", "DisplayValue": "outputformat",
    "AltField": "outputformat", "Deduplicator": "outputformat",
    "empty_outputs": "outputformat",
    "Tree": "tree",
    "CLIMain": "cli", "help_formatter": "cli", "ColorAction": "cli", "YesNoAction": "cli",
    "TreedictAction": "cli", "FilterAction": "cli", "FilterActionSetUpdate": "cli",
    "FilterActionUser": "cli", "FilterTrueAction": "cli",
    "xdg_searchpath": "config", "UtilConfig": "config",
    "Fileref": "fileref",
    "encode_payload": "encode", "encode_topic": "encode",
    "check_future_error": "encode", "interruptible": "encode",
}


def __getattr__(name: str) -> Any:
    modname = _LAZY.get(name)
    if modname is None:
        raise AttributeError(f"module 'flux.util' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flux.util.{modname}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
