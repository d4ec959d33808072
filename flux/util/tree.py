"""``Tree``: a pstree-like display of labelled nodes (``flux pstree``).

::

    root
    ├── a
    │   └── a1
    └── b

A node may carry a ``prefix`` printed before the connectors (``flux
pstree``'s extra columns).  With ``combine_children`` a parent merges
children that have the same prefix and label and no children of their
own into one node shown as ``N*[label]``.
"""
from __future__ import annotations

import shutil
import sys
from typing import NamedTuple

__all__ = ["Tree"]


class Connectors(NamedTuple):
    pipe: str    # a line going on below an earlier sibling
    tee: str     # a child that has siblings after it
    elbow: str   # the last child
    blank: str   # below the last child


STYLES = {
    "ascii": Connectors("|   ", "|-- ", "`-- ", "    "),
    "box": Connectors("│   ", "├── ", "└── ", "    "),
    "compact": Connectors("│ ", "├─", "└─", "  "),
}


class Tree:
    """A node: ``label``, optional ``prefix``, children appended in order."""

    connector_styles = STYLES

    def __init__(self, label: str, prefix: str = "", combine_children: bool = False) -> None:
        self.label = label
        self.prefix = f"{prefix} " if prefix else ""
        self.combine_children = combine_children
        self.children: list[Tree] = []
        self.duplicates: dict[str, Tree] = {}
        self.duplicate_count = 1

    # -- building ------------------------------------------------------------

    def add(self, label: str, prefix: str = "", combine_children: bool = False) -> "Tree":
        """Append a new child (never combined); return it."""
        child = Tree(label, prefix=prefix, combine_children=combine_children)
        self.children.append(child)
        return child

    def append(self, label: str, prefix: str = "") -> "Tree":
        """Append a child; with ``combine_children`` a repeat of an earlier
        child (same prefix and label) counts into that child, which is returned."""
        if not self.combine_children:
            return self.add(label, prefix)
        key = f"{prefix}{label}"
        existing = self.duplicates.get(key)
        if existing is not None:
            existing.increment()
            return existing
        child = self.add(label, prefix, combine_children=True)
        self.duplicates[key] = child
        return child

    def append_tree(self, tree: "Tree") -> "Tree":
        """Append an existing Tree; a childless repeat is combined as ``append`` does."""
        if not self.combine_children or tree.children:
            self.children.append(tree)
            return tree
        key = f"{tree.prefix}{tree.label}"
        existing = self.duplicates.get(key)
        if existing is not None:
            existing.increment()
            return existing
        self.children.append(tree)
        self.duplicates[key] = tree
        return tree

    def increment(self) -> None:
        self.duplicate_count += 1

    # -- rendering -----------------------------------------------------------

    def _lines(self, style: Connectors, indent: str, connector: str, depth: int,
               max_level: int | None) -> list[str]:
        label = f"{self.duplicate_count}*[{self.label}]" if self.duplicate_count > 1 \
            else self.label
        lines = [f"{self.prefix}{indent}{connector}{label}"]
        if max_level is not None and depth >= max_level:
            return lines
        last = len(self.children) - 1
        for i, child in enumerate(self.children):
            # the first level below the root needs no indent of its own
            below = indent + (style.blank if connector == style.elbow else style.pipe) \
                if connector else indent
            lines.extend(child._lines(style, below,
                                      style.elbow if i == last else style.tee,
                                      depth + 1, max_level))
        return lines

    def render(self, style: str = "box", level: int | None = None, skip_root: bool = False,
               truncate: bool = True) -> None:
        """Print the tree.

        ``style``: ``box`` (default), ``ascii`` or ``compact``.  ``level``:
        the deepest level shown (0 is the root alone).  ``skip_root``: print
        each child as a tree of its own.  ``truncate``: cut lines at the
        terminal width (132 columns when unknown), marking a cut with ``+``.
        """
        try:
            connectors = STYLES[style]
        except KeyError:
            raise ValueError(f"invalid Tree style '{style}' "
                             f"(choose from {', '.join(STYLES)})") from None
        if skip_root:
            for child in self.children:
                child.render(style=style, level=level, truncate=truncate)
            return
        limit = shutil.get_terminal_size((132, 25)).columns if truncate else None
        for line in self._lines(connectors, "", "", 0, level):
            if limit and len(line) > limit:
                line = line[:limit - 1] + "+"
            print(line, file=sys.stdout)
