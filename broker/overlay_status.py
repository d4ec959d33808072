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
    """A subtree we cannot ask about: RANK with STATUS, its descendants offline.
    FANOUT is the k of a k-ary tree or the Tree; HOSTS (by rank) names each node,
    HOST otherwise."""
    kids = (fanout.children(rank) if isinstance(fanout, topology.Tree)
            else topology.children(rank, fanout, size))
    name = hosts[rank] if hosts and rank < len(hosts) else host
    return {"rank": rank, "host": name, "status": status, "duration": duration,
            "children": [ghost(c, fanout, size, "offline", host, None, hosts) for c in kids]}


def _fmt_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.6g}s"
    if seconds < 3600:
        return f"{seconds / 60:.6g}m"
    if seconds < 86400:
        return f"{seconds / 3600:.6g}h"
    return f"{seconds / 86400:.6g}d"


def render(tree: dict[str, Any], verbose: int = 0) -> list[str]:
    """Lines of ``flux overlay status`` for TREE, drawn with box characters."""
    lines: list[str] = []

    def label(node: dict[str, Any]) -> str:
        text = f"{node['rank']} {node['host']}: {node['status']}"
        if verbose and node.get("duration") is not None:
            text += f" for {_fmt_duration(node['duration'])}"
        return text

    def walk(node: dict[str, Any], prefix: str) -> None:
        kids = node.get("children", [])
        for i, child in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(prefix + ("└─ " if last else "├─ ") + label(child))
            walk(child, prefix + ("   " if last else "│  "))

    lines.append(label(tree))
    walk(tree, "")
    return lines


__all__ = ["STATUSES", "subtree_status", "ghost", "render"]
