"""TBON subtree status (flux-overlay(1) "SUBTREE STATUS"), pure functions.

- full: online, and no child is partial, offline, degraded or lost
- partial: online, some child partial or offline, none degraded or lost
- degraded: online, some child degraded or lost
- lost: gone missing, from the parent's point of view
- offline: not yet joined, or cleanly shut down
"""
from __future__ import annotations

from typing import Any

from broker import topology

STATUSES = ("full", "partial", "degraded", "lost", "offline")


def subtree_status(child_statuses: list[str]) -> str:
    """Status of an online node whose children have CHILD_STATUSES."""
    if any(s in ("degraded", "lost") for s in child_statuses):
        return "degraded"
    if any(s in ("partial", "offline") for s in child_statuses):
        return "partial"
    return "full"


def ghost(rank: int, fanout: "int | topology.Tree", size: int, status: str, host: str,
          duration: float | None = None, hosts: list[str] | None = None) -> dict[str, Any]:
    """A subtree we cannot ask about: RANK and (presumed, as flux-overlay(1)
    shows them) all its descendants with STATUS.  FANOUT is the k of a k-ary
    tree or the Tree; HOSTS (by rank) names each node, HOST otherwise."""
    kids = (fanout.children(rank) if isinstance(fanout, topology.Tree)
            else topology.children(rank, fanout, size))
    name = hosts[rank] if hosts and rank < len(hosts) else host
    return {"rank": rank, "host": name, "status": status, "duration": duration,
            "children": [ghost(c, fanout, size, status, host, None, hosts) for c in kids]}


def _fmt_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.6g}s"
    if seconds < 3600:
        return f"{seconds / 60:.6g}m"
    if seconds < 86400:
        return f"{seconds / 3600:.6g}h"
    return f"{seconds / 86400:.6g}d"


#: flux-overlay(1) --color: lost red, offline yellow, presumed (ghost) dark gray
_STATUS_COLOR = {"lost": "\033[31m", "offline": "\033[33m"}
_GHOST_COLOR = "\033[90m"
_DEFAULT = "\033[39m"
#: --highlight with colour (bold blue); without, the name is put in <<...>>
_HIGHLIGHT = "\033[01;34m"
_RESET = "\033[0m"


def lit(tree: dict[str, Any], targets: set[int]) -> set[int]:
    """The ranks of TREE to highlight: TARGETS in it and all their ancestors."""
    out: set[int] = set()

    def walk(node: dict[str, Any]) -> bool:
        hit = node["rank"] in targets
        for child in node.get("children", []):
            hit = walk(child) or hit
        if hit:
            out.add(node["rank"])
        return hit

    walk(tree)
    return out


def label(node: dict[str, Any], verbose: int = 0, *, color: bool = False,
          highlight: set[int] | None = None, ghost: bool = False) -> str:
    """One node's ``RANK HOST: STATUS[ for DURATION]``; HIGHLIGHT ranks emphasized,
    a GHOST (presumed) node's status dark gray in COLOR."""
    name = f"{node['rank']} {node['host']}"
    if highlight and node["rank"] in highlight:
        name = f"{_HIGHLIGHT}{name}{_RESET}" if color else f"<<{name}>>"
    status = node["status"]
    if color:
        tint = _GHOST_COLOR if ghost else _STATUS_COLOR.get(status)
        if tint:
            status = f"{tint}{status}{_DEFAULT}"
    text = f"{name}: {status}"
    if verbose and node.get("duration") is not None:
        text += f" for {_fmt_duration(node['duration'])}"
    return text


def nodes(tree: dict[str, Any], ghosts: bool = True) -> list[tuple[dict[str, Any], bool]]:
    """TREE's nodes in display order, each with whether it is a ghost: below an
    offline or lost node, so presumed rather than asked.  GHOSTS=False leaves
    those out (``--no-ghost``)."""
    out: list[tuple[dict[str, Any], bool]] = []

    def walk(node: dict[str, Any], ghost: bool) -> None:
        out.append((node, ghost))
        below = ghost or node["status"] in ("offline", "lost")
        if ghosts or not below:
            for child in node.get("children", []):
                walk(child, below)

    walk(tree, False)
    return out


def render(tree: dict[str, Any], verbose: int = 0, *, color: bool = False,
           highlight: set[int] | None = None, ghosts: bool = True) -> list[str]:
    """Lines of ``flux overlay status`` for TREE, drawn with box characters
    (HIGHLIGHT, COLOR: see :func:`label`; GHOSTS: see :func:`nodes`)."""
    lines: list[str] = []

    def walk(node: dict[str, Any], prefix: str, ghost: bool) -> None:
        below = ghost or node["status"] in ("offline", "lost")
        kids = node.get("children", []) if ghosts or not below else []
        for i, child in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(prefix + ("└─ " if last else "├─ ")
                         + label(child, verbose, color=color, highlight=highlight, ghost=below))
            walk(child, prefix + ("   " if last else "│  "), below)

    lines.append(label(tree, verbose, color=color, highlight=highlight))
    walk(tree, "", False)
    return lines


__all__ = ["STATUSES", "subtree_status", "ghost", "label", "lit", "nodes", "render"]
