"""Online garbage collection of the content store: mark and sweep in short steps.

The store is content-addressed and commits only ever add blobs, so what a
purge or an overwrite leaves behind stays until something deletes it.  A
``Collection`` deletes the blobs that nothing live reaches, while commits go
on, in steps that each take a few milliseconds (the caller runs one step
per event-loop turn and reports the longest).

Live means reachable from the ``live()`` callback's tree roots (every
namespace root, tree pins, recent roots that readers may still hold) or
named by its blob list (blob pins, blobs just stored through
``content.store``).  Why it is safe without stopping commits:

* marking never needs a long read transaction: a blob marked live is not
  deleted, and nothing is deleted until marking is over;
* blobs are only deleted in a sweep step that first marks, to the end,
  everything reachable from the roots as they are *now* (new roots share
  all but their new paths with marked ones, so this is cheap), in the
  same synchronous step as the deletion, so no commit can come between;
* a commit that writes a blob identical to a garbage one makes it
  reachable from a current root, so the next sweep step keeps it.

A client that commits a treeobj naming a garbage dirref (by hash, after
it became garbage) may see that dir's children gone; flux-core does not
promise more for references it never wrote either.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from eventstore import blobref as _blobref
from kvs import treeobj as _t

__all__ = ["Collection", "GCReport", "Marker"]

#: live(): (tree root blobrefs, single blob blobrefs)
LiveFn = Callable[[], tuple[Iterable[str], Iterable[str]]]

_PREFIX = _blobref.PREFIX


@dataclass(slots=True)
class GCReport:
    """What one online collection did."""

    freed_blobs: int = 0
    freed_bytes: int = 0
    kept_blobs: int = 0
    kept_bytes: int = 0
    marked: int = 0
    steps: int = 0
    duration_s: float = 0.0
    longest_pause_s: float = 0.0
    #: the longest step of each phase: marking, and sweeping (which includes the
    #: deleting write transaction and its sync)
    longest_mark_s: float = 0.0
    longest_sweep_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"freed_blobs": self.freed_blobs, "freed_bytes": self.freed_bytes,
                "kept_blobs": self.kept_blobs, "kept_bytes": self.kept_bytes,
                "marked": self.marked, "steps": self.steps,
                "duration": round(self.duration_s, 6),
                "longest_pause": round(self.longest_pause_s, 6),
                "longest_mark": round(self.longest_mark_s, 6),
                "longest_sweep": round(self.longest_sweep_s, 6)}


def _children(obj: dict[str, Any]) -> Iterable[dict[str, Any]]:
    if obj["type"] == _t.HDIR:
        return (b for b in obj["data"]["bucket"] if b is not None)
    return obj["data"].values()


@dataclass(slots=True)
class Marker:
    """Blobrefs reachable from the roots given so far, found a bounded piece at a time.

    ``seen`` holds every ref found; a dir in ``seen`` whose children are not
    yet visited is on the stack (as its ref, or as an inline dir object), so
    once ``drain`` empties the stack the subtree under every seen dirref is
    in ``seen`` too (which is what lets marking from a newer root stop at the
    first ref already seen).  Adding a root only names it: loading it is
    drain's work, under its deadline.
    """

    seen: set[str] = field(default_factory=set)
    _stack: list[Any] = field(default_factory=list)

    def add_tree(self, ref: str) -> None:
        if ref not in self.seen:
            self.seen.add(ref)
            self._stack.append(ref)

    def add_blob(self, ref: str) -> None:
        self.seen.add(ref)

    @property
    def done(self) -> bool:
        return not self._stack

    def drain(self, get: Callable[[str], bytes], deadline: float | None = None) -> bool:
        """Visit dirs until none is left (True) or ``time.monotonic()`` passes DEADLINE."""
        seen, stack = self.seen, self._stack
        # no validation here (decode_dir checks every entry and decodes inline
        # values): marking only needs the refs, and a dir that is not a tree
        # object stops the collection (KeyError/TypeError) before anything goes
        loads = orjson.loads
        n = 0
        while stack:
            obj = stack.pop()
            if type(obj) is str:
                obj = loads(get(obj))
            for e in _children(obj):
                t = e["type"]
                if t == _t.DIRREF:
                    ref = e["data"][0]
                    if ref not in seen:
                        seen.add(ref)
                        stack.append(ref)
                elif t == _t.VALREF:
                    seen.update(e["data"])
                elif t == _t.DIR:
                    stack.append(e)
            n += 1
            if deadline is not None and time.monotonic() > deadline:
                return not stack
        return True


class Collection:
    """One online collection over ``store``; call ``step()`` until it returns a report."""

    def __init__(self, store: Any, live: LiveFn, *, budget: float = 0.004,
                 chunk: int = 1024) -> None:
        self.store = store
        self.live = live
        self.budget = budget
        self.chunk = chunk
        self.marker = Marker()
        self.report = GCReport()
        self._t0 = time.monotonic()
        self._started = False
        self._cursor: bytes | None = None
        self._swept = False

    def _mark_live(self) -> None:
        trees, blobs = self.live()
        for ref in blobs:
            self.marker.add_blob(ref)
        for ref in trees:
            self.marker.add_tree(ref)

    def step(self) -> GCReport | None:
        """One bounded piece of work; the report once the collection is finished."""
        t0 = time.monotonic()
        marking = not self._started or not self.marker.done
        try:
            return self._step(t0 + self.budget)
        finally:
            pause = time.monotonic() - t0
            rep = self.report
            rep.steps += 1
            rep.longest_pause_s = max(rep.longest_pause_s, pause)
            if marking:
                rep.longest_mark_s = max(rep.longest_mark_s, pause)
            else:
                rep.longest_sweep_s = max(rep.longest_sweep_s, pause)

    def _step(self, deadline: float) -> GCReport | None:
        marker = self.marker
        store = self.store
        if not self._started or not marker.done:
            if not self._started:
                self._started = True
                self._mark_live()
            with store.reader() as rd:
                marker.drain(rd.load, deadline)
            return None
        if self._swept:
            return self._finish()
        keys = store.blob_keys(self._cursor, self.chunk)
        if not keys:
            self._swept = True
            return self._finish()
        self._cursor = keys[-1]
        seen = marker.seen
        hexed = [(_PREFIX + k.hex(), k) for k in keys]
        if any(ref not in seen for ref, _k in hexed):
            # the roots as they are now: anything a commit since the last step
            # made reachable is kept (runs to the end: no commit can interleave)
            self._mark_live()
            with store.reader() as rd:
                marker.drain(rd.load)
        doomed = [k for ref, k in hexed if ref not in seen]
        rep = self.report
        if doomed:
            n, nbytes = store.delete_blobs(doomed)
            rep.freed_blobs += n
            rep.freed_bytes += nbytes
        rep.kept_blobs += len(hexed) - len(doomed)
        return None

    def _finish(self) -> GCReport:
        rep = self.report
        rep.marked = len(self.marker.seen)
        # what is left, from the store's counter (blobs written since the sweep
        # passed them are in it too)
        rep.kept_bytes = self.store.stats().blob_bytes
        rep.duration_s = time.monotonic() - self._t0
        return rep
