"""The ``job-list`` broker module (RFC 43): every job's ``flux jobs`` record, kept current.

Where the records come from (specs/job-list-service.md has the details):

1. ``job-manager.events-journal {"full": true}`` is requested first: the
   backlog of every active job's committed events, a sentinel, then live
   batches (buffered until step 3 is done).
2. The KVS gives the inactive jobs: the snapshot ``checkpoint.job-list``
   (the root it reflects, the ids active then, the JobList bytes) plus a
   replay of only the jobs whose directories changed since that root
   (``kvs.diff`` under ``job``) and the jobs active at snapshot time; with
   no usable snapshot, every ``job.<dothex>`` eventlog is replayed.
   Values are read from the kvs engine in-process (or through pipelined
   ``kvs.lookup``); the whole set is folded with ``JobList.load`` (one
   sort at the end).
3. Active jobs are taken from the journal, not the KVS: the KVS's active
   records are dropped, the backlog jobs are rebuilt from their events
   (unless the KVS already shows them inactive), then the buffered live
   batches are applied, skipping events of jobs already inactive.

Until then ``list``, ``list-id`` and ``job-stats`` requests wait (they are
answered as soon as the load is done); ``list-attrs`` is answered at once.
Without a job manager (ENOSYS) the KVS's view, active jobs included, is
served.  The projection is snapshotted at unload (rc3) and every
``[job-list] snapshot-period`` (default 2s, stretched to ten times the
last snapshot's duration) once ``snapshot-changes`` (default 1000) jobs
became inactive or were purged (about 0.1-0.3 s for 50,000 jobs; the
sections that did not change are stored once), so a crash leaves little
to replay.  The snapshot names a KVS root taken a
moment before it is encoded, so a restart replays a little more rather
than miss an event still in flight.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import gc
import struct
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from broker.module import Module, request_handler
from flux.constants import FLUX_MSGFLAG_STREAMING
from flux.errors import FluxError
from flux.job.JobID import JobID
from flux.message import Message
from jobmgr.events import JobEventError
from jobmgr.joblist.projection import JobList
from jobmgr.joblist.query import hoist_filters, parse_results, parse_states
from jobmgr.states import JobState
from kvs.constants import FLUX_KVS_READDIR

__all__ = ["JobListModule", "Backlog", "gc_paused", "apply_items", "decode_log", "jobids_from_changes",
           "split_snapshot", "state_reached", "SNAPSHOT_KEY", "SNAPSHOT_VERSION"]

SNAPSHOT_KEY = "checkpoint.job-list"
SNAPSHOT_VERSION = 1
# JobList.encode() layout: magic, u32 header length, header, then 7 arrays
# of `count` items (these item sizes), then the blobs
_ARRAY_ITEMS = (8, 8, 8, 1, 4, 4, 4)
_LOOKUP_WINDOW = 256          # jobs whose lookups are in flight at once (RPC replay)
_READ_CHUNK = 1000            # jobs read per loop turn during replay
_SNAPSHOT_SLACK = 0.2         # seconds between taking the root and encoding
#: ``job-list.list-attrs``: Flux's list, then ``all`` (``id`` always comes;
#: ``ngpus`` is accepted but not listed, as in Flux)
LIST_ATTRS: tuple[str, ...] = (
    "userid", "urgency", "priority", "t_submit", "t_depend", "t_priority", "t_sched",
    "t_run", "t_cleanup", "t_inactive", "state", "name", "cwd", "queue", "project", "bank",
    "ntasks", "ncores", "duration", "nnodes", "ranks", "nodelist", "success",
    "exception_occurred", "exception_type", "exception_severity", "exception_note",
    "result", "expiration", "annotations", "waitstatus", "dependencies", "all",
)
_STREAM_CHUNK = 1000          # jobs per response for streaming list requests
_ACTIVE = int(JobState.NEW | JobState.ACTIVE)
_WAIT_RECHECK = 2.0           # seconds between checks that a job being waited for still exists


# -- pure helpers ------------------------------------------------------------------------

def split_snapshot(data: bytes) -> list[bytes]:
    """Cut ``JobList.encode()`` bytes into its sections (header, 7 arrays, blobs).

    Each section is stored under its own key: the arrays and the blobs only
    grow at the end as jobs become inactive, so most of their fixed-size
    KVS chunks are the same from one snapshot to the next and the store
    keeps them once.  Bytes that do not parse come back as one section.
    """
    try:
        if len(data) < 12:
            raise ValueError("short")
        (hlen,) = struct.unpack_from("<I", data, 8)
        header = orjson.loads(data[12:12 + hlen])
        count = header["count"]
        if not isinstance(count, int) or count < 0:
            raise ValueError("count")
    except (ValueError, KeyError, TypeError, struct.error, orjson.JSONDecodeError):
        return [data]
    cuts = [12 + hlen]
    for size in _ARRAY_ITEMS:
        cuts.append(cuts[-1] + size * count)
    if cuts[-1] > len(data):
        return [data]
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off for a synchronous block, then as it was.

    The load builds a record per job that lives as long as the module; the
    collector would run full passes over them as they are built (a third of
    a restart at 100,000 jobs), freeing nothing.  Only around code that does
    not yield: the load may outlast rc1, during which the broker has the
    collector off (``broker.modhost.load_rc1``), and must not turn it back
    on under it, nor leave it off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _dothex_id(groups: list[str]) -> int | None:
    value = 0
    for group in groups:
        if not 0 < len(group) <= 4:
            return None
        try:
            value = (value << 16) | int(group, 16)
        except ValueError:
            return None
    return value


def decode_log(data: bytes) -> list[dict[str, Any]]:
    """The entries of an RFC 18 eventlog, with one JSON parse for the whole log.

    Entries are compact JSON objects, one per line, so the lines joined
    with commas are a JSON array.  A log that is not that simple (a torn
    last line, a line that is not an object with a name and a timestamp)
    goes through the eventlog codec, whose EventlogError names the line;
    finer checks of each entry are the fold's.
    """
    from eventstore.eventlog import decode_events

    if not data.endswith(b"\n"):
        return decode_events(data)
    try:
        events = orjson.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
    except orjson.JSONDecodeError:
        return decode_events(data)
    for entry in events:
        if type(entry) is not dict or "name" not in entry or "timestamp" not in entry:
            return decode_events(data)
    return events


def jobids_from_changes(changes: Iterable[Mapping[str, Any]]) -> set[int]:
    """Job ids whose ``job.<dothex>`` directory has a changed key (from ``kvs.diff``)."""
    dirs: set[tuple[str, ...]] = set()
    for change in changes:
        parts = str(change.get("key", "")).split(".", 5)
        if len(parts) >= 5 and parts[0] == "job":
            dirs.add(tuple(parts[1:5]))      # a job's keys come in threes: parse each dir once
    ids: set[int] = set()
    for groups in dirs:
        jobid = _dothex_id(list(groups))
        if jobid is not None:
            ids.add(jobid)
    return ids


def state_reached(state: int, mask: int) -> bool:
    """Whether a job now in ``state`` has reached one of the states in ``mask``.

    States only move forward (NEW=1 ... INACTIVE=64), so reaching state S
    means being in S or a later one; an inactive job has reached them all.
    """
    if not mask:
        return True
    lowest = mask & -mask
    return state >= lowest


@dataclass(slots=True)
class _BacklogJob:
    events: list[dict[str, Any]] = field(default_factory=list)
    jobspec: Any = None
    R: Any = None


class Backlog:
    """The journal's backlog, gathered per job until the sentinel."""

    def __init__(self) -> None:
        self.jobs: dict[int, _BacklogJob] = {}

    def add(self, items: Iterable[Mapping[str, Any]]) -> None:
        for item in items:
            job = self.jobs.setdefault(int(item["id"]), _BacklogJob())
            job.events.extend(item.get("events") or ())
            if item.get("jobspec") is not None:
                job.jobspec = item["jobspec"]
            if item.get("R") is not None:
                job.R = item["R"]


