"""Restart recovery: rebuild the active table from the KVS; checkpoint it.

``checkpoint.job-manager`` (JSON) holds what the job manager knew at a KVS
root: ``{"version": 1, "rootref", "job_dir" (the treeobj of ``job`` at that
root), "max_jobid", "active": [ids], "inactive": base64(zlib(ids, times)),
"queues": [...], "zombies": [[id, success, errstr]...], "active_section": bool}``.
It is written at unload and every ``CHECKPOINT_PERIOD`` (2) seconds while
jobs change.

At unload (a clean shutdown) ``checkpoint.job-manager-active`` also holds
every active job as the job manager has it: ``{"version": 1, "rootref",
"job_dir", "jobs": [[id, events, jobspec, R]...]}`` (jobspec and R with
their updates applied), taken at the root of the job manager's last
commit with none in flight, so each job's events are exactly its eventlog
at ``rootref``.  The main checkpoint says ``"active_section": true`` only
when that root's ``job`` directory is the one it names itself; a periodic
checkpoint never does, so an older section is never read.

On start (``recover``):

1. Load the checkpoint.  With one, the jobs to replay are its active jobs,
   the jobs whose directories changed since its root (``kvs.diff`` under
   ``job``; skipped when the ``job`` directory object is unchanged), and
   the jobs newer than its ``max_jobid`` (found by walking only the newest
   branches of the ``job`` tree: a submission committed just before the
   checkpoint but not yet seen by the job manager).  Without one (or if
   the diff fails), every job directory is found by walking ``job``.
2. Each eventlog is fetched (pipelined, ``WINDOW`` lookups in flight) and
   folded.  A job in the active section whose directory has not changed
   since the checkpoint is folded from the section instead: its directory
   is identical, so its eventlog is the events there (a restart after a
   clean shutdown reads no job from the KVS; a section that is missing,
   unreadable or from another root is ignored and every job is read).  Inactive jobs go to the purge index only; active ones also get
   their jobspec and R.
3. A job whose directory cannot be replayed is moved to
   ``job-lost+found.job.<f58>`` with a log message; the instance starts.
4. Active jobs get ``flux-restart`` (SCHED goes back through PRIORITY);
   NEW jobs are validated; DEPEND jobs have their dependencies judged
   again; RUN/CLEANUP jobs are handed to exec (reattach) when it says hello.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from eventstore.eventlog import EventlogError, decode_events
from flux.errors import FluxError
from flux.message import Message
from jobmgr.depend import parse_dependencies
from jobmgr.events import JobEventError
from jobmgr.job import Job, apply_jobspec_updates, replay
from jobmgr.manager.active import ActiveJob, eventlog_key, id_from_key, job_key
from jobmgr.manager.purge import InactiveIndex
from jobmgr.manager.submit import begin, queue_of
from jobmgr.manager.update import with_expiration
from jobmgr.states import JobState

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["CHECKPOINT_KEY", "MAX_JOBID_KEY", "max_jobid_op", "ACTIVE_KEY", "ACTIVE_SECTION_MAX", "LOST_FOUND",
           "encode_active_jobs", "encode_active_section", "decode_active_section",
           "Checkpoint", "encode_checkpoint", "decode_checkpoint", "recover",
           "write_checkpoint", "lost_found_key", "WINDOW", "RestartStats"]

CHECKPOINT_KEY = "checkpoint.job-manager"
#: the largest job id when jobs were last purged, written by each purge commit: a
#: purge takes away the job directories a restart would find the ids in, and the
#: checkpoint may be older than it (a crash then would issue ids again)
MAX_JOBID_KEY = "checkpoint.job-manager-max-jobid"
ACTIVE_KEY = "checkpoint.job-manager-active"
#: a bigger active section is not written: it goes in the checkpoint's own commit,
#: which must stay well inside the KVS's largest value (blob_size_limit / 320 chunks)
ACTIVE_SECTION_MAX = 128 << 20
LOST_FOUND = "job-lost+found"
WINDOW = 256
_TREEOBJ = 16
_READDIR = 1


@dataclass(slots=True)
class Checkpoint:
    max_jobid: int = 0
    rootref: str | None = None
    job_dir: dict[str, Any] | None = None
    active: list[int] = field(default_factory=list)
    inactive: InactiveIndex = field(default_factory=InactiveIndex)
    queues: list[Any] = field(default_factory=list)
    zombies: list[Any] = field(default_factory=list)
    active_section: bool = False


#: an active job as the section holds it: (events, jobspec, R), updates applied
SectionJob = tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any] | None]


def encode_checkpoint(ckpt: Checkpoint) -> dict[str, Any]:
    return {"version": 1, "max_jobid": ckpt.max_jobid, "rootref": ckpt.rootref,
            "job_dir": ckpt.job_dir, "active": ckpt.active,
            "inactive": base64.b64encode(ckpt.inactive.encode()).decode("ascii"),
            "queues": ckpt.queues, "zombies": ckpt.zombies,
            "active_section": ckpt.active_section}


def decode_checkpoint(obj: Any) -> Checkpoint:
    """Read a checkpoint value; ValueError naming the bad key."""
    if not isinstance(obj, dict):
        raise ValueError("checkpoint must be a JSON object")
    if obj.get("version") != 1:
        raise ValueError(f"checkpoint version {obj.get('version')!r} is not supported")
    max_jobid = obj.get("max_jobid")
    if type(max_jobid) is not int or max_jobid < 0:
        raise ValueError(f"checkpoint max_jobid must be an integer >= 0, got {max_jobid!r}")
    rootref = obj.get("rootref")
    if rootref is not None and not isinstance(rootref, str):
        raise ValueError("checkpoint rootref must be a blobref string")
    active = obj.get("active", [])
    if not isinstance(active, list) or not all(type(i) is int for i in active):
        raise ValueError("checkpoint active must be an array of job ids")
    try:
        inactive = InactiveIndex.decode(base64.b64decode(obj.get("inactive", ""),
                                                         validate=True)) \
            if obj.get("inactive") else InactiveIndex()
    except (ValueError, binascii.Error, Exception) as exc:  # zlib.error is not a ValueError
        raise ValueError(f"checkpoint inactive: {exc}") from None
    job_dir = obj.get("job_dir")
    return Checkpoint(max_jobid, rootref, job_dir if isinstance(job_dir, dict) else None,
                      active, inactive, obj.get("queues") or [], obj.get("zombies") or [],
                      obj.get("active_section") is True)


def encode_active_section(rootref: str, job_dir: Any, jobs: bytes) -> bytes:
    """The active section's value; JOBS is the ``[[id, events, jobspec, R]...]`` JSON."""
    return orjson.dumps({"version": 1, "rootref": rootref, "job_dir": job_dir,
                         "jobs": orjson.Fragment(jobs)})


