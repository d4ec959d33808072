"""flux.kvs: the KVS from Python, as in Flux's bindings.

Writes are staged in a transaction until committed as one ``kvs.commit``:
``put``, ``put_mkdir``, ``put_unlink`` and ``put_symlink`` use the
handle's transaction (``h.aux_txn``) unless given ``_kvstxn=`` (a
``KVSTxn``), and ``commit()`` / ``commit_async()`` send it.  Each
``KVSDir`` has its own transaction, shared with the subdirectories read
through it (``kd["sub"]``) and committed by its ``commit()``; committing
one ``KVSDir`` never commits another's writes.  A key is checked when it
is staged: an empty or invalid key is OSError EINVAL at once, and nothing
stays queued to fail a later commit.

Reads go straight to the ``kvs`` service.  Values are stored as JSON text
(``bytes``, or anything with ``raw=True``, as they are); ``get`` decodes
JSON, else returns the UTF-8 text, else the bytes.  A namespace argument
of None means ``$FLUX_KVS_NAMESPACE``, else ``primary``.
``kvs_watch_async()`` follows a key's values; ``kvs_checkpoint_lookup()``
reads the stored KVS checkpoint.

Also here: namespace functions, versions, raw lookups and watches
(``lookup``, ``watch``, ``watch_cancel``, ``val_data``) and
``eventlog_append``, which the ``flux kvs`` command is built on.
"""
from __future__ import annotations

import binascii
import errno
import os
import time
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from flux.constants import (
    FLUX_KVS_APPEND,
    FLUX_KVS_READDIR,
    FLUX_KVS_WAITCREATE,
    FLUX_KVS_WATCH,
    FLUX_KVS_WATCH_FULL,
    FLUX_KVS_WATCH_UNIQ,
    FLUX_RPC_NORESPONSE,
    FLUX_RPC_STREAMING,
)
from flux.rpc import RPC
from kvs.constants import PRIMARY_NAMESPACE

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = [
    "KVSDir",
    "KVSTxn",
    "KVSWatchFuture",
    "commit",
    "commit_async",
    "dropcache",
    "eventlog_append",
    "exists",
    "get",
    "get_dir",
    "get_key_direct",
    "get_version",
    "inner_walk",
    "isdir",
    "join",
    "kvs_checkpoint_lookup",
    "kvs_watch_async",
    "lookup",
    "lookup_wait",
    "namespace_create",
    "namespace_list",
    "namespace_remove",
    "put",
    "put_mkdir",
    "put_symlink",
    "put_unlink",
    "resolve_namespace",
    "val_data",
    "wait_version",
    "walk",
    "watch",
    "watch_cancel",
]

_DIR_TYPES = ("dir", "dirref", "hdir")
_b64encode = binascii.b2a_base64
_b64decode = binascii.a2b_base64
_dumps = orjson.dumps
_JSON_OPTS = orjson.OPT_NON_STR_KEYS


def resolve_namespace(namespace: str | None = None) -> str:
    """NAMESPACE, else ``$FLUX_KVS_NAMESPACE``, else ``primary``."""
    return namespace or os.environ.get("FLUX_KVS_NAMESPACE") or PRIMARY_NAMESPACE


_ns = resolve_namespace


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"KVS key must be a str, not {type(key).__name__}")
    return key


def _einval() -> OSError:
    return OSError(errno.EINVAL, os.strerror(errno.EINVAL))


def _staged_key(prefix: str, key: Any) -> str:
    """PREFIX + KEY, checked as libflux checks a key when an op is staged.

    An empty key, one the kvs service would refuse (a control character,
    an over-long component) or one naming the root directory is OSError
    EINVAL now, so that nothing bad is queued to fail a later commit.
    """
    from kvs.keys import ROOT, parse

    key = _key(key)
    if not key:
        raise _einval()
    full = prefix + key
    try:
        _parts, norm = parse(full)
    except OSError:
        raise _einval() from None
    if norm == ROOT:
        raise _einval()
    return full


def _val(data: bytes) -> dict[str, Any]:
    return {"ver": 1, "type": "val", "data": _b64encode(data, newline=False).decode()}


