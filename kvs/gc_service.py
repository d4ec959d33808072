"""When and how the kvs module runs online garbage collection (kvs.collect).

A collection runs as a task on the broker's loop, one short step per loop
turn with a little sleep between steps, so commits and lookups go on.  It
starts when asked (``kvs.gc``, ``flux content gc``) or by itself when the
store has grown by ``kvs.gc-threshold`` bytes since the last one (0: never
by itself).  Live are the namespace roots and pins in the store, plus what
readers may still hold: the roots of the last ``GRACE`` seconds (a
checkpoint names the root it was taken at and pins it moments later; a
client may look up at a root it just got) and blobs stored through
``content.store`` in the last ``STORED_GRACE`` seconds (not yet referenced
from the KVS).  A request may ask for a shorter root grace (``grace``).
"""
from __future__ import annotations

import asyncio
import errno
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from eventstore.checkpoint import PinKind
from flux.errors import FluxError
from kvs.collect import Collection, GCReport

__all__ = ["OnlineGC", "parse_threshold", "prune_stored", "DEFAULT_THRESHOLD", "GRACE"]

#: store growth (bytes) since the last collection that starts one by itself
DEFAULT_THRESHOLD = 64 << 20
#: seconds a replaced root stays live (readers that just got it may look up at it)
GRACE = 1.0
#: seconds a blob stored through content.store stays live without a reference
STORED_GRACE = 30.0
#: how often the growth is looked at
CHECK_INTERVAL = 5.0
#: sleep between steps: the collection takes at most about half the loop
STEP_GAP = 0.002
_RECENT_MAX = 65536


def parse_threshold(value: str | None) -> int:
    """``kvs.gc-threshold``: bytes, with an optional k/M/G suffix; 0 turns automatic GC off."""
    if value is None or value == "":
        return DEFAULT_THRESHOLD
    text = str(value).strip()
    mult = {"k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20, "g": 1 << 30, "G": 1 << 30}
    scale = 1
    if text and text[-1] in mult:
        scale = mult[text[-1]]
        text = text[:-1]
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise FluxError(errno.EINVAL, f"kvs.gc-threshold: {value!r} is not a size in bytes "
                                      "(e.g. 64M; 0 turns automatic GC off)")
    return n * scale


def prune_stored(recent: dict[str, float], now: float) -> None:
    """Forget, in place, the blobs of RECENT stored more than STORED_GRACE ago."""
    horizon = now - STORED_GRACE
    for ref in [ref for ref, t in recent.items() if t < horizon]:
        del recent[ref]


class OnlineGC:
    """Online collections of one store: on request, and when it has grown enough."""

    def __init__(self, store: Any, recent_stored: dict[str, float], *,
                 threshold: int = DEFAULT_THRESHOLD, grace: float = GRACE,
                 log: Any = None) -> None:
        self.store = store
        self.recent_stored = recent_stored
        self.threshold = threshold
        self.grace = grace
        self.log = log
        self.last: GCReport | None = None
        self.collections = 0
        self._recent_roots: deque[tuple[float, str]] = deque()
        self._task: asyncio.Task[GCReport] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._baseline = self._blob_bytes()
        self._closed = False
        self._arm()

    # -- what is live ----------------------------------------------------------------

    def new_root(self, rootref: str) -> None:
        now = time.monotonic()
        q = self._recent_roots
        q.append((now, rootref))
        if len(q) > _RECENT_MAX:
            q.popleft()

    def _live(self, grace: float) -> tuple[Iterable[str], Iterable[str]]:
        now = time.monotonic()
        q = self._recent_roots
        # what this collection does not keep may be gone after it: forget it for good
        while q and q[0][0] < now - grace:
            q.popleft()
        prune_stored(self.recent_stored, now)
        trees = [rec.rootref for rec in self.store.roots().values()]
        blobs = list(self.recent_stored)
        for pin in self.store.pins().values():
            (trees if pin.kind == PinKind.TREE else blobs).append(pin.ref)
        trees.extend(ref for _t, ref in q)
        return trees, blobs

    # -- running ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def collect(self, grace: float | None = None) -> "asyncio.Future[GCReport]":
        """The running collection, or a new one (keeping roots replaced less than
        GRACE seconds ago, default ``self.grace``): its report when it is over."""
        if self._task is None or self._task.done():
            g = self.grace if grace is None else min(grace, self.grace)
            self._task = asyncio.get_running_loop().create_task(self._run(g))
            self._task.add_done_callback(_retrieve)
        return asyncio.shield(self._task)

    async def _run(self, grace: float) -> GCReport:
        coll = Collection(self.store, lambda: self._live(grace))
        while True:
            try:
                rep = coll.step()
            except FluxError as exc:
                # a full disk or a damaged store: nothing half-done is harmful
                # (each step's deletions are one transaction); try again later
                if self.log is not None:
                    self.log.error(f"online GC stopped: {exc.strerror or exc}")
                raise
            if rep is not None:
                break
            await asyncio.sleep(STEP_GAP)
        self.last = rep
        self.collections += 1
        self._baseline = self._blob_bytes()
        if self.log is not None:
            self.log.info(f"online GC: freed {rep.freed_blobs} blobs ({rep.freed_bytes} bytes), "
                          f"kept {rep.kept_blobs} blobs ({rep.kept_bytes} bytes) in "
                          f"{rep.duration_s:.3f}s; longest pause "
                          f"{rep.longest_pause_s * 1000:.1f}ms")
        return rep

    def _blob_bytes(self) -> int:
        try:
            return self.store.stats().blob_bytes
        except OSError:
            return 0

    def _arm(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(CHECK_INTERVAL, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._closed:
            return
        if self.threshold > 0 and (self._task is None or self._task.done()) \
                and self._blob_bytes() - self._baseline >= self.threshold:
            self.collect()
        self._arm()

    def set_threshold(self, value: str) -> None:
        self.threshold = parse_threshold(value)

    def stop(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()


def _retrieve(task: "asyncio.Task[GCReport]") -> None:
    """An automatic collection's failure was logged; nobody else will look at it."""
    if not task.cancelled():
        task.exception()
