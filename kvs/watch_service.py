"""The ``kvs-watch`` broker module: lookups that wait for a key or follow its changes.

``kvs-watch.lookup {"key", "namespace"?, "flags"}`` (flux-core's flags):

- no WATCH: one response with the value (as ``kvs.lookup`` gives it);
  with WAITCREATE it waits until the key exists.  A streaming request
  then ends with ENODATA.
- WATCH (streaming): the value now, then a response each time a committed
  transaction names the key (WATCH_UNIQ: only if its object changed;
  WATCH_FULL: whenever the object it resolves to changes, named or not,
  e.g. a parent directory replaced; WATCH_APPEND: only the bytes appended
  since the last response, as a ``val``).  Without WAITCREATE a missing
  key is ENOENT; with it the stream starts when the key appears.
- ``"raw": true`` from a module of the same broker (in-process): values
  come as ``{"key", "raw": bytes}`` instead of base64 ``val`` objects.
- The stream ends with ENODATA on ``kvs-watch.cancel {"matchtag"}``, when
  the namespace is removed, or silently when the client disconnects; with
  ENOENT when the key is removed; with EINVAL when an appended-to value is
  rewritten instead.

The module shares the kvs module's engine in-process (``kvs.watch-attach``)
and is told about every new root with the keys its transactions wrote.
Watchers are indexed by key, so a commit costs work only for the watchers
of the keys it wrote (plus WATCH_FULL and not-yet-created ones, which are
checked against every new root of their namespace); a watched key is
resolved once per root however many watch it, and appends are read from
the valref's tail (``KVS.appended``), never by rereading the whole value.
"""
from __future__ import annotations

import binascii
import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broker.module import Module, Stream, request_handler
from flux.constants import FLUX_MSGFLAG_STREAMING, FLUX_ROLE_OWNER
from flux.errors import FluxError
from flux.message import Message
from kvs import keys as _keys
from kvs.constants import (
    FLUX_KVS_WAITCREATE,
    FLUX_KVS_WATCH,
    FLUX_KVS_WATCH_APPEND,
    FLUX_KVS_WATCH_FULL,
    FLUX_KVS_WATCH_UNIQ,
    LOOKUP_FLAGS,
    PRIMARY_NAMESPACE,
)
from kvs.content_service import in_process
from kvs.service import guest_userid, val_treeobj

if TYPE_CHECKING:
    from kvs.engine import KVS
    from kvs.service import Kvs

__all__ = ["KvsWatch", "Watcher"]

_Obj = dict[str, Any] | None


@dataclass(slots=True, eq=False)
class Watcher:
    """One kvs-watch.lookup request being served."""

    msg: Message
    key: str
    ns: str
    flags: int
    stream: Stream | None
    last: _Obj = None
    created: bool = False
    done: bool = False
    raw: bool = False          # in-process watcher: values as bytes, not base64 vals

    @property
    def tag(self) -> tuple[str | None, int]:
        return (self.msg.sender, self.msg.matchtag)

    @property
    def full(self) -> bool:
        return bool(self.flags & FLUX_KVS_WATCH_FULL)