def encode_active_jobs(jobs: Iterable[tuple[int, list[dict[str, Any]], dict[str, Any],
                                              dict[str, Any] | None]],
                       limit: int = ACTIVE_SECTION_MAX) -> bytes | None:
    """``[[id, events, jobspec, R]...]`` as JSON, or None when longer than LIMIT bytes."""
    data = orjson.dumps([list(job) for job in jobs])
    return data if len(data) <= limit else None


def decode_active_section(data: bytes) -> tuple[str, Any, dict[int, SectionJob]]:
    """(rootref, job_dir, {id: (events, jobspec, R)}); ValueError naming what is bad."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"active section is not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("version") != 1:
        raise ValueError("active section: not a version 1 object")
    rootref, jobs = obj.get("rootref"), obj.get("jobs")
    if not isinstance(rootref, str) or not isinstance(jobs, list):
        raise ValueError("active section: rootref or jobs missing")
    out: dict[int, SectionJob] = {}
    for item in jobs:
        if not (isinstance(item, list) and len(item) == 4 and type(item[0]) is int
                and isinstance(item[1], list) and isinstance(item[2], dict)
                and (item[3] is None or isinstance(item[3], dict))):
            raise ValueError(f"active section: bad job entry {str(item)[:80]}")
        out[item[0]] = (item[1], item[2], item[3])
    return rootref, obj.get("job_dir"), out


def lost_found_key(jobid: int) -> str:
    from flux.job.JobID import JobID

    return f"{LOST_FOUND}.job.{JobID(jobid).f58plain}"


@dataclass(slots=True)
class RestartStats:
    replayed: int = 0
    active: int = 0
    inactive: int = 0
    lost: int = 0
    full: bool = False
    from_section: int = 0     # active jobs folded from the checkpoint's active section
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the process's CPU time meanwhile (a busy machine's wall time lies)


# --- KVS reads ---------------------------------------------------------------------------

def _future(ctx: Any, topic: str, payload: dict[str, Any]) -> "asyncio.Future[Message]":
    fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    def done(msg: Message) -> None:
        if not fut.done():
            fut.set_result(msg)

    ctx.request_callback(topic, payload, done)
    return fut


def _value(msg: Message) -> bytes:
    return binascii.a2b_base64(msg.payload["val"]["data"])


async def _engine(ctx: Any) -> Any:
    """The kvs module's engine when it runs in this process (None otherwise): reading
    thousands of jobs from it costs a fraction of a lookup request each."""
    if ctx.conf_get("job-manager.restart-via-rpc", False):
        return None
    from kvs.service import borrow_engine

    try:
        return await borrow_engine(ctx)
    except (OSError, KeyError, TypeError):
        return None


async def _lookup(ctx: Any, key: str, flags: int = 0, rootdir: Any = None) -> Message:
    payload: dict[str, Any] = {"key": key, "flags": flags}
    if rootdir is not None:
        payload["rootdir"] = rootdir
    return await _future(ctx, "kvs.lookup", payload)


async def _pipelined(ctx: Any, keys: Iterable[tuple[Any, str]],
                     on_result: Callable[[Any, Message], None], window: int = WINDOW,
                     flags: int = 0) -> None:
    """Look up every (tag, key), WINDOW at a time, calling ON_RESULT(tag, msg) for each.

    An in-process lookup may be answered inside the call that sends it, so
    sending is a loop that the answers only feed, never a recursion.
    """
    loop = asyncio.get_running_loop()
    it = iter(keys)
    done = loop.create_future()
    outstanding = 0
    exhausted = sending = False

    def send_more() -> None:
        nonlocal outstanding, exhausted, sending
        sending = True
        try:
            while not exhausted and outstanding < window:
                try:
                    tag, key = next(it)
                except StopIteration:
                    exhausted = True
                    break
                outstanding += 1
                ctx.request_callback("kvs.lookup", {"key": key, "flags": flags},
                           lambda msg, tag=tag: got(tag, msg))
        finally:
            sending = False
        if exhausted and outstanding == 0 and not done.done():
            done.set_result(None)

    def got(tag: Any, msg: Message) -> None:
        nonlocal outstanding
        outstanding -= 1
        try:
            on_result(tag, msg)
        finally:
            if not sending:
                send_more()

    send_more()
    await done


async def _walk_jobs(ctx: Any, newer_than: int | None = None) -> list[int]:
    """Every job id with a ``job.<dothex>`` directory (only ids > NEWER_THAN when given).

    Entries that are not 1-4 hex digits are not job directories and are skipped.
    """
    found: list[int] = []
    # (key, accumulated id, depth, still bounded by newer_than's groups)
    level: list[tuple[str, int, bool]] = [("job", 0, newer_than is not None)]
    for depth in range(4):
        shift = 48 - 16 * depth
        nxt: list[tuple[str, int, bool]] = []

        def listed(tag: tuple[str, int, bool], msg: Message) -> None:
            key, value, bounded = tag
            if msg.errnum:
                if msg.errnum not in (errno.ENOENT, errno.ENOTDIR):
                    ctx.log.error("restart: cannot list job directory", key=key,
                                  error=msg.errstr)
                return
            entries = msg.payload["val"]["data"]
            for name in entries:
                try:
                    group = int(name, 16)
                except ValueError:
                    continue
                if not 0 <= group <= 0xFFFF or len(name) > 4:
                    continue
                low = (newer_than >> shift) & 0xFFFF if bounded else 0  # type: ignore[operator]
                if bounded and group < low:
                    continue
                nxt.append((f"{key}.{name}", value | (group << shift), bounded and group == low))

        await _pipelined(ctx, ((t, t[0]) for t in level), listed, flags=_READDIR)
        level = nxt
    for _key, value, _bounded in level:
        if newer_than is None or value > newer_than:
            found.append(value)
    return found


# --- recovery ------------------------------------------------------------------------------

async def _read(ctx: Any, engine: Any, key: str) -> bytes:
    """KEY's value: from the in-process engine when there is one (a lookup request
    would encode a checkpoint of megabytes in base64 only to decode it here);
    OSError otherwise, as the lookup's."""
    if engine is not None:
        value: bytes = engine.get(key)
        return value
    msg = await _lookup(ctx, key)
    if msg.errnum:
        raise OSError(msg.errnum, msg.errstr or "kvs.lookup failed")
    return _value(msg)


