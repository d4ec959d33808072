"""flux.resource: RFC 20 resource sets (``ResourceSet``)."""
from __future__ import annotations

# Imported eagerly: a lazy lookup would be shadowed by the submodule of the
# same name once anything imports flux.resource.ResourceSet directly.
from flux.resource.ResourceSet import RankInfo, ResourceSet

__all__ = ["ResourceSet", "RankInfo"]
