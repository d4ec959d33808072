"""The ``job-info`` broker module (RFC 41): read a job's KVS data, follow its eventlogs.

- ``job-info.lookup {"id", "keys", "flags"}`` -> ``{"id", key: value...}``:
  values are the KVS values as strings; with flag 1 (json_decode)
  ``jobspec`` and ``R`` come as objects; with flag 2 (current) the
  ``jobspec-update`` / ``resource-update`` events of the eventlog are
  applied to them first.  ENOENT names an unknown job or a missing key.
- ``job-info.eventlog-watch {"id", "path", "flags"}`` (streaming): one
  ``{"event": "<RFC 18 line>\\n"}`` per entry of ``job.<id>.<path>``, the
  entries already there first.  The stream ends with ENODATA at the log's
  terminal entry (``clean`` for ``eventlog``, ``done`` for
  ``guest.exec.eventlog``, eof on every stream and rank for
  ``guest.output``, eof for ``guest.input``), when the job becomes
  inactive (for any other log: its remaining entries are sent first), when
  the job's directory is removed (purge, lost+found), on
  ``job-info.eventlog-watch-cancel {"matchtag"}``
  (or ``job-info.cancel``), and silently when the client disconnects.
  Flag 1 (waitcreate) waits for a log that does not exist yet (otherwise
  ENOENT); ``guest.*`` logs are always waited for, since they appear only
  once the job runs (as in Flux), and such a wait ends with the job.
- ``job-info.update-lookup {"id", "key", "flags": 0}`` -> ``{key: object}``:
  the job's ``jobspec`` or ``R`` with its ``jobspec-update`` /
  ``resource-update`` events applied (EINVAL for any other key).
- ``job-info.update-watch`` (streaming, same request): that object, then
  again after each new update, until the job ends (ENODATA); ended early by
  ``job-info.update-watch-cancel {"matchtag"}`` (or ``job-info.cancel``).
- Guests may read only their own jobs (EPERM); the job's owner is the
  userid of its ``submit`` event.

Watches follow the log through ``kvs-watch`` (append mode: only new bytes
travel), so a watch costs nothing while its log does not change.  The pure
parts (line splitting, terminal-entry detection, the current jobspec/R)
are functions and small classes below, tested without an instance.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import errno
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from broker.module import Module, Stream, request_handler
from flux.constants import (
    FLUX_JOB_EVENT_WATCH_WAITCREATE,
    FLUX_JOB_LOOKUP_CURRENT,
    FLUX_JOB_LOOKUP_JSON_DECODE,
    FLUX_ROLE_OWNER,
)
from flux.errors import FluxError
from flux.job.JobID import JobID
from flux.message import Message
from kvs.constants import (
    FLUX_KVS_TREEOBJ,
    FLUX_KVS_WAITCREATE,
    FLUX_KVS_WATCH,
    FLUX_KVS_WATCH_APPEND,
)

__all__ = ["JobInfoModule", "LineSplitter", "LogEnd", "current_jobspec", "current_R",
           "log_owner", "check_path", "value_text"]

MAIN_LOG = "eventlog"
# the entry after which a log gets nothing more (None: ends with the job)
_TERMINAL = {"eventlog": "clean", "guest.exec.eventlog": "done"}
_LOOKUP_FLAGS = FLUX_JOB_LOOKUP_JSON_DECODE | FLUX_JOB_LOOKUP_CURRENT
_JSON_KEYS = ("jobspec", "R")


# -- pure helpers ----------------------------------------------------------------------

def check_path(path: Any, what: str = "path") -> str:
    """A key relative to the job directory; FluxError(EINVAL) names what is wrong."""
    if not isinstance(path, str) or not path:
        raise FluxError(errno.EPROTO, f"{what} must be a non-empty string, got {path!r}")
    parts = path.split(".")
    if any(not p for p in parts) or any(c.isspace() or c == "/" for c in path):
        raise FluxError(errno.EINVAL, f"invalid {what} {path!r}: must be a dotted KVS key "
                                      "relative to the job directory")
    return path


def watch_bytes(resp: Mapping[str, Any], key: str) -> bytes:
    """The bytes of a kvs-watch response (``raw`` for in-process watchers, else ``val``)."""
    raw = resp.get("raw")
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw)
    return value_text(resp["val"], key)


def value_text(val: Mapping[str, Any], key: str) -> bytes:
    """The bytes of a ``val`` treeobj from a kvs lookup (EISDIR for a directory)."""
    kind = val.get("type") if isinstance(val, Mapping) else None
    if kind != "val":
        if kind in ("dir", "dirref", "hdir"):
            raise FluxError(errno.EISDIR, f"{key}: is a directory")
        raise FluxError(errno.EPROTO, f"{key}: unexpected KVS object {kind!r}")
    try:
        return base64.b64decode(val["data"], validate=True)
    except (binascii.Error, KeyError, TypeError) as exc:
        raise FluxError(errno.EPROTO, f"{key}: bad val object: {exc}") from None


def _events(data: bytes, key: str) -> list[dict[str, Any]]:
    from eventstore.eventlog import EventlogError, decode_events

    try:
        return decode_events(data)
    except EventlogError as exc:
        raise FluxError(errno.EINVAL, f"{key}: {exc}") from None


def log_owner(eventlog: bytes, key: str) -> int:
    """The userid of the ``submit`` entry that starts a job eventlog."""
    nl = eventlog.find(b"\n")
    first = eventlog[:nl] if nl >= 0 else eventlog
    try:
        entry = orjson.loads(first)
        if entry["name"] != "submit":
            raise ValueError("first entry is not submit")
        userid = entry["context"]["userid"]
        if isinstance(userid, bool) or not isinstance(userid, int):
            raise ValueError("submit userid is not an integer")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FluxError(errno.EINVAL, f"{key}: cannot read the job owner: {exc}") from None
    return userid


def _set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    node = doc
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def current_jobspec(jobspec: Mapping[str, Any],
                    events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The jobspec with every ``jobspec-update`` entry applied, in order (RFC 21)."""
    doc = copy.deepcopy(dict(jobspec))
    for event in events:
        if event.get("name") == "jobspec-update":
            for dotted, value in (event.get("context") or {}).items():
                _set_path(doc, dotted, copy.deepcopy(value))
    return doc


