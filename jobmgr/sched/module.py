"""The ``sched`` module: RFC 27 scheduling over jobmgr.sched.core (rank 0).

Start: acquire resources (RFC 28 ``resource.acquire``), say hello to the
job manager (re-marking the allocations of running jobs), then ask for
every pending job (``sched-ready`` unlimited).  Pending ``sched.alloc``
requests wait in a PendingQueue (priority, then submit time).

Policy: first-come-first-served in that order, first fit in rank order.
The head of the queue is tried; if it does not fit, scheduling stops there
(it gets ``sched.reason_pending = "insufficient resources"``) unless
``[sched] backfill = N`` lets up to N blocked jobs be stepped over, with no
reservation for them.  A blocked job is not tried again until resources
come back (a free, a rank coming up): each pass costs O(1) while the head
is blocked, and O(log n) per allocation otherwise.

An allocation is answered at once with SUCCESS carrying R and
``sched.resource_summary``; the job manager writes ``job.<id>.R`` in the
same commit as the ``alloc`` event (a departure from RFC 27, where the
scheduler commits R first: it saves every job a commit round, see
specs/scheduler.md).  A request that can never be met is denied at once,
and ``feasibility.check`` lets ingest refuse it at submit when ``[ingest.validator]
plugins`` includes ``feasibility`` (and lets ``flux update`` check a queue change).
"""
from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Mapping
from typing import Any

import orjson

from broker.module import Module, request_handler
from flux.errors import FluxError
from flux.message import Message
from jobmgr.sched.queue import PendingJob, PendingQueue
from jobmgr.sched.core import REASON_INSUFFICIENT, Request, SchedCore, resource_summary

__all__ = ["Sched", "parse_queues", "parse_sched_config", "SUCCESS", "ANNOTATE", "DENY",
           "CANCEL"]

SUCCESS, ANNOTATE, DENY, CANCEL = 0, 1, 2, 3
#: how long feasibility.check and sched.resource-status wait for resources
READY_TIMEOUT = 10.0
_FEASIBLE_CACHE_MAX = 4096