def _stamped(event: Mapping[str, Any]) -> Mapping[str, Any]:
    # journal-only entries may come without a time; the fold requires one
    if event.get("timestamp"):
        return event
    return {**event, "timestamp": time.time()}


def apply_items(jl: JobList, items: Iterable[Mapping[str, Any]],
                errors: list[str] | None = None) -> set[int]:
    """Fold live journal items into ``jl``; returns the ids they touched.

    Events of jobs that ``jl`` already has as inactive are skipped (the KVS
    replay was ahead of the journal); ``purge`` entries remove inactive
    jobs.  Events that do not apply are reported in ``errors`` and skipped.
    Contexts are not validated again: the job manager did as it posted them.
    """
    touched: set[int] = set()
    for item in items:
        jobid = int(item["id"])
        jobspec = item.get("jobspec")
        R = item.get("R")
        inactive = jl.state_of(jobid) is JobState.INACTIVE
        for event in item.get("events") or ():
            name = event.get("name")
            if name == "purge":
                jl.purge((jobid,))
                touched.add(jobid)
                continue
            if inactive:
                continue
            try:
                # the job manager validated each event's context as it posted it
                if name in ("submit", "jobspec-update"):
                    jl.apply(jobid, _stamped(event), jobspec=jobspec, checked=True)
                elif name in ("alloc", "resource-update"):
                    jl.apply(jobid, _stamped(event), R=R, checked=True)
                else:
                    jl.apply(jobid, _stamped(event), checked=True)
            except (JobEventError, ValueError, KeyError, TypeError, OSError) as exc:
                if errors is not None:
                    errors.append(f"job {JobID(jobid).f58}: {name}: {exc}")
                continue
            touched.add(jobid)
            inactive = name == "clean"
    return touched


