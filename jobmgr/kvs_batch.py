"""Group KVS writes of one loop turn into one ``kvs.commit`` (for broker modules).

``KvsBatch(ctx).put(key, data)`` / ``append(key, data)`` queue an op and
return a future that resolves (to the commit's response) once the commit
holding it is durable, or fails with the commit's error.  Every op queued
in one turn of the event loop goes into one transaction; while a commit is
in flight new ops wait for the next one, so commits stay in order and
appends land in the order they were queued.

An instance without a KVS service (ENOSYS) cannot persist anything: the
futures then resolve to None and a warning is logged once, so the modules
that use this still work, in memory only.
"""
from __future__ import annotations

import asyncio
import errno
from typing import Any

import orjson

from flux.errors import FluxError

__all__ = ["KvsBatch", "kvs_get", "encode_value"]

FLUX_KVS_APPEND = 32


def encode_value(value: Any) -> bytes:
    """A JSON value as the bytes stored in the KVS (compact, keys sorted)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


class KvsBatch:
    """Batches ops of one loop turn into one ``kvs.commit``."""

    def __init__(self, ctx: Any, namespace: str = "primary") -> None:
        self.ctx = ctx
        self.namespace = namespace
        self._ops: list[dict[str, Any]] = []
        self._futures: list[asyncio.Future[Any]] = []
        self._scheduled = False
        self._busy = False
        self._warned = False
        #: commits sent (for tests and stats)
        self.commits = 0

    def put(self, key: str, data: bytes) -> "asyncio.Future[Any]":
        return self._queue(key, data, 0)

    def append(self, key: str, data: bytes) -> "asyncio.Future[Any]":
        return self._queue(key, data, FLUX_KVS_APPEND)

    def _queue(self, key: str, data: bytes, flags: int) -> "asyncio.Future[Any]":
        from kvs.treeobj import val

        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._ops.append({"key": key, "flags": flags, "dirent": val(data)})
        self._futures.append(fut)
        if not self._scheduled and not self._busy:
            self._scheduled = True
            loop.call_soon(self._kick)
        return fut

    def _kick(self) -> None:
        self._scheduled = False
        if self._busy or not self._ops:
            return
        ops, futures = self._ops, self._futures
        self._ops, self._futures = [], []
        self._busy = True
        self.ctx.create_task(self._commit(ops, futures), name="kvs-batch-commit")

    async def _commit(self, ops: list[dict[str, Any]], futures: list[asyncio.Future[Any]]) -> None:
        try:
            resp = await self.ctx.rpc("kvs.commit", {"namespace": self.namespace, "flags": 0,
                                                     "ops": ops})
        except FluxError as exc:
            if exc.errno == errno.ENOSYS:
                if not self._warned:
                    self._warned = True
                    self.ctx.log.warning("no kvs service: writes are kept in memory only")
                _settle(futures, None, None)
            else:
                _settle(futures, None, exc)
        except asyncio.CancelledError:
            _settle(futures, None, FluxError(errno.ECANCELED, "kvs commit cancelled"))
            raise
        else:
            self.commits += 1
            _settle(futures, resp, None)
        finally:
            self._busy = False
            if self._ops:
                self._kick()

    async def flush(self) -> None:
        """Wait until everything queued so far is committed (errors ignored)."""
        pending = list(self._futures)
        if self._ops and not self._scheduled and not self._busy:
            self._kick()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        while self._busy:
            await asyncio.sleep(0.001)


def _settle(futures: list[asyncio.Future[Any]], result: Any, exc: BaseException | None) -> None:
    for fut in futures:
        if fut.done():
            continue
        if exc is None:
            fut.set_result(result)
        else:
            fut.set_exception(exc)


async def kvs_get(ctx: Any, key: str, namespace: str = "primary") -> bytes | None:
    """The bytes of KEY, or None when it (or the KVS service) does not exist."""
    import binascii

    try:
        resp = await ctx.rpc("kvs.lookup", {"key": key, "namespace": namespace, "flags": 0})
    except FluxError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOSYS):
            return None
        raise
    treeobj = resp.get("val") if isinstance(resp, dict) else None
    if not isinstance(treeobj, dict) or treeobj.get("type") != "val":
        raise FluxError(errno.EPROTO, f"kvs.lookup {key}: expected a val tree object")
    return binascii.a2b_base64(treeobj.get("data") or "")
