"""``memoized_property``: a property whose getter runs once per instance."""
from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

__all__ = ["memoized_property"]

T = TypeVar("T")


class memoized_property(Generic[T]):  # noqa: N801 - the name Flux's bindings give it
    """Like ``property``, but the getter's result is stored on the instance the first
    time and returned from there afterwards (a non-data descriptor: the stored value
    shadows it)."""

    def __init__(self, fget: Callable[[Any], T]) -> None:
        self.fget = fget
        self.__doc__ = fget.__doc__
        self.__name__ = fget.__name__

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        if obj is None:
            return self
        value = self.fget(obj)
        obj.__dict__[self.__name__] = value
        return value