def _int_field(body: Mapping[str, Any], name: str, default: int = 0, *,
               minimum: int = 0) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FluxError(errno.EPROTO, f"'{name}' must be an integer >= {minimum}, "
                                      f"got {value!r}")
    return value


# -- the module --------------------------------------------------------------------------

@dataclass(slots=True, eq=False)
class _IdWait:
    msg: Message
    attrs: list[str]
    state: int


class JobListModule(Module):
    """Serves job-list.list, list-id, list-attrs and job-stats (RFC 43)."""

    name = "job-list"

    async def start(self) -> None:
        ctx = self.ctx
        self.jl = JobList()
        self.ready = False
        self.journal_ok = False
        self._deferred: list[Message] = []
        self._waits: dict[int, list[_IdWait]] = {}
        self._rechecking: asyncio.Task[Any] | None = None
        self._backlog = Backlog()
        self._sentinel = asyncio.Event()
        self._live: list[list[Mapping[str, Any]]] = []
        self._changes = 0
        self._loaded_root: dict[str, Any] | None = None
        self.load_stats: dict[str, Any] = {}
        self.snapshot_stats: dict[str, Any] = {}
        from flux.util.fsd import parse_fsd

        try:
            self._period = parse_fsd(ctx.conf_get("job-list.snapshot-period", "2s"))
            self._min_changes = int(ctx.conf_get("job-list.snapshot-changes", 1000))
            self._max_comparisons = int(ctx.conf_get("job-list.max-comparisons", 0))
        except (ValueError, TypeError) as exc:
            raise FluxError(errno.EINVAL, f"[job-list] configuration: {exc}") from None
        self._journal = ctx.create_task(self._follow_journal(), name="job-list journal")
        self._loading = ctx.create_task(self._load(), name="job-list load")
        self._snapshots = ctx.create_task(self._snapshot_loop(), name="job-list snapshots")

    async def stop(self) -> None:
        self._snapshots.cancel()
        # without a statedir the store goes with the instance: nothing would read
        # the snapshot (and a batch job's instance ends 0.2 s sooner)
        if self.ready and self.ctx.store_is_kept:
            # the journal keeps running meanwhile: the snapshot must hold
            # every event up to the root it names
            try:
                await self._snapshot()
            except (OSError, ValueError) as exc:
                self.ctx.log.error("job-list snapshot at unload failed", error=str(exc))
        self._loading.cancel()
        self._journal.cancel()

    # -- the journal -------------------------------------------------------------------

    async def _follow_journal(self) -> None:
        try:
            async for payload in self.ctx.rpc_stream("job-manager.events-journal",
                                                     {"full": True}):
                items = payload.get("batch") or []
                if not self._sentinel.is_set():
                    self._backlog.add(items)
                    if payload.get("sentinel"):
                        self.journal_ok = True
                        self._sentinel.set()
                elif not self.ready:
                    self._live.append(items)
                else:
                    self._apply(items)
            # nothing will tell us of later changes: snapshots must name
            # the root the KVS was read at from now on
            self.journal_ok = False
            self.ctx.log.warning("job-manager journal ended: the list no longer follows jobs")
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            self.journal_ok = False
            if exc.errno == errno.ENOSYS:
                self.ctx.log.info("no job-manager journal: listing the jobs in the KVS only")
            else:
                self.ctx.log.error("job-manager journal failed", error=str(exc))
        finally:
            self._sentinel.set()

    def _apply(self, items: list[Mapping[str, Any]]) -> None:
        jl = self.jl
        before = jl.inactive_count + jl.inactive_purged
        errors: list[str] = []
        touched = apply_items(jl, items, errors)
        for text in errors:
            self.ctx.log.warning("journal event not applied", error=text)
        # what a snapshot saves a restart: inactive jobs to replay (active
        # ones come from the journal anyway)
        self._changes += jl.inactive_count + jl.inactive_purged - before
        if self._waits:
            for jobid in touched:
                if jobid in self._waits:
                    self._check_waits(jobid, gone=jobid not in self.jl)

    # -- loading -----------------------------------------------------------------------

    async def _load(self) -> None:
        t0 = time.monotonic()
        try:
            await self._sentinel.wait()
            t_journal, cpu0 = time.monotonic(), time.process_time()
            await self._load_kvs()
            t_kvs = time.monotonic()
            with gc_paused():
                self._reconcile()
            # where a slow start went: waiting for the job manager, the KVS, the journal
            self.load_stats.update(wait_s=round(t_journal - t0, 4),
                                   kvs_s=round(t_kvs - t_journal, 4),
                                   reconcile_s=round(time.monotonic() - t_kvs, 4),
                                   cpu_s=round(time.process_time() - cpu0, 4))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the instance must start regardless
            self.ctx.log.exception("job-list could not load the jobs in the KVS", error=str(exc))
        self.ready = True
        self.load_stats["seconds"] = time.monotonic() - t0
        self.ctx.log.info("job-list loaded", jobs=len(self.jl), inactive=self.jl.inactive_count,
                          **self.load_stats)
        deferred, self._deferred = self._deferred, []
        for msg in deferred:
            self.ctx.deliver(msg)

    async def _reader(self) -> "_Reader":
        """The fastest way to read the KVS: the kvs module's engine when in-process."""
        if not self.ctx.conf_get("job-list.replay-via-rpc", False):
            from kvs.service import borrow_engine

            try:
                return _EngineReader(await borrow_engine(self.ctx))
            except (OSError, KeyError, TypeError) as exc:
                self.ctx.log.info("kvs engine not in-process: replaying through kvs.lookup",
                                  error=str(exc))
        return _RpcReader(self.ctx)

    async def _load_kvs(self) -> None:
        reader = await self._reader()
        root = await self.ctx.rpc("kvs.getroot", {})
        self.load_stats["sequence"] = root["sequence"]
        self._loaded_root = root
        snapshot = await self._read_snapshot(reader)
        changed: set[int] | None = None
        if snapshot is not None:
            meta, jl = snapshot
            try:
                keys = await reader.diff(meta["rootref"], root["rootref"], "job")
                changed = jobids_from_changes({"key": k} for k in keys)
            except OSError as exc:
                # ENOENT: the root is gone (a restore rebuilt the store, or GC took
                # an unpinned root) -- expected, the replay below is the answer
                log = self.ctx.log.info if exc.errno == errno.ENOENT else self.ctx.log.error
                log("job-list snapshot root unusable: replaying every job", error=str(exc))
        if snapshot is not None and changed is not None:
            ids = changed | set(meta.get("active", ()))
            self.jl = jl
            source = "snapshot"
        else:
            ids = await self._all_jobids(reader)
            source = "replay"
        if self.journal_ok:
            # the jobs active now are rebuilt from the journal's backlog (with
            # their jobspec and R): reading them from the KVS too would be wasted
            ids -= self._backlog.jobs.keys()
        self.load_stats.update(source=source, replayed=len(ids))
        jobs, gone = await self._read_jobs(reader, sorted(ids))
        for jobid in gone:
            self.jl.remove(jobid)
        with gc_paused():
            errors = self.jl.load(jobs)
        for jobid, exc in errors:
            self.ctx.log.error("job eventlog cannot be replayed: job left out of the list",
                               job=JobID(jobid).f58, error=str(exc))

    async def _read_snapshot(self, reader: "_Reader") -> tuple[dict[str, Any], JobList] | None:
        try:
            raw = await reader.get(f"{SNAPSHOT_KEY}.meta")
            if raw is None:
                return None
            meta = orjson.loads(raw)
            if meta.get("version") != SNAPSHOT_VERSION:
                raise ValueError(f"unsupported version {meta.get('version')!r}")
            parts = [await reader.get(f"{SNAPSHOT_KEY}.s{i}")
                     for i in range(int(meta["sections"]))]
            if any(p is None for p in parts):
                raise ValueError("a section is missing")
            with gc_paused():
                jl = JobList.decode(parts)  # type: ignore[arg-type]
        except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            self.ctx.log.error("job-list snapshot unusable: replaying every job", error=str(exc))
            return None
        return meta, jl

    async def _all_jobids(self, reader: "_Reader") -> set[int]:
        """Every job id with a directory under ``job`` (4 levels of dothex)."""
        level = ["job"]
        for _ in range(4):
            found: list[str] = []
            for start in range(0, len(level), _LOOKUP_WINDOW):
                chunk = level[start:start + _LOOKUP_WINDOW]
                for key, names in zip(chunk, await reader.subdirs(chunk)):
                    found.extend(f"{key}.{name}" for name in names)
            level = found
        return jobids_from_changes({"key": k} for k in level)

    async def _read_jobs(self, reader: "_Reader", ids: list[int]
                         ) -> tuple[list[tuple[int, Any, Any, Any]], list[int]]:
        """Each job's eventlog (decoded), jobspec (decoded) and R, a window at a time."""
        from eventstore.eventlog import EventlogError

        jobs: list[tuple[int, Any, Any, Any]] = []
        gone: list[int] = []
        for start in range(0, len(ids), _READ_CHUNK):
            chunk = await reader.jobs(ids[start:start + _READ_CHUNK])
            with gc_paused():
                for jobid, eventlog, jobspec, R in chunk:
                    if eventlog is None:
                        gone.append(jobid)
                        continue
                    try:
                        events = decode_log(eventlog)
                        spec = orjson.loads(jobspec) if jobspec is not None else None
                    except (EventlogError, orjson.JSONDecodeError) as exc:
                        self.ctx.log.error("job cannot be replayed: job left out of the list",
                                           job=JobID(jobid).f58, error=str(exc))
                        gone.append(jobid)
                        continue
                    jobs.append((jobid, events, spec, R))
        return jobs, gone

    def _reconcile(self) -> None:
        """Active jobs come from the journal: its backlog, then the live batches."""
        if not self.journal_ok:
            return
        jl = self.jl
        for job in jl.list([], 0, states=_ACTIVE):
            jl.remove(job["id"])
        for jobid, job in self._backlog.jobs.items():
            if jl.state_of(jobid) is not None:
                continue  # already inactive in the KVS: final
            try:
                jl.replace(jobid, job.events, job.jobspec, job.R)
            except (JobEventError, ValueError, KeyError, TypeError, OSError) as exc:
                self.ctx.log.error("journal backlog does not replay: job left out",
                                   job=JobID(jobid).f58, error=str(exc))
        self.load_stats["backlog"] = len(self._backlog.jobs)
        self._backlog = Backlog()
        live, self._live = self._live, []
        for items in live:
            self._apply(items)

    # -- snapshots ---------------------------------------------------------------------

    async def _snapshot_loop(self) -> None:
        while True:
            # never more than about a tenth of the time: a big projection
            # (0.3 s at 100,000 jobs) is snapshotted less often than a small one
            await asyncio.sleep(max(self._period, 10 * self.snapshot_stats.get("seconds", 0)))
            if self.ready and self._changes >= self._min_changes:
                try:
                    await self._snapshot()
                except (OSError, ValueError) as exc:
                    self.ctx.log.error("job-list snapshot failed", error=str(exc))

    async def _snapshot(self) -> None:
        if self.journal_ok:
            root = await self.ctx.rpc("kvs.getroot", {})
            # events committed up to that root may still be on their way
            # through the journal: give them a moment, so the snapshot holds
            # at least everything the root does (a restart then replays a few
            # extra jobs rather than miss one)
            await asyncio.sleep(_SNAPSHOT_SLACK)
        elif self._loaded_root is not None:
            # nothing told us of later changes: the projection is the KVS as loaded
            root = self._loaded_root
        else:
            return
        t0 = time.monotonic()
        changes = self._changes
        active = [job["id"] for job in self.jl.list([], 0, states=_ACTIVE)]
        sections = split_snapshot(self.jl.encode())
        meta = {"version": SNAPSHOT_VERSION, "rootref": root["rootref"],
                "sequence": root["sequence"], "time": time.time(), "active": active,
                "sections": len(sections), "jobs": len(self.jl)}
        ops = [{"key": f"{SNAPSHOT_KEY}.meta", "flags": 0,
                "dirent": _val(orjson.dumps(meta))}]
        ops.extend({"key": f"{SNAPSHOT_KEY}.s{i}", "flags": 0, "dirent": _val(part)}
                   for i, part in enumerate(sections))
        await self.ctx.rpc("kvs.commit", {"namespace": "primary", "flags": 0, "ops": ops})
        self._changes -= changes
        self.snapshot_stats = {"seconds": round(time.monotonic() - t0, 4), "jobs": len(self.jl),
                               "bytes": sum(map(len, sections)), "sequence": root["sequence"]}
        self.ctx.log.debug("job-list snapshot written", **self.snapshot_stats)
        # the next start diffs against this root: keep its tree through GC
        try:
            await self.ctx.rpc("content.pin", {"name": "job-list", "ref": root["rootref"],
                                               "kind": "tree"})
        except OSError as exc:
            self.ctx.log.warning("cannot pin the job-list snapshot root", error=str(exc))

    # -- requests ----------------------------------------------------------------------

    def _defer(self, msg: Message) -> bool:
        if self.ready:
            return False
        self._deferred.append(msg)
        return True

    @request_handler("job-list.list", allow_guest=True)
    def list_jobs(self, msg: Message) -> dict[str, Any] | None:
        if self._defer(msg):
            return None
        body = msg.payload
        if not isinstance(body, dict):
            raise FluxError(errno.EPROTO, "job-list.list: payload must be a JSON object")
        max_entries = _int_field(body, "max_entries", 1000)
        attrs = body.get("attrs", [])
        userid = body.get("userid")
        if userid is not None:
            userid = _int_field(body, "userid")
        states = self._mask(body, "states", parse_states)
        results = self._mask(body, "results", parse_results)
        since = body.get("since", 0.0)
        if isinstance(since, bool) or not isinstance(since, (int, float)) or since < 0:
            raise FluxError(errno.EPROTO, f"'since' must be a timestamp >= 0, got {since!r}")
        name, queue = body.get("name"), body.get("queue")
        for key, value in (("name", name), ("queue", queue)):
            if value is not None and not isinstance(value, str):
                raise FluxError(errno.EPROTO, f"'{key}' must be a string, got {value!r}")
        constraint = body.get("constraint")
        if constraint is not None and not isinstance(constraint, dict):
            raise FluxError(errno.EPROTO, "'constraint' must be a JSON object")
        if constraint is not None and userid is None and not states and not results \
                and name is None and queue is None:
            # Flux's bindings put every filter in the constraint: take the plain
            # ones out so the indexes answer them
            hoisted, constraint = hoist_filters(constraint)
            userid = hoisted.get("userid")
            states = hoisted.get("states", 0)
            results = hoisted.get("results", 0)
            name = hoisted.get("name")
            queue = hoisted.get("queue")
        try:
            jobs = self.jl.list(attrs, max_entries, userid=userid, states=states,
                                results=results, since=float(since), name=name, queue=queue,
                                constraint=constraint, max_comparisons=self._max_comparisons)
        except ValueError as exc:
            raise FluxError(errno.EINVAL, str(exc)) from None
        if not msg.flags & FLUX_MSGFLAG_STREAMING:
            return {"jobs": jobs}
        stream = self.ctx.stream(msg)
        for start in range(0, max(len(jobs), 1), _STREAM_CHUNK):
            chunk = {"jobs": jobs[start:start + _STREAM_CHUNK]}
            if start == 0:
                chunk["version"] = 1
            stream.send(chunk)
        stream.end()
        return None

    @staticmethod
    def _mask(body: Mapping[str, Any], key: str, parse: Any) -> int:
        value = body.get(key, 0)
        if isinstance(value, list):
            try:
                return parse(value)
            except ValueError as exc:
                raise FluxError(errno.EINVAL, str(exc)) from None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FluxError(errno.EPROTO, f"'{key}' must be a bitmask or a list of names, "
                                          f"got {value!r}")
        return value

    @request_handler("job-list.list-id", allow_guest=True)
    async def list_id(self, msg: Message) -> dict[str, Any] | None:
        if self._defer(msg):
            return None
        body = msg.payload
        if not isinstance(body, dict):
            raise FluxError(errno.EPROTO, "job-list.list-id: payload must be a JSON object")
        jobid = _int_field(body, "id")
        attrs = body.get("attrs", [])
        state = _int_field(body, "state", 0)
        if state & ~0x7F:
            raise FluxError(errno.EINVAL, f"'state' {state:#x} is not a job state mask")
        try:
            self.jl.get(jobid, attrs)  # checks attrs; ENOENT if unknown
        except ValueError as exc:
            raise FluxError(errno.EINVAL, str(exc)) from None
        except FluxError as exc:
            if exc.errno != errno.ENOENT:
                raise
            # the job's directory is visible once its first commit is durable,
            # the journal batch of that commit may not have reached us yet: a
            # job with a directory will show up in the journal
            if not self.journal_ok or not await self._job_dir_exists(jobid):
                raise FluxError(errno.ENOENT, f"job {JobID(jobid).f58}: unknown job") from None
        wait = _IdWait(msg, attrs, state)
        self._waits.setdefault(jobid, []).append(wait)
        self._check_waits(jobid)
        if jobid not in self.jl and self._rechecking is None:
            self._rechecking = self.ctx.create_task(self._recheck_waits(),
                                                    name="job-list wait recheck")
        return None

    async def _job_dir_exists(self, jobid: int) -> bool:
        return await _RpcReader(self.ctx).get(f"{JobID(jobid).kvs}.eventlog") is not None

    def _check_waits(self, jobid: int, gone: bool = False) -> None:
        """Answer the list-id requests waiting on JOBID that can be answered now."""
        waits = self._waits.get(jobid)
        if not waits:
            return
        state = self.jl.state_of(jobid)
        if state is None:
            if gone:
                del self._waits[jobid]
                for wait in waits:
                    self.ctx.respond_error(wait.msg, errno.ENOENT,
                                           f"job {JobID(jobid).f58}: unknown job")
            return
        keep: list[_IdWait] = []
        for wait in waits:
            if state_reached(int(state), wait.state):
                self.ctx.respond(wait.msg, {"job": self.jl.get(jobid, wait.attrs)})
            else:
                keep.append(wait)
        if keep:
            self._waits[jobid] = keep
        else:
            del self._waits[jobid]

    async def _recheck_waits(self) -> None:
        """Fail waits for jobs that are still unknown and whose directory went away."""
        while self._waits:
            await asyncio.sleep(_WAIT_RECHECK)
            for jobid in [j for j in self._waits if j not in self.jl]:
                if not await self._job_dir_exists(jobid):
                    self._check_waits(jobid, gone=True)
        self._rechecking = None

    @request_handler("job-list.list-attrs", allow_guest=True)
    def list_attrs(self, msg: Message) -> dict[str, Any]:
        return {"attrs": list(LIST_ATTRS)}

    @request_handler("job-list.job-stats", allow_guest=True)
    def job_stats(self, msg: Message) -> dict[str, Any] | None:
        if self._defer(msg):
            return None
        return self.jl.stats()

    @request_handler("job-list.snapshot")
    async def snapshot_now(self, msg: Message) -> dict[str, Any]:
        """Write the snapshot now (owner only); returns what it cost."""
        if not self.ready:
            raise FluxError(errno.EAGAIN, "job-list is still loading")
        await self._snapshot()
        return dict(self.snapshot_stats)

    @request_handler("job-list.stats", allow_guest=True)
    def module_stats(self, msg: Message) -> dict[str, Any]:
        """Module internals (``flux module stats job-list`` style)."""
        return {"ready": self.ready, "journal": self.journal_ok, "jobs": len(self.jl),
                "active": self.jl.active_count, "inactive": self.jl.inactive_count,
                "waiters": sum(map(len, self._waits.values())),
                "unsnapshotted_changes": self._changes, "load": self.load_stats,
                "snapshot": self.snapshot_stats}

    def disconnect(self, sender: str) -> None:
        self._deferred = [m for m in self._deferred if m.sender != sender]
        for jobid in list(self._waits):
            keep = [w for w in self._waits[jobid] if w.msg.sender != sender]
            if keep:
                self._waits[jobid] = keep
            else:
                del self._waits[jobid]



