"""The ``content`` broker module: the instance's blob store (RFC 10) and its lifetime.

It owns the one :class:`eventstore.store.Store` of the instance, in
``<statedir>/content.lmdb`` when ``statedir`` is set (kept across
restarts) or ``<rundir>/content.lmdb`` (removed with the rundir).  The
``kvs`` module does not open a store of its own: it asks for this one with
the in-process request ``content.backing`` (see :func:`in_process`), so
blobs, roots and the startlog live in one LMDB environment.

Requests (specs/kvs-service.md):

``content.load``      blobref (raw string or ``{"blobref"}``) -> raw bytes (ENOENT)
``content.store``     raw bytes -> ``{"blobref"}`` (EFBIG); one write per loop turn
``content.flush``     ``{}`` -> ``{}`` once everything written is synced
``content.dropcache`` ``{}`` -> ``{}`` (the store keeps no cache of its own)
``content.startlog``  ``{}`` -> ``{"records": [{"start","finish","pid","version"?}...]}``
                      (owner only, as flux-startlog(1) says; ``version``, the
                      software version of that run, absent in old records)
``content.stats``     ``{}`` -> the store's counters
``content.pin``       ``{"name", "ref", "kind"?: "tree"|"blob"}`` -> ``{}``: keep REF
                      (a KVS root and all under it, or one blob) through GC
``content.unpin``     ``{"name"}`` -> ``{}``; ``content.pins`` -> ``{"pins": {...}}``
``content.backing``   in-process only: ``{"store": Store, "recent": {blobref: time}}``
                      (blobs just stored, which online GC keeps for a grace period)
``content.gc``        ``{}`` -> what an online collection freed (done by ``kvs.gc``)
``content.checkpoint-get`` / ``content-backing.checkpoint-get``
                      ``{}`` -> ``{"checkpoints": [{"version": 1, "rootref", "sequence",
                      "timestamp"}], "value": <the same, most recent>}``: the primary
                      namespace's root as stored (one store, so both answer alike);
                      ENOENT when there is none

At load it logs "Flux was not shut down properly. Data may have been
lost." when the startlog shows that the previous run never finished.  At
unload (rc3, after the kvs module is gone) it syncs, runs the offline
garbage collection when the shutdown asked for it (``flux shutdown
--gc``), and closes the store, which records the clean finish.
"""
from __future__ import annotations

import asyncio
import errno
import os
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from broker.module import Module, request_handler
from flux.constants import FLUX_ROLE_LOCAL
from flux.errors import FluxError
from flux.message import Message

if TYPE_CHECKING:
    from eventstore.store import Store

__all__ = ["Content", "in_process", "UNCLEAN_MESSAGE", "DEFAULT_DURABILITY", "STORE_DIRNAME"]

UNCLEAN_MESSAGE = "Flux was not shut down properly. Data may have been lost."
DEFAULT_DURABILITY = "always"
STORE_DIRNAME = "content.lmdb"
_HASH = "blake3"
#: just-stored blobs remembered before the list is pruned of old ones
_RECENT_PRUNE = 65536


def in_process(msg: Message) -> bool:
    """Whether MSG was sent by a module of this broker (so objects may travel in it).

    Modules stamp their requests with the LOCAL role and a one-hop route,
    and hand them over as objects.  The instance owner's local clients carry
    the LOCAL role too (as in Flux) but their requests were decoded from
    the socket (``from_wire``); one from another rank has a longer route.
    """
    return bool(msg.rolemask & FLUX_ROLE_LOCAL) and len(msg.route) == 1 and not msg.from_wire


