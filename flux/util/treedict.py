"""Dotted-key access to nested dicts: ``get_treedict(d, "a.b.c")`` is ``d["a"]["b"]["c"]``.

Used for jobspec attributes (``system.duration``), config tables and the
``--setattr``-style options of the CLI.
"""
from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["get_treedict", "set_treedict", "del_treedict", "dict_merge"]


def get_treedict(in_dict: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value at dotted ``key`` in ``in_dict``, or ``default`` if any level is missing.

    A level that is not a mapping counts as missing (``"a.b"`` in ``{"a": 1}``).
    """
    node: Any = in_dict
    for part in key.split("."):
        if not isinstance(node, Mapping):
            return default
        try:
            node = node[part]
        except KeyError:
            return default
    return node


def set_treedict(in_dict: MutableMapping[str, Any], key: str, val: Any) -> None:
    """Set dotted ``key`` to ``val``, creating missing levels as dicts.

    TypeError names the level when a level on the way is a value, not a dict.
    """
    *parents, leaf = key.split(".")
    node = in_dict
    path = []
    for part in parents:
        path.append(part)
        child = node.setdefault(part, {})
        if not isinstance(child, MutableMapping):
            raise TypeError(f"set_treedict: '{'.'.join(path)}' is not a dict "
                            f"(cannot set '{key}')")
        node = child
    node[leaf] = val


def del_treedict(in_dict: MutableMapping[str, Any], key: str, remove_empty: bool = False) -> None:
    """Delete dotted ``key``; KeyError if a level is missing.

    With ``remove_empty``, dicts left empty by the deletion are removed too.
    """
    first, dot, rest = key.partition(".")
    if not dot:
        del in_dict[key]
        return
    child = in_dict[first]
    if not isinstance(child, MutableMapping):
        raise KeyError(key)
    del_treedict(child, rest, remove_empty=remove_empty)
    if remove_empty and not child:
        del in_dict[first]


def dict_merge(src: MutableMapping[str, Any], new: Mapping[str, Any]) -> MutableMapping[str, Any]:
    """Merge ``new`` into ``src`` in place (nested dicts merge, other values replace)."""
    for key, value in new.items():
        current = src.get(key)
        if isinstance(current, MutableMapping) and isinstance(value, Mapping):
            dict_merge(current, value)
        else:
            src[key] = value
    return src