# -- reading the KVS at load -------------------------------------------------------------

_JOB_KEYS = ("eventlog", "jobspec", "R")
_DIR_TYPES = ("dir", "dirref", "hdir")
_Job = tuple[int, "bytes | None", "bytes | None", "bytes | None"]


class _Reader:
    """How the load reads the KVS (values as bytes; None for a missing key)."""

    async def get(self, key: str) -> bytes | None:
        raise OSError(errno.ENOSYS, "abstract")

    async def diff(self, old: str, new: str, prefix: str) -> list[str]:
        raise OSError(errno.ENOSYS, "abstract")

    async def subdirs(self, keys: list[str]) -> list[list[str]]:
        raise OSError(errno.ENOSYS, "abstract")

    async def jobs(self, ids: list[int]) -> list[_Job]:
        raise OSError(errno.ENOSYS, "abstract")


class _RpcReader(_Reader):
    """Through the kvs service's requests, pipelined."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    async def get(self, key: str) -> bytes | None:
        try:
            resp = await self.ctx.rpc("kvs.lookup", {"key": key, "flags": 0})
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise
        return base64.b64decode(resp["val"]["data"])

    async def diff(self, old: str, new: str, prefix: str) -> list[str]:
        resp = await self.ctx.rpc("kvs.diff", {"from": old, "to": new, "prefix": prefix})
        return [c["key"] for c in resp["changes"]]

    async def _subdirs(self, key: str) -> list[str]:
        try:
            resp = await self.ctx.rpc("kvs.lookup", {"key": key, "flags": FLUX_KVS_READDIR})
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return []
            raise
        return [name for name, ent in resp["val"]["data"].items()
                if ent.get("type") in _DIR_TYPES]

    async def subdirs(self, keys: list[str]) -> list[list[str]]:
        return list(await asyncio.gather(*(self._subdirs(k) for k in keys)))

    async def _job(self, jobid: int) -> _Job:
        base = JobID(jobid).kvs
        eventlog, jobspec, R = await asyncio.gather(*(self.get(f"{base}.{k}")
                                                      for k in _JOB_KEYS))
        return jobid, eventlog, jobspec, R

    async def jobs(self, ids: list[int]) -> list[_Job]:
        out: list[_Job] = []
        for start in range(0, len(ids), _LOOKUP_WINDOW):
            out.extend(await asyncio.gather(*(self._job(j)
                                              for j in ids[start:start + _LOOKUP_WINDOW])))
        return out


class _EngineReader(_Reader):
    """Straight from the kvs module's engine (in-process), a chunk per loop turn.

    An RPC per value costs more than the value's lookup itself; the engine
    is handed out for exactly this kind of in-process reading
    (``kvs.watch-attach``), and yielding between chunks keeps the broker
    answering meanwhile.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def _get(self, key: str) -> bytes | None:
        try:
            return self.engine.get(key)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise

    async def get(self, key: str) -> bytes | None:
        return self._get(key)

    async def diff(self, old: str, new: str, prefix: str) -> list[str]:
        return [c.key for c in self.engine.diff(old, new, prefix)]

    async def subdirs(self, keys: list[str]) -> list[list[str]]:
        out = []
        for key in keys:
            try:
                entries = self.engine.readdir(key)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                    raise
                entries = {}
            out.append([name for name, ent in entries.items() if ent["type"] in _DIR_TYPES])
        await asyncio.sleep(0)
        return out

    async def jobs(self, ids: list[int]) -> list[_Job]:
        # one resolve of each job's directory, not one per value
        get_many = self.engine.get_many
        names = ("eventlog", "jobspec", "R")
        out: list[_Job] = []
        for jobid in ids:
            values = get_many(JobID(jobid).kvs, names) or {}
            out.append((jobid, values.get("eventlog"), values.get("jobspec"), values.get("R")))
        await asyncio.sleep(0)
        return out


def _val(data: bytes) -> dict[str, Any]:
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode()}