def _positive_int(name: str, value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise FluxError(errno.EINVAL, f"{name}: {value!r} is not an integer") from None
    if n < 1:
        raise FluxError(errno.EINVAL, f"{name}: {n} must be positive")
    return n


class Content(Module):
    """Serves the blob store and hands it to the kvs module."""

    name = "content"

    async def start(self) -> None:
        from eventstore.durability import Durability
        from eventstore.store import DEFAULT_BLOB_SIZE_LIMIT, Store

        ctx = self.ctx
        hashname = ctx.attr_get_default("content.hash", _HASH)
        if hashname != _HASH:
            raise FluxError(errno.EINVAL, f"content.hash: unsupported hash '{hashname}' "
                                          f"(this store uses {_HASH})")
        # content.backing-path on the command line (rank 0): the store is there, kept at
        # exit and opened again by the next start with it (flux-broker-attributes(7))
        given = ctx.attr_get_default("content.backing-path") if ctx.rank == 0 else None
        # Without a statedir the store lives in the rundir and is removed at exit:
        # a sync would protect nothing (flux-core turns sqlite's syncs off then too)
        default = DEFAULT_DURABILITY if ctx.statedir or given else "none"
        durability = ctx.attr_get_default("content.durability") \
            or ctx.conf_get("content.durability", default)
        try:
            mode = Durability.parse(durability)
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"content.durability: {exc}") from None
        limit = _positive_int("content.blob-size-limit",
                              ctx.attr_get_default("content.blob-size-limit")
                              or ctx.conf_get("content.blob-size-limit", DEFAULT_BLOB_SIZE_LIMIT))
        path = os.path.abspath(given) if given else os.path.join(ctx.store_dir, STORE_DIRNAME)
        from kvs.offline import lock_store

        self._lock_fd: int | None = lock_store(path)
        try:
            from flux import __version__

            self.store: Store = Store(path, durability=mode, blob_size_limit=limit,
                                      version=__version__)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._pending: list[tuple[Message, str, bytes]] = []
        self._posted = False
        self.recent: dict[str, float] = {}
        self._prune_at = _RECENT_PRUNE
        ctx.attr_register("content.backing-path", path, immutable=True)
        ctx.attr_register("content.durability", mode.value, immutable=True)
        ctx.attr_register("content.blob-size-limit", str(limit), immutable=True)
        if self.store.unclean:
            ctx.log.error(UNCLEAN_MESSAGE)
        ctx.log.debug("content store opened", path=path, durability=mode.value)
        restore = ctx.attr_get_default("content.restore") if ctx.rank == 0 else None
        if restore:  # the store is rebuilt from a dump before the kvs is handed it
            from kvs.archive import content_restore_hook

            try:
                content_restore_hook(self.store, restore, ctx.statedir, ctx.log)
            except BaseException:
                self.store.close()
                self._unlock()
                raise

    async def stop(self) -> None:
        store = self.store
        try:
            self._write_pending()
            store.sync()
            dump = self.ctx.shutdown_options.get("dump") \
                or self.ctx.attr_get_default("content.dump")
            if dump and self.ctx.rank == 0:  # the kvs is unloaded: its last root is the checkpoint
                from kvs.archive import content_dump_hook

                content_dump_hook(store, dump, self.ctx.statedir, self.ctx.log)
            if self.ctx.shutdown_options.get("gc"):
                self._offline_gc()
        finally:
            store.close()
            self._unlock()

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    def _offline_gc(self) -> None:
        """Drop every blob no namespace root or pin reaches, then shrink the file."""
        from kvs.engine import KVS

        t0 = time.monotonic()
        before = self.store.stats().file_bytes
        res = KVS(self.store, owner=self.ctx.owner).gc()
        self.store.compact()
        after = self.store.stats().file_bytes
        self.ctx.log.info(f"content GC: freed {res.freed_blobs} blobs ({res.freed_bytes} bytes), "
                          f"kept {res.kept_blobs} blobs ({res.kept_bytes} bytes); "
                          f"file {before} -> {after} bytes in {time.monotonic() - t0:.3f}s")

    # -- blobs ---------------------------------------------------------------

    @request_handler("content.load")
    def load(self, msg: Message) -> bytes:
        raw = msg.raw or b""
        if raw[:1] == b"{":
            body = msg.payload
            ref = body.get("blobref") if type(body) is dict else None
            if type(ref) is not str:
                raise FluxError(errno.EPROTO, "content.load: expected a blobref or {\"blobref\": ref}")
        else:
            ref = raw.decode("utf-8", errors="replace").strip().strip('"')
        return self.store.load(ref)

    @request_handler("content.store")
    def store_blob(self, msg: Message) -> None:
        from eventstore.blobref import blobref

        data = msg.raw or b""
        self.store.check_size(data)
        ref = blobref(data)
        # online GC keeps a just-stored blob for a while: its client has not
        # had the time to reference it from the KVS yet
        now = time.monotonic()
        self.recent[ref] = now
        if len(self.recent) >= self._prune_at:
            # collections prune it too, but they may be off (kvs.gc-threshold=0)
            from kvs.gc_service import prune_stored

            prune_stored(self.recent, now)
            self._prune_at = max(_RECENT_PRUNE, 2 * len(self.recent))
        self._pending.append((msg, ref, data))
        if not self._posted:
            self._posted = True
            asyncio.get_running_loop().call_soon(self._write_pending)

    def _write_pending(self) -> None:
        """Write the stores of one loop turn in one transaction, then answer them."""
        self._posted = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self.store.commit([(ref, data) for _msg, ref, data in batch], verify=False)
        except OSError as exc:
            for msg, _ref, _data in batch:
                self.ctx.respond_error(msg, exc.errno or errno.EIO, exc.strerror or str(exc))
            return
        for msg, ref, _data in batch:
            self.ctx.respond(msg, {"blobref": ref})

    @request_handler("content.flush")
    def flush(self, msg: Message) -> dict[str, Any]:
        self._write_pending()
        self.store.sync()
        return {}

    @request_handler("content.dropcache")
    def dropcache(self, msg: Message) -> dict[str, Any]:
        # LMDB reads go through the kernel's page cache; nothing is held here
        return {}

    # -- instance facts ------------------------------------------------------------

    @request_handler("content.startlog")
    def startlog(self, msg: Message) -> dict[str, Any]:
        recs: list[dict[str, Any]] = []
        for r in self.store.startlog():
            rec: dict[str, Any] = {"start": r.start, "finish": r.finish, "pid": r.pid}
            # records written before versions were kept have none, shown
            # blank as flux-core's start events without core_version are
            if r.version is not None:
                rec["version"] = r.version
            recs.append(rec)
        return {"records": recs}

    @request_handler("content.stats", allow_guest=True)
    def stats(self, msg: Message) -> dict[str, Any]:
        out = asdict(self.store.stats())
        out["durability"] = self.store.durability.value
        out["path"] = self.store.path
        return out

    @request_handler("content.pin")
    def pin(self, msg: Message) -> dict[str, Any]:
        body = msg.payload
        if type(body) is not dict or type(body.get("name")) is not str \
                or type(body.get("ref")) is not str:
            raise FluxError(errno.EPROTO, 'content.pin: expected {"name": str, "ref": blobref}')
        kind = body.get("kind", "tree")
        if kind not in ("tree", "blob"):
            raise FluxError(errno.EINVAL, f"content.pin: kind must be tree or blob, not {kind!r}")
        if not self.store.has(body["ref"]):
            raise FluxError(errno.ENOENT, f"{body['ref']}: no such blob")
        self.store.pin(body["name"], body["ref"], kind)
        return {}

    @request_handler("content.unpin")
    def unpin(self, msg: Message) -> dict[str, Any]:
        body = msg.payload
        if type(body) is not dict or type(body.get("name")) is not str:
            raise FluxError(errno.EPROTO, 'content.unpin: expected {"name": str}')
        if not self.store.unpin(body["name"]):
            raise FluxError(errno.ENOENT, f"content.unpin: no pin named {body['name']!r}")
        return {}

    @request_handler("content.pins")
    def pins(self, msg: Message) -> dict[str, Any]:
        return {"pins": {name: {"ref": p.ref, "kind": p.kind}
                         for name, p in self.store.pins().items()}}

    @request_handler("content.checkpoint-get")
    def checkpoint_get(self, msg: Message) -> dict[str, Any]:
        return self._checkpoint()

    @request_handler("content-backing.checkpoint-get")
    def backing_checkpoint_get(self, msg: Message) -> dict[str, Any]:
        # no cache in front of the store here: the same answer, read from LMDB
        return self._checkpoint()

    def _checkpoint(self) -> dict[str, Any]:
        from kvs.constants import PRIMARY_NAMESPACE

        rec = self.store.root(PRIMARY_NAMESPACE)
        if rec is None:
            raise FluxError(errno.ENOENT)
        ckpt = {"version": 1, "rootref": rec.rootref, "sequence": rec.sequence,
                "timestamp": rec.timestamp}
        return {"checkpoints": [ckpt], "value": ckpt}

    @request_handler("content.backing")
    def backing(self, msg: Message) -> dict[str, Any]:
        if not in_process(msg):
            raise FluxError(errno.EPERM, "content.backing is for modules of this broker only")
        return {"store": self.store, "recent": self.recent}

    @request_handler("content.gc")
    async def gc(self, msg: Message) -> dict[str, Any]:
        """Run an online garbage collection (the kvs module does it: it knows the
        roots readers hold) and answer what it freed."""
        return await self.ctx.rpc("kvs.gc", msg.payload if isinstance(msg.payload, dict)
                                  else {}, nodeid=self.ctx.rank)
