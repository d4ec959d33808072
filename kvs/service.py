"""The ``kvs`` broker module: RFC 11 KVS service over the content module's store.

Group commit: ``kvs.commit`` is a synchronous handler that only queues the
transaction and, once per loop turn, schedules ``_flush``.  Every commit
request that arrived in that turn (a whole pipelined burst from a client
is dispatched in one turn) goes into ONE ``KVS.commit`` call: one LMDB
write transaction and one sync.  Responses are sent only after that call
returns, so an answered commit is durable (as the durability mode says).
Then version waiters are answered and root listeners (the kvs-watch
module, in-process) are told about each new root with the keys its
transactions wrote.

Other requests (specs/kvs-service.md): lookup, getroot, version,
wait-version, namespace-create/-remove/-list, dropcache (also the
``kvs.dropcache`` event), stats, diff, and the in-process
``kvs.watch-attach`` / ``kvs.watch-detach``, and ``kvs.gc`` (an online
garbage collection of the store, see kvs.gc_service).
"""
from __future__ import annotations

import asyncio
import binascii
import errno
import heapq
import itertools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, Protocol

from broker.module import Module, request_handler
from eventstore.eventlog import json_type
from flux.constants import FLUX_ROLE_OWNER, FLUX_USERID_UNKNOWN
from flux.errors import FluxError
from flux.message import Message
from kvs import keys as _keys
from kvs.constants import (
    FLUX_KVS_READDIR,
    FLUX_KVS_READLINK,
    FLUX_KVS_TREEOBJ,
    PRIMARY_NAMESPACE,
)
from kvs.config import parse_kvs_config
from kvs.content_service import in_process
from kvs.gc_service import OnlineGC, parse_threshold as _gc_threshold
from kvs.engine import KVS, CommitResult
from kvs.txn import FLUX_KVS_SYNC, Txn

__all__ = ["Kvs", "RootListener", "borrow_engine", "val_treeobj", "written_keys"]

# lookup flags the kvs service itself honours (watch flags belong to kvs-watch)
_LOOKUP_MASK = FLUX_KVS_READDIR | FLUX_KVS_READLINK | FLUX_KVS_TREEOBJ
_ROOT_MEMORY = 4096
# group commit: loop turns a burst may keep growing the batch, and its size limit
_MAX_HOPS = 8
_MAX_BATCH = 8192


class RootListener(Protocol):
    """What an in-process watcher (kvs-watch) implements to hear about new roots."""

    def setroot(self, namespace: str, rootref: str, sequence: int, keys: frozenset[str]) -> None:
        """NAMESPACE has a new root; KEYS are the (normalized) keys its transactions wrote.

        A listener may also have ``interested(namespace) -> bool``: when it says
        no, setroot is not called (nor the keys gathered) for that root.
        """

    def namespace_removed(self, namespace: str) -> None:
        """NAMESPACE is gone."""


class _Detached:
    """A root listener that ignores roots: attached only to borrow the engine."""

    def setroot(self, namespace: str, rootref: str, sequence: int,
                keys: frozenset[str]) -> None:
        return None

    def namespace_removed(self, namespace: str) -> None:
        return None


async def borrow_engine(ctx: Any) -> KVS:
    """The kvs module's engine, for a module of the same broker that reads much of
    the KVS at once (a restart's replay): through ``kvs.watch-attach``, which hands
    it out in-process.  OSError/KeyError/TypeError when the kvs is elsewhere."""
    hook = _Detached()
    resp = await ctx.rpc("kvs.watch-attach", {"listener": hook}, nodeid=ctx.rank)
    await ctx.rpc("kvs.watch-detach", {"listener": hook}, nodeid=ctx.rank)
    return resp["engine"]


def val_treeobj(data: bytes) -> dict[str, Any]:
    """An RFC 11 ``val`` object holding DATA."""
    return {"ver": 1, "type": "val", "data": binascii.b2a_base64(data, newline=False).decode()}


def guest_userid(msg: Message) -> int | None:
    """The sender's userid if it is a guest (its lookups stay in its namespaces), else None."""
    return None if msg.rolemask & FLUX_ROLE_OWNER else msg.userid


