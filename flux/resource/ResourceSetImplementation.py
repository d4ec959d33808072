"""The interface a ResourceSet backend provides (Flux's ResourceSetImplementation)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["ResourceSetImplementation"]


class ResourceSetImplementation(ABC):
    """What ``ResourceSet`` needs of the object that holds its resources.

    ``Rv1Implementation`` (``ResourceSet.impl``) and ``Rlist`` provide it.
    """

    @abstractmethod
    def append(self, rset: Any) -> Any:
        """Add RSET's resources (which must be new to self)."""

    @abstractmethod
    def copy(self) -> Any:
        """A copy of the resource set."""

    @abstractmethod
    def count(self, name: str) -> int:
        """How many resources of type NAME (``core``, ``gpu``, ``node``)."""

    @abstractmethod
    def diff(self, rset: Any) -> Any:
        """The resources of self that RSET lacks."""

    @abstractmethod
    def dumps(self) -> str:
        """The short form (``rank0/core[0-3]``)."""

    @abstractmethod
    def encode(self) -> str:
        """R as a JSON string."""

    @abstractmethod
    def intersect(self, rset: Any) -> Any:
        """The resources both have."""

    @abstractmethod
    def nnodes(self) -> int:
        """How many nodes (ranks)."""

    @abstractmethod
    def nodelist(self) -> Any:
        """The hostnames, as a Hostlist."""

    @abstractmethod
    def ranks(self) -> Any:
        """The ranks, as an IDset."""

    @abstractmethod
    def remove_ranks(self, ranks: Any) -> Any:
        """Take RANKS (an IDset) away."""

    @abstractmethod
    def union(self, rset: Any) -> Any:
        """The resources either has."""


def _register() -> None:
    from flux.resource.ResourceSet import Rv1Implementation

    ResourceSetImplementation.register(Rv1Implementation)


_register()
