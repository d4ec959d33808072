"""flux.resource: RFC 20 resource sets and the instance's resource services.

``ResourceSet`` (flux/resource/ResourceSet.py); ``Rlist`` (flux/resource/Rlist.py); ``resource_list`` /
``SchedResourceList`` (the scheduler's view, flux/resource/list.py);
``resource_status`` / ``ResourceStatus`` / ``DrainInfo`` (each rank's
state, flux/resource/status.py); ``ResourceJournalConsumer`` /
``ResourceJournalEvent`` (the resource eventlog, flux/resource/journal.py).
"""
from __future__ import annotations

from typing import Any

# Imported eagerly: a lazy lookup would be shadowed by the submodule of the
# same name once anything imports flux.resource.ResourceSet directly.
from flux.resource.ResourceSet import RankInfo, ResourceSet
from flux.resource.Rlist import Rlist

__all__ = ["ResourceSet", "RankInfo", "Rlist", "resource_list", "SchedResourceList", "ResourceListRPC",
           "resource_status", "ResourceStatus", "ResourceStatusRPC", "DrainInfo",
           "ResourceJournalConsumer", "ResourceJournalEvent"]

# The rest load on first use, so that importing flux.resource for ResourceSet
# (as the broker's modules do) stays cheap.
_LAZY = {
    "resource_list": "flux.resource.list",
    "SchedResourceList": "flux.resource.list",
    "ResourceListRPC": "flux.resource.list",
    "resource_status": "flux.resource.status",
    "ResourceStatus": "flux.resource.status",
    "ResourceStatusRPC": "flux.resource.status",
    "DrainInfo": "flux.resource.status",
    "ResourceJournalConsumer": "flux.resource.journal",
    "ResourceJournalEvent": "flux.resource.journal",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flux.resource' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