def val_data(obj: Mapping[str, Any]) -> bytes:
    """The bytes of an RFC 11 ``val`` object (ValueError naming the problem otherwise)."""
    if obj.get("type") != "val":
        raise ValueError(f"expected a val treeobj, got type {obj.get('type')!r}")
    try:
        return _b64decode(obj["data"], strict_mode=True)
    except (binascii.Error, KeyError, TypeError) as exc:
        raise ValueError(f"val treeobj has bad data: {exc}") from None


def _decode_value(data: bytes) -> Any:
    """JSON if it parses, else UTF-8 text, else the bytes (empty: None), as Flux does."""
    if not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


# -- transactions ----------------------------------------------------------------------


class KVSTxn:
    """Staged KVS operations, committed together.

    ``path`` is a base directory the keys are relative to.  As a context
    manager it commits on a clean exit.
    """

    def __init__(self, flux_handle: "Flux | None" = None, path: str = ".",
                 namespace: str | None = None) -> None:
        self.fhdl = flux_handle
        self.path = path
        self._prefix = "" if not path or path == "." else path.rstrip(".") + "."
        self.namespace = namespace
        self.ops: list[dict[str, Any]] = []

    def _add(self, key: str, flags: int, dirent: dict[str, Any] | None) -> None:
        self.ops.append({"key": _staged_key(self._prefix, key), "flags": flags,
                         "dirent": dirent})

    def put(self, key: str, value: Any, raw: bool = False) -> None:
        """Stage KEY = VALUE: bytes (or anything with ``raw=True``) as they are, else JSON.

        With ``raw=True`` a str is stored UTF-8 encoded; other types need an
        ``encode()`` method (AttributeError otherwise), as in Flux's bindings.
        """
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
        elif raw:
            data = value.encode()
        else:
            try:
                data = _dumps(value, option=_JSON_OPTS)
            except TypeError as exc:
                raise TypeError(f"{key}: value cannot be stored as JSON: {exc}") from None
        self._add(key, 0, _val(data))

    def put_raw(self, key: str, data: bytes) -> None:
        self._add(key, 0, _val(bytes(data)))

    def put_treeobj(self, key: str, obj: Mapping[str, Any]) -> None:
        """Stage an RFC 11 object as is (the kvs service validates it)."""
        self._add(key, 0, dict(obj))

    def append(self, key: str, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        self._add(key, FLUX_KVS_APPEND, _val(raw))

    def mkdir(self, key: str) -> None:
        self._add(key, 0, {"ver": 1, "type": "dir", "data": {}})

    def unlink(self, key: str) -> None:
        """Remove KEY (a directory with everything under it)."""
        self._add(key, 0, None)

    def symlink(self, key: str, target: str, target_namespace: str | None = None) -> None:
        data: dict[str, str] = {"target": _key(target)}
        if target_namespace is not None:
            data["namespace"] = target_namespace
        self._add(key, 0, {"ver": 1, "type": "symlink", "data": data})

    def clear(self) -> None:
        self.ops = []

    def commit_async(self, flags: int = 0) -> RPC:
        """Send the staged ops as one commit; the future's get() gives rootref and sequence."""
        return self._send(flags, self.namespace)

    def _send(self, flags: int, namespace: str | None) -> RPC:
        if self.fhdl is None:
            raise ValueError("KVSTxn has no Flux handle to commit with")
        ops, self.ops = self.ops, []
        return self.fhdl.rpc("kvs.commit", {"namespace": _ns(namespace), "flags": flags,
                                            "ops": ops})

    def commit(self, flags: int = 0) -> int:
        """Commit the staged ops and wait for it; 0, or -1 if nothing was staged."""
        if not self.ops:
            return -1
        self.commit_async(flags).get()
        return 0

    def __enter__(self) -> "KVSTxn":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.commit()


def _txn(flux_handle: "Flux", _kvstxn: KVSTxn | None = None) -> KVSTxn:
    """_KVSTXN, else the handle's own transaction (made on first use)."""
    if _kvstxn is not None:
        if not isinstance(_kvstxn, KVSTxn):
            raise TypeError(f"_kvstxn must be a flux.kvs.KVSTxn, not {type(_kvstxn).__name__}")
        return _kvstxn
    txn = getattr(flux_handle, "aux_txn", None)
    if txn is None:
        txn = KVSTxn(flux_handle)
        flux_handle.aux_txn = txn  # Flux's per-handle txn
    return txn


def put(flux_handle: "Flux", key: str, value: Any, _kvstxn: KVSTxn | None = None,
        raw: bool = False) -> None:
    """Stage KEY = VALUE (bytes, or anything with RAW, as they are; else JSON)."""
    _txn(flux_handle, _kvstxn).put(key, value, raw=raw)


def put_mkdir(flux_handle: "Flux", key: str, _kvstxn: KVSTxn | None = None) -> None:
    _txn(flux_handle, _kvstxn).mkdir(key)


def put_unlink(flux_handle: "Flux", key: str, _kvstxn: KVSTxn | None = None) -> None:
    _txn(flux_handle, _kvstxn).unlink(key)


def put_symlink(flux_handle: "Flux", key: str, target: str,
                target_namespace: str | None = None, _kvstxn: KVSTxn | None = None) -> None:
    _txn(flux_handle, _kvstxn).symlink(key, target, target_namespace)


def commit_async(flux_handle: "Flux", flags: int = 0, namespace: str | None = None,
                 _kvstxn: KVSTxn | None = None) -> RPC:
    """Commit the handle's (or _KVSTXN's) staged ops without waiting: the RPC future."""
    txn = _txn(flux_handle, _kvstxn)
    if _kvstxn is not None and namespace is None:
        namespace = txn.namespace
    return txn._send(flags, namespace)


def commit(flux_handle: "Flux", flags: int = 0, namespace: str | None = None,
           _kvstxn: KVSTxn | None = None) -> int:
    """Commit the handle's (or _KVSTXN's) staged ops; -1 if there were none.

    FLAGS: FLUX_KVS_NO_MERGE (not merged with other commits),
    FLUX_KVS_TXN_COMPACT, FLUX_KVS_SYNC (on stable storage before the answer).
    """
    txn = _kvstxn if _kvstxn is not None else getattr(flux_handle, "aux_txn", None)
    if txn is None or not txn.ops:
        return -1
    commit_async(flux_handle, flags, namespace, _kvstxn).get()
    return 0


# -- reads ---------------------------------------------------------------------------------


def lookup(flux_handle: "Flux", key: str, flags: int = 0, namespace: str | None = None,
           rootdir: Mapping[str, Any] | None = None) -> "RPC":
    """Send a ``kvs.lookup``; the future's get() gives ``{"key", "val": treeobj}``."""
    body: dict[str, Any] = {"key": _key(key), "flags": flags, "namespace": _ns(namespace)}
    if rootdir is not None:
        body["rootdir"] = rootdir
    return flux_handle.rpc("kvs.lookup", body)


def lookup_wait(flux_handle: "Flux", key: str, flags: int = FLUX_KVS_WAITCREATE,
                namespace: str | None = None) -> "RPC":
    """A one-response ``kvs-watch.lookup``: with WAITCREATE it answers once KEY exists."""
    return flux_handle.rpc("kvs-watch.lookup",
                           {"key": _key(key), "flags": flags, "namespace": _ns(namespace)})


def _plain(exc: OSError) -> OSError:
    """EXC as Flux's bindings raise a failed KVS call: its errno and strerror text."""
    return OSError(exc.errno, os.strerror(exc.errno or errno.EIO))


def _lookup_val(flux_handle: "Flux", key: str, flags: int, namespace: str | None) -> Any:
    try:
        return lookup(flux_handle, key, flags, namespace).get()["val"]
    except OSError as exc:
        raise _plain(exc) from None


def get_key_direct(flux_handle: "Flux", key: str, namespace: str | None = None) -> Any:
    """The decoded value at KEY; OSError ENOENT if missing, EISDIR for a directory."""
    return _decode_value(val_data(_lookup_val(flux_handle, key, 0, namespace)))


def get(flux_handle: "Flux", key: str, namespace: str | None = None,
        _kvstxn: KVSTxn | None = None) -> Any:
    """The decoded value at KEY, or a KVSDir (writing to _KVSTXN) if KEY is a directory."""
    try:
        return get_key_direct(flux_handle, key, namespace)
    except OSError as exc:
        if exc.errno != errno.EISDIR:
            raise
    return get_dir(flux_handle, key, namespace, _kvstxn)


def get_dir(flux_handle: "Flux", key: str = ".", namespace: str | None = None,
            _kvstxn: KVSTxn | None = None) -> "KVSDir":
    return KVSDir(flux_handle, key, namespace=namespace, _kvstxn=_kvstxn)


def exists(flux_handle: "Flux", key: str, namespace: str | None = None) -> bool:
    try:
        get_key_direct(flux_handle, key, namespace)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        if exc.errno == errno.EISDIR:
            return True
        raise
    return True


def isdir(flux_handle: "Flux", key: str, namespace: str | None = None) -> bool:
    try:
        get_key_direct(flux_handle, key, namespace)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        if exc.errno == errno.EISDIR:
            return True
        raise
    return False


def dropcache(flux_handle: "Flux") -> None:
    flux_handle.rpc("kvs.dropcache", {}).get()


def get_version(flux_handle: "Flux", namespace: str | None = None) -> int:
    """The namespace's root sequence number (starts at 0, +1 per new root)."""
    return int(flux_handle.rpc("kvs.getroot", {"namespace": _ns(namespace)}).get()["sequence"])


def wait_version(flux_handle: "Flux", version: int, namespace: str | None = None) -> int:
    """Block until the namespace's version is at least VERSION; returns it."""
    resp = flux_handle.rpc("kvs.wait-version",
                           {"namespace": _ns(namespace), "sequence": int(version)}).get()
    return int(resp["sequence"])


# -- namespaces -----------------------------------------------------------------------------


def namespace_create(flux_handle: "Flux", namespace: str, owner: int | None = None,
                     flags: int = 0) -> None:
    """Create NAMESPACE owned by OWNER (default: the calling user)."""
    flux_handle.rpc("kvs.namespace-create", {"namespace": namespace,
                                             "owner": os.getuid() if owner is None else owner,
                                             "flags": flags}).get()


def namespace_remove(flux_handle: "Flux", namespace: str) -> None:
    flux_handle.rpc("kvs.namespace-remove", {"namespace": namespace}).get()


def namespace_list(flux_handle: "Flux") -> list[str]:
    """Names of the namespaces the caller may use."""
    resp = flux_handle.rpc("kvs.namespace-list", {}).get()
    return [ns["namespace"] for ns in resp["namespaces"]]


# -- watches and eventlogs ------------------------------------------------------------------


def watch(flux_handle: "Flux", key: str, flags: int = FLUX_KVS_WATCH,
          namespace: str | None = None) -> "RPC":
    """A ``kvs-watch.lookup`` stream: each get() is ``{"key", "val"}``; ENODATA ends it."""
    return flux_handle.rpc("kvs-watch.lookup",
                           {"key": _key(key), "flags": flags, "namespace": _ns(namespace)},
                           flags=FLUX_RPC_STREAMING)


def watch_cancel(flux_handle: "Flux", future: "RPC") -> None:
    """Ask kvs-watch to end FUTURE's stream (it then ends with ENODATA)."""
    flux_handle.rpc("kvs-watch.cancel", {"matchtag": future.matchtag}, flags=FLUX_RPC_NORESPONSE)


def eventlog_append(flux_handle: "Flux", key: str, name: str,
                    context: Mapping[str, Any] | None = None, timestamp: float | None = None,
                    namespace: str | None = None) -> dict[str, Any]:
    """Append one RFC 18 event to the eventlog at KEY and commit; returns rootref and sequence."""
    from eventstore.eventlog import encode_event

    line = encode_event(name, context, time.time() if timestamp is None else timestamp)
    txn = KVSTxn(flux_handle, namespace=namespace)
    txn.append(key, line)
    return txn.commit_async().get()


# -- directories ----------------------------------------------------------------------------


class KVSDir(MutableMapping):  # type: ignore[type-arg]
    """A directory as a mapping: reads from a snapshot taken at construction,
    writes staged on this KVSDir's own transaction until ``commit()``.

    ``kd["sub"]`` (a subdirectory) shares this transaction, so one
    ``commit()`` commits both; ``_kvstxn=`` makes it use that ``KVSTxn``.
    """

    class KVSDirIterator(Iterator):  # type: ignore[type-arg]
        def __init__(self, kvsdir: "KVSDir") -> None:
            self._it = iter(list(kvsdir._entries))

        def __iter__(self) -> "KVSDir.KVSDirIterator":
            return self

        def __next__(self) -> str:
            return next(self._it)

        def next(self) -> str:
            return self.__next__()

    def __init__(self, flux_handle: "Flux | None" = None, path: str = ".",
                 handle: Mapping[str, Any] | None = None, namespace: str | None = None,
                 _kvstxn: KVSTxn | None = None) -> None:
        if flux_handle is None:
            raise ValueError("KVSDir needs a Flux handle")
        self.fhdl = flux_handle
        self.path = path
        self.namespace = namespace
        self._prefix = "" if not path or path == "." else path.rstrip(".") + "."
        if handle is None:
            handle = _lookup_val(flux_handle, path, FLUX_KVS_READDIR, namespace)
        if handle.get("type") != "dir":
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        self._entries: dict[str, Any] = dict(handle["data"])
        if _kvstxn is not None and not isinstance(_kvstxn, KVSTxn):
            raise TypeError(f"_kvstxn must be a flux.kvs.KVSTxn, not {type(_kvstxn).__name__}")
        # keys are staged from the root ("absolute"), so subdirectories may share it
        self.kvstxn = _kvstxn if _kvstxn is not None else KVSTxn(flux_handle, ".", namespace)

    def key_at(self, key: str) -> str:
        """The full key of KEY in this directory."""
        return self._prefix + key

    def commit(self, flags: int = 0) -> int:
        """Commit this directory's staged writes (0; -1 if there were none)."""
        if not self.kvstxn.ops:
            return -1
        self.kvstxn._send(flags, self.namespace).get()
        return 0

    def commit_async(self, flags: int = 0) -> RPC:
        """Send this directory's staged writes; a Future whose get() gives rootref, sequence."""
        return self.kvstxn._send(flags, self.namespace)

    def exists(self, name: str) -> bool:
        return exists(self.fhdl, self.key_at(name), self.namespace)

    def __getitem__(self, key: str) -> Any:
        try:
            return get(self.fhdl, self.key_at(key), self.namespace, _kvstxn=self.kvstxn)
        except OSError:
            raise KeyError(f"{key} not found under directory {self.path}") from None

    def __setitem__(self, key: str, value: Any) -> None:
        self.kvstxn.put(self.key_at(key), value)

    def __delitem__(self, key: str) -> None:
        self.kvstxn.unlink(self.key_at(key))

    def __iter__(self) -> Iterator[str]:
        return self.KVSDirIterator(self)

    def __len__(self) -> int:
        return len(self._entries)

    def _isdir(self, name: str) -> bool:
        return self._entries[name].get("type") in _DIR_TYPES

    def files(self) -> Iterator[str]:
        """Names of the entries that are not directories (values, symlinks)."""
        return (name for name in list(self._entries) if not self._isdir(name))

    def directories(self) -> Iterator[str]:
        return (name for name in list(self._entries) if self._isdir(name))

    def list_all(self) -> tuple[list[str], list[str]]:
        """(files, directories)."""
        return list(self.files()), list(self.directories())

    def fill(self, contents: Mapping[str, Any]) -> None:
        """Write CONTENTS (``a.b`` keys make subdirectories, dict values are JSON) and commit."""
        if contents is None:
            raise ValueError("contents must not be None")
        try:
            for key, value in contents.items():
                self[key] = value
        finally:
            self.commit()

    def mkdir(self, key: str, contents: Mapping[str, Any] | None = None) -> None:
        """Create subdirectory KEY (committed), then fill it with CONTENTS if given."""
        self.kvstxn.mkdir(self.key_at(key))
        self.commit()
        if contents is not None:
            KVSDir(self.fhdl, self.key_at(key), namespace=self.namespace).fill(contents)

    def __enter__(self) -> "KVSDir":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.commit()

    def __repr__(self) -> str:
        return f"KVSDir({self.path!r}, {len(self._entries)} entries)"


# -- watches as futures, checkpoints ------------------------------------------------------


class KVSWatchFuture(RPC):
    """The stream of a key's values, from ``kvs_watch_async()`` (a ``kvs-watch.lookup``).

    ``get()`` gives the current value (decoded as ``get()`` decodes), then
    each change; None once the stream has ended.  A missing key is OSError
    ENOENT unless the watch waits for its creation.
    """

    def __init__(self, flux_handle: "Flux", key: str, flags: int,
                 namespace: str | None = None) -> None:
        self.needs_cancel = False
        super().__init__(flux_handle, "kvs-watch.lookup",
                         {"key": _key(key), "flags": flags, "namespace": _ns(namespace)},
                         flags=FLUX_RPC_STREAMING)
        self.key = key
        self.needs_cancel = True

    def get(self, autoreset: bool = True) -> Any:  # type: ignore[override]
        """The current value (then reset, unless AUTORESET is False); None at the end."""
        try:
            msg = self._current()
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                self.needs_cancel = False
                return None
            self.needs_cancel = False
            self.raise_if_handle_exception()
            raise _plain(exc) from None
        value = _decode_value(val_data(msg.payload["val"]))
        if autoreset:
            self.reset()
        return value

    def cancel(self, stop: bool = False) -> None:
        """End the stream (it then ends with None); STOP: no more continuation calls."""
        if self.needs_cancel:
            handle = self.get_flux()
            if handle is not None:
                watch_cancel(handle, self)
        self.needs_cancel = False
        if stop:
            self.stop()

    def __del__(self) -> None:
        if getattr(self, "needs_cancel", False):
            try:
                self.cancel()
            except Exception:  # noqa: BLE001 - the handle may be gone already
                pass


def kvs_watch_async(flux_handle: "Flux", key: str, namespace: str | None = None,
                    waitcreate: bool = False, uniq: bool = False,
                    full: bool = False) -> KVSWatchFuture:
    """Follow KEY: a KVSWatchFuture whose get() gives its value now, then each change.

    WAITCREATE: wait for a missing key to appear (else ENOENT); UNIQ: skip
    writes that leave the value unchanged; FULL: also notice changes that
    do not name the key (a parent directory replaced; ENOENT if removed).
    """
    flags = FLUX_KVS_WATCH
    if waitcreate:
        flags |= FLUX_KVS_WAITCREATE
    if uniq:
        flags |= FLUX_KVS_WATCH_UNIQ
    if full:
        flags |= FLUX_KVS_WATCH_FULL
    return KVSWatchFuture(flux_handle, key, flags, namespace)


def kvs_checkpoint_lookup(flux_handle: "Flux", cache_bypass: bool = False) -> list[dict[str, Any]]:
    """The stored KVS checkpoints, most recent first: dicts with ``version``,
    ``sequence``, ``timestamp`` and ``rootref``.  OSError ENOENT when there is none.

    CACHE_BYPASS asks the backing store directly (``content-backing.checkpoint-get``).
    """
    topic = "content-backing.checkpoint-get" if cache_bypass else "content.checkpoint-get"
    return flux_handle.rpc(topic).get()["checkpoints"]


def join(*args: str) -> str:
    """Join key components with ``.``, skipping empty ones."""
    return ".".join(a for a in args if a)


def inner_walk(kvsdir: KVSDir, curr_dir: str, topdown: bool = False,
               namespace: str | None = None) -> Iterator[tuple[str, Iterator[str], Iterator[str]]]:
    if topdown:
        yield (curr_dir, kvsdir.directories(), kvsdir.files())
    for name in kvsdir.directories():
        sub = get_dir(kvsdir.fhdl, kvsdir.key_at(name), namespace or kvsdir.namespace)
        yield from inner_walk(sub, join(curr_dir, name), topdown, namespace)
    if not topdown:
        yield (curr_dir, kvsdir.directories(), kvsdir.files())


def walk(directory: "str | KVSDir", topdown: bool = False, flux_handle: "Flux | None" = None,
         namespace: str | None = None) -> Iterator[tuple[str, Iterator[str], Iterator[str]]]:
    """Walk a directory like os.walk(): (path, directories, files) for each directory."""
    if not isinstance(directory, KVSDir):
        if flux_handle is None:
            raise ValueError("If directory is a key, flux_handle must be specified")
        directory = KVSDir(flux_handle, directory, namespace=namespace)
    return inner_walk(directory, "", topdown, namespace)