def _norm(key: str) -> str:
    if key and key[0] != "." and key[-1] != "." and ".." not in key:
        return key
    return _keys.normalize(key)


def written_keys(txns: Iterable[Txn]) -> frozenset[str]:
    """The keys the ops of TXNS name (normalized; malformed ops are skipped)."""
    out: set[str] = set()
    for txn in txns:
        for op in txn.ops:
            try:
                out.add(_norm(op["key"]))
            except (FluxError, KeyError, TypeError):
                continue
    return frozenset(out)


def _body(msg: Message) -> dict[str, Any]:
    body = msg.payload
    if type(body) is not dict:
        raise FluxError(errno.EPROTO, f"{msg.topic}: payload must be a JSON object")
    return body


def _namespace(body: dict[str, Any]) -> str:
    ns = body.get("namespace")
    if ns is None:
        return PRIMARY_NAMESPACE
    if type(ns) is not str:
        raise FluxError(errno.EPROTO, f"namespace must be a string, not {json_type(ns)}")
    return ns


def _int_field(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if type(value) is not int:
        if value is None:
            raise FluxError(errno.EPROTO, f"missing integer field '{name}'")
        raise FluxError(errno.EPROTO, f"field '{name}' must be an integer, not {value!r}")
    return value


def _cache_int(name: str, value: str) -> int:
    """VALUE of cache attribute NAME as a non-negative integer; EINVAL naming both."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise FluxError(errno.EINVAL, f"{name}: {value!r} is not a non-negative integer")
    return int(text)


class Kvs(Module):
    """The KVS service: group commit, lookups, namespaces, versions, diffs."""

    name = "kvs"

    async def start(self) -> None:
        ctx = self.ctx
        try:
            self.config = parse_kvs_config(ctx.conf_get("kvs"))
        except ValueError as exc:
            raise FluxError(errno.EINVAL, str(exc)) from None
        #: the threshold without [kvs] gc-threshold: the attribute given at start, or
        #: the default (a value on the command line wins over the config file)
        given = ctx.attr_get_default("kvs.gc-threshold")
        self._base_threshold = _gc_threshold(given)
        threshold = self._base_threshold
        if given in (None, "") and self.config.gc_threshold is not None:
            threshold = self.config.gc_threshold
        self._threshold_given = given not in (None, "")
        backing = await ctx.rpc("content.backing", {}, nodeid=ctx.rank)
        self.engine = KVS(backing["store"], owner=ctx.owner)
        self._gc = OnlineGC(self.engine.store, backing.get("recent") or {},
                            threshold=threshold, log=ctx.log)
        ctx.attr_register("kvs.gc-threshold", getter=lambda: str(self._gc.threshold),
                          setter=self._gc.set_threshold)
        self._pending: list[tuple[Message, Txn]] = []
        self._answered = 0          # requests of the batch being committed answered so far
        self._posted = False
        self._seen = 0
        self._hops = 0
        self._listeners: list[RootListener] = []
        self._waiters: dict[str, list[tuple[int, int, Message]]] = {}
        self._tick = itertools.count()
        self._root_seq: OrderedDict[str, int] = OrderedDict()
        self.counters = {"commits": 0, "commit_errors": 0, "batches": 0, "max_batch": 0,
                         "lookups": 0}
        ctx.event_subscribe("kvs.dropcache", lambda _msg: self.engine.dropcache())
        self._register_cache_attrs()

    # -- content.* attributes (flux-content(1)): the cache of tree objects --------------

    def _register_cache_attrs(self) -> None:
        """``content.purge-target-size`` (the cache's byte bound), ``content.purge-old-entry``
        (kept, validated), and the read-only ``content.acct-*`` counts.  A value given
        with ``-S`` is applied first; a bad one fails the module's load."""
        ctx = self.ctx
        cache = self.engine.cache
        self._purge_old_entry = 10
        settable = (("content.purge-target-size", self._set_purge_target,
                     lambda: str(cache.max_bytes)),
                    ("content.purge-old-entry", self._set_purge_old_entry,
                     lambda: str(self._purge_old_entry)))
        for name, setter, _getter in settable:
            given = ctx.attr_get_default(name)
            if given is not None:
                setter(given)
        for name, setter, getter in settable:
            ctx.attr_register(name, getter=getter, setter=setter)
        # every cached object is a stored blob: none is dirty, all are valid
        ctx.attr_register("content.acct-entries", getter=lambda: str(len(cache)))
        ctx.attr_register("content.acct-size", getter=lambda: str(cache.nbytes))
        ctx.attr_register("content.acct-dirty", getter=lambda: "0")
        ctx.attr_register("content.acct-valid", getter=lambda: str(len(cache)))
        # flux-broker-attributes(7): the backing store module, set on rank 0 only.  The
        # LMDB store (content.backing-path) is served by the "content" module itself
        # (service content-backing), so that is the module to name.
        if ctx.rank == 0:
            ctx.attr_register("content.backing-module", "content", immutable=True)

    def _set_purge_target(self, value: str) -> None:
        self.engine.cache.set_max_bytes(_cache_int("content.purge-target-size", value))

    def _set_purge_old_entry(self, value: str) -> None:
        self._purge_old_entry = _cache_int("content.purge-old-entry", value)

    def config_check(self, config: Any) -> None:
        """Refuse (ValueError naming the key) a bad ``[kvs]`` table."""
        parse_kvs_config(config.get("kvs"))

    def config_reload(self, config: Any) -> None:
        """A changed ``gc-threshold`` applies at once (a value set with ``flux setattr``
        since stays until the config changes it); ``checkpoint-period`` is kept."""
        new = parse_kvs_config(config.get("kvs"))
        if new.gc_threshold != self.config.gc_threshold and not self._threshold_given:
            self._gc.threshold = new.gc_threshold if new.gc_threshold is not None \
                else self._base_threshold
        self.config = new

    async def stop(self) -> None:
        self._gc.stop()
        self._flush(force=True)
        for ns in list(self._waiters):
            self._fail_waiters(ns, errno.ENOSYS, "kvs module unloaded")

    # -- access ---------------------------------------------------------------------

    def _check_access(self, msg: Message, ns: str) -> None:
        """Guests may use only the namespaces they own (primary: the instance owner's)."""
        if msg.rolemask & FLUX_ROLE_OWNER:
            return
        owner = self.engine.getroot(ns).owner
        if owner != msg.userid:
            raise FluxError(errno.EPERM, f"namespace {ns!r} belongs to uid {owner}, "
                                         f"not {msg.userid}")

    # -- group commit -----------------------------------------------------------------

    @request_handler("kvs.commit", allow_guest=True)
    def commit(self, msg: Message) -> None:
        body = _body(msg)
        ns = _namespace(body)
        flags = body.get("flags", 0)
        if type(flags) is not int:
            # refused here, not in the batch: a bad value must not reach the group commit
            raise FluxError(errno.EPROTO, f"kvs.commit: 'flags' must be an integer, "
                                          f"got {flags!r}")
        ops = body.get("ops")
        if ops is None:
            raise FluxError(errno.EPROTO, "kvs.commit: missing field 'ops'")
        create, link = body.get("create"), body.get("link")
        if create is not None or link is not None:
            if not msg.rolemask & FLUX_ROLE_OWNER:
                raise FluxError(errno.EPERM, "kvs.commit: 'create' and 'link' need owner "
                                             "credentials")
            if create is not None:
                owner = create.get("owner") if isinstance(create, dict) else None
                if type(owner) is not int:
                    raise FluxError(errno.EPROTO, "kvs.commit: 'create' must be "
                                                  "{\"owner\": uid}")
                create = self.ctx.owner if owner in (-1, FLUX_USERID_UNKNOWN) else owner
            if link is not None:
                if not isinstance(link, dict) or type(link.get("key")) is not str \
                        or type(link.get("namespace")) is not str:
                    raise FluxError(errno.EPROTO, "kvs.commit: 'link' must be "
                                                  "{\"key\": str, \"namespace\": str}")
                link = (link["key"], link["namespace"])
        else:
            self._check_access(msg, ns)
        self._pending.append((msg, Txn(ops, ns, flags, create, link)))
        if not self._posted:
            self._posted = True
            self._seen = len(self._pending)
            self._hops = 0
            asyncio.get_running_loop().call_soon(self._flush)
        return None

    def _flush(self, force: bool = False) -> None:
        """Commit everything queued at once, then answer and notify.

        While a pipelined burst is still arriving (more commits came in
        since the last look), wait one more loop turn, a bounded number of
        times: one bigger batch rewrites each shared directory once.
        """
        n = len(self._pending)
        if not force and n > self._seen and self._hops < _MAX_HOPS and n < _MAX_BATCH:
            self._seen = n
            self._hops += 1
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._posted = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        self._answered = 0
        try:
            self._commit_batch(batch)
        except Exception as exc:  # noqa: BLE001 - no committer may be left without an answer
            self.ctx.log.exception("kvs: group commit failed unexpectedly", txns=len(batch))
            for msg, _txn in batch[self._answered:]:
                self.ctx.respond_error(msg, errno.EIO, f"kvs.commit: internal error: "
                                                       f"{type(exc).__name__}: {exc}")

    def _commit_batch(self, batch: list[tuple[Message, Txn]]) -> None:
        """Commit BATCH and answer its requests in order (``_answered``: how many so far)."""
        txns = [txn for _msg, txn in batch]
        try:
            results = self.engine.commit(txns)
        except Exception as exc:  # noqa: BLE001 - one txn's failure must not fail the others
            self.ctx.log.exception("group commit failed; committing each transaction alone",
                                   txns=len(txns), error=repr(exc))
            results = [self._commit_alone(txn) for txn in txns]
        if any(type(txn.flags) is int and txn.flags & FLUX_KVS_SYNC for txn in txns):
            # FLUX_KVS_SYNC: on stable storage before anyone is told
            try:
                self.engine.store.sync()
            except OSError as exc:
                for msg, _txn in batch:
                    self.ctx.respond_error(msg, exc.errno or errno.EIO,
                                           f"kvs.commit: sync failed: {exc.strerror or exc}")
                self._answered = len(batch)
                return
        c = self.counters
        c["batches"] += 1
        c["max_batch"] = max(c["max_batch"], len(batch))
        respond = self.ctx.respond
        respond_error = self.ctx.respond_error
        roots: dict[tuple[str, int], tuple[str, list[Txn]]] = {}
        for (msg, txn), res in zip(batch, results):
            err = res.error
            self._answered += 1
            if err is not None:
                c["commit_errors"] += 1
                respond_error(msg, err.errno or errno.EIO, err.strerror)
                continue
            c["commits"] += 1
            assert res.rootref is not None and res.sequence is not None
            respond(msg, {"rootref": res.rootref, "sequence": res.sequence})
            group = roots.get((res.namespace, res.sequence))
            if group is None:
                roots[(res.namespace, res.sequence)] = (res.rootref, [txn])
            else:
                group[1].append(txn)
        for (ns, seq), (rootref, members) in roots.items():
            self._new_root(ns, rootref, seq, members)
        for res in results:
            for gone in res.removed:
                self._namespace_gone(gone)

    def _commit_alone(self, txn: Txn) -> CommitResult:
        try:
            return self.engine.commit([txn])[0]
        except Exception as exc:  # noqa: BLE001 - this committer gets the error
            return CommitResult(txn.namespace, error=FluxError(
                errno.EIO, f"kvs.commit: internal error: {type(exc).__name__}: {exc}"))

    def _new_root(self, ns: str, rootref: str, seq: int, txns: list[Txn]) -> None:
        self._remember(rootref, seq)
        self._gc.new_root(rootref)
        waiters = self._waiters.get(ns)
        if waiters:
            while waiters and waiters[0][0] <= seq:
                _want, _tick, msg = heapq.heappop(waiters)
                self.ctx.respond(msg, {"rootref": rootref, "sequence": seq})
        if self._listeners:
            keys: frozenset[str] | None = None
            for listener in list(self._listeners):
                try:
                    interested = getattr(listener, "interested", None)
                    if interested is not None and not interested(ns):
                        continue        # most roots: nobody watches a key of theirs
                    if keys is None:
                        keys = written_keys(txns)
                    listener.setroot(ns, rootref, seq, keys)
                except Exception:  # noqa: BLE001 - a watcher bug must not stop commits
                    self.ctx.log.exception("root listener failed", namespace=ns)

    def _remember(self, rootref: str, seq: int) -> None:
        memo = self._root_seq
        memo[rootref] = seq
        memo.move_to_end(rootref)
        if len(memo) > _ROOT_MEMORY:
            memo.popitem(last=False)

    # -- lookups ----------------------------------------------------------------------

    @request_handler("kvs.lookup", allow_guest=True)
    def lookup(self, msg: Message) -> dict[str, Any]:
        body = _body(msg)
        key = body.get("key")
        if type(key) is not str:
            raise FluxError(errno.EPROTO, "kvs.lookup: 'key' must be a string")
        ns = _namespace(body)
        flags = body.get("flags", 0)
        if type(flags) is not int:
            raise FluxError(errno.EPROTO, f"kvs.lookup: flags must be an integer, not {flags!r}")
        self._check_access(msg, ns)
        self.counters["lookups"] += 1
        return {"key": key, "val": self.lookup_treeobj(key, ns, flags, body.get("rootdir"),
                                                       guest_userid(msg))}

    def lookup_treeobj(self, key: str, ns: str, flags: int, at: Any = None,
                       userid: int | None = None) -> dict[str, Any]:
        """What a lookup returns: a val for values, a dir for READDIR, else the raw object.

        USERID, a guest's, limits the namespaces symlinks may lead into to its own.
        """
        res = self.engine.lookup(key, ns, flags & _LOOKUP_MASK, at, userid)
        if res.value is not None:
            return val_treeobj(res.value)
        return res.treeobj

    @request_handler("kvs.getroot", allow_guest=True)
    def getroot(self, msg: Message) -> dict[str, Any]:
        ns = _namespace(_body(msg) if msg.has_payload() else {})
        self._check_access(msg, ns)
        info = self.engine.getroot(ns)
        return {"rootref": info.rootref, "treeobj": info.treeobj, "sequence": info.sequence,
                "owner": info.owner, "flags": 0}

    @request_handler("kvs.version", allow_guest=True)
    def version(self, msg: Message) -> dict[str, Any]:
        ns = _namespace(_body(msg) if msg.has_payload() else {})
        self._check_access(msg, ns)
        return {"version": self.engine.getroot(ns).sequence}

    @request_handler("kvs.wait-version", allow_guest=True)
    def wait_version(self, msg: Message) -> dict[str, Any] | None:
        body = _body(msg)
        ns = _namespace(body)
        want = _int_field(body, "sequence")
        self._check_access(msg, ns)
        info = self.engine.getroot(ns)
        if info.sequence >= want:
            return {"rootref": info.rootref, "sequence": info.sequence}
        heapq.heappush(self._waiters.setdefault(ns, []), (want, next(self._tick), msg))
        return None

    def _fail_waiters(self, ns: str, errnum: int, text: str) -> None:
        for _want, _tick, msg in self._waiters.pop(ns, []):
            self.ctx.respond_error(msg, errnum, text)

    def disconnect(self, sender: str) -> None:
        for ns, waiters in list(self._waiters.items()):
            keep = [w for w in waiters if w[2].sender != sender]
            if len(keep) != len(waiters):
                heapq.heapify(keep)
                self._waiters[ns] = keep

    # -- namespaces -------------------------------------------------------------------

    @request_handler("kvs.namespace-create")
    def namespace_create(self, msg: Message) -> dict[str, Any]:
        body = _body(msg)
        ns = body.get("namespace")
        owner = body.get("owner", -1)
        if type(owner) is not int:
            raise FluxError(errno.EPROTO, f"namespace owner must be an integer, not {owner!r}")
        if owner in (-1, FLUX_USERID_UNKNOWN):
            owner = self.ctx.owner
        flags = body.get("flags", 0)
        if flags != 0:
            raise FluxError(errno.EINVAL, f"namespace-create: unknown flags {flags!r}")
        rootref = body.get("rootref")
        if rootref is not None and type(rootref) is not str:
            raise FluxError(errno.EPROTO, f"namespace-create: rootref must be a string, "
                                          f"not {rootref!r}")
        info = self.engine.namespace_create(ns, owner, rootref)  # type: ignore[arg-type]
        if rootref is not None:
            self._gc.new_root(info.rootref)  # a collection under way keeps it too
        return {}

    @request_handler("kvs.namespace-remove")
    def namespace_remove(self, msg: Message) -> dict[str, Any]:
        ns = _body(msg).get("namespace")
        if type(ns) is not str:
            raise FluxError(errno.EPROTO, "namespace-remove: 'namespace' must be a string")
        self.engine.namespace_remove(ns)
        self._namespace_gone(ns)
        return {}

    def _namespace_gone(self, ns: str) -> None:
        self._fail_waiters(ns, errno.ENOTSUP, f"namespace {ns!r} was removed")
        for listener in list(self._listeners):
            try:
                listener.namespace_removed(ns)
            except Exception:  # noqa: BLE001
                self.ctx.log.exception("root listener failed", namespace=ns)

    @request_handler("kvs.namespace-list", allow_guest=True)
    def namespace_list(self, msg: Message) -> dict[str, Any]:
        guest = not msg.rolemask & FLUX_ROLE_OWNER
        return {"namespaces": [{"namespace": i.name, "owner": i.owner, "flags": 0,
                                "sequence": i.sequence}
                               for i in self.engine.namespaces()
                               if not guest or i.owner == msg.userid]}

    # -- maintenance ------------------------------------------------------------------

    @request_handler("kvs.dropcache")
    def dropcache(self, msg: Message) -> dict[str, Any]:
        self.engine.dropcache()
        return {}

    @request_handler("kvs.gc")
    async def gc(self, msg: Message) -> dict[str, Any]:
        """Run an online collection now (or wait for the one running) and answer its report."""
        body = msg.payload if isinstance(msg.payload, dict) else {}
        grace = body.get("grace")
        if grace is not None and (type(grace) not in (int, float) or not grace >= 0):
            raise FluxError(errno.EPROTO, "kvs.gc: grace must be a number of seconds >= 0")
        return (await self._gc.collect(grace)).to_dict()

    @request_handler("kvs.stats", allow_guest=True)
    def stats(self, msg: Message) -> dict[str, Any]:
        store = self.engine.store
        return {"cache": asdict(self.engine.cache_stats()), "store": asdict(store.stats()),
                "durability": store.durability.value,
                "namespaces": len(self.engine.namespaces()),
                "pending": len(self._pending), "waiters": sum(map(len, self._waiters.values())),
                "listeners": len(self._listeners), **self.counters,
                "gc": {"collections": self._gc.collections, "threshold": self._gc.threshold,
                       "running": self._gc.running,
                       "last": self._gc.last.to_dict() if self._gc.last else None}}

    @request_handler("kvs.diff")
    def diff(self, msg: Message) -> dict[str, Any]:
        body = _body(msg)
        ns = _namespace(body)
        old = body.get("from")
        if type(old) is not str:
            raise FluxError(errno.EPROTO, "kvs.diff: 'from' must be a root blobref")
        info = self.engine.getroot(ns)
        new = body.get("to") or info.rootref
        if type(new) is not str:
            raise FluxError(errno.EPROTO, "kvs.diff: 'to' must be a root blobref")
        prefix = body.get("prefix") or "."
        if type(prefix) is not str:
            raise FluxError(errno.EPROTO, "kvs.diff: 'prefix' must be a key")
        seq = info.sequence if new == info.rootref else self._root_seq.get(new)
        changes = [{"key": c.key, "kind": "add" if c.old is None
                    else "remove" if c.new is None else "change"}
                   for c in self.engine.diff(old, new, prefix)]
        return {"rootref": new, "sequence": seq, "changes": changes}

    # -- in-process hooks (kvs-watch) -------------------------------------------------

    @request_handler("kvs.watch-attach")
    def watch_attach(self, msg: Message) -> dict[str, Any]:
        if not in_process(msg):
            raise FluxError(errno.EPERM, "kvs.watch-attach is for modules of this broker only")
        listener = _body(msg)["listener"]
        self._listeners.append(listener)
        return {"engine": self.engine, "kvs": self}

    @request_handler("kvs.watch-detach")
    def watch_detach(self, msg: Message) -> dict[str, Any]:
        if not in_process(msg):
            raise FluxError(errno.EPERM, "kvs.watch-detach is for modules of this broker only")
        listener = _body(msg)["listener"]
        if listener in self._listeners:
            self._listeners.remove(listener)
        return {}