def parse_queues(table: Any) -> dict[str, tuple[str, ...]]:
    """``[queues.NAME] requires = [...]`` -> {NAME: required properties}."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise FluxError(errno.EINVAL, "queues: expected a table of queue tables")
    out: dict[str, tuple[str, ...]] = {}
    for name, queue in table.items():
        if not isinstance(queue, Mapping):
            raise FluxError(errno.EINVAL, f"queues.{name}: expected a table")
        requires = queue.get("requires", [])
        if not isinstance(requires, list) or not all(isinstance(p, str) and p.lstrip("^")
                                                     for p in requires):
            raise FluxError(errno.EINVAL, f"queues.{name}.requires: expected an array of "
                                          "property names")
        out[name] = tuple(requires)
    return out


def parse_sched_config(table: Any) -> int:
    """``[sched] backfill = N`` (blocked jobs that may be stepped over; default 0)."""
    if table is None:
        return 0
    if not isinstance(table, Mapping):
        raise FluxError(errno.EINVAL, "sched: expected a table")
    for key in table:
        if key != "backfill":
            raise FluxError(errno.EINVAL, f"sched.{key}: unknown key")
    depth = table.get("backfill", 0)
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise FluxError(errno.EINVAL, f"sched.backfill: expected an integer >= 0, got {depth!r}")
    return depth


def _request_key(req: Request) -> tuple[Any, ...]:
    # decoded: a cached orjson bytes object keeps its whole 4 KiB output buffer
    cons = (orjson.dumps(req.constraint, option=orjson.OPT_SORT_KEYS).decode()
            if req.constraint else None)
    return (req.nslots, req.cores_per_slot, req.gpus_per_slot, req.nnodes, req.slots_per_node,
            req.exclusive, req.queue, cons)


def _ranks_of(R: Any) -> set[int]:
    from flux.idset import IDset

    if isinstance(R, (str, bytes)):
        R = orjson.loads(R)
    ranks: set[int] = set()
    for entry in R["execution"]["R_lite"]:
        ranks.update(IDset(entry["rank"]).expand())
    return ranks


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))


def _int_field(body: Mapping[str, Any], key: str, topic: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise FluxError(errno.EPROTO, f"{topic}: '{key}' must be an integer, got {value!r}")
    return value


class Sched(Module):
    name = "sched"
    services = ("sched", "feasibility")

    def __init__(self, ctx: Any, args: list[str]) -> None:
        super().__init__(ctx, args)
        self.core: SchedCore | None = None
        self.queue = PendingQueue()
        self.queues: dict[str, tuple[str, ...]] = {}
        self.backfill = 0
        self._gen = 0                    # bumped whenever resources come back
        self._pass_scheduled = False
        self._ready = asyncio.Event()
        self._up: set[int] = set()
        self._all_ranks: set[int] = set()
        self._early: list[Message] = []  # alloc requests that came before resources
        self._feasible_cache: dict[tuple[Any, ...], str | None] = {}
        self._expiration: dict[int, float] = {}
        self.ready_timeout = READY_TIMEOUT
        self.stats = {"alloc": 0, "success": 0, "deny": 0, "cancel": 0, "free": 0,
                      "passes": 0}

    async def start(self) -> None:
        self.queues = parse_queues(self.ctx.conf_get("queues"))
        self.backfill = parse_sched_config(self.ctx.conf_get("sched"))
        self.ctx.create_task(self._run(), name="sched-acquire")

    def config_check(self, config: Any) -> None:
        """Refuse (FluxError) a ``[queues]`` table this module cannot use."""
        parse_queues(config.get("queues"))

    def config_reload(self, config: Any) -> None:
        """Take the reloaded ``[queues]``: each queue's ``requires`` applies to the
        requests queued here too.  With named queues, a request whose queue is no
        longer configured is withdrawn (CANCEL: the job manager holds such jobs
        until their queue comes back); one that the new requirements make
        unsatisfiable is denied, as it would be if it came now."""
        queues = parse_queues(config.get("queues"))
        if queues == self.queues:
            return
        old, self.queues = self.queues, queues
        self._feasible_cache.clear()
        if self.core is None:
            return
        self.core.set_queues(queues)
        for job in self.queue:
            name = job.request.queue
            if queues and name not in queues:
                self.queue.remove(job.id)
                self.stats["cancel"] += 1
                self._respond(job.msg, job.id, CANCEL)
            elif name is not None and old.get(name) != queues.get(name):
                why = self._feasible(job.request)
                if why is not None:
                    self.queue.remove(job.id)
                    self._deny(job.msg, job.id, why)
        # the requirements may let blocked jobs fit now
        self._gen += 1
        self._schedule_soon()

    async def stop(self) -> None:
        # RFC 27: an error response tells the job manager the scheduler is gone
        while True:
            job = self.queue.pop()
            if job is None:
                break
            self.ctx.respond_error(job.msg, errno.ENOSYS, "scheduler unloaded")
        for msg in self._early:
            self.ctx.respond_error(msg, errno.ENOSYS, "scheduler unloaded")
        self._early.clear()

    # -- acquire, hello, ready --------------------------------------------------

    async def _run(self) -> None:
        delay = 0.02
        while True:
            try:
                async for resp in self.ctx.rpc_stream("resource.acquire"):
                    delay = 0.02
                    if isinstance(resp, dict) and "resources" in resp:
                        first = self.core is None
                        self._acquired(resp)
                        if first:
                            self.ctx.create_task(self._hello(), name="sched-hello")
                    else:
                        self._acquire_update(resp)
            except FluxError as exc:
                if exc.errno != errno.ENOSYS:
                    self.ctx.log.error(f"resource.acquire: {exc}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _acquired(self, resp: Mapping[str, Any]) -> None:
        from flux.idset import IDset

        core = SchedCore(resp["resources"], self.queues)
        if self.core is not None:
            # resources re-acquired (resource module reloaded): keep the allocations
            for jobid in self.core.jobs:
                try:
                    core.restore(jobid, self.core.R_of(jobid))
                except ValueError as exc:
                    self.ctx.log.error(f"re-acquire: {exc}")
        self._up = set(IDset(resp.get("up") or "").expand())
        self._all_ranks = _ranks_of(resp["resources"])
        core.set_unavailable(self._all_ranks - self._up)
        self.core = core
        self._feasible_cache.clear()
        self._gen += 1
        self._ready.set()
        early, self._early = self._early, []
        for msg in early:
            self._alloc(msg)
        self._schedule_soon()

    def _acquire_update(self, resp: Any) -> None:
        from flux.idset import IDset

        if not isinstance(resp, Mapping) or self.core is None:
            return
        changed = False
        if resp.get("up"):
            self._up |= set(IDset(resp["up"]).expand())
            changed = True
        for key in ("down", "shrink"):
            if resp.get(key):
                self._up -= set(IDset(resp[key]).expand())
                changed = True
        if changed:
            self.core.set_unavailable(self._all_ranks - self._up)
            self._gen += 1
            self._schedule_soon()
        if "expiration" in resp:
            self.core.set_expiration(float(resp["expiration"]))

    async def _hello(self) -> None:
        warned = False
        while True:
            try:
                resp = await self.ctx.rpc("job-manager.sched-hello", {"partial-ok": False})
                break
            except FluxError as exc:
                if exc.errno != errno.ENOSYS:
                    self.ctx.log.error(f"job-manager.sched-hello: {exc}")
                    return
                if not warned:
                    warned = True
                    self.ctx.log.debug("no job-manager yet: waiting to say hello")
                await asyncio.sleep(0.5)
        assert self.core is not None
        for job in (resp or {}).get("alloc", []):
            jobid = job.get("id")
            try:
                self.core.restore(jobid, job["R"])
            except (ValueError, KeyError, TypeError) as exc:
                self.ctx.log.error(f"hello: job {jobid}: cannot restore its allocation: {exc}")
                self.ctx.send_request("job-manager.raise", {
                    "id": jobid, "severity": 0, "type": "scheduler",
                    "note": f"failed to reallocate R: {exc}"})
        try:
            await self.ctx.rpc("job-manager.sched-ready", {"mode": "unlimited"})
        except FluxError as exc:
            self.ctx.log.error(f"job-manager.sched-ready: {exc}")

    # -- alloc --------------------------------------------------------------------

    def _respond(self, msg: Message, jobid: int, rtype: int, **extra: Any) -> None:
        payload = {"id": jobid, "type": rtype}
        payload.update(extra)
        self.ctx.respond(msg, payload)

    def _deny(self, msg: Message, jobid: int, note: str) -> None:
        self.stats["deny"] += 1
        self._respond(msg, jobid, DENY, note=note)

    def _feasible(self, request: Request) -> str | None:
        assert self.core is not None
        key = _request_key(request)
        cache = self._feasible_cache
        if key in cache:
            return cache[key]
        try:
            why = self.core.feasible(request)
        except ValueError as exc:
            why = f"unsatisfiable request: {exc}"
        if len(cache) >= _FEASIBLE_CACHE_MAX:
            cache.clear()
        cache[key] = why
        return why

    @request_handler("sched.alloc")
    def alloc(self, msg: Message) -> None:
        body = msg.payload
        if not isinstance(body, Mapping):
            raise FluxError(errno.EPROTO, "sched.alloc: payload must be an object")
        _int_field(body, "id", msg.topic)
        if self.core is None:
            self._early.append(msg)
            return None
        self._alloc(msg)
        return None

    def _alloc(self, msg: Message) -> None:
        body = msg.payload
        jobid = body["id"]
        self.stats["alloc"] += 1
        if jobid in self.queue or (self.core is not None and jobid in self.core):
            self._deny(msg, jobid, f"job {jobid} already has an alloc request")
            return
        jobspec = body.get("jobspec")
        try:
            if isinstance(jobspec, (str, bytes)):
                jobspec = orjson.loads(jobspec)
            if not isinstance(jobspec, Mapping):
                raise ValueError("jobspec: must be an object")
            request = Request.from_jobspec(jobspec)
        except (ValueError, TypeError) as exc:
            self._deny(msg, jobid, f"invalid jobspec: {exc}")
            return
        why = self._feasible(request)
        if why is not None:
            self._deny(msg, jobid, why)
            return
        priority = body.get("priority", 0)
        t_submit = body.get("t_submit", 0.0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            priority = 0
        if not isinstance(t_submit, (int, float)) or isinstance(t_submit, bool):
            t_submit = 0.0
        self.queue.push(PendingJob(jobid, priority, float(t_submit), body.get("userid", 0),
                                   request, msg))
        self._schedule_soon()

    def _schedule_soon(self) -> None:
        if not self._pass_scheduled:
            self._pass_scheduled = True
            asyncio.get_running_loop().call_soon(self._pass)

    def _pass(self) -> None:
        """Allocate to pending jobs in order until one is blocked (see the policy)."""
        self._pass_scheduled = False
        core = self.core
        if core is None:
            return
        self.stats["passes"] += 1
        now = time.time()
        granted: list[tuple[PendingJob, dict[str, Any]]] = []
        stepped_over: list[PendingJob] = []
        budget = self.backfill
        queue = self.queue
        while True:
            job = queue.head()
            if job is None:
                break
            if job.tried_gen != self._gen:
                try:
                    R = core.allocate(job.id, job.request, now)
                except ValueError as exc:
                    queue.pop()
                    self._deny(job.msg, job.id, f"unsatisfiable request: {exc}")
                    continue
                if R is not None:
                    queue.pop()
                    granted.append((job, R))
                    continue
                job.tried_gen = self._gen
            if job.reason != REASON_INSUFFICIENT:
                job.reason = REASON_INSUFFICIENT
                self._respond(job.msg, job.id, ANNOTATE,
                              annotations={"sched": {"reason_pending": REASON_INSUFFICIENT}})
            if budget <= 0:
                break
            budget -= 1
            stepped_over.append(queue.pop())  # type: ignore[arg-type]
        for job in stepped_over:
            queue.push(job)
        if granted:
            self._commit(granted)

    def _commit(self, granted: list[tuple[PendingJob, dict[str, Any]]]) -> None:
        """Answer SUCCESS with R: the job manager commits R with the alloc event."""
        for job, R in granted:
            sched: dict[str, Any] = {"resource_summary": resource_summary(R)}
            if job.reason is not None:
                sched["reason_pending"] = None
            self.stats["success"] += 1
            self._respond(job.msg, job.id, SUCCESS, R=R, annotations={"sched": sched})

    # -- cancel, prioritize, free, expiration -----------------------------------

    @request_handler("sched.cancel")
    def cancel(self, msg: Message) -> None:
        body = msg.payload if isinstance(msg.payload, Mapping) else {}
        jobid = _int_field(body, "id", msg.topic)
        job = self.queue.remove(jobid)
        if job is None:
            for i, early in enumerate(self._early):
                if early.payload.get("id") == jobid:
                    del self._early[i]
                    self.stats["cancel"] += 1
                    self._respond(early, jobid, CANCEL)
                    break
            return None
        self.stats["cancel"] += 1
        self._respond(job.msg, jobid, CANCEL)
        return None

    @request_handler("sched.prioritize")
    def prioritize(self, msg: Message) -> None:
        body = msg.payload if isinstance(msg.payload, Mapping) else {}
        jobs = body.get("jobs")
        if not isinstance(jobs, list):
            raise FluxError(errno.EPROTO, "sched.prioritize: 'jobs' must be an array")
        changed = False
        for item in jobs:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                self.ctx.log.error(f"sched.prioritize: bad entry {item!r}")
                continue
            changed |= self.queue.reprioritize(item[0], item[1])
        if changed:
            self._schedule_soon()
        return None

    @request_handler("sched.free")
    def free(self, msg: Message) -> dict[str, Any]:
        body = msg.payload if isinstance(msg.payload, Mapping) else {}
        jobid = _int_field(body, "id", msg.topic)
        final = body.get("final", True)
        R = body.get("R")
        if final:
            self._expiration.pop(jobid, None)
        if self.core is None:
            raise FluxError(errno.EAGAIN, "sched.free: no resources acquired yet")
        try:
            # a final free returns everything the job holds, whatever R names:
            # the allocation is known, so R need not be parsed again
            self.core.free(jobid, None if final else R, final=bool(final))
        except KeyError:
            self.ctx.log.warning(f"sched.free: job {jobid} holds no resources")
            return {"id": jobid}
        except ValueError as exc:
            # a partial release naming resources the job does not hold: free all of it
            self.ctx.log.error(f"sched.free: {exc}")
            if jobid in self.core:
                self.core.free(jobid)
        self.stats["free"] += 1
        self._gen += 1
        self._schedule_soon()
        return {"id": jobid}

    @request_handler("sched.expiration")
    def expiration(self, msg: Message) -> dict[str, Any]:
        body = msg.payload if isinstance(msg.payload, Mapping) else {}
        jobid = _int_field(body, "id", msg.topic)
        value = body.get("expiration")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise FluxError(errno.EINVAL, f"sched.expiration: expiration must be a number "
                                          f">= 0, got {value!r}")
        if self.core is None or jobid not in self.core:
            raise FluxError(errno.ENOENT, f"sched.expiration: job {jobid} has no allocation")
        limit = self.core.expiration
        if limit > 0 and (value == 0 or value > limit + 1e-6):
            # a job cannot outlive the instance that holds its resources
            raise FluxError(errno.EINVAL, "requested expiration is past the instance's own "
                                          f"expiration ({_when(limit)})")
        self._expiration[jobid] = float(value)
        return {}

    # -- views ----------------------------------------------------------------------

    @request_handler("sched.resource-status", allow_guest=True)
    def resource_status(self, msg: Message) -> Any:
        if self.core is None:
            return self._when_ready(self._status)
        return self._status()

    def _status(self) -> dict[str, Any]:
        assert self.core is not None
        out: dict[str, Any] = self.core.status()
        out["queues"] = {name: list(props) for name, props in self.queues.items()}
        return out

    async def _when_ready(self, fn: Any, *args: Any) -> Any:
        """FN(*ARGS) once resources are acquired; EAGAIN if that takes too long
        (e.g. a rank that never reports its resources)."""
        try:
            await asyncio.wait_for(self._ready.wait(), self.ready_timeout)
        except asyncio.TimeoutError:
            raise FluxError(errno.EAGAIN, "the scheduler has no resources yet (waiting for "
                                          "resource.acquire)") from None
        return fn(*args)

    @request_handler("feasibility.check")
    def feasibility(self, msg: Message) -> Any:
        body = msg.payload if isinstance(msg.payload, Mapping) else {}
        if "jobspec" not in body:
            raise FluxError(errno.EPROTO, "feasibility.check: missing 'jobspec'")
        if self.core is None:
            return self._when_ready(self._check, body["jobspec"])
        return self._check(body["jobspec"])

    def _check(self, jobspec: Any) -> dict[str, Any]:
        try:
            if isinstance(jobspec, (str, bytes)):
                jobspec = orjson.loads(jobspec)
            if not isinstance(jobspec, Mapping):
                raise ValueError("jobspec: must be an object")
            request = Request.from_jobspec(jobspec)
        except (ValueError, TypeError) as exc:
            raise FluxError(errno.EINVAL, f"invalid jobspec: {exc}") from None
        why = self._feasible(request)
        if why is not None:
            raise FluxError(errno.EINVAL, why)
        return {}

    @request_handler("sched.stats", allow_guest=True)
    def get_stats(self, msg: Message) -> dict[str, Any]:
        """Counters and queue sizes (our addition, for tests and flux queue status -v)."""
        core = self.core
        return {**self.stats, "pending": len(self.queue),
                "running": len(core.jobs) if core is not None else 0,
                "free_cores": core.free_cores if core is not None else 0,
                "backfill": self.backfill}