async def _load_checkpoint(mgr: "Manager", engine: Any) -> Checkpoint | None:
    try:
        data = await _read(mgr.ctx, engine, CHECKPOINT_KEY)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            mgr.log.warning("cannot read job-manager checkpoint; replaying every job",
                            error=exc.strerror)
        return None
    try:
        return decode_checkpoint(orjson.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        mgr.log.warning("job-manager checkpoint is unreadable; replaying every job",
                        error=str(exc))
        return None


async def _load_active_section(mgr: "Manager", ckpt: Checkpoint,
                               engine: Any) -> dict[int, SectionJob]:
    """The active jobs the checkpoint's section holds ({} when it cannot be used)."""
    try:
        data = await _read(mgr.ctx, engine, ACTIVE_KEY)
    except OSError as exc:
        mgr.log.warning("job-manager checkpoint names an active section that cannot be read; "
                        "reading every active job", error=exc.strerror)
        return {}
    try:
        _rootref, job_dir, jobs = decode_active_section(data)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        mgr.log.warning("job-manager active section is unreadable; reading every active job",
                        error=str(exc))
        return {}
    if job_dir is None or job_dir != ckpt.job_dir:
        # written with another checkpoint: which root its jobs reflect is unknown
        mgr.log.info("job-manager active section is not the checkpoint's; reading every "
                     "active job")
        return {}
    return jobs


async def _changed_since(mgr: "Manager", ckpt: Checkpoint) -> tuple[set[int], set[int]] | None:
    """(changed ids, removed ids) under ``job`` since the checkpoint's root; None: unknown."""
    msg = await _lookup(mgr.ctx, "job", _TREEOBJ)
    current = None if msg.errnum else msg.payload.get("val")
    if current == ckpt.job_dir:
        return set(), set()
    if ckpt.rootref is None:
        return None
    diff = await _future(mgr.ctx, "kvs.diff", {"from": ckpt.rootref, "prefix": "job"})
    if diff.errnum:
        mgr.log.warning("cannot diff since the job-manager checkpoint; replaying every job",
                        error=diff.errstr)
        return None
    changed: set[int] = set()
    removed: set[int] = set()
    for change in diff.payload.get("changes", []):
        jobid = id_from_key(change["key"])
        if jobid is None:
            continue
        if change["kind"] == "remove" and change["key"].endswith(".eventlog"):
            removed.add(jobid)
        else:
            changed.add(jobid)
    return changed - removed, removed


async def recover(mgr: "Manager") -> RestartStats:
    """Rebuild MGR's table from the KVS (see the module docstring)."""
    t0, cpu0 = time.monotonic(), time.process_time()
    stats = RestartStats()
    ctx = mgr.ctx
    engine = await _engine(ctx)
    ckpt = await _load_checkpoint(mgr, engine)
    candidates: set[int]
    changed: set[int] = set()
    from_section: dict[int, SectionJob] = {}
    delta = await _changed_since(mgr, ckpt) if ckpt is not None else None
    if ckpt is not None and delta is not None:
        changed, removed = delta
        mgr.queues.restore(ckpt.queues)
        mgr.waits.restore(ckpt.zombies)
        mgr.max_jobid = max(mgr.max_jobid, ckpt.max_jobid)
        index = ckpt.inactive
        index.discard(removed | changed)
        mgr.inactive = index
        newer = await _walk_jobs(ctx, newer_than=ckpt.max_jobid)
        candidates = (set(ckpt.active) - removed) | changed | set(newer)
        if ckpt.active_section:
            section = await _load_active_section(mgr, ckpt, engine)
            # a job whose directory is unchanged since the checkpoint has exactly
            # the section's events (the section's root has the checkpoint's job tree)
            from_section = {jobid: section[jobid] for jobid in candidates - changed - removed
                            if jobid in section}
    else:
        if ckpt is not None:
            mgr.queues.restore(ckpt.queues)
            mgr.max_jobid = max(mgr.max_jobid, ckpt.max_jobid)
        stats.full = True
        candidates = set(await _walk_jobs(ctx))
    if candidates:
        mgr.max_jobid = max(mgr.max_jobid, max(candidates))
    try:
        purged = orjson.loads(await _read(mgr.ctx, engine, MAX_JOBID_KEY)).get("max_jobid")
        if type(purged) is int and purged > mgr.max_jobid:
            mgr.max_jobid = purged
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            mgr.log.warning("cannot read the purge's largest job id", error=exc.strerror)
    except (ValueError, AttributeError) as exc:
        mgr.log.warning("the purge's largest job id is unreadable", error=str(exc))

    replayed: list[tuple[Job, list[dict[str, Any]]]] = []
    lost: list[tuple[int, str]] = []
    zombie_ok = ckpt is not None and not stats.full
    # no checkpoint was ever written (a crash within the first checkpoint period):
    # every waitable job that ended is still to be waited for, as far as anyone knows
    # (a wait in those seconds may be answered twice; losing the job is worse)
    never_checkpointed = ckpt is None

    def got_eventlog(jobid: int, msg: Message) -> None:
        if msg.errnum:
            if msg.errnum == errno.ENOENT:
                lost.append((jobid, "eventlog is missing"))
            else:
                lost.append((jobid, f"eventlog lookup failed: {msg.errstr}"))
            return
        try:
            data = _value(msg)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            lost.append((jobid, str(exc)))
            return
        got_eventlog_bytes(jobid, data)

    def got_eventlog_bytes(jobid: int, data: bytes) -> None:
        try:
            events = decode_events(data)
        except (EventlogError, KeyError, TypeError, ValueError) as exc:
            lost.append((jobid, str(exc)))
            return
        fold(jobid, events)

    def fold(jobid: int, events: list[dict[str, Any]]) -> bool:
        try:
            rec = replay(jobid, events)
        except (EventlogError, JobEventError, KeyError, TypeError, ValueError) as exc:
            lost.append((jobid, str(exc)))
            return False
        stats.replayed += 1
        if rec.state == JobState.INACTIVE:
            stats.inactive += 1
            if not rec.invalid:
                mgr.inactive.add(jobid, rec.t_clean or time.time())
                if rec.waitable and ((zombie_ok and jobid in changed) or never_checkpointed):
                    from jobmgr.manager.wait import wait_result

                    mgr.waits.zombies[jobid] = wait_result(rec)
        else:
            replayed.append((rec, events))
        return True

    # jobspec (and R when resources are held) for the active ones
    jobspecs: dict[int, Any] = {}
    Rs: dict[int, Any] = {}
    for jobid, (events, spec, R) in sorted(from_section.items()):
        if fold(jobid, events):
            jobspecs[jobid], Rs[jobid] = spec, R
        else:
            # the store is the authority: its eventlog decides whether the job is lost
            lost.pop()
            mgr.log.warning("restart: job in the active section does not replay; reading "
                            "it from the KVS", id=jobid)
            del from_section[jobid]
    stats.from_section = len(from_section)
    from_kvs = sorted(candidates - from_section.keys())
    if engine is not None:
        # in-process: one resolve of each job's directory for all three values
        raw: dict[int, tuple[bytes | None, bytes | None]] = {}
        for n, jobid in enumerate(from_kvs):
            values = engine.get_many(job_key(jobid), ("eventlog", "jobspec", "R")) or {}
            if values.get("eventlog") is None:
                lost.append((jobid, "eventlog is missing"))
                continue
            raw[jobid] = (values.get("jobspec"), values.get("R"))
            got_eventlog_bytes(jobid, values["eventlog"])
            if n % 1024 == 1023:
                await asyncio.sleep(0)   # the broker answers others meanwhile
        for rec, _events in replayed:
            if rec.id in from_section:
                continue
            spec_raw, r_raw = raw[rec.id]
            for what, data in (("jobspec", spec_raw), ("R", r_raw)):
                if data is None:
                    continue
                try:
                    (jobspecs if what == "jobspec" else Rs)[rec.id] = orjson.loads(data)
                except orjson.JSONDecodeError:
                    pass
    else:
        await _pipelined(ctx, ((i, eventlog_key(i)) for i in from_kvs), got_eventlog)

    def got_value(tag: tuple[str, int], msg: Message) -> None:
        what, jobid = tag
        if msg.errnum:
            return
        try:
            value = orjson.loads(_value(msg))
        except (ValueError, KeyError, TypeError):
            return
        (jobspecs if what == "jobspec" else Rs)[jobid] = value

    if engine is None:
        keys: list[tuple[tuple[str, int], str]] = []
        for rec, _events in replayed:
            if rec.id in from_section:
                continue
            keys.append((("jobspec", rec.id), job_key(rec.id) + ".jobspec"))
            if rec.has_resources:
                keys.append((("R", rec.id), job_key(rec.id) + ".R"))
        await _pipelined(ctx, keys, got_value)

    for rec, events in replayed:
        jobspec = jobspecs.get(rec.id)
        if not isinstance(jobspec, dict):
            lost.append((rec.id, "jobspec is missing or not JSON"))
            continue
        if rec.has_resources and not isinstance(Rs.get(rec.id), dict):
            lost.append((rec.id, "resources are allocated but R is missing"))
            continue
        try:
            system = (jobspec.get("attributes") or {}).get("system") or {}
            deps = parse_dependencies(system.get("dependencies"),
                                      mgr.jobtap.plugin_schemes() if mgr.jobtap.active else ())
        except (ValueError, AttributeError) as exc:
            mgr.log.warning("restart: ignoring unreadable dependencies", id=rec.id,
                            error=str(exc))
            deps = []
        # the section's jobspec and R have their updates applied already
        updated = rec.id in from_section
        if rec.jobspec_updates and not updated:
            try:
                jobspec = apply_jobspec_updates(jobspec, rec.jobspec_updates)
            except ValueError as exc:
                mgr.log.error("restart: jobspec updates do not apply", id=rec.id,
                              error=str(exc))
        R = Rs.get(rec.id)
        if R is not None and rec.expiration is not None and not updated:
            R = with_expiration(R, rec.expiration)
        job = ActiveJob(rec, jobspec, queue_of(jobspec), events=list(events), R=R,
                        deps=deps or None)
        job.reset_tentative()
        mgr.add(job)
        stats.active += 1

    if lost:
        await _move_lost(mgr, lost)
        stats.lost = len(lost)
    for job in sorted(mgr.jobs.values(), key=lambda j: j.rec.id):
        _restart_job(mgr, job)
    await mgr.poster.idle()
    stats.seconds = time.monotonic() - t0
    stats.cpu_seconds = time.process_time() - cpu0
    mgr.log.info("restart: jobs recovered", replayed=stats.replayed, active=stats.active,
                 inactive=len(mgr.inactive), lost=stats.lost, full=stats.full,
                 from_section=stats.from_section,
                 seconds=round(stats.seconds, 3), cpu_seconds=round(stats.cpu_seconds, 3))
    return stats


def _restart_job(mgr: "Manager", job: ActiveJob) -> None:
    state = job.rec.state
    if mgr.jobtap.active:
        mgr.jobtap.new(job)
    if state == JobState.NEW:
        begin(mgr, job)
        return
    mgr.post(job, "flux-restart")
    mgr.perilog.recover(job)
    if state == JobState.DEPEND:
        mgr.deps.begin(job)
    mgr.progress(job)


async def _move_lost(mgr: "Manager", lost: list[tuple[int, str]]) -> None:
    """Move unreplayable job directories aside (one commit), logging why."""
    ops: list[dict[str, Any]] = []
    for jobid, why in lost:
        msg = await _lookup(mgr.ctx, job_key(jobid), _TREEOBJ)
        dest = lost_found_key(jobid)
        mgr.log.error("restart: job cannot be replayed; moved aside", id=jobid, to=dest,
                      error=why)
        if msg.errnum:
            continue
        ops.append({"key": dest, "flags": 0, "dirent": msg.payload["val"]})
        ops.append({"key": job_key(jobid), "flags": 0, "dirent": None})
    if not ops:
        return
    reply = await _future(mgr.ctx, "kvs.commit", {"namespace": "primary", "flags": 0,
                                                  "ops": ops})
    if reply.errnum:
        mgr.log.error("restart: moving jobs to lost+found failed", error=reply.errstr)


# --- checkpoint ------------------------------------------------------------------------------

async def write_checkpoint(mgr: "Manager", final: bool = False) -> None:
    """Snapshot the table into ``checkpoint.job-manager`` with the root it reflects."""
    if final:
        await mgr.poster.idle()
        root = await _future(mgr.ctx, "kvs.getroot", {"namespace": "primary"})
        if root.errnum:
            raise FluxError(root.errnum, root.errstr or "kvs.getroot failed")
        rootref = root.payload["rootref"]
    else:
        rootref = mgr.poster.rootref
    # a job whose submit is not committed is not in the store at ROOTREF
    active = sorted(jobid for jobid, job in mgr.jobs.items() if job.events)
    ckpt = Checkpoint(mgr.max_jobid, rootref, None, active,
                      mgr.inactive, mgr.queues.checkpoint(), mgr.waits.checkpoint())
    value = encode_checkpoint(ckpt)        # taken now: the state at ROOTREF
    section = _take_active_section(mgr) if final else None
    mgr.changes = 0
    if rootref is not None:
        msg = await _lookup(mgr.ctx, "job", _TREEOBJ, rootdir={"ver": 1, "type": "dirref",
                                                                "data": [rootref]})
        if not msg.errnum:
            value["job_dir"] = msg.payload.get("val")
    ops: list[dict[str, Any]] = []
    if section is not None and value.get("job_dir") is not None:
        section_root, jobs = section
        section_dir = value["job_dir"]
        if section_root != rootref:
            msg = await _lookup(mgr.ctx, "job", _TREEOBJ,
                                rootdir={"ver": 1, "type": "dirref", "data": [section_root]})
            section_dir = None if msg.errnum else msg.payload.get("val")
        # only when no job changed between the two roots do the section's
        # events describe the jobs at ROOTREF
        if section_dir == value["job_dir"]:
            value["active_section"] = True
            ops.append({"key": ACTIVE_KEY, "flags": 0,
                        "dirent": _val(encode_active_section(section_root, section_dir, jobs))})
    ops.append({"key": CHECKPOINT_KEY, "flags": 0, "dirent": _val(orjson.dumps(value))})
    reply = await _future(mgr.ctx, "kvs.commit", {"namespace": "primary", "flags": 0,
                                                  "ops": ops})
    if reply.errnum:
        raise FluxError(reply.errnum, reply.errstr or "checkpoint commit failed")
    if rootref is not None:
        # the next restart diffs from ROOTREF: keep its tree through online GC
        pin = await _future(mgr.ctx, "content.pin", {"name": "job-manager", "ref": rootref,
                                                     "kind": "tree"})
        if pin.errnum:
            mgr.log.warning("cannot pin the job-manager checkpoint's root; a restart may "
                            "replay every job", error=pin.errstr)


def max_jobid_op(max_jobid: int) -> dict[str, Any]:
    """The op a purge commits so that a restart never issues an id it removed."""
    return {"key": MAX_JOBID_KEY, "flags": 0,
            "dirent": _val(orjson.dumps({"max_jobid": max_jobid}))}


def _val(data: bytes) -> dict[str, Any]:
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode("ascii")}


def _take_active_section(mgr: "Manager") -> tuple[str, bytes] | None:
    """(root, ``[[id, events, jobspec, R]...]`` JSON) of the active jobs, or None.

    Taken in one go, with no commit of the job manager queued or in flight:
    every event committed up to its last root is then applied (and none
    after it), so each job's events are its eventlog at that root.
    """
    poster = mgr.poster
    if poster.busy or poster.rootref is None:
        return None
    try:
        jobs = encode_active_jobs((jobid, job.events, job.jobspec, job.R)
                                  for jobid, job in sorted(mgr.jobs.items()) if job.events)
    except (TypeError, orjson.JSONEncodeError) as exc:
        mgr.log.warning("active jobs cannot be checkpointed; the next start reads them "
                        "from the KVS", error=str(exc))
        return None
    if jobs is None:
        mgr.log.info("active jobs are too many to checkpoint; the next start reads them "
                     "from the KVS")
        return None
    return poster.rootref, jobs