def current_R(R: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """R with every ``resource-update`` entry applied (RFC 21: ``expiration``)."""
    doc = copy.deepcopy(dict(R))
    for event in events:
        if event.get("name") == "resource-update":
            ctx = event.get("context") or {}
            if "expiration" in ctx:
                doc.setdefault("execution", {})["expiration"] = ctx["expiration"]
    return doc


class LineSplitter:
    """Cuts a byte stream into complete lines; ``offset`` counts every byte fed."""

    __slots__ = ("_tail", "offset")

    def __init__(self) -> None:
        self._tail = b""
        self.offset = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.offset += len(data)
        if self._tail:
            data = self._tail + data
        lines = data.split(b"\n")
        self._tail = lines.pop()
        return lines


class LogEnd:
    """Knows when an eventlog is complete: its terminal entry has been seen.

    ``eventlog`` ends at ``clean``, ``guest.exec.eventlog`` at ``done``,
    ``guest.input`` at a data entry with ``eof``; ``guest.output`` once
    every stream of the header's ``count`` has had ``eof`` (or a
    ``redirect``) from that many ranks, or from ``"all"``.  Any other log
    ends only with the job.
    """

    __slots__ = ("path", "counts", "closed")

    def __init__(self, path: str) -> None:
        self.path = path
        self.counts: dict[str, int] | None = None
        self.closed: dict[str, set[int] | None] = {}

    def may_end(self, line: bytes) -> bool:
        """False only for a line that cannot matter to the end of the log.

        A big ``data`` entry of an output log without ``eof`` is most of a
        job's output; telling so without parsing it saves a JSON decode of
        every chunk.  In doubt (the text appears anywhere), parse.
        """
        if self.path not in ("guest.output", "guest.input"):
            return True
        return b'"eof"' in line or b'"data"' not in line[:160]

    def feed(self, entry: Mapping[str, Any]) -> bool:
        name = entry.get("name")
        terminal = _TERMINAL.get(self.path)
        if terminal is not None:
            return name == terminal
        ctx = entry.get("context") or {}
        if self.path == "guest.input":
            return name == "data" and ctx.get("eof") is True
        if self.path != "guest.output":
            return False
        if name == "header":
            count = ctx.get("count")
            if isinstance(count, Mapping):
                self.counts = {str(k): int(v) for k, v in count.items()
                               if isinstance(v, int) and not isinstance(v, bool)}
            return self._complete()
        if (name == "data" and ctx.get("eof") is True) or name == "redirect":
            self._close(ctx.get("stream"), ctx.get("rank"))
            return self._complete()
        return False

    def _close(self, stream: Any, rank: Any) -> None:
        if not isinstance(stream, str):
            return
        if rank == "all":
            self.closed[stream] = None          # every rank
            return
        ranks = self.closed.setdefault(stream, set())
        if ranks is None:
            return
        if isinstance(rank, int) and not isinstance(rank, bool):
            ranks.add(rank)
        elif isinstance(rank, str):
            from flux.idset import IDset

            try:
                ranks.update(IDset(rank).expand())
            except (ValueError, TypeError):
                return

    def _complete(self) -> bool:
        if self.counts is None:
            return False
        for stream, count in self.counts.items():
            ranks = self.closed.get(stream, set())
            if ranks is not None and len(ranks) < count:
                return False
        return True


# -- the module ------------------------------------------------------------------------

class _Watch:
    """One eventlog-watch request being served."""

    __slots__ = ("mod", "msg", "stream", "jobid", "jobdir", "key", "path", "flags", "lines",
                 "end", "tasks", "done")

    def __init__(self, mod: "JobInfoModule", msg: Message, stream: Stream, jobid: int,
                 path: str, flags: int) -> None:
        self.mod = mod
        self.msg = msg
        self.stream = stream
        self.jobid = jobid
        self.path = path
        self.jobdir = JobID(jobid).kvs
        self.key = f"{self.jobdir}.{path}"
        self.flags = flags
        self.lines = LineSplitter()
        self.end = LogEnd(path)
        self.tasks: list[asyncio.Task[Any]] = []
        self.done = False

    def deliver(self, data: bytes) -> bool:
        """Send the complete entries in DATA; True once the terminal entry went out."""
        for line in self.lines.feed(data):
            if not line:
                continue
            self.stream.send({"event": line.decode("utf-8", "replace") + "\n"})
            if not self.end.may_end(line):
                continue  # cannot be a terminal entry: no need to parse it
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # passed on as it is; the reader reports it
            if isinstance(entry, dict) and self.end.feed(entry):
                self.finish(errno.ENODATA)
                return True
        return False

    def finish(self, errnum: int, text: str | None = None) -> None:
        if self.done:
            return
        self.stream.error(errnum, text)
        self.cancelled()

    def forget(self) -> None:
        self.done = True
        mod = self.mod
        mod._watches.pop((self.msg.sender, self.msg.matchtag), None)
        same_dir = mod._by_dir.get(self.jobdir)
        if same_dir is not None:
            same_dir.discard(self)
            if not same_dir:
                del mod._by_dir[self.jobdir]

    def stop_tasks(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current and not task.done():
                task.cancel()

    def cancelled(self) -> None:
        """The stream has ended (or the client canceled or went away): stop the work."""
        self.forget()
        self.stop_tasks()


class JobInfoModule(Module):
    """Serves job-info.lookup and job-info.eventlog-watch (RFC 41)."""

    name = "job-info"

    async def start(self) -> None:
        self._watches: dict[tuple[str | None, int], _Watch] = {}
        self._update_watches: dict[tuple[str | None, int],
                                   tuple[Stream, asyncio.Task[Any]]] = {}
        # job dir -> watches of that job's logs, to notice the dir being removed
        self._by_dir: dict[str, set[_Watch]] = {}
        self._attached = False
        try:
            await self.ctx.rpc("kvs.watch-attach", {"listener": self}, nodeid=self.ctx.rank)
            self._attached = True
        except OSError as exc:
            self.ctx.log.warning("no in-process kvs: watches of purged jobs end only when "
                                 "their client cancels", error=str(exc))

    async def stop(self) -> None:
        if self._attached:
            try:
                await self.ctx.rpc("kvs.watch-detach", {"listener": self},
                                   nodeid=self.ctx.rank)
            except OSError:
                pass  # the kvs module may already be gone
        for watch in list(self._watches.values()):
            watch.finish(errno.ENOSYS, "job-info module unloaded")
        for stream, task in list(self._update_watches.values()):
            stream.error(errno.ENOSYS, "job-info module unloaded")
            task.cancel()

    # -- from the kvs module: job directories removed (purge, lost+found) ------------

    def setroot(self, namespace: str, rootref: str, sequence: int,
                keys: frozenset[str]) -> None:
        """A commit wrote KEYS: a watched job's directory (or a parent) may be gone."""
        by_dir = self._by_dir
        if not by_dir or namespace != "primary":
            return
        hit: list[_Watch] = []
        for key in keys:
            dots = key.count(".")
            if dots > 4 or not key.startswith("job"):
                continue   # a key inside a job directory, or not about jobs
            if dots == 4:
                hit.extend(by_dir.get(key, ()))
            else:
                prefix = key + "."
                for jobdir, watches in by_dir.items():
                    if jobdir.startswith(prefix) or key == "job":
                        hit.extend(watches)
        for watch in hit:
            self.ctx.create_task(self._check_gone(watch), name=f"job gone? {watch.key}")

    def namespace_removed(self, namespace: str) -> None:
        """Not about jobs: the primary namespace is never removed."""

    async def _check_gone(self, watch: _Watch) -> None:
        if watch.done:
            return
        try:
            await self._main_log(watch.jobid)
        except FluxError as exc:
            if exc.errno == errno.ENOENT:
                watch.finish(errno.ENODATA)

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _request(msg: Message) -> tuple[int, dict[str, Any]]:
        body = msg.payload
        if not isinstance(body, dict):
            raise FluxError(errno.EPROTO, f"{msg.topic}: payload must be a JSON object")
        jobid = body.get("id")
        if isinstance(jobid, bool) or not isinstance(jobid, int) or not 0 <= jobid < 1 << 64:
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'id' must be a job id (integer), "
                                          f"got {jobid!r}")
        return jobid, body

    async def _get(self, key: str) -> bytes:
        resp = await self.ctx.rpc("kvs.lookup", {"key": key, "flags": 0})
        return value_text(resp["val"], key)

    async def _main_log(self, jobid: int) -> bytes:
        key = f"{JobID(jobid).kvs}.{MAIN_LOG}"
        try:
            return await self._get(key)
        except FluxError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise FluxError(errno.ENOENT, f"job {JobID(jobid).f58}: unknown job") from None
            raise

    @staticmethod
    def _check_owner(msg: Message, jobid: int, eventlog: bytes) -> None:
        if msg.rolemask & FLUX_ROLE_OWNER:
            return
        key = f"{JobID(jobid).kvs}.{MAIN_LOG}"
        if log_owner(eventlog, key) != msg.userid:
            raise FluxError(errno.EPERM, f"job {JobID(jobid).f58}: Operation not permitted "
                                         "(not your job)")

    # -- lookup ----------------------------------------------------------------------

    @request_handler("job-info.lookup", allow_guest=True)
    async def lookup(self, msg: Message) -> dict[str, Any]:
        jobid, body = self._request(msg)
        keys = body.get("keys")
        if not isinstance(keys, list) or not keys:
            raise FluxError(errno.EPROTO, "job-info.lookup: 'keys' must be a non-empty array "
                                          "of strings")
        for key in keys:
            check_path(key, "key")
        flags = body.get("flags", 0)
        if isinstance(flags, bool) or not isinstance(flags, int) or flags & ~_LOOKUP_FLAGS:
            raise FluxError(errno.EPROTO, f"job-info.lookup: unknown flags {flags!r}")
        return await self._lookup_keys(msg, jobid, list(dict.fromkeys(keys)), flags)

    async def _lookup_keys(self, msg: Message, jobid: int, wanted: list[str],
                           flags: int) -> dict[str, Any]:
        """``job-info.lookup``'s answer for the (checked, distinct) keys WANTED."""
        base = JobID(jobid).kvs
        results = await asyncio.gather(self._main_log(jobid),
                                       *(self._get(f"{base}.{k}") for k in wanted if k != MAIN_LOG),
                                       return_exceptions=True)
        eventlog = results[0]
        if isinstance(eventlog, BaseException):
            raise eventlog
        self._check_owner(msg, jobid, eventlog)
        values: dict[str, bytes] = {MAIN_LOG: eventlog}
        for key, res in zip((k for k in wanted if k != MAIN_LOG), results[1:]):
            if isinstance(res, BaseException):
                if isinstance(res, OSError) and res.errno in (errno.ENOENT, errno.ENOTDIR):
                    raise FluxError(errno.ENOENT, f"job {JobID(jobid).f58}: key {key!r} "
                                                  "not found")
                raise res
            values[key] = res
        events = _events(eventlog, f"{base}.{MAIN_LOG}") if flags & FLUX_JOB_LOOKUP_CURRENT \
            else []
        out: dict[str, Any] = {"id": jobid}
        for key in wanted:
            raw = values[key]
            if key in _JSON_KEYS and flags & _LOOKUP_FLAGS:
                try:
                    doc = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise FluxError(errno.EINVAL, f"job {JobID(jobid).f58}: {key} is not "
                                                  f"JSON: {exc}") from None
                if flags & FLUX_JOB_LOOKUP_CURRENT and isinstance(doc, dict):
                    doc = current_jobspec(doc, events) if key == "jobspec" \
                        else current_R(doc, events)
                out[key] = doc if flags & FLUX_JOB_LOOKUP_JSON_DECODE \
                    else orjson.dumps(doc).decode()
            else:
                out[key] = raw.decode("utf-8", "replace")
        return out

    @staticmethod
    def _update_key(body: Mapping[str, Any], what: str) -> str:
        flags = body.get("flags", 0)
        if isinstance(flags, bool) or not isinstance(flags, int) or flags != 0:
            raise FluxError(errno.EPROTO, f"{what} request rejected with invalid flag")
        key = body.get("key")
        if key not in _JSON_KEYS:
            raise FluxError(errno.EINVAL, f"{what} unsupported key specified")
        return str(key)

    @request_handler("job-info.update-lookup", allow_guest=True)
    async def update_lookup(self, msg: Message) -> dict[str, Any]:
        """``{"id", "key": "jobspec"|"R", "flags": 0}`` -> ``{key: object}``, updates applied."""
        jobid, body = self._request(msg)
        key = self._update_key(body, "update-lookup")
        resp = await self._lookup_keys(msg, jobid, [key], _LOOKUP_FLAGS)
        return {key: resp[key]}

    @request_handler("job-info.update-watch", allow_guest=True, streaming=True)
    def update_watch(self, msg: Message) -> None:
        """As update-lookup, then the object again after each update, until the job ends."""
        jobid, body = self._request(msg)
        key = self._update_key(body, "update-watch")
        stream = self.ctx.stream(msg)
        tag = (msg.sender, msg.matchtag)
        task = self.ctx.create_task(self._serve_update_watch(stream, msg, jobid, key),
                                    name=f"update-watch {JobID(jobid).f58} {key}")
        self._update_watches[tag] = (stream, task)
        stream.on_cancel = lambda: self._stop_update_watch(tag)
        return None

    def _stop_update_watch(self, tag: tuple[str | None, int]) -> None:
        """End an update watch (ENODATA unless its stream has already ended)."""
        stream, task = self._update_watches.pop(tag, (None, None))
        if stream is None or task is None:
            return
        stream.end()
        if task is not asyncio.current_task() and not task.done():
            task.cancel()

    async def _serve_update_watch(self, stream: Stream, msg: Message, jobid: int,
                                  key: str) -> None:
        tag = (msg.sender, msg.matchtag)
        update = "jobspec-update" if key == "jobspec" else "resource-update"
        apply = current_jobspec if key == "jobspec" else current_R
        try:
            doc = (await self._lookup_keys(msg, jobid, [key], FLUX_JOB_LOOKUP_JSON_DECODE))[key]
            logkey = f"{JobID(jobid).kvs}.{MAIN_LOG}"
            lines = LineSplitter()
            first = True
            # the first response holds the whole log so far: its updates make the first
            # answer; each later update entry makes one more
            async for resp in self.ctx.rpc_stream("kvs-watch.lookup",
                                                  {"key": logkey, "raw": True,
                                                   "flags": FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND}):
                ended = False
                for line in lines.feed(watch_bytes(resp, logkey)):
                    if not line.startswith(b"{"):
                        continue
                    entry = orjson.loads(line)
                    if entry.get("name") == update:
                        doc = apply(doc, [entry])
                        if not first:
                            stream.send({key: doc})
                    elif entry.get("name") == "clean":
                        ended = True
                if first:
                    stream.send({key: doc})
                    first = False
                if ended:
                    break
            stream.end()
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            stream.error(exc.errno or errno.EIO, exc.strerror or str(exc))
        except Exception as exc:  # noqa: BLE001 - the stream must end whatever happens
            self.ctx.log.exception("update watch failed", jobid=jobid)
            stream.error(errno.EIO, f"job-info: internal error: {exc}")
        finally:
            self._update_watches.pop(tag, None)

    @request_handler("job-info.update-watch-cancel", allow_guest=True)
    def update_watch_cancel(self, msg: Message) -> None:
        self._stop_update_watch(_cancel_key(msg, "job-info.update-watch-cancel"))
        return None

    # -- eventlog watch --------------------------------------------------------------

    @request_handler("job-info.eventlog-watch", allow_guest=True, streaming=True)
    def eventlog_watch(self, msg: Message) -> None:
        jobid, body = self._request(msg)
        path = check_path(body.get("path", MAIN_LOG))
        flags = body.get("flags", 0)
        if isinstance(flags, bool) or not isinstance(flags, int) \
                or flags & ~FLUX_JOB_EVENT_WATCH_WAITCREATE:
            raise FluxError(errno.EPROTO, f"job-info.eventlog-watch: unknown flags {flags!r}")
        stream = self.ctx.stream(msg)
        watch = _Watch(self, msg, stream, jobid, path, flags)
        self._watches[(msg.sender, msg.matchtag)] = watch
        self._by_dir.setdefault(watch.jobdir, set()).add(watch)
        stream.on_cancel = watch.cancelled
        watch.tasks.append(self.ctx.create_task(self._guarded(watch, self._serve_watch, watch),
                                                name=f"eventlog-watch {watch.key}"))
        return None

    async def _guarded(self, watch: _Watch, fn: Any, *args: Any) -> None:
        """Run one of a watch's tasks; whatever goes wrong, the stream ends.

        Takes the coroutine function, not a coroutine, so that a task
        cancelled before it starts (at unload) leaves no coroutine unawaited.
        """
        try:
            await fn(*args)
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            watch.finish(exc.errno or errno.EIO, exc.strerror or str(exc))
        except Exception as exc:  # noqa: BLE001 - the stream must end whatever happens
            self.ctx.log.exception("eventlog watch failed", key=watch.key)
            watch.finish(errno.EIO, f"job-info: internal error: {exc}")

    async def _serve_watch(self, watch: _Watch) -> None:
        main_log: bytes | None = None
        if not watch.msg.rolemask & FLUX_ROLE_OWNER or watch.path != MAIN_LOG:
            try:
                main_log = await self._main_log(watch.jobid)
            except FluxError as exc:
                waiting = watch.flags & FLUX_JOB_EVENT_WATCH_WAITCREATE
                if exc.errno != errno.ENOENT or not waiting or watch.path != MAIN_LOG \
                        or not watch.msg.rolemask & FLUX_ROLE_OWNER:
                    raise
            if main_log is not None:
                self._check_owner(watch.msg, watch.jobid, main_log)
        if watch.path != MAIN_LOG:
            assert main_log is not None
            watch.tasks.append(self.ctx.create_task(self._guarded(watch, self._follow_job, watch),
                                                    name=f"job end {watch.key}"))
        if watch.path.startswith("guest."):
            await self._serve_guest(watch)
            return
        flags = FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND
        if watch.flags & FLUX_JOB_EVENT_WATCH_WAITCREATE:
            flags |= FLUX_KVS_WAITCREATE
        try:
            async for resp in self.ctx.rpc_stream("kvs-watch.lookup",
                                                  {"key": watch.key, "flags": flags,
                                                   "raw": True}):
                if watch.deliver(watch_bytes(resp, watch.key)):
                    return
        except FluxError as exc:
            if exc.errno == errno.ENOENT and watch.lines.offset > 0:
                # the log was there and is gone: the job was purged
                watch.finish(errno.ENODATA)
                return
            if exc.errno == errno.ENOENT:
                what = "unknown job" if watch.path == MAIN_LOG \
                    else f"{watch.path}: no such eventlog"
                raise FluxError(errno.ENOENT, f"job {JobID(watch.jobid).f58}: {what}") from None
            raise
        watch.finish(errno.ENODATA)

    async def _serve_guest(self, watch: _Watch) -> None:
        """A guest log: in the job's namespace while it runs, in its directory after.

        Guest logs appear only once the job runs, so they are always waited
        for (the watch still ends with the job), as Flux's job-info does.
        While the job runs, ``job.<id>.guest`` links to namespace
        ``job-<id>``, which is watched directly (commits to it do not
        touch the primary namespace); when exec moves the namespace into
        the job directory and removes it, the watch goes on from the final
        copy where it left off.
        """
        namespace = f"job-{watch.jobid}"
        rest = watch.path[len("guest."):]
        while not watch.done:
            try:
                async for resp in self.ctx.rpc_stream(
                        "kvs-watch.lookup",
                        {"key": rest, "namespace": namespace, "raw": True,
                         "flags": FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND | FLUX_KVS_WAITCREATE}):
                    if watch.deliver(watch_bytes(resp, watch.key)):
                        return
            except FluxError as exc:
                if exc.errno != errno.ENOTSUP:
                    raise
            else:
                # the namespace was removed: the job's directory has the final copy
                await self._drain_final(watch)
                return
            # no namespace: the job has not started yet, or is over
            try:
                data = await self._get(watch.key)
            except FluxError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ENOTSUP):
                    raise
            else:
                if not watch.deliver(data[watch.lines.offset:]):
                    watch.finish(errno.ENODATA)
                return
            # wait for exec to link the guest namespace (the job ends the wait otherwise)
            link = f"{watch.jobdir}.guest"
            async for _resp in self.ctx.rpc_stream(
                    "kvs-watch.lookup", {"key": link,
                                         "flags": FLUX_KVS_WAITCREATE | FLUX_KVS_TREEOBJ}):
                pass

    async def _follow_job(self, watch: _Watch) -> None:
        """For logs other than the main one: end the watch when the job becomes inactive."""
        key = f"{JobID(watch.jobid).kvs}.{MAIN_LOG}"
        splitter = LineSplitter()
        try:
            async for resp in self.ctx.rpc_stream("kvs-watch.lookup",
                                                  {"key": key,
                                                   "flags": FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND}):
                for line in splitter.feed(value_text(resp["val"], key)):
                    if line.startswith(b"{") and b'"clean"' in line:
                        entry = orjson.loads(line)
                        if entry.get("name") == "clean":
                            await self._drain_final(watch)
                            return
        except asyncio.CancelledError:
            raise
        except FluxError:
            pass  # the job's log went away (purged): nothing more will come
        watch.finish(errno.ENODATA)

    async def _drain_final(self, watch: _Watch) -> None:
        """The job is inactive: send what its log holds beyond what was sent, then end."""
        for task in watch.tasks:
            if task is not asyncio.current_task() and not task.done():
                task.cancel()
        try:
            data = await self._get(watch.key)
        except FluxError:
            data = b""
        if not watch.done and len(data) > watch.lines.offset:
            if watch.deliver(data[watch.lines.offset:]):
                return
        watch.finish(errno.ENODATA)

    @request_handler("job-info.eventlog-watch-cancel", allow_guest=True)
    def eventlog_watch_cancel(self, msg: Message) -> None:
        watch = self._watches.get(_cancel_key(msg, "job-info.eventlog-watch-cancel"))
        if watch is not None:
            watch.finish(errno.ENODATA)
        return None

    @request_handler("job-info.cancel", allow_guest=True)
    def cancel(self, msg: Message) -> None:
        self.update_watch_cancel(msg)
        return self.eventlog_watch_cancel(msg)


def _cancel_key(msg: Message, topic: str) -> tuple[Any, int]:
    """(sender, matchtag) of the watch a ``*-cancel`` request names; EPROTO otherwise."""
    body = msg.payload
    tag = body.get("matchtag") if isinstance(body, dict) else None
    if isinstance(tag, bool) or not isinstance(tag, int):
        raise FluxError(errno.EPROTO, f'{topic}: expected {{"matchtag": N}}')
    return msg.sender, tag