class KvsWatch(Module):
    """Serves kvs-watch.lookup; fed new roots by the kvs module."""

    name = "kvs-watch"

    async def start(self) -> None:
        resp = await self.ctx.rpc("kvs.watch-attach", {"listener": self}, nodeid=self.ctx.rank)
        self.engine: KVS = resp["engine"]
        self.kvs: Kvs = resp["kvs"]
        # ns -> key -> watchers told only when a txn names the key
        self._keyed: dict[str, dict[str, list[Watcher]]] = {}
        # ns -> watchers checked at every new root (WATCH_FULL, waiting for creation)
        self._scan: dict[str, list[Watcher]] = {}
        self._by_tag: dict[tuple[str | None, int], Watcher] = {}
        #: keys resolved after commits (what watching costs)
        self.resolved = 0

    async def stop(self) -> None:
        try:
            await self.ctx.rpc("kvs.watch-detach", {"listener": self}, nodeid=self.ctx.rank)
        except OSError:
            pass  # the kvs module may already be gone
        for w in list(self._by_tag.values()):
            self._finish(w, errno.ENOSYS, "kvs-watch module unloaded")

    # -- requests ------------------------------------------------------------------

    @request_handler("kvs-watch.lookup", allow_guest=True)
    def lookup(self, msg: Message) -> None:
        body = msg.payload
        if type(body) is not dict:
            raise FluxError(errno.EPROTO, "kvs-watch.lookup: payload must be a JSON object")
        key = _keys.normalize(body.get("key"))
        ns = body.get("namespace") or PRIMARY_NAMESPACE
        if type(ns) is not str:
            raise FluxError(errno.EPROTO, "kvs-watch.lookup: namespace must be a string")
        flags = body.get("flags", 0)
        if type(flags) is not int or flags & ~LOOKUP_FLAGS:
            raise FluxError(errno.EINVAL, f"{key}: unknown lookup flags {flags!r}")
        streaming = bool(msg.flags & FLUX_MSGFLAG_STREAMING)
        if flags & FLUX_KVS_WATCH and not streaming:
            raise FluxError(errno.EPROTO, "kvs-watch.lookup with FLUX_KVS_WATCH needs the "
                                          "streaming flag")
        info = self.engine.getroot(ns)
        if not msg.rolemask & FLUX_ROLE_OWNER and info.owner != msg.userid:
            raise FluxError(errno.EPERM, f"namespace {ns!r} belongs to uid {info.owner}, "
                                         f"not {msg.userid}")
        obj = self._resolve({key}, ns, info.rootref)[key]
        if isinstance(obj, FluxError):
            raise obj
        if obj is None and not flags & FLUX_KVS_WAITCREATE:
            raise FluxError(errno.ENOENT, f"{key}: no such key")
        stream = self.ctx.stream(msg) if streaming else None
        w = Watcher(msg, key, ns, flags, stream)
        # a module of this broker (job-info following output) may take the bytes as
        # they are: no base64 on the way out to be undone on the way in
        w.raw = bool(body.get("raw")) and in_process(msg)
        self._by_tag[w.tag] = w
        if stream is not None:
            stream.on_cancel = lambda: self._forget(w)
        if obj is None:
            self._scan.setdefault(ns, []).append(w)
        else:
            self._first(w, obj, info.rootref)
        return None

    @request_handler("kvs-watch.cancel", allow_guest=True)
    def cancel(self, msg: Message) -> None:
        body = msg.payload
        tag = body.get("matchtag") if type(body) is dict else None
        if type(tag) is not int:
            raise FluxError(errno.EPROTO, 'kvs-watch.cancel: expected {"matchtag": N}')
        w = self._by_tag.get((msg.sender, tag))
        if w is not None:
            self._finish(w, errno.ENODATA)
        return None

    @request_handler("kvs-watch.stats", allow_guest=True)
    def stats(self, msg: Message) -> dict[str, Any]:
        keyed = sum(len(ws) for by_key in self._keyed.values() for ws in by_key.values())
        return {"watchers": len(self._by_tag), "keyed": keyed,
                "scanned": sum(map(len, self._scan.values())), "resolved": self.resolved}

    def disconnect(self, sender: str) -> None:
        # the broker has already dropped the sender's streams without a response
        for w in [w for w in self._by_tag.values() if w.msg.sender == sender]:
            self._forget(w)

    # -- from the kvs module ---------------------------------------------------------

    def interested(self, namespace: str) -> bool:
        """Whether a new root of NAMESPACE can matter to a watcher (setroot would look)."""
        return bool(self._keyed.get(namespace) or self._scan.get(namespace))

    def setroot(self, namespace: str, rootref: str, sequence: int, keys: frozenset[str]) -> None:
        keyed = self._keyed.get(namespace)
        scan = self._scan.get(namespace)
        if not keyed and not scan:
            return
        cands: list[Watcher] = []
        if keyed:
            if len(keys) <= len(keyed):
                for k in keys:
                    ws = keyed.get(k)
                    if ws:
                        cands.extend(ws)
            else:
                for k, ws in keyed.items():
                    if k in keys:
                        cands.extend(ws)
        if scan:
            cands.extend(scan)
        if not cands:
            return
        wanted = {w.key for w in cands}
        self.resolved += len(wanted)
        objs = self._resolve(wanted, namespace, rootref)
        for w in cands:
            if not w.done:
                self._update(w, objs[w.key], rootref)

    def namespace_removed(self, namespace: str) -> None:
        for w in [w for w in self._by_tag.values() if w.ns == namespace]:
            if w.stream is not None:
                self._finish(w, errno.ENODATA)
            else:
                self._finish(w, errno.ENOTSUP, f"namespace {namespace!r} was removed")

    # -- watcher state ---------------------------------------------------------------

    def _resolve(self, keys: set[str], ns: str, root: str) -> dict[str, Any]:
        """{key: object at ROOT, None if absent, or the FluxError resolving it raised}."""
        try:
            return self.engine.watch_objects(keys, ns, root)
        except FluxError:
            out: dict[str, Any] = {}
            for k in keys:
                try:
                    out[k] = self.engine.watch_objects((k,), ns, root)[k]
                except FluxError as e:
                    out[k] = e
            return out

    def _value(self, w: Watcher, root: str) -> dict[str, Any]:
        return self.kvs.lookup_treeobj(w.key, w.ns, w.flags, root, guest_userid(w.msg))

    def _send_raw(self, w: Watcher, data: bytes) -> None:
        payload = {"key": w.key, "raw": data}
        if w.stream is not None:
            w.stream.send(payload)
        else:
            self.ctx.respond(w.msg, payload)

    def _send(self, w: Watcher, val: dict[str, Any]) -> None:
        if w.raw and val.get("type") == "val":
            self._send_raw(w, binascii.a2b_base64(val["data"]))
            return
        payload = {"key": w.key, "val": val}
        if w.stream is not None:
            w.stream.send(payload)
        else:
            self.ctx.respond(w.msg, payload)

    def _first(self, w: Watcher, obj: dict[str, Any], root: str) -> None:
        """The key exists: send its value, then keep watching or finish."""
        try:
            val = self._value(w, root)
        except FluxError as e:
            self._finish(w, e.errno or errno.EIO, e.strerror)
            return
        w.created = True
        w.last = obj
        self._send(w, val)
        if not w.flags & FLUX_KVS_WATCH:
            if w.stream is not None:
                self._finish(w, errno.ENODATA)
            else:
                w.done = True
                self._forget(w)
            return
        scan = self._scan.get(w.ns)
        if scan is not None and w in scan:
            scan.remove(w)
        if w.full:
            self._scan.setdefault(w.ns, []).append(w)
        else:
            self._keyed.setdefault(w.ns, {}).setdefault(w.key, []).append(w)

    def _update(self, w: Watcher, new: Any, root: str) -> None:
        if isinstance(new, FluxError):
            self._finish(w, new.errno or errno.EIO, new.strerror)
            return
        if not w.created:
            if new is not None:
                self._first(w, new, root)
            return
        if new is None:
            self._finish(w, errno.ENOENT, f"{w.key}: key was removed")
            return
        if w.flags & FLUX_KVS_WATCH_APPEND:
            uid = guest_userid(w.msg)
            if uid is not None:
                # only appended bytes are sent (no lookup checks where the key leads):
                # a guest's key relinked into a namespace it cannot read must stop here
                try:
                    self.engine.watch_objects((w.key,), w.ns, root, uid)
                except FluxError as e:
                    self._finish(w, e.errno or errno.EIO, e.strerror)
                    return
            data = self.engine.appended(w.last, new)
            if data is None:
                self._finish(w, errno.EINVAL, f"{w.key}: value was rewritten, not appended to")
                return
            w.last = new
            if data:
                if w.raw:
                    self._send_raw(w, data)
                else:
                    self._send(w, val_treeobj(data))
            return
        if new == w.last and w.flags & (FLUX_KVS_WATCH_UNIQ | FLUX_KVS_WATCH_FULL):
            return
        w.last = new
        try:
            val = self._value(w, root)
        except FluxError as e:
            self._finish(w, e.errno or errno.EIO, e.strerror)
            return
        self._send(w, val)

    def _finish(self, w: Watcher, errnum: int, text: str | None = None) -> None:
        """End W's request with ERRNUM (ENODATA: a clean end) and forget it."""
        if w.done:
            return
        w.done = True
        if w.stream is not None:
            w.stream.error(errnum, text)
        else:
            self.ctx.respond_error(w.msg, errnum, text)
        self._forget(w)

    def _forget(self, w: Watcher) -> None:
        w.done = True
        self._by_tag.pop(w.tag, None)
        scan = self._scan.get(w.ns)
        if scan is not None and w in scan:
            scan.remove(w)
            if not scan:
                del self._scan[w.ns]
        keyed = self._keyed.get(w.ns)
        if keyed is not None:
            ws = keyed.get(w.key)
            if ws is not None and w in ws:
                ws.remove(w)
                if not ws:
                    del keyed[w.key]
                if not keyed:
                    del self._keyed[w.ns]
